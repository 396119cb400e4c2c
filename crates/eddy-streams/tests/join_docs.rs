//! Join semantics on the test driver: the tables of Kafka Streams' documentation
//! ("Joining" in the DSL developer guide, and the wiki page "Kafka Streams Join
//! Semantics") reproduced with their inputs and outputs, then lateness, grace,
//! repartitioning, store naming and logging.
//!
//! The tables' inputs, one key, processed in timestamp order (`ts:value`):
//! left 1:null, 3:A, 5:B, 7:null, 9:C, 12:null, 15:D; right 2:null, 4:a, 6:b, 8:null,
//! 10:c, 11:null, 13:null, 14:d. Outputs are what the joiner is called with, `[L, R]`.
//!
//! Nulls: DSL values are never null. On a table side a null is a tombstone, piped as a
//! null value. On a stream side Kafka's joins drop null-valued records ("records with a
//! null key or value are ignored"); here the stream is read as `Option<String>` and
//! `flat_map_values` drops the nulls before the join, with the same output.

mod join_common;

use eddy_streams::driver::TestRecord;
use eddy_streams::{
    JoinWindows, Joined, Materialized, Produced, Serdes, StreamJoined, StreamsBuilder,
    TopologyTestDriver,
};

use join_common::{non_null_stream, nullable_topic, show, table, Kind, KEY};

#[derive(Debug, Clone, Copy)]
enum Input {
    L(Option<&'static str>),
    R(Option<&'static str>),
}
use Input::{L, R};

/// One row of a docs table: the input and the joiner calls of each join kind.
struct Row {
    ts: i64,
    input: Input,
    inner: &'static [&'static str],
    left: &'static [&'static str],
    outer: &'static [&'static str],
}

const fn row(
    ts: i64,
    input: Input,
    inner: &'static [&'static str],
    left: &'static [&'static str],
    outer: &'static [&'static str],
) -> Row {
    Row {
        ts,
        input,
        inner,
        left,
        outer,
    }
}

/// Pipes the rows one by one; what each row produced on "out", as (value, timestamp).
/// Table outputs show a tombstone as "null".
fn run_rows(driver: &mut TopologyTestDriver, rows: &[Row]) -> Vec<Vec<(String, i64)>> {
    let out = nullable_topic("out");
    rows.iter()
        .map(|row| {
            let (topic, value) = match row.input {
                L(v) => ("left", v),
                R(v) => ("right", v),
            };
            driver
                .pipe(
                    &nullable_topic(topic),
                    KEY.to_string(),
                    value.map(str::to_string),
                    row.ts,
                )
                .unwrap();
            let records = driver.read(&out).unwrap();
            records
                .into_iter()
                .map(|r: TestRecord<String, Option<String>>| {
                    assert_eq!(r.key, KEY);
                    (
                        r.value.unwrap_or_else(|| "null".to_string()),
                        r.timestamp_ms,
                    )
                })
                .collect()
        })
        .collect()
}

fn assert_table(kind: Kind, rows: &[Row], got: &[Vec<(String, i64)>]) {
    for (row, got) in rows.iter().zip(got) {
        let want = match kind {
            Kind::Inner => row.inner,
            Kind::Left => row.left,
            Kind::Outer => row.outer,
        };
        let values: Vec<&str> = got.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(
            values, want,
            "{kind:?} join, row ts={} input={:?}",
            row.ts, row.input
        );
    }
}

/// The KStream-KStream table of the DSL guide (Kafka 3.1+, after KIP-633).
///
/// The guide assumes rows 1–15 all fall in one join window (D at 15 joins a at 4) and,
/// for rows 40–100, a 10 s window with 5 s grace, left/outer results appearing once a
/// window closed. One `JoinWindows` satisfies both: a 14 ms difference (>= 11) with the
/// guide's 5 ms grace, since 14 + 5 < 20, the distance between E, F, f and G.
///
/// Where this differs from the older table (Kafka 0.10.2–3.0, still on the wiki under
/// "New Join Semantics", and in the guide before 3.1): at ts 3 LEFT and OUTER showed
/// `[A, null]` at once, and then `[A, a]` at ts 4 — a spurious result. Since KIP-633
/// (KAFKA-10847) A waits in the outer-join store until its window closes and leaves it
/// when a joins it at 4, as Kafka's KStreamKStreamLeftJoinTest/OuterJoinTest expect; only
/// records that never find a partner are emitted with null, late: E at 60, F at 80, f at
/// 100 (E's window closes at 40 + 14 + 5 = 59 < 60).
const STREAM_STREAM: &[Row] = &[
    row(1, L(None), &[], &[], &[]),
    row(2, R(None), &[], &[], &[]),
    row(3, L(Some("A")), &[], &[], &[]),
    row(4, R(Some("a")), &["[A, a]"], &["[A, a]"], &["[A, a]"]),
    row(5, L(Some("B")), &["[B, a]"], &["[B, a]"], &["[B, a]"]),
    row(
        6,
        R(Some("b")),
        &["[A, b]", "[B, b]"],
        &["[A, b]", "[B, b]"],
        &["[A, b]", "[B, b]"],
    ),
    row(7, L(None), &[], &[], &[]),
    row(8, R(None), &[], &[], &[]),
    row(
        9,
        L(Some("C")),
        &["[C, a]", "[C, b]"],
        &["[C, a]", "[C, b]"],
        &["[C, a]", "[C, b]"],
    ),
    row(
        10,
        R(Some("c")),
        &["[A, c]", "[B, c]", "[C, c]"],
        &["[A, c]", "[B, c]", "[C, c]"],
        &["[A, c]", "[B, c]", "[C, c]"],
    ),
    row(11, R(None), &[], &[], &[]),
    row(12, L(None), &[], &[], &[]),
    row(13, R(None), &[], &[], &[]),
    row(
        14,
        R(Some("d")),
        &["[A, d]", "[B, d]", "[C, d]"],
        &["[A, d]", "[B, d]", "[C, d]"],
        &["[A, d]", "[B, d]", "[C, d]"],
    ),
    row(
        15,
        L(Some("D")),
        &["[D, a]", "[D, b]", "[D, c]", "[D, d]"],
        &["[D, a]", "[D, b]", "[D, c]", "[D, d]"],
        &["[D, a]", "[D, b]", "[D, c]", "[D, d]"],
    ),
    row(40, L(Some("E")), &[], &[], &[]),
    row(60, L(Some("F")), &[], &["[E, null]"], &["[E, null]"]),
    row(80, R(Some("f")), &[], &["[F, null]"], &["[F, null]"]),
    row(100, L(Some("G")), &[], &[], &["[null, f]"]),
];

fn stream_stream_driver(kind: Kind, windows: JoinWindows) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let left = non_null_stream(&builder, "left");
    let right = non_null_stream(&builder, "right");
    let joined = || StreamJoined::with(Serdes::string(), Serdes::string(), Serdes::string());
    let out = match kind {
        Kind::Inner => left.join(&right, |l, r| show(Some(l), Some(r)), windows, joined()),
        Kind::Left => left.left_join(&right, |l, r| show(Some(l), r), windows, joined()),
        Kind::Outer => left.outer_join(&right, show, windows, joined()),
    };
    out.to("out", Produced::with(Serdes::string(), Serdes::string()));
    TopologyTestDriver::new(builder.build().unwrap())
}

#[test]
fn stream_stream_joins_reproduce_the_docs_table() {
    for kind in [Kind::Inner, Kind::Left, Kind::Outer] {
        let mut driver =
            stream_stream_driver(kind, JoinWindows::of_time_difference_and_grace(14, 5));
        let got = run_rows(&mut driver, STREAM_STREAM);
        assert_table(kind, STREAM_STREAM, &got);
        // A joined result carries the later timestamp of the two (here the newer record's),
        // one without a partner its own record's.
        for (row, got) in STREAM_STREAM.iter().zip(&got) {
            for (value, ts) in got {
                let want = match value.as_str() {
                    "[E, null]" => 40,
                    "[F, null]" => 60,
                    "[null, f]" => 80,
                    _ => row.ts,
                };
                assert_eq!(*ts, want, "{kind:?}: timestamp of {value}");
            }
        }
        assert_eq!(driver.metrics().dropped_records, 0, "{kind:?}");
    }
}

/// The KStream-KTable table of the DSL guide; the same in every Kafka version.
const STREAM_TABLE: &[Row] = &[
    row(1, L(None), &[], &[], &[]),
    row(2, R(None), &[], &[], &[]),
    row(3, L(Some("A")), &[], &["[A, null]"], &[]),
    row(4, R(Some("a")), &[], &[], &[]),
    row(5, L(Some("B")), &["[B, a]"], &["[B, a]"], &[]),
    row(6, R(Some("b")), &[], &[], &[]),
    row(7, L(None), &[], &[], &[]),
    row(8, R(None), &[], &[], &[]),
    row(9, L(Some("C")), &[], &["[C, null]"], &[]),
    row(10, R(Some("c")), &[], &[], &[]),
    row(11, R(None), &[], &[], &[]),
    row(12, L(None), &[], &[], &[]),
    row(13, R(None), &[], &[], &[]),
    row(14, R(Some("d")), &[], &[], &[]),
    row(15, L(Some("D")), &["[D, d]"], &["[D, d]"], &[]),
];

#[test]
fn stream_table_joins_reproduce_the_docs_table() {
    for kind in [Kind::Inner, Kind::Left] {
        let builder = StreamsBuilder::new();
        let stream = non_null_stream(&builder, "left");
        let right = table(&builder, "right");
        let out = match kind {
            Kind::Inner => {
                stream.join_table(&right, |l, r| show(Some(l), Some(r)), Joined::inherit())
            }
            _ => stream.left_join_table(&right, |l, r| show(Some(l), r), Joined::inherit()),
        };
        out.to("out", Produced::with(Serdes::string(), Serdes::string()));
        let topology = builder.build().unwrap();
        assert_eq!(topology.subtopologies().len(), 1, "{}", topology.describe());
        let mut driver = TopologyTestDriver::new(topology);
        let got = run_rows(&mut driver, STREAM_TABLE);
        assert_table(kind, STREAM_TABLE, &got);
        for (row, got) in STREAM_TABLE.iter().zip(&got) {
            assert!(
                got.iter().all(|(_, ts)| *ts == row.ts),
                "results carry the stream record's timestamp"
            );
        }
    }
}

/// The KTable-KTable table of the DSL guide; the same in every Kafka version. A `null`
/// output is a tombstone: the join result for the key is deleted.
const TABLE_TABLE: &[Row] = &[
    row(1, L(None), &[], &[], &[]),
    row(2, R(None), &[], &[], &[]),
    row(3, L(Some("A")), &[], &["[A, null]"], &["[A, null]"]),
    row(4, R(Some("a")), &["[A, a]"], &["[A, a]"], &["[A, a]"]),
    row(5, L(Some("B")), &["[B, a]"], &["[B, a]"], &["[B, a]"]),
    row(6, R(Some("b")), &["[B, b]"], &["[B, b]"], &["[B, b]"]),
    row(7, L(None), &["null"], &["null"], &["[null, b]"]),
    row(8, R(None), &[], &[], &["null"]),
    row(9, L(Some("C")), &[], &["[C, null]"], &["[C, null]"]),
    row(10, R(Some("c")), &["[C, c]"], &["[C, c]"], &["[C, c]"]),
    row(11, R(None), &["null"], &["[C, null]"], &["[C, null]"]),
    row(12, L(None), &[], &["null"], &["null"]),
    row(13, R(None), &[], &[], &[]),
    row(14, R(Some("d")), &[], &[], &["[null, d]"]),
    row(15, L(Some("D")), &["[D, d]"], &["[D, d]"], &["[D, d]"]),
];

#[test]
fn table_table_joins_reproduce_the_docs_table() {
    for kind in [Kind::Inner, Kind::Left, Kind::Outer] {
        let builder = StreamsBuilder::new();
        let left = table(&builder, "left");
        let right = table(&builder, "right");
        let out = match kind {
            Kind::Inner => left.join(&right, |l, r| show(Some(l), Some(r))),
            Kind::Left => left.left_join(&right, |l, r| show(Some(l), r)),
            Kind::Outer => left.outer_join(&right, show),
        };
        out.to("out", Produced::with(Serdes::string(), Serdes::string()));
        let mut driver = TopologyTestDriver::new(builder.build().unwrap());
        let got = run_rows(&mut driver, TABLE_TABLE);
        assert_table(kind, TABLE_TABLE, &got);
    }
}

/// The result table's old values, for downstream aggregations: each update says what
/// the row was before.
#[test]
fn table_table_join_changes_carry_the_old_result() {
    let builder = StreamsBuilder::new();
    let left = table(&builder, "left");
    let right = table(&builder, "right");
    let changes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = changes.clone();
    left.left_join(&right, |l, r| show(Some(l), r))
        .materialize(Materialized::named("joined").with_value_serde(Serdes::string()))
        .to_stream()
        .foreach(move |_, v| seen.lock().unwrap().push(v.clone()));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let pipe = |d: &mut TopologyTestDriver, topic: &str, v: Option<&str>, ts| {
        d.pipe(
            &nullable_topic(topic),
            KEY.to_string(),
            v.map(str::to_string),
            ts,
        )
        .unwrap()
    };
    pipe(&mut driver, "left", Some("A"), 1);
    pipe(&mut driver, "right", Some("a"), 2);
    pipe(&mut driver, "right", None, 3);
    assert_eq!(
        driver.key_value_store::<String, String>("joined").unwrap(),
        vec![(KEY.to_string(), "[A, null]".to_string())]
    );
    pipe(&mut driver, "left", None, 4);
    assert!(driver
        .key_value_store::<String, String>("joined")
        .unwrap()
        .is_empty());
    let got = changes.lock().unwrap().clone();
    let want: Vec<Option<String>> = ["[A, null]", "[A, a]", "[A, null]"]
        .iter()
        .map(|s| Some(s.to_string()))
        .chain([None])
        .collect();
    assert_eq!(got, want);
}
