//! What read_committed and read_uncommitted consumers see of transactions: committed ones
//! appear, aborted ones only to read_uncommitted, and an open one holds read_committed back
//! at the last stable offset until it ends.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eddy_client::{
    Client, Consumer, ConsumerConfig, IsolationLevel, Producer, ProducerConfig, ProducerRecord,
    SeekTo,
};

type Log = BTreeMap<(String, i32), Vec<String>>;

async fn transactional(client: &Client, id: &str) -> Producer {
    let config = ProducerConfig {
        transactional_id: Some(id.to_owned()),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client.clone(), config).await.unwrap();
    producer.init_transactions().await.unwrap();
    producer
}

fn consumer(client: &Client, isolation: IsolationLevel) -> Consumer {
    let config = ConsumerConfig {
        fetch_max_wait_ms: 50,
        isolation_level: isolation,
        ..ConsumerConfig::default()
    };
    Consumer::new(client.clone(), config)
}

/// Polls until the consumer is at its end (high watermark, or LSO under read_committed).
async fn read_to_end(consumer: &mut Consumer, into: &mut Log) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for r in consumer.poll().await.expect("poll") {
            let value = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
            into.entry((r.topic, r.partition)).or_default().push(value);
        }
        if consumer.at_end() {
            return;
        }
        assert!(Instant::now() < deadline, "not at the end after 10 s");
    }
}

async fn read_all(client: &Client, topics: &[&str], isolation: IsolationLevel) -> Log {
    let mut consumer = consumer(client, isolation);
    for topic in topics {
        consumer.assign(topic, None).await.unwrap();
    }
    consumer.seek_all(SeekTo::Earliest).await.unwrap();
    let mut log = Log::new();
    read_to_end(&mut consumer, &mut log).await;
    log
}

/// Two transactional producers and a plain one write to the same partitions of two topics,
/// round after round; each transaction commits or aborts by a pattern. read_committed sees
/// exactly the committed and plain records, in log order; read_uncommitted sees all.
#[tokio::test]
async fn commits_and_aborts_interleave_on_shared_partitions() {
    let Some(bootstrap) = common::bootstrap("commits_and_aborts_interleave_on_shared_partitions")
    else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let a = common::create_topic(&client, "rc-a", 3).await;
    let b = common::create_topic(&client, "rc-b", 2).await;
    let partitions: Vec<(String, i32)> = (0..3)
        .map(|p| (a.clone(), p))
        .chain((0..2).map(|p| (b.clone(), p)))
        .collect();
    let one = transactional(&client, &common::unique_topic("rc-one")).await;
    let two = transactional(&client, &common::unique_topic("rc-two")).await;
    let plain = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    // Everything written, in log order per partition, and whether it is committed.
    let mut written: BTreeMap<(String, i32), Vec<(String, bool)>> = BTreeMap::new();
    for round in 0..6 {
        let commit_one = round % 2 == 0;
        let commit_two = round % 3 == 1;
        one.begin_transaction().unwrap();
        two.begin_transaction().unwrap();
        for step in 0..2 {
            // Each producer's records are flushed before the next one's: a known log order.
            let writers = [
                (&one, "one", commit_one),
                (&plain, "plain", true),
                (&two, "two", commit_two),
            ];
            for (producer, name, committed) in writers {
                for (topic, p) in &partitions {
                    for i in 0..2 {
                        let value = format!("{name}-r{round}-s{step}-{i}");
                        let record = ProducerRecord::new(topic, value.clone()).with_partition(*p);
                        producer.send(record).await.unwrap();
                        written
                            .entry((topic.clone(), *p))
                            .or_default()
                            .push((value, committed));
                    }
                }
                producer.flush().await;
            }
        }
        // Alternate which transaction ends first.
        let (first, second) = if round % 2 == 0 {
            (&one, &two)
        } else {
            (&two, &one)
        };
        for producer in [first, second] {
            let commit = if std::ptr::eq(producer, &one) {
                commit_one
            } else {
                commit_two
            };
            if commit {
                producer.commit_transaction().await.unwrap();
            } else {
                producer.abort_transaction().await.unwrap();
            }
        }
    }
    let values = |keep: fn(bool) -> bool| -> Log {
        written
            .iter()
            .map(|(tp, vs)| {
                let kept = vs.iter().filter(|(_, c)| keep(*c)).map(|(v, _)| v.clone());
                (tp.clone(), kept.collect())
            })
            .collect()
    };
    let committed = read_all(&client, &[&a, &b], IsolationLevel::ReadCommitted).await;
    assert_eq!(committed, values(|c| c), "read_committed");
    let everything = read_all(&client, &[&a, &b], IsolationLevel::ReadUncommitted).await;
    assert_eq!(everything, values(|_| true), "read_uncommitted");
    let aborted: usize = written.values().flatten().filter(|(_, c)| !c).count();
    assert!(aborted > 0 && aborted < written.values().flatten().count());
    for p in [one, two, plain] {
        p.close().await;
    }
}

/// A transaction open on a partition stops read_committed at its first offset (the LSO),
/// also for records written after it by others; ListOffsets Latest under read_committed is
/// the LSO. The commit releases everything; an abort at close moves the LSO on at once.
#[tokio::test]
async fn an_open_transaction_holds_read_committed_back() {
    let Some(bootstrap) = common::bootstrap("an_open_transaction_holds_read_committed_back") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::create_topic(&client, "rc-lso", 1).await;
    let plain = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    let send_plain = |values: Vec<String>| {
        let (plain, topic) = (&plain, &topic);
        async move {
            for v in values {
                plain.send(ProducerRecord::new(topic, v)).await.unwrap();
            }
            plain.flush().await;
        }
    };
    let names = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{prefix}-{i}")).collect()
    };
    send_plain(names("before", 5)).await; // offsets 0-4
    let txn = transactional(&client, &common::unique_topic("rc-lso")).await;
    txn.begin_transaction().unwrap();
    for v in names("open", 5) {
        txn.send(ProducerRecord::new(&topic, v)).await.unwrap(); // offsets 5-9
    }
    txn.flush().await;
    send_plain(names("after", 3)).await; // offsets 10-12, behind the open transaction

    let mut committed = consumer(&client, IsolationLevel::ReadCommitted);
    committed.assign(&topic, None).await.unwrap();
    committed.seek_all(SeekTo::Earliest).await.unwrap();
    let mut seen = Log::new();
    read_to_end(&mut committed, &mut seen).await;
    let key = (topic.clone(), 0);
    assert_eq!(seen[&key], names("before", 5));
    assert_eq!(committed.position(&topic, 0), Some(5), "stopped at the LSO");
    for _ in 0..3 {
        assert!(
            committed.poll().await.unwrap().is_empty(),
            "nothing past the LSO"
        );
    }
    let mut latest = consumer(&client, IsolationLevel::ReadCommitted);
    latest.assign(&topic, None).await.unwrap();
    latest.seek_all(SeekTo::Latest).await.unwrap();
    assert_eq!(
        latest.position(&topic, 0),
        Some(5),
        "ListOffsets latest is the LSO"
    );
    let uncommitted = read_all(&client, &[&topic], IsolationLevel::ReadUncommitted).await;
    let all: Vec<String> = [names("before", 5), names("open", 5), names("after", 3)].concat();
    assert_eq!(uncommitted[&key], all);

    txn.commit_transaction().await.unwrap(); // marker at 13
    read_to_end(&mut committed, &mut seen).await;
    assert_eq!(seen[&key], all);
    assert_eq!(committed.position(&topic, 0), Some(14));

    // An open transaction at close is aborted: the LSO does not wait for its timeout.
    txn.begin_transaction().unwrap();
    txn.send(ProducerRecord::new(&topic, "never"))
        .await
        .unwrap();
    txn.flush().await;
    send_plain(names("last", 1)).await;
    txn.close().await;
    read_to_end(&mut committed, &mut seen).await;
    assert_eq!(seen[&key], [all, names("last", 1)].concat());
    assert_eq!(
        committed.position(&topic, 0),
        Some(17),
        "past the abort marker"
    );
    plain.close().await;
}
