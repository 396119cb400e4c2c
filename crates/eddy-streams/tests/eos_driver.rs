//! The exactly-once driver (after Kafka's EosTestDriver): per-key running sum, min, max
//! and count over 50,000 inputs with `exactly_once_v2`, while the application process is
//! SIGKILLed five times. The committed output must be, key by key, exactly the running
//! aggregates of the input — no gap, no duplicate, no mismatch — and after the last restart
//! the store must equal its changelog.
//!
//! Also: two instances share the tasks; one is SIGKILLed mid-stream and the other takes its
//! tasks over, rebuilding their stores from the changelogs, with the output still exact.
//!
//! The application runs as a child process: this test binary re-executed with the
//! `eos_child` test selected and its settings in `EOS_CHILD` (so no extra binary).
//! Needs the broker in EDDY_TEST_BOOTSTRAP; skipped without it.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eddy_client::{
    Admin, Client, ClientConfig, Consumer, ConsumerConfig, IsolationLevel, NewTopic, OffsetSpec,
    Producer, ProducerConfig, ProducerRecord, SeekTo,
};
use eddy_streams::{
    Consumed, Grouped, KafkaStreams, Materialized, ProcessingGuarantee, Produced, Serdes,
    StreamsBuilder, StreamsConfig, StreamsState,
};
use serde::{Deserialize, Serialize};

const INPUTS: usize = 50_000;
const KEYS: usize = 100;
const KILLS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Agg {
    sum: i64,
    min: i64,
    max: i64,
    count: i64,
}

impl Agg {
    fn add(self, v: i64) -> Agg {
        Agg {
            sum: self.sum + v,
            min: self.min.min(v),
            max: self.max.max(v),
            count: self.count + 1,
        }
    }
    fn empty() -> Agg {
        Agg {
            sum: 0,
            min: i64::MAX,
            max: i64::MIN,
            count: 0,
        }
    }
}

fn value_of(i: usize) -> i64 {
    ((i as i64 * 7919) % 2003) - 1000
}

fn topology(input: &str, output: &str) -> StreamsBuilder {
    let builder = StreamsBuilder::new();
    builder
        .stream(&[input], Consumed::with(Serdes::string(), Serdes::i64()))
        .group_by_key(Grouped::inherit())
        .aggregate(
            Agg::empty,
            |_, v, a: Agg| a.add(v),
            Materialized::named("aggs").with_value_serde(Serdes::json::<Agg>()),
        )
        .to_stream()
        .to(
            output,
            Produced::with(Serdes::string(), Serdes::nullable(Serdes::json::<Agg>())),
        );
    builder
}

/// `instance` "static": one instance that comes back under the same identity (static
/// membership: no wait for the killed member's session to end) with the same state
/// directory, as a restarted process; its process id there names the transactional
/// producer, so each incarnation fences the last one's open transaction. Any other name:
/// a dynamic member with a state directory of its own, as on another machine.
fn config(app: &str, bootstrap: &str, instance: &str) -> StreamsConfig {
    let mut c =
        StreamsConfig::new(app, bootstrap).with_guarantee(ProcessingGuarantee::ExactlyOnceV2);
    c.session_timeout_ms = 6_000;
    c.heartbeat_interval_ms = 500;
    c.state_dir = std::env::temp_dir().join(format!("{app}-{instance}-state"));
    if instance == "static" {
        c.group_instance_id = Some(format!("{app}-instance"));
    }
    c
}

/// The application process: runs until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the application process of eos_driver_survives_five_sigkills; run by it"]
async fn eos_child() {
    let Ok(settings) = std::env::var("EOS_CHILD") else {
        return;
    };
    let parts: Vec<&str> = settings.split(' ').collect();
    let (bootstrap, app, input, output, instance) =
        (parts[0], parts[1], parts[2], parts[3], parts[4]);
    let mut streams = KafkaStreams::new(
        topology(input, output).build().unwrap(),
        config(app, bootstrap, instance),
    );
    streams.start();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let StreamsState::Error(e) = streams.state() {
            panic!("application failed: {e}");
        }
    }
}

fn spawn_child(settings: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["eos_child", "--exact", "--ignored", "--nocapture"])
        .env("EOS_CHILD", settings)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the application process")
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eos_driver_survives_five_sigkills() {
    let Ok(bootstrap) = std::env::var("EDDY_TEST_BOOTSTRAP") else {
        eprintln!("skipping eos_driver_survives_five_sigkills: EDDY_TEST_BOOTSTRAP is not set");
        return;
    };
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .unwrap();
    let (input, output, app) = (
        unique("eos-data"),
        unique("eos-results"),
        unique("eos-driver"),
    );
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new(&input, 2), NewTopic::new(&output, 2)])
        .await
        .unwrap();

    let writer = write_input(&client, &input);
    let settings = format!("{bootstrap} {app} {input} {output} static");
    let mut child = spawn_child(&settings);
    for k in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(1_200 + 250 * k as u64)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        child = spawn_child(&settings);
    }
    writer.await.unwrap();
    let running = assert_exact_outputs(&client, &output).await;
    child.kill().unwrap();
    child.wait().unwrap();

    // A last incarnation, in this process: its restored store equals the changelog and
    // the reference.
    let mut last = KafkaStreams::new(
        topology(&input, &output).build().unwrap(),
        config(&app, &bootstrap, "static"),
    );
    last.start();
    last.wait_for(StreamsState::Running, Duration::from_secs(60))
        .await
        .unwrap();
    let store: BTreeMap<String, Agg> = last
        .all::<String, Agg>("aggs")
        .unwrap()
        .into_iter()
        .collect();
    let changelog = read_changelog(&client, &format!("{app}-aggs-changelog")).await;
    assert_eq!(
        store, changelog,
        "the restored store differs from its changelog"
    );
    assert_eq!(store, running, "the store differs from the reference");
    last.close().await.unwrap();
}

/// Writes the input (paced, about 6 s) while the test kills and restarts the application.
fn write_input(client: &Client, input: &str) -> tokio::task::JoinHandle<()> {
    let (client, input) = (client.clone(), input.to_owned());
    tokio::spawn(async move {
        let p = Producer::new(client, ProducerConfig::default())
            .await
            .unwrap();
        let mut acks = Vec::new();
        for i in 0..INPUTS {
            let r = ProducerRecord::new(&input, value_of(i).to_be_bytes().to_vec())
                .with_key(format!("k{}", i % KEYS));
            acks.push(p.send(r).await.unwrap());
            if i % 1_000 == 999 {
                tokio::time::sleep(Duration::from_millis(120)).await;
            }
        }
        for a in acks {
            a.await.unwrap();
        }
        p.close().await;
    })
}

/// Checks that every key's committed outputs are exactly its running aggregates, in
/// order (no gap, no duplicate, no mismatch); returns the final aggregates.
async fn assert_exact_outputs(client: &Client, output: &str) -> BTreeMap<String, Agg> {
    let mut reference: BTreeMap<String, Vec<Agg>> = BTreeMap::new();
    let mut running: BTreeMap<String, Agg> = BTreeMap::new();
    for i in 0..INPUTS {
        let key = format!("k{}", i % KEYS);
        let a = running.entry(key.clone()).or_insert_with(Agg::empty);
        *a = a.add(value_of(i));
        reference.entry(key).or_default().push(*a);
    }
    let got = read_committed_until(client, output, INPUTS).await;
    let mut mismatches = 0;
    for (key, want) in &reference {
        let have = got.get(key).map(Vec::as_slice).unwrap_or_default();
        if have != want.as_slice() {
            mismatches += 1;
            if mismatches <= 3 {
                let first = have
                    .iter()
                    .zip(want)
                    .position(|(a, b)| a != b)
                    .unwrap_or(have.len().min(want.len()));
                let near = |v: &[Agg]| {
                    v.iter()
                        .skip(first.saturating_sub(1))
                        .take(3)
                        .map(|a| (a.count, a.sum))
                        .collect::<Vec<_>>()
                };
                eprintln!(
                    "{key}: {} outputs for {} inputs; first difference at {first}: (count, sum) {:?}, want {:?}",
                    have.len(),
                    want.len(),
                    near(have),
                    near(want)
                );
            }
        }
    }
    assert_eq!(
        mismatches, 0,
        "keys whose output is not exactly their running aggregates"
    );
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_tasks_and_one_takes_over_after_a_sigkill() {
    let Ok(bootstrap) = std::env::var("EDDY_TEST_BOOTSTRAP") else {
        eprintln!("skipping two_instances_share_the_tasks: EDDY_TEST_BOOTSTRAP is not set");
        return;
    };
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .unwrap();
    let (input, output, app) = (
        unique("eos2-data"),
        unique("eos2-results"),
        unique("eos2-app"),
    );
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new(&input, 4), NewTopic::new(&output, 4)])
        .await
        .unwrap();
    // Instance A in a child process, instance B here, where its tasks can be seen.
    let mut a = spawn_child(&format!("{bootstrap} {app} {input} {output} a"));
    let mut b = KafkaStreams::new(
        topology(&input, &output).build().unwrap(),
        config(&app, &bootstrap, "b"),
    );
    b.start();
    let writer = write_input(&client, &input);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(1..4).contains(&b.tasks().len()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shared = b.tasks();
    assert!(
        (1..4).contains(&shared.len()),
        "B should hold some of the 4 tasks, not {shared:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    a.kill().unwrap(); // SIGKILL, mid-stream: its session ends after 6 s
    a.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.tasks().len() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(b.tasks().len(), 4, "B did not take over A's tasks");
    writer.await.unwrap();
    let running = assert_exact_outputs(&client, &output).await;
    let store: BTreeMap<String, Agg> = b.all::<String, Agg>("aggs").unwrap().into_iter().collect();
    assert_eq!(
        store, running,
        "B's stores (its own and those rebuilt from A's changelogs) differ from the reference"
    );
    b.close().await.unwrap();
}

async fn read_committed(client: &Client, topic: &str) -> Consumer {
    let config = ConsumerConfig {
        auto_offset_reset: Some(OffsetSpec::Earliest),
        isolation_level: IsolationLevel::ReadCommitted,
        ..ConsumerConfig::default()
    };
    let mut c = Consumer::new(client.clone(), config);
    c.assign(topic, None).await.unwrap();
    c.seek_all(SeekTo::Earliest).await.unwrap();
    c
}

/// Outputs per key in offset order, once `n` have arrived (or after a deadline).
async fn read_committed_until(
    client: &Client,
    topic: &str,
    n: usize,
) -> BTreeMap<String, Vec<Agg>> {
    let mut c = read_committed(client, topic).await;
    let mut out: BTreeMap<String, Vec<Agg>> = BTreeMap::new();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    while seen < n && Instant::now() < deadline {
        for r in c.poll().await.unwrap() {
            let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            let agg: Agg = serde_json::from_slice(&r.value.unwrap()).unwrap();
            out.entry(key).or_default().push(agg);
            seen += 1;
        }
    }
    // A little longer: duplicates beyond n would show up here.
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        for r in c.poll().await.unwrap() {
            let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            out.entry(key)
                .or_default()
                .push(serde_json::from_slice(&r.value.unwrap()).unwrap());
        }
    }
    out
}

/// The latest value per key of a changelog, committed records only.
async fn read_changelog(client: &Client, topic: &str) -> BTreeMap<String, Agg> {
    let mut c = read_committed(client, topic).await;
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c.at_end() && Instant::now() < deadline {
        for r in c.poll().await.unwrap() {
            let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            match r.value {
                Some(v) => out.insert(key, serde_json::from_slice(&v).unwrap()),
                None => out.remove(&key),
            };
        }
    }
    out
}
