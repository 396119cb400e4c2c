//! DSL semantics on the test driver: word count, stateless operators, tables, the
//! Processor API with stores and punctuation, and the bad-record handlers.

use std::collections::BTreeMap;

use bytes::Bytes;
use eddy_streams::driver::{TestRecord, TestTopic};
use eddy_streams::{
    Consumed, ErrorHandler, ErrorHandling, Grouped, Materialized, Processor, ProcessorContext,
    Produced, PunctuationType, Serdes, StreamsBuilder, StreamsError, TopologyTestDriver,
    TypedRecord,
};

fn lines() -> TestTopic<(), String> {
    TestTopic::new("text", Serdes::unit(), Serdes::string())
}

fn word_count_builder() -> StreamsBuilder {
    let builder = StreamsBuilder::new();
    builder
        .stream(&["text"], Consumed::with(Serdes::unit(), Serdes::string()))
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .group_by(
            |_, w: &String| w.clone(),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count(Materialized::named("counts"))
        .to_stream()
        .to(
            "word-counts",
            Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())),
        );
    builder
}

#[test]
fn word_count_emits_every_update_and_matches_a_reference() {
    for partitions in [1, 3] {
        let topology = word_count_builder().build().unwrap();
        assert_eq!(topology.subtopologies().len(), 2, "{}", topology.describe());
        let mut driver = TopologyTestDriver::with_partitions(topology, partitions);
        let text = [
            "all streams lead to kafka",
            "hello kafka streams",
            "join kafka summit",
            "Streams streams",
        ];
        for (i, line) in text.iter().enumerate() {
            driver
                .pipe(&lines(), (), line.to_string(), 1_000 + i as i64)
                .unwrap();
        }
        let out = TestTopic::new(
            "word-counts",
            Serdes::string(),
            Serdes::nullable(Serdes::i64()),
        );
        let updates = driver.read(&out).unwrap();
        // One update per word occurrence, each the running count of its word.
        let mut reference: BTreeMap<String, i64> = BTreeMap::new();
        let mut expected = Vec::new();
        for line in text {
            for w in line.split_whitespace().map(str::to_lowercase) {
                let n = reference.entry(w.clone()).or_default();
                *n += 1;
                expected.push((w, *n));
            }
        }
        let mut got: Vec<(String, i64)> = updates
            .iter()
            .map(|r| (r.key.clone(), r.value.unwrap()))
            .collect();
        if partitions > 1 {
            // Across partitions only the per-word order is defined.
            got.sort();
            expected.sort();
        }
        assert_eq!(got, expected, "partitions={partitions}");
        let mut store: Vec<(String, i64)> = driver.key_value_store("counts").unwrap();
        store.sort();
        assert_eq!(store, reference.into_iter().collect::<Vec<_>>());
        // The count store is logged: its changelog carries every update.
        let changelog = driver.written("test-driver-counts-changelog");
        assert_eq!(changelog.len(), updates.len());
    }
}

#[test]
fn stateless_operators_filter_map_branch_merge() {
    let builder = StreamsBuilder::new();
    let numbers = builder.stream(
        &["numbers"],
        Consumed::with(Serdes::string(), Serdes::i64()),
    );
    let branches = numbers
        .filter(|_, v| *v >= 0)
        .map_values(|v| v * 10)
        .split()
        .branch("small", |_, v| *v < 100)
        .branch("big", |_, v| *v < 1000)
        .build(Some("huge"));
    assert_eq!(
        branches.keys().collect::<Vec<_>>(),
        ["big", "huge", "small"]
    );
    let small = branches["small"].map(|k, v| (format!("{k}!"), v + 1));
    small
        .merge(&branches["huge"].select_key(|_, v| format!("h{v}")))
        .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    branches["big"]
        .flat_map_values(|v| vec![v, v])
        .to("big", Produced::inherit());
    let mut d = TopologyTestDriver::new(builder.build().unwrap());
    let input = TestTopic::new("numbers", Serdes::string(), Serdes::i64());
    for (k, v) in [("a", 1), ("b", -5), ("c", 50), ("d", 500)] {
        d.pipe(&input, k.to_string(), v, 7).unwrap();
    }
    let out = d
        .read(&TestTopic::new("out", Serdes::string(), Serdes::i64()))
        .unwrap();
    assert_eq!(
        out,
        vec![
            TestRecord {
                key: "a!".into(),
                value: 11,
                timestamp_ms: 7
            },
            TestRecord {
                key: "h5000".into(),
                value: 5000,
                timestamp_ms: 7
            },
        ]
    );
    let big = d
        .read(&TestTopic::new("big", Serdes::string(), Serdes::i64()))
        .unwrap();
    let big: Vec<(String, i64)> = big.into_iter().map(|r| (r.key, r.value)).collect();
    assert_eq!(big, vec![("c".to_string(), 500), ("c".to_string(), 500)]);
}

#[test]
fn table_upserts_deletes_and_filter_retracts() {
    let builder = StreamsBuilder::new();
    let table = builder.table(
        "prices",
        Consumed::with(Serdes::string(), Serdes::i64()),
        Materialized::named("prices-store"),
    );
    table
        .filter(|_, p| *p > 10)
        .to("expensive", Produced::with(Serdes::string(), Serdes::i64()));
    let mut d = TopologyTestDriver::new(builder.build().unwrap());
    let k = |s: &str| Some(Bytes::from(s.to_owned()));
    let v = |n: i64| Some(Bytes::copy_from_slice(&n.to_be_bytes()));
    d.pipe_raw("prices", k("x"), v(5), 1).unwrap(); // not shown: filtered, never matched
    d.pipe_raw("prices", k("y"), v(20), 2).unwrap(); // y=20
    d.pipe_raw("prices", k("y"), v(3), 3).unwrap(); // y drops out: tombstone
    d.pipe_raw("prices", k("z"), None, 4).unwrap(); // delete of an absent key: nothing
    d.pipe_raw("prices", k("x"), v(50), 5).unwrap(); // x=50
    d.pipe_raw("prices", k("x"), None, 6).unwrap(); // x deleted
    let out = d
        .read(&TestTopic::new(
            "expensive",
            Serdes::string(),
            Serdes::nullable(Serdes::i64()),
        ))
        .unwrap();
    let got: Vec<(String, Option<i64>)> = out.into_iter().map(|r| (r.key, r.value)).collect();
    assert_eq!(
        got,
        vec![
            ("y".into(), Some(20)),
            ("y".into(), None),
            ("x".into(), Some(50)),
            ("x".into(), None),
        ]
    );
    let store: Vec<(String, i64)> = d.key_value_store("prices-store").unwrap();
    assert_eq!(store, vec![("y".to_string(), 3)]);
}

/// Sums values per key in its own store and emits the sums every 10 ms of stream time.
struct Summer {
    emitted: u64,
}

impl Processor<String, i64, String, i64> for Summer {
    fn init(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, String, i64>,
    ) -> eddy_streams::Result<()> {
        ctx.schedule(10, PunctuationType::StreamTime);
        Ok(())
    }
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, String, i64>,
        r: TypedRecord<String, i64>,
    ) -> eddy_streams::Result<()> {
        let store = ctx.key_value_store::<String, i64>("sums")?;
        let sum = store.get(&r.key)?.unwrap_or(0) + r.value;
        store.put(&r.key, &sum)
    }
    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, String, i64>,
        _id: u64,
        ts: i64,
    ) -> eddy_streams::Result<()> {
        let store = ctx.key_value_store::<String, i64>("sums")?;
        for (k, v) in store.all()? {
            self.emitted += 1;
            ctx.forward(TypedRecord::new(k, v, ts))?;
        }
        Ok(())
    }
}

#[test]
fn processor_api_store_and_stream_time_punctuation() {
    let builder = StreamsBuilder::new();
    builder.add_key_value_store("sums", Serdes::string(), Serdes::i64(), false, true);
    builder
        .stream(&["in"], Consumed::with(Serdes::string(), Serdes::i64()))
        .process(|| Summer { emitted: 0 }, &["sums"])
        .to("sums-out", Produced::with(Serdes::string(), Serdes::i64()));
    let mut d = TopologyTestDriver::new(builder.build().unwrap());
    let input = TestTopic::new("in", Serdes::string(), Serdes::i64());
    d.pipe(&input, "a".into(), 1, 100).unwrap(); // schedule starts: first at 110
    d.pipe(&input, "b".into(), 2, 105).unwrap();
    d.pipe(&input, "a".into(), 3, 112).unwrap(); // fires at 112 (due 110): a=4, b=2
    d.pipe(&input, "a".into(), 5, 115).unwrap(); // not due
    let out = d
        .read(&TestTopic::new("sums-out", Serdes::string(), Serdes::i64()))
        .unwrap();
    let got: Vec<(String, i64, i64)> = out
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp_ms))
        .collect();
    assert_eq!(got, vec![("a".into(), 4, 112), ("b".into(), 2, 112)]);
}

#[test]
fn a_processor_not_connected_to_a_store_gets_a_clear_error() {
    let builder = StreamsBuilder::new();
    builder.add_key_value_store("sums", Serdes::string(), Serdes::i64(), false, false);
    builder
        .stream(&["in"], Consumed::with(Serdes::string(), Serdes::i64()))
        .process(|| Summer { emitted: 0 }, &[]);
    let mut d = TopologyTestDriver::new(builder.build().unwrap());
    let input = TestTopic::new("in", Serdes::string(), Serdes::i64());
    let err = d.pipe(&input, "a".into(), 1, 1).unwrap_err();
    assert!(
        err.to_string()
            .contains("no state store \"sums\" is connected"),
        "{err}"
    );
}

fn parse_topology() -> StreamsBuilder {
    let builder = StreamsBuilder::new();
    builder
        .stream(&["in"], Consumed::with(Serdes::string(), Serdes::i64()))
        .map_values(|v| {
            assert!(v != 13, "unlucky number");
            v
        })
        .to("out", Produced::inherit());
    builder
}

#[test]
fn bad_records_fail_skip_or_go_to_the_dead_letter_topic() {
    let good = Some(Bytes::copy_from_slice(&7i64.to_be_bytes()));
    let bad = Some(Bytes::from_static(b"not eight bytes"));
    let unlucky = Some(Bytes::copy_from_slice(&13i64.to_be_bytes()));
    let key = Some(Bytes::from_static(b"k"));

    // Default: the task fails, naming the record and the cause.
    let mut d = TopologyTestDriver::new(parse_topology().build().unwrap());
    let err = d.pipe_raw("in", key.clone(), bad.clone(), 1).unwrap_err();
    assert!(matches!(err, StreamsError::TaskFailed { .. }), "{err}");
    assert!(err.to_string().contains("in-0 offset 0"), "{err}");
    assert!(
        err.to_string().contains("15 bytes where 8 were expected"),
        "{err}"
    );

    // Log and continue: skipped and counted; processing panics too.
    let skip = ErrorHandling {
        deserialization: ErrorHandler::LogAndContinue,
        processing: ErrorHandler::LogAndContinue,
    };
    let mut d =
        TopologyTestDriver::new(parse_topology().build().unwrap()).with_error_handling(skip);
    d.pipe_raw("in", key.clone(), bad.clone(), 1).unwrap();
    d.pipe_raw("in", key.clone(), unlucky.clone(), 2).unwrap();
    d.pipe_raw("in", key.clone(), good.clone(), 3).unwrap();
    assert_eq!(d.written("out").len(), 1);
    let m = d.metrics();
    assert_eq!(
        (
            m.dropped_records,
            m.deserialization_errors,
            m.processing_errors,
            m.processed
        ),
        (2, 1, 1, 1)
    );

    // Dead-letter topic: the input as it came, with the error in headers.
    let dlq = ErrorHandling {
        deserialization: ErrorHandler::DeadLetterQueue("dlq".into()),
        processing: ErrorHandler::DeadLetterQueue("dlq".into()),
    };
    let mut d = TopologyTestDriver::new(parse_topology().build().unwrap()).with_error_handling(dlq);
    d.pipe_raw("in", key.clone(), bad.clone(), 1).unwrap();
    d.pipe_raw("in", key.clone(), unlucky.clone(), 2).unwrap();
    d.pipe_raw("in", key.clone(), good, 3).unwrap();
    let dead = d.written("dlq");
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].value, bad);
    assert_eq!(dead[1].value, unlucky);
    let header = |i: usize, name: &str| {
        dead[i]
            .headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value.clone())
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .unwrap()
    };
    assert_eq!(
        header(0, "__streams.errors.exception"),
        "deserialization error"
    );
    assert_eq!(header(1, "__streams.errors.offset"), "1");
    assert!(header(1, "__streams.errors.message").contains("unlucky number"));
    assert_eq!(d.written("out").len(), 1);
}

#[test]
fn build_refuses_a_sink_without_serdes() {
    let builder = StreamsBuilder::new();
    builder
        .stream(&["in"], Consumed::with(Serdes::string(), Serdes::string()))
        .map(|k, v: String| (v.len() as i64, k))
        .to("out", Produced::inherit());
    let err = builder.build().err().expect("refused");
    assert!(
        err.to_string().contains("needs key and value serdes"),
        "{err}"
    );
}
