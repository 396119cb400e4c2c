//! Join semantics on the test driver beyond the documentation tables (join_docs.rs):
//! lateness, grace, asymmetric windows, repartitioning, store naming and logging,
//! materialization of derived tables, and foreign-key joins.

mod join_common;

use eddy_streams::driver::TestTopic;
use eddy_streams::{
    Consumed, JoinWindows, Joined, Materialized, Produced, Serdes, StreamJoined, StreamsBuilder,
    TopologyTestDriver,
};

use join_common::*;

#[test]
fn late_records_are_dropped_and_counted_and_never_joined() {
    for kind in [Kind::Inner, Kind::Left] {
        let builder = StreamsBuilder::new();
        let (left, right) = (strings(&builder, "left"), strings(&builder, "right"));
        let windows = JoinWindows::of_time_difference_and_grace(10, 5);
        let out = match kind {
            Kind::Inner => left.join(
                &right,
                |l, r| show(Some(l), Some(r)),
                windows,
                StreamJoined::inherit(),
            ),
            _ => left.left_join(
                &right,
                |l, r| show(Some(l), r),
                windows,
                StreamJoined::inherit(),
            ),
        };
        out.to("out", Produced::with(Serdes::string(), Serdes::string()));
        let mut d = TopologyTestDriver::new(builder.build().unwrap());
        pipe(&mut d, "left", "k", "x", 100);
        // Its window closed at 84 + 10 + 5 = 99 < 100: late.
        pipe(&mut d, "left", "k", "late", 84);
        // 86 + 10 + 5 = 101: still within grace.
        pipe(&mut d, "left", "k", "ok", 86);
        // Joins both buffered left records in [80, 100]; "late" was never buffered.
        pipe(&mut d, "right", "k", "r", 90);
        assert_eq!(
            read(&mut d),
            vec![triple("k", "[ok, r]", 90), triple("k", "[x, r]", 100)],
            "{kind:?}"
        );
        assert_eq!(d.metrics().dropped_records, 1, "{kind:?}");
        // Much later: for the left join nothing is left waiting; "late" is never emitted.
        pipe(&mut d, "left", "k", "end", 1_000);
        let tail = read(&mut d);
        assert!(tail.is_empty(), "{kind:?}: {tail:?}");
        assert_eq!(d.metrics().dropped_records, 1, "{kind:?}");
    }
}

/// KIP-633: an out-of-order partner within grace still joins, and then the record is not
/// emitted alone; a record nobody joined is emitted alone once its window and grace
/// passed — not before.
#[test]
fn left_join_waits_for_the_window_and_grace_before_emitting_alone() {
    let builder = StreamsBuilder::new();
    let (left, right) = (strings(&builder, "left"), strings(&builder, "right"));
    let windows = JoinWindows::of_time_difference_and_grace(10, 5);
    left.left_join(
        &right,
        |l, r| show(Some(l), r),
        windows,
        StreamJoined::inherit(),
    )
    .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let mut d = TopologyTestDriver::new(builder.build().unwrap());
    pipe(&mut d, "left", "a", "A", 10);
    pipe(&mut d, "left", "b", "B", 24);
    // A's window is [0, 20] and closes at 25: stream time 24 leaves it open, and a
    // partner at 20, 4 ms out of order, joins it.
    pipe(&mut d, "right", "a", "a", 20);
    assert_eq!(read(&mut d), vec![triple("a", "[A, a]", 20)]);
    // B closes at 24 + 10 + 5 = 39: nothing yet at 39...
    pipe(&mut d, "left", "c", "C", 39);
    assert_eq!(read(&mut d), vec![]);
    // ...and at 40 it goes out alone, with its own timestamp; A never does.
    pipe(&mut d, "left", "c", "C2", 40);
    assert_eq!(read(&mut d), vec![triple("b", "[B, null]", 24)]);
    pipe(&mut d, "left", "z", "Z", 1_000);
    assert_eq!(
        read(&mut d),
        vec![triple("c", "[C, null]", 39), triple("c", "[C2, null]", 40)]
    );
}

#[test]
fn asymmetric_windows_join_in_their_direction_only() {
    let builder = StreamsBuilder::new();
    let (left, right) = (strings(&builder, "left"), strings(&builder, "right"));
    // Right records may come up to 10 ms after a left record, never before it.
    let windows = JoinWindows::of_time_difference_without_grace(0).after(10);
    assert_eq!(
        (windows.before_ms, windows.after_ms, windows.size_ms()),
        (0, 10, 10)
    );
    left.outer_join(&right, show, windows, StreamJoined::inherit())
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let mut d = TopologyTestDriver::new(builder.build().unwrap());
    pipe(&mut d, "left", "k", "A", 100);
    // x at 105 is in A's [100, 110].
    pipe(&mut d, "right", "k", "x", 105);
    // y, after A's window, joins left records in [101, 111]; once stream time passes 111
    // none can come: it goes out alone. B, at 112, is after it; z at 115 has B in [105, 115].
    pipe(&mut d, "right", "k", "y", 111);
    pipe(&mut d, "left", "k", "B", 112);
    pipe(&mut d, "right", "k", "z", 115);
    assert_eq!(
        read(&mut d),
        vec![
            triple("k", "[A, x]", 105),
            triple("k", "[null, y]", 111),
            triple("k", "[B, z]", 115)
        ]
    );
    pipe(&mut d, "left", "k", "C", 200);
    assert_eq!(read(&mut d), vec![]);

    // With grace, a left record alone waits `after` + grace: 300 + 10 + 5 = 315.
    let builder = StreamsBuilder::new();
    let (left, right) = (strings(&builder, "left"), strings(&builder, "right"));
    let windows = JoinWindows::of_time_difference_and_grace(0, 5).after(10);
    left.left_join(
        &right,
        |l, r| show(Some(l), r),
        windows,
        StreamJoined::inherit(),
    )
    .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let mut d = TopologyTestDriver::new(builder.build().unwrap());
    pipe(&mut d, "left", "k", "D", 300);
    pipe(&mut d, "left", "j", "-", 315);
    assert_eq!(read(&mut d), vec![]);
    pipe(&mut d, "left", "j", "-", 316);
    assert_eq!(read(&mut d), vec![triple("k", "[D, null]", 300)]);
}

#[test]
fn records_with_one_key_and_timestamp_are_all_kept() {
    let builder = StreamsBuilder::new();
    let (left, right) = (strings(&builder, "left"), strings(&builder, "right"));
    let windows = JoinWindows::of_time_difference_and_grace(5, 0);
    left.outer_join(&right, show, windows, StreamJoined::inherit())
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let mut d = TopologyTestDriver::new(builder.build().unwrap());
    pipe(&mut d, "left", "k", "A1", 10);
    pipe(&mut d, "left", "k", "A2", 10);
    pipe(&mut d, "right", "k", "a", 12);
    pipe(&mut d, "left", "k", "B1", 20);
    pipe(&mut d, "left", "k", "B2", 20);
    pipe(&mut d, "left", "k", "end", 100);
    assert_eq!(
        read(&mut d),
        vec![
            triple("k", "[A1, a]", 12),
            triple("k", "[A2, a]", 12),
            triple("k", "[B1, null]", 20),
            triple("k", "[B2, null]", 20),
        ]
    );
}

/// Orders are keyed by order id; joining them with customers by customer id needs them
/// repartitioned by the new key first, or a customer's orders and row would sit in
/// different partitions (here 3).
#[test]
fn a_stream_keyed_anew_is_repartitioned_before_joining() {
    let builder = StreamsBuilder::new();
    let orders = strings(&builder, "orders"); // order id -> "customer:item"
    let by_customer =
        orders.select_key(|_, v: &String| v.split(':').next().unwrap_or_default().to_string());
    let customers = builder.table(
        "customers",
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::new(),
    );
    by_customer
        .join_table(
            &customers,
            |order, name| format!("{} for {name}", order.split(':').nth(1).unwrap_or_default()),
            Joined::with(Serdes::string(), Serdes::string()).with_name("orders-by-customer"),
        )
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    // And the same orders joined with payments (keyed by customer) in a 100 ms window.
    let payments = strings(&builder, "payments");
    by_customer
        .join(
            &payments,
            |order, paid| format!("{order} paid {paid}"),
            JoinWindows::of_time_difference_without_grace(100),
            StreamJoined::inherit().with_name("order-payments"),
        )
        .to("paid", Produced::with(Serdes::string(), Serdes::string()));
    let topology = builder.build().unwrap();
    let internal: Vec<String> = topology
        .internal_topics()
        .iter()
        .map(|t| t.name.resolve("app"))
        .collect();
    assert!(
        internal.contains(&"app-orders-by-customer-repartition".to_string()),
        "{internal:?}"
    );
    assert!(
        internal.contains(&"app-order-payments-left-repartition".to_string()),
        "{internal:?}"
    );
    // Only the rekeyed side is repartitioned; payments were keyed right.
    assert!(
        !internal.iter().any(|t| t.contains("right-repartition")),
        "{internal:?}"
    );
    let describe = topology.describe();
    assert_eq!(topology.subtopologies().len(), 3, "{describe}");
    let mut d = TopologyTestDriver::with_partitions(topology, 3);
    for (id, customer) in [
        ("alice", "c1"),
        ("bob", "c2"),
        ("carol", "c3"),
        ("dan", "c4"),
    ] {
        pipe(&mut d, "customers", customer, id, 1);
    }
    for (order, value, ts) in [
        ("o1", "c1:book", 10),
        ("o2", "c2:pen", 11),
        ("o3", "c4:ink", 12),
        ("o4", "c3:cup", 13),
    ] {
        pipe(&mut d, "orders", order, value, ts);
    }
    pipe(&mut d, "payments", "c4", "5 EUR", 50);
    let mut got = read(&mut d);
    got.sort();
    assert_eq!(
        got,
        vec![
            triple("c1", "book for alice", 10),
            triple("c2", "pen for bob", 11),
            triple("c3", "cup for carol", 13),
            triple("c4", "ink for dan", 12),
        ]
    );
    let paid = d
        .read(&TestTopic::new("paid", Serdes::string(), Serdes::string()))
        .unwrap();
    let paid: Vec<_> = paid
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp_ms))
        .collect();
    assert_eq!(paid, vec![triple("c4", "c4:ink paid 5 EUR", 50)]);
}

#[test]
fn join_stores_are_named_as_kafka_names_them_and_logged() {
    let builder = StreamsBuilder::new();
    let (left, right) = (strings(&builder, "left"), strings(&builder, "right"));
    let windows = JoinWindows::of_time_difference_and_grace(10, 0);
    left.left_join(
        &right,
        |l, r| show(Some(l), r),
        windows,
        StreamJoined::inherit(),
    )
    .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let topology = builder.build().unwrap();
    let describe = topology.describe();
    // Kafka names the same program's stores alike (so are their changelogs).
    let stores = [
        "KSTREAM-JOINTHIS-0000000004-store",
        "KSTREAM-OUTEROTHER-0000000005-store",
        "KSTREAM-OUTERSHARED-0000000004-store",
    ];
    for store in stores {
        assert!(describe.contains(store), "{store} in\n{describe}");
    }
    assert!(
        describe.contains("Processor: KSTREAM-MERGE-0000000006"),
        "{describe}"
    );
    assert_eq!(topology.subtopologies().len(), 1, "{describe}");
    let changelogs: Vec<String> = topology
        .internal_topics()
        .iter()
        .filter(|t| t.compacted)
        .map(|t| t.name.resolve("test-driver"))
        .collect();
    assert_eq!(changelogs.len(), 3, "{changelogs:?}");

    let mut d = TopologyTestDriver::new(topology);
    pipe(&mut d, "left", "k", "A", 1); // buffered, and waiting for a partner
    pipe(&mut d, "right", "k", "a", 2); // buffered; A found its partner
    pipe(&mut d, "left", "j", "B", 20); // A's window closed; B waits
    pipe(&mut d, "left", "j", "C", 40); // B goes out alone
    assert_eq!(
        read(&mut d),
        vec![triple("k", "[A, a]", 2), triple("j", "[B, null]", 20)]
    );
    let changelog = |store: &str| d.written(&format!("test-driver-{store}-changelog"));
    // Every left record was written to the left window store.
    assert_eq!(changelog(stores[0]).len(), 3);
    assert_eq!(changelog(stores[1]).len(), 1);
    // A held then released, B held then emitted, C held: tombstones for the released.
    let outer = changelog(stores[2]);
    let tombstones = outer.iter().filter(|r| r.value.is_none()).count();
    assert_eq!((outer.len(), tombstones), (5, 2), "{outer:?}");
    assert!(outer.iter().all(|r| r.partition == Some(0)));
}

#[test]
fn derived_tables_are_materialized_for_joins_and_table_updates_never_emit() {
    let builder = StreamsBuilder::new();
    let clicks = strings(&builder, "clicks");
    let users = table(&builder, "users");
    // A derived table has no store of its own: the join materializes it.
    let vips = users
        .filter(|_, tier| tier != "free")
        .map_values(|_, tier| tier.to_uppercase());
    clicks
        .left_join_table(
            &vips,
            |page, tier| format!("{page} by {}", tier.map_or("nobody", |t| t)),
            Joined::inherit(),
        )
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let topology = builder.build().unwrap();
    assert!(
        topology
            .describe()
            .contains("KTABLE-MATERIALIZE-STATE-STORE"),
        "{}",
        topology.describe()
    );
    let mut d = TopologyTestDriver::new(topology);
    pipe(&mut d, "users", "u1", "gold", 1);
    pipe(&mut d, "users", "u2", "free", 2);
    assert_eq!(
        read(&mut d),
        vec![],
        "table updates do not trigger the join"
    );
    pipe(&mut d, "clicks", "u1", "/home", 3);
    pipe(&mut d, "clicks", "u2", "/home", 4);
    pipe(&mut d, "users", "u1", "free", 5); // filtered out now: deleted from the derived table
    pipe(&mut d, "clicks", "u1", "/cart", 6);
    assert_eq!(
        read(&mut d),
        vec![
            triple("u1", "/home by GOLD", 3),
            triple("u2", "/home by nobody", 4),
            triple("u1", "/cart by nobody", 6),
        ]
    );
}

#[test]
fn a_table_without_serdes_must_be_materialized_by_hand() {
    let builder = StreamsBuilder::new();
    let lengths = table(&builder, "users").map_values(|_, v| v.len() as i64); // serde unknown
    strings(&builder, "clicks")
        .join_table(&lengths, |p, n| format!("{p}{n}"), Joined::inherit())
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let err = builder.build().err().expect("refused");
    assert!(err.to_string().contains("KTable::materialize"), "{err}");

    let builder = StreamsBuilder::new();
    let lengths = table(&builder, "users")
        .map_values(|_, v| v.len() as i64)
        .materialize(Materialized::named("lengths").with_value_serde(Serdes::i64()));
    strings(&builder, "clicks")
        .join_table(&lengths, |p, n| format!("{p}:{n}"), Joined::inherit())
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let mut d = TopologyTestDriver::new(builder.build().unwrap());
    pipe(&mut d, "users", "u1", "gold", 1);
    pipe(&mut d, "clicks", "u1", "/a", 2);
    assert_eq!(read(&mut d), vec![triple("u1", "/a:4", 2)]);
    assert_eq!(
        d.key_value_store::<String, i64>("lengths").unwrap(),
        vec![("u1".to_string(), 4)]
    );
}

#[test]
fn a_stream_stream_join_without_serdes_is_refused_with_a_hint() {
    let builder = StreamsBuilder::new();
    let left = strings(&builder, "left").map_values(|v| v.len() as i64); // value serde unknown
    let right = strings(&builder, "right");
    left.join(
        &right,
        |n, r| format!("{n}{r}"),
        JoinWindows::of_time_difference_without_grace(1),
        StreamJoined::inherit(),
    )
    .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let err = builder.build().err().expect("refused");
    assert!(err.to_string().contains("StreamJoined::with"), "{err}");
}

/// The foreign-key join table of the DSL guide ("KTable-KTable Foreign-Key Join"): the
/// left value is the foreign key. Outputs are `(key,left,right)`, a tombstone `(key,null)`
/// (the guide writes the left join's tombstone at offset 5 as `(k,null,null)`). At offset
/// 1 both tables get a record; the right one is piped first, as the single result shows.
#[test]
fn foreign_key_joins_reproduce_the_docs_table() {
    type FkRow = (
        Option<(&'static str, Option<&'static str>)>,
        Option<(&'static str, &'static str)>,
    );
    let rows: [(FkRow, &[&str], &[&str]); 9] = [
        (
            (Some(("k", Some("1"))), Some(("1", "foo"))),
            &["(k,1,foo)"],
            &["(k,1,foo)"],
        ),
        (
            (Some(("k", Some("2"))), None),
            &["(k,null)"],
            &["(k,2,null)"],
        ),
        (
            (Some(("k", Some("3"))), None),
            &["(k,null)"],
            &["(k,3,null)"],
        ),
        ((None, Some(("3", "bar"))), &["(k,3,bar)"], &["(k,3,bar)"]),
        ((Some(("k", None)), None), &["(k,null)"], &["(k,null)"]),
        (
            (Some(("k", Some("1"))), None),
            &["(k,1,foo)"],
            &["(k,1,foo)"],
        ),
        ((Some(("q", Some("10"))), None), &[], &["(q,10,null)"]),
        ((Some(("r", Some("10"))), None), &[], &["(r,10,null)"]),
        (
            (None, Some(("10", "baz"))),
            &["(q,10,baz)", "(r,10,baz)"],
            &["(q,10,baz)", "(r,10,baz)"],
        ),
    ];
    for left_join in [false, true] {
        let builder = StreamsBuilder::new();
        let (left, right) = (table(&builder, "left"), table(&builder, "right"));
        let joined = if left_join {
            left.left_join_foreign_key(
                &right,
                |fk: &String| fk.clone(),
                |l, r| format!("{l},{}", r.map_or("null", |r| r)),
            )
        } else {
            left.join_foreign_key(&right, |fk: &String| fk.clone(), |l, r| format!("{l},{r}"))
        };
        joined.to("out", Produced::with(Serdes::string(), Serdes::string()));
        let topology = builder.build().unwrap();
        assert_eq!(topology.subtopologies().len(), 2, "{}", topology.describe());
        let internal: Vec<String> = topology
            .internal_topics()
            .iter()
            .map(|t| t.name.resolve("app"))
            .collect();
        let registration = "app-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000004-repartition";
        assert!(internal.contains(&registration.to_string()), "{internal:?}");
        let mut d = TopologyTestDriver::with_partitions(topology, 3);
        for (offset, ((l, r), inner, left)) in rows.iter().enumerate() {
            let ts = offset as i64 + 1;
            if let Some((key, value)) = r {
                d.pipe(
                    &nullable_topic("right"),
                    key.to_string(),
                    Some(value.to_string()),
                    ts,
                )
                .unwrap();
            }
            if let Some((key, value)) = l {
                d.pipe(
                    &nullable_topic("left"),
                    key.to_string(),
                    value.map(str::to_string),
                    ts,
                )
                .unwrap();
            }
            let got: Vec<String> = d
                .read(&nullable_topic("out"))
                .unwrap()
                .into_iter()
                .map(|r| format!("({},{})", r.key, r.value.as_deref().unwrap_or("null")))
                .collect();
            let want = if left_join { left } else { inner };
            assert_eq!(got, *want, "left_join={left_join}, offset {}", offset + 1);
        }
    }
}

/// A right row's answer that arrives after its left row changed again must not undo the
/// newer result (Kafka drops it by the hash of the left value).
#[test]
fn foreign_key_join_follows_a_row_moving_between_foreign_keys() {
    let builder = StreamsBuilder::new();
    let (orders, products) = (table(&builder, "orders"), table(&builder, "products"));
    orders
        .join_foreign_key(
            &products,
            |v: &String| v.split(':').next().unwrap_or_default().to_string(),
            |o, p| format!("{o} is {p}"),
        )
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let mut d = TopologyTestDriver::with_partitions(builder.build().unwrap(), 2);
    let out = |d: &mut TopologyTestDriver| -> Vec<(String, Option<String>)> {
        d.read(&nullable_topic("out"))
            .unwrap()
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect()
    };
    pipe(&mut d, "products", "p1", "tea", 1);
    pipe(&mut d, "products", "p2", "cake", 2);
    pipe(&mut d, "orders", "o1", "p1:2", 3);
    pipe(&mut d, "orders", "o1", "p2:1", 4); // moves to p2
    pipe(&mut d, "products", "p1", "green tea", 5); // o1 no longer follows p1
    pipe(&mut d, "products", "p2", "cheesecake", 6);
    d.pipe(&nullable_topic("products"), "p2".to_string(), None, 7)
        .unwrap(); // gone: inner result too
    assert_eq!(
        out(&mut d),
        vec![
            ("o1".to_string(), Some("p1:2 is tea".to_string())),
            ("o1".to_string(), Some("p2:1 is cake".to_string())),
            ("o1".to_string(), Some("p2:1 is cheesecake".to_string())),
            ("o1".to_string(), None),
        ]
    );
}
