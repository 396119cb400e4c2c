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

use eddy_streams::driver::{TestRecord, TestTopic};
use eddy_streams::{
    Consumed, JoinWindows, Joined, KStream, KTable, Materialized, Produced, Serdes, StreamJoined,
    StreamsBuilder, TopologyTestDriver,
};

const KEY: &str = "k";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Inner,
    Left,
    Outer,
}

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

/// Joiner output as the docs write it: `[A, a]`, `[A, null]`, `[null, a]`.
fn show(l: Option<&String>, r: Option<&String>) -> String {
    format!("[{}, {}]", l.map_or("null", |s| s), r.map_or("null", |s| s))
}

fn nullable_topic(name: &str) -> TestTopic<String, Option<String>> {
    TestTopic::new(name, Serdes::string(), Serdes::nullable(Serdes::string()))
}

/// A stream whose null values are dropped (see the module docs).
fn non_null_stream(builder: &StreamsBuilder, topic: &str) -> KStream<String, String> {
    builder
        .stream(
            &[topic],
            Consumed::with(Serdes::string(), Serdes::nullable(Serdes::string())),
        )
        .flat_map_values(|v: Option<String>| v)
}

fn table(builder: &StreamsBuilder, topic: &str) -> KTable<String, String> {
    builder.table(
        topic,
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::named(&format!("{topic}-store")),
    )
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

type Out = TestTopic<String, String>;

fn out_topic() -> Out {
    TestTopic::new("out", Serdes::string(), Serdes::string())
}

fn read(driver: &mut TopologyTestDriver) -> Vec<(String, String, i64)> {
    driver
        .read(&out_topic())
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp_ms))
        .collect()
}

fn strings(builder: &StreamsBuilder, topic: &str) -> KStream<String, String> {
    builder.stream(&[topic], Consumed::with(Serdes::string(), Serdes::string()))
}

fn pipe(driver: &mut TopologyTestDriver, topic: &str, key: &str, value: &str, ts: i64) {
    let t = TestTopic::new(topic, Serdes::string(), Serdes::string());
    driver
        .pipe(&t, key.to_string(), value.to_string(), ts)
        .unwrap();
}

fn triple(key: &str, value: &str, ts: i64) -> (String, String, i64) {
    (key.to_string(), value.to_string(), ts)
}

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
