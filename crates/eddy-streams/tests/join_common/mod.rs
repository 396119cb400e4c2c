//! Helpers shared by the join tests (joins.rs, join_docs.rs).

#![allow(dead_code)] // each test binary uses a different part

use eddy_streams::driver::TestTopic;
use eddy_streams::{
    Consumed, KStream, KTable, Materialized, Serdes, StreamsBuilder, TopologyTestDriver,
};

pub const KEY: &str = "k";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Inner,
    Left,
    Outer,
}

/// Joiner output as the docs write it: `[A, a]`, `[A, null]`, `[null, a]`.
pub fn show(l: Option<&String>, r: Option<&String>) -> String {
    format!("[{}, {}]", l.map_or("null", |s| s), r.map_or("null", |s| s))
}

pub fn nullable_topic(name: &str) -> TestTopic<String, Option<String>> {
    TestTopic::new(name, Serdes::string(), Serdes::nullable(Serdes::string()))
}

/// A stream whose null values are dropped (see the module docs).
pub fn non_null_stream(builder: &StreamsBuilder, topic: &str) -> KStream<String, String> {
    builder
        .stream(
            &[topic],
            Consumed::with(Serdes::string(), Serdes::nullable(Serdes::string())),
        )
        .flat_map_values(|v: Option<String>| v)
}

pub fn table(builder: &StreamsBuilder, topic: &str) -> KTable<String, String> {
    builder.table(
        topic,
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::named(&format!("{topic}-store")),
    )
}

pub type Out = TestTopic<String, String>;

pub fn out_topic() -> Out {
    TestTopic::new("out", Serdes::string(), Serdes::string())
}

pub fn read(driver: &mut TopologyTestDriver) -> Vec<(String, String, i64)> {
    driver
        .read(&out_topic())
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp_ms))
        .collect()
}

pub fn strings(builder: &StreamsBuilder, topic: &str) -> KStream<String, String> {
    builder.stream(&[topic], Consumed::with(Serdes::string(), Serdes::string()))
}

pub fn pipe(driver: &mut TopologyTestDriver, topic: &str, key: &str, value: &str, ts: i64) {
    let t = TestTopic::new(topic, Serdes::string(), Serdes::string());
    driver
        .pipe(&t, key.to_string(), value.to_string(), ts)
        .unwrap();
}

pub fn triple(key: &str, value: &str, ts: i64) -> (String, String, i64) {
    (key.to_string(), value.to_string(), ts)
}
