//! Helpers of the tests that run the runtime against a real broker (the one in
//! EDDY_TEST_BOOTSTRAP; a test skips itself without it): a word count, its input, its
//! reference, and reading its output.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eddy_client::{
    Client, Consumer, ConsumerConfig, OffsetSpec, Producer, ProducerConfig, ProducerRecord, SeekTo,
};
use std::sync::{Arc, Mutex};

use eddy_streams::{
    Consumed, Grouped, Materialized, Produced, Serdes, StreamsBuilder, StreamsConfig,
};
use eddy_streams::{RestoreEvent, RestoreListener};

pub fn bootstrap(test: &str) -> Option<String> {
    // RUST_LOG=eddy_streams=info shows tasks, restores and commits.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    match std::env::var("EDDY_TEST_BOOTSTRAP") {
        Ok(a) if !a.is_empty() => Some(a),
        _ => {
            eprintln!("skipping {test}: EDDY_TEST_BOOTSTRAP is not set");
            None
        }
    }
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}

pub fn word_count(input: &str, output: &str) -> StreamsBuilder {
    word_count_into(input, output, Materialized::named("counts"))
}

/// The word count with its count store as given.
pub fn word_count_into(
    input: &str,
    output: &str,
    store: Materialized<String, i64>,
) -> StreamsBuilder {
    let builder = StreamsBuilder::new();
    builder
        .stream(&[input], Consumed::with(Serdes::unit(), Serdes::string()))
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .group_by(
            |_, w: &String| w.clone(),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count(store)
        .to_stream()
        .to(
            output,
            Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())),
        );
    builder
}

pub fn lines(n: usize, from: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("w{} w{} common", i % 37, i % 11))
        .collect()
}

pub fn reference(all: &[String]) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for l in all {
        for w in l.split_whitespace() {
            *m.entry(w.to_owned()).or_insert(0) += 1;
        }
    }
    m
}

pub async fn produce(client: &Client, topic: &str, lines: &[String]) {
    let p = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for l in lines {
        acks.push(p.send(ProducerRecord::new(topic, l.clone())).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
    p.close().await;
}

/// Reads `topic` until the latest count of every word equals `want` (or times out).
pub async fn await_counts(
    client: &Client,
    topic: &str,
    want: &BTreeMap<String, i64>,
) -> BTreeMap<String, i64> {
    await_counts_with(
        client,
        topic,
        want,
        eddy_client::IsolationLevel::ReadUncommitted,
    )
    .await
}

/// As `await_counts`, at the given isolation level.
pub async fn await_counts_with(
    client: &Client,
    topic: &str,
    want: &BTreeMap<String, i64>,
    isolation_level: eddy_client::IsolationLevel,
) -> BTreeMap<String, i64> {
    let config = ConsumerConfig {
        auto_offset_reset: Some(OffsetSpec::Earliest),
        isolation_level,
        ..ConsumerConfig::default()
    };
    let mut c = Consumer::new(client.clone(), config);
    c.assign(topic, None).await.unwrap();
    c.seek_all(SeekTo::Earliest).await.unwrap();
    let mut latest = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while &latest != want && Instant::now() < deadline {
        for r in c.poll().await.unwrap() {
            let k = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            let v = i64::from_be_bytes(r.value.unwrap()[..].try_into().unwrap());
            latest.insert(k, v);
        }
    }
    latest
}

pub fn config(app: &str, bootstrap: &str) -> StreamsConfig {
    let mut c = StreamsConfig::new(app, bootstrap);
    c.state_dir = std::env::temp_dir().join(unique("eddy-streams-test"));
    c.commit_interval_ms = 200;
    c.session_timeout_ms = 6_000;
    c.heartbeat_interval_ms = 500;
    c
}

/// `config` with a restore listener recording every restoration in the returned list.
pub fn recording(mut config: StreamsConfig) -> (StreamsConfig, Arc<Mutex<Vec<RestoreEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    config.restore_listener = Some(RestoreListener(Arc::new(move |e: &RestoreEvent| {
        sink.lock().unwrap().push(e.clone());
    })));
    (config, events)
}
