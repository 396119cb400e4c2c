//! `KTable.group_by(..).aggregate(init, add, subtract)`: a table re-grouped by a column, its
//! aggregates kept exact as rows are inserted, moved between groups, updated and deleted —
//! checked after every input against a reference recomputed from the table's rows.

use std::collections::BTreeMap;

use eddy_streams::driver::TestTopic;
use eddy_streams::{Consumed, Grouped, Materialized, Serdes, StreamsBuilder, TopologyTestDriver};

/// Users as "region:amount" strings keyed by user; the table sums amounts and counts users
/// per region.
fn topology() -> StreamsBuilder {
    let b = StreamsBuilder::new();
    let users = b.table(
        "users",
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::named("users-store"),
    );
    let grouped = users.group_by(
        |_user: &String, row: &String| {
            let (region, amount) = row.split_once(':').unwrap_or((row.as_str(), "0"));
            (region.to_owned(), amount.parse::<i64>().unwrap_or(0))
        },
        Grouped::with(Serdes::string(), Serdes::i64()),
    );
    grouped.aggregate(
        || 0i64,
        |_, amount, sum| sum + amount,
        |_, amount, sum| sum - amount,
        Materialized::named("sums").with_value_serde(Serdes::i64()),
    );
    grouped.count(Materialized::named("counts"));
    b
}

#[test]
fn aggregates_follow_inserts_moves_updates_and_deletes() {
    let mut driver = TopologyTestDriver::with_partitions(topology().build().unwrap(), 2);
    let topic = TestTopic::new(
        "users",
        Serdes::string(),
        Serdes::nullable(Serdes::string()),
    );
    let steps: Vec<(&str, Option<&str>)> = vec![
        ("ann", Some("north:10")),
        ("bob", Some("north:5")),
        ("cy", Some("south:7")),
        ("bob", Some("south:6")),  // moves between groups
        ("ann", Some("north:12")), // updated in place
        ("cy", None),              // deleted
        ("dee", Some("north:1")),
        ("bob", None),
        ("zed", None), // a delete of a row the table never had changes nothing
    ];
    let mut rows: BTreeMap<String, String> = BTreeMap::new();
    for (i, (user, row)) in steps.into_iter().enumerate() {
        driver
            .pipe(&topic, user.to_owned(), row.map(str::to_owned), i as i64)
            .unwrap();
        match row {
            Some(r) => rows.insert(user.to_owned(), r.to_owned()),
            None => rows.remove(user),
        };
        let (mut sums, mut counts): (BTreeMap<String, i64>, BTreeMap<String, i64>) =
            (BTreeMap::new(), BTreeMap::new());
        for r in rows.values() {
            let (region, amount) = r.split_once(':').unwrap();
            *sums.entry(region.to_owned()).or_default() += amount.parse::<i64>().unwrap();
            *counts.entry(region.to_owned()).or_default() += 1;
        }
        // Groups that emptied keep their zero aggregate, as Kafka's do.
        let got_sums: BTreeMap<String, i64> = driver
            .key_value_store::<String, i64>("sums")
            .unwrap()
            .into_iter()
            .filter(|(k, v)| *v != 0 || sums.contains_key(k))
            .collect();
        let got_counts: BTreeMap<String, i64> = driver
            .key_value_store::<String, i64>("counts")
            .unwrap()
            .into_iter()
            .filter(|(_, v)| *v != 0)
            .collect();
        assert_eq!(got_sums, sums, "sums after step {i}");
        assert_eq!(got_counts, counts, "counts after step {i}");
    }
}
