//! The runtime against a real broker (the one in EDDY_TEST_BOOTSTRAP; skipped without it):
//! word count end to end, and two instances of one application sharing the work, one
//! handing its tasks over when it closes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eddy_client::{
    Admin, Client, ClientConfig, Consumer, ConsumerConfig, NewTopic, OffsetSpec, Producer,
    ProducerConfig, ProducerRecord, SeekTo,
};
use eddy_streams::{
    Consumed, Grouped, KafkaStreams, Materialized, Produced, Serdes, StreamsBuilder, StreamsConfig,
    StreamsState,
};

fn bootstrap(test: &str) -> Option<String> {
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

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}

fn word_count(input: &str, output: &str) -> StreamsBuilder {
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
        .count(Materialized::named("counts"))
        .to_stream()
        .to(
            output,
            Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())),
        );
    builder
}

fn lines(n: usize, from: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("w{} w{} common", i % 37, i % 11))
        .collect()
}

fn reference(all: &[String]) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for l in all {
        for w in l.split_whitespace() {
            *m.entry(w.to_owned()).or_insert(0) += 1;
        }
    }
    m
}

async fn produce(client: &Client, topic: &str, lines: &[String]) {
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
async fn await_counts(
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
async fn await_counts_with(
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

fn config(app: &str, bootstrap: &str) -> StreamsConfig {
    let mut c = StreamsConfig::new(app, bootstrap);
    c.state_dir = std::env::temp_dir().join(unique("eddy-streams-test"));
    c.commit_interval_ms = 200;
    c.session_timeout_ms = 6_000;
    c.heartbeat_interval_ms = 500;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_against_the_broker() {
    let Some(bootstrap) = bootstrap("word_count_against_the_broker") else {
        return;
    };
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .unwrap();
    let (input, output, app) = (unique("wc-in"), unique("wc-out"), unique("wc-app"));
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new(&input, 3), NewTopic::new(&output, 3)])
        .await
        .unwrap();
    let text = lines(2_000, 0);
    produce(&client, &input, &text).await;

    let mut app1 = KafkaStreams::new(
        word_count(&input, &output).build().unwrap(),
        config(&app, &bootstrap),
    );
    app1.start();
    app1.wait_for(StreamsState::Running, Duration::from_secs(30))
        .await
        .unwrap();
    let want = reference(&text);
    assert_eq!(await_counts(&client, &output, &want).await, want);
    // Interactive query of the count store.
    assert_eq!(
        app1.get::<String, i64>("counts", &"common".to_string())
            .unwrap(),
        Some(2_000)
    );

    // A second instance joins: the tasks are shared; more input; still exact.
    let mut app2 = KafkaStreams::new(
        word_count(&input, &output).build().unwrap(),
        config(&app, &bootstrap),
    );
    app2.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (app1.tasks().is_empty() || app2.tasks().is_empty()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (t1, t2) = (app1.tasks(), app2.tasks());
    assert!(
        !t1.is_empty() && !t2.is_empty(),
        "tasks not shared: {t1:?} / {t2:?}"
    );
    assert_eq!(
        t1.len() + t2.len(),
        6,
        "3 source tasks + 3 aggregation tasks: {t1:?} / {t2:?}"
    );
    let more = lines(1_000, 2_000);
    produce(&client, &input, &more).await;
    let all: Vec<String> = text.iter().chain(&more).cloned().collect();
    let want = reference(&all);
    assert_eq!(await_counts(&client, &output, &want).await, want);

    // The first closes (commits, leaves): the second takes every task, rebuilding the
    // stores from their changelogs, and goes on exactly.
    app1.close().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while app2.tasks().len() < 6 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app2.tasks().len(), 6);
    let last = lines(500, 3_000);
    produce(&client, &input, &last).await;
    let all: Vec<String> = all.iter().chain(&last).cloned().collect();
    let want = reference(&all);
    assert_eq!(await_counts(&client, &output, &want).await, want);
    assert_eq!(
        app2.get::<String, i64>("counts", &"common".to_string())
            .unwrap(),
        Some(3_500)
    );
    app2.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_exactly_once_reads_committed_and_survives_a_handover() {
    let Some(bootstrap) = bootstrap("word_count_exactly_once") else {
        return;
    };
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .unwrap();
    let (input, output, app) = (unique("eos-in"), unique("eos-out"), unique("eos-app"));
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new(&input, 2), NewTopic::new(&output, 2)])
        .await
        .unwrap();
    let eos = |app: &str| {
        config(app, &bootstrap).with_guarantee(eddy_streams::ProcessingGuarantee::ExactlyOnceV2)
    };
    let text = lines(1_500, 0);
    produce(&client, &input, &text).await;
    let mut a = KafkaStreams::new(word_count(&input, &output).build().unwrap(), eos(&app));
    a.start();
    a.wait_for(StreamsState::Running, Duration::from_secs(30))
        .await
        .unwrap();
    let want = reference(&text);
    assert_eq!(
        await_counts_with(
            &client,
            &output,
            &want,
            eddy_client::IsolationLevel::ReadCommitted
        )
        .await,
        want
    );
    let mut b = KafkaStreams::new(word_count(&input, &output).build().unwrap(), eos(&app));
    b.start();
    a.close().await.unwrap();
    let more = lines(700, 1_500);
    produce(&client, &input, &more).await;
    let all: Vec<String> = text.iter().chain(&more).cloned().collect();
    let want = reference(&all);
    assert_eq!(
        await_counts_with(
            &client,
            &output,
            &want,
            eddy_client::IsolationLevel::ReadCommitted
        )
        .await,
        want
    );
    assert_eq!(
        b.get::<String, i64>("counts", &"common".to_string())
            .unwrap(),
        Some(2_200)
    );
    b.close().await.unwrap();
}
