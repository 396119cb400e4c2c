//! The transactional producer against a live broker: zombie fencing, offsets committed with
//! a transaction, many transactions in a row (Transactions V2 epoch bumps), abortable
//! failures, and calls out of order.

mod common;

use std::time::{Duration, Instant};

use eddy_client::{
    Admin, Client, ConsumerGroupMetadata, Error, GroupOffset, IsolationLevel, NewTopic, Producer,
    ProducerConfig, ProducerRecord, TopicPartition,
};

async fn transactional(client: &Client, id: &str) -> Producer {
    let config = ProducerConfig {
        transactional_id: Some(id.to_owned()),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client.clone(), config).await.unwrap();
    producer.init_transactions().await.unwrap();
    producer
}

/// Every value of `topic` (all partitions, in partition then offset order).
async fn values(client: &Client, topic: &str, isolation: IsolationLevel) -> Vec<String> {
    let config = eddy_client::ConsumerConfig {
        fetch_max_wait_ms: 50,
        isolation_level: isolation,
        ..eddy_client::ConsumerConfig::default()
    };
    let mut consumer = eddy_client::Consumer::new(client.clone(), config);
    consumer.assign(topic, None).await.unwrap();
    consumer
        .seek_all(eddy_client::SeekTo::Earliest)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut records = Vec::new();
    while !consumer.at_end() {
        records.extend(consumer.poll().await.unwrap());
        assert!(Instant::now() < deadline, "not at the end after 10 s");
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    let text = |r: eddy_client::ConsumerRecord| String::from_utf8(r.value.unwrap().to_vec());
    records.into_iter().map(|r| text(r).unwrap()).collect()
}

fn record(topic: &str, partition: i32, value: &str) -> ProducerRecord {
    ProducerRecord::new(topic, value.to_owned()).with_partition(partition)
}

/// A second producer with the same transactional.id fences the first: the first one's next
/// produce, or its commit, fails fatally, and its open transaction never becomes visible.
#[tokio::test]
async fn a_new_instance_fences_the_zombie() {
    let Some(bootstrap) = common::bootstrap("a_new_instance_fences_the_zombie") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::create_topic(&client, "txn-fence", 2).await;
    let id = common::unique_topic("txn-fence");

    // The zombie's next produce fails: INVALID_PRODUCER_EPOCH from the partition leader.
    let zombie = transactional(&client, &id).await;
    zombie.begin_transaction().unwrap();
    zombie
        .send(record(&topic, 0, "zombie-1"))
        .await
        .unwrap()
        .await
        .unwrap();
    let successor = transactional(&client, &id).await;
    let (zombie_id, successor_id) = (zombie.producer_identity(), successor.producer_identity());
    assert_eq!(
        zombie_id.unwrap().0,
        successor_id.unwrap().0,
        "same producer id"
    );
    assert!(
        successor_id.unwrap().1 > zombie_id.unwrap().1,
        "a newer epoch"
    );
    let late = zombie
        .send(record(&topic, 0, "zombie-2"))
        .await
        .unwrap()
        .await;
    let late = late.unwrap_err();
    assert!(late.is_fatal_txn(), "{late}");
    for refused in [
        zombie.commit_transaction().await,
        zombie.abort_transaction().await,
        zombie.begin_transaction(),
    ] {
        let refused = refused.unwrap_err();
        assert!(refused.is_fatal_txn(), "{refused}");
        assert_eq!(refused.kafka_code(), late.kafka_code());
    }
    assert!(zombie
        .send(record(&topic, 1, "x"))
        .await
        .unwrap_err()
        .is_fatal_txn());

    // The next zombie's commit fails: PRODUCER_FENCED from the coordinator.
    let zombie = successor;
    zombie.begin_transaction().unwrap();
    zombie
        .send(record(&topic, 1, "zombie-3"))
        .await
        .unwrap()
        .await
        .unwrap();
    let successor = transactional(&client, &id).await;
    let fenced = zombie.commit_transaction().await.unwrap_err();
    assert!(
        fenced.is_fatal_txn() && !fenced.txn_requires_abort(),
        "{fenced}"
    );

    successor.begin_transaction().unwrap();
    successor
        .send(record(&topic, 1, "successor"))
        .await
        .unwrap();
    successor.commit_transaction().await.unwrap();
    let committed = values(&client, &topic, IsolationLevel::ReadCommitted).await;
    assert_eq!(committed, ["successor"]);
    let all = values(&client, &topic, IsolationLevel::ReadUncommitted).await;
    assert_eq!(
        all,
        ["zombie-1", "zombie-3", "successor"],
        "the fenced write never landed"
    );
    successor.close().await;
}

async fn committed_offsets(client: &Client, group: &str) -> Vec<(String, i32, i64)> {
    let offsets: Vec<GroupOffset> = Admin::new(client.clone())
        .committed_offsets(group, None)
        .await
        .unwrap();
    offsets
        .into_iter()
        .map(|o| (o.topic, o.partition, o.offset))
        .collect()
}

/// Offsets sent with a transaction are committed with it: invisible to OffsetFetch while it
/// is open, visible after the commit, never after an abort.
#[tokio::test]
async fn offsets_commit_with_the_transaction() {
    let Some(bootstrap) = common::bootstrap("offsets_commit_with_the_transaction") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let input = common::create_topic(&client, "txn-in", 2).await;
    let output = common::create_topic(&client, "txn-out", 1).await;
    let group = ConsumerGroupMetadata::group_only(&common::unique_topic("txn-group"));
    let producer = transactional(&client, &common::unique_topic("txn-offsets")).await;
    let tp = |p: i32| TopicPartition::new(&input, p);

    producer.begin_transaction().unwrap();
    producer.send(record(&output, 0, "out-1")).await.unwrap();
    let offsets = [(tp(0), 3), (tp(1), 7)];
    producer
        .send_offsets_to_transaction(&offsets, &group)
        .await
        .unwrap();
    assert!(
        committed_offsets(&client, &group.group_id).await.is_empty(),
        "pending"
    );
    producer.commit_transaction().await.unwrap();
    let expected = vec![(input.clone(), 0, 3), (input.clone(), 1, 7)];
    assert_eq!(committed_offsets(&client, &group.group_id).await, expected);

    producer.begin_transaction().unwrap();
    producer
        .send(record(&output, 0, "out-aborted"))
        .await
        .unwrap();
    producer
        .send_offsets_to_transaction(&[(tp(0), 10)], &group)
        .await
        .unwrap();
    producer.abort_transaction().await.unwrap();
    assert_eq!(committed_offsets(&client, &group.group_id).await, expected);

    // Offsets alone make a transaction too.
    producer.begin_transaction().unwrap();
    producer
        .send_offsets_to_transaction(&[(tp(0), 12)], &group)
        .await
        .unwrap();
    producer.commit_transaction().await.unwrap();
    let expected = vec![(input.clone(), 0, 12), (input.clone(), 1, 7)];
    assert_eq!(committed_offsets(&client, &group.group_id).await, expected);
    assert_eq!(
        values(&client, &output, IsolationLevel::ReadCommitted).await,
        ["out-1"]
    );
    producer.close().await;
}

/// Fifty transactions in a row, some aborted. With Transactions V2 every ending bumps the
/// epoch and sequence numbers start again at 0; a producer that kept its old sequences
/// would be refused (OUT_OF_ORDER_SEQUENCE_NUMBER).
#[tokio::test]
async fn fifty_transactions_in_a_row() {
    let Some(bootstrap) = common::bootstrap("fifty_transactions_in_a_row") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::create_topic(&client, "txn-many", 2).await;
    let producer = transactional(&client, &common::unique_topic("txn-many")).await;
    let started = Instant::now();
    let mut expected = [Vec::new(), Vec::new()];
    let mut epoch = producer.producer_identity().unwrap().1;
    for n in 0..50 {
        producer.begin_transaction().unwrap();
        let mut delivered = Vec::new();
        for i in 0..6 {
            let (p, value) = (i % 2, format!("t{n}-{i}"));
            delivered.push(producer.send(record(&topic, p, &value)).await.unwrap());
            if n % 5 != 3 {
                expected[p as usize].push(value);
            }
        }
        // Some aborts come after the records went out, some drop them unsent (then the
        // coordinator may never have heard of the transaction: no EndTxn, no new epoch).
        let reached_coordinator = n % 10 != 8;
        if n % 5 == 3 {
            if reached_coordinator {
                producer.flush().await;
            }
            producer.abort_transaction().await.unwrap();
        } else {
            for d in delivered {
                d.await.unwrap();
            }
            check_sequences_restart(&client, &topic, &producer).await;
            producer.commit_transaction().await.unwrap();
        }
        let next = producer.producer_identity().unwrap().1;
        if reached_coordinator {
            assert!(
                next > epoch,
                "transaction {n}: the epoch moved on ({epoch} -> {next})"
            );
        }
        assert!(next >= epoch);
        epoch = next;
    }
    let committed = values(&client, &topic, IsolationLevel::ReadCommitted).await;
    assert_eq!(committed, expected.concat());
    eprintln!("50 transactions in {:?}", started.elapsed());
    producer.close().await;
}

/// Each partition holds 3 records of the open transaction, at sequences 0 to 2 of the
/// current epoch: sequences restart with every epoch. Asked of the broker (DescribeProducers)
/// because a broker need not refuse a wrong restart itself.
async fn check_sequences_restart(client: &Client, topic: &str, producer: &Producer) {
    let (id, epoch) = producer.producer_identity().unwrap();
    let admin = Admin::new(client.clone());
    for p in 0..2 {
        let states = admin.describe_producers(topic, p).await.unwrap();
        let ours = states.iter().find(|s| s.producer_id == id).unwrap();
        assert_eq!(ours.producer_epoch, i32::from(epoch), "partition {p}");
        assert_eq!(ours.last_sequence, 2, "partition {p} at epoch {epoch}");
    }
}

/// A record the client or the broker refuses fails the transaction: commit is refused with
/// an error that asks for an abort; after the abort the next transaction works.
#[tokio::test]
async fn a_failed_record_makes_the_transaction_abortable() {
    let Some(bootstrap) = common::bootstrap("a_failed_record_makes_the_transaction_abortable")
    else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::unique_topic("txn-small");
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new(&topic, 1).with_config("max.message.bytes", "512")])
        .await
        .unwrap();
    let producer = transactional(&client, &common::unique_topic("txn-abortable")).await;

    // Refused by the client: no such partition.
    producer.begin_transaction().unwrap();
    producer.send(record(&topic, 0, "kept-0")).await.unwrap();
    let refused = producer
        .send(record(&topic, 5, "nowhere"))
        .await
        .unwrap_err();
    assert!(
        refused.txn_requires_abort() && !refused.is_fatal_txn(),
        "{refused}"
    );
    let commit = producer.commit_transaction().await.unwrap_err();
    assert!(commit.txn_requires_abort(), "{commit}");
    assert!(matches!(commit, Error::TxnAbortable { .. }));
    producer.abort_transaction().await.unwrap();

    // Refused by the broker: MESSAGE_TOO_LARGE, after the small record's batch went out.
    producer.begin_transaction().unwrap();
    producer
        .send(record(&topic, 0, "small"))
        .await
        .unwrap()
        .await
        .unwrap();
    let big = producer
        .send(record(&topic, 0, &"x".repeat(2000)))
        .await
        .unwrap();
    let big = big.await.unwrap_err();
    assert!(big.txn_requires_abort(), "{big}");
    assert_eq!(big.kafka_code(), Some(eddy_client::KafkaCode(10)), "{big}");
    assert!(producer
        .commit_transaction()
        .await
        .unwrap_err()
        .txn_requires_abort());
    producer.abort_transaction().await.unwrap();

    producer.begin_transaction().unwrap();
    producer.send(record(&topic, 0, "after")).await.unwrap();
    producer.commit_transaction().await.unwrap();
    let committed = values(&client, &topic, IsolationLevel::ReadCommitted).await;
    assert_eq!(committed, ["after"]);
    producer.close().await;
}

/// Calls out of order are refused without changing anything.
#[tokio::test]
async fn calls_out_of_order_are_refused() {
    let Some(bootstrap) = common::bootstrap("calls_out_of_order_are_refused") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::create_topic(&client, "txn-order", 1).await;
    let plain = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    let not_transactional = plain.begin_transaction().unwrap_err();
    assert!(
        matches!(not_transactional, Error::TxnState(_)),
        "{not_transactional}"
    );

    let config = ProducerConfig {
        transactional_id: Some(common::unique_topic("txn-order")),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client.clone(), config).await.unwrap();
    let before_init = producer.begin_transaction().unwrap_err();
    assert!(
        before_init.to_string().contains("init_transactions"),
        "{before_init}"
    );
    producer.init_transactions().await.unwrap();
    assert!(matches!(
        producer.init_transactions().await,
        Err(Error::TxnState(_))
    ));
    let outside = producer
        .send(record(&topic, 0, "outside"))
        .await
        .unwrap_err();
    assert!(matches!(outside, Error::TxnState(_)), "{outside}");
    assert!(matches!(
        producer.commit_transaction().await,
        Err(Error::TxnState(_))
    ));
    assert!(matches!(
        producer.abort_transaction().await,
        Err(Error::TxnState(_))
    ));
    producer.begin_transaction().unwrap();
    assert!(matches!(
        producer.begin_transaction(),
        Err(Error::TxnState(_))
    ));
    producer.send(record(&topic, 0, "inside")).await.unwrap();
    producer.commit_transaction().await.unwrap();
    assert_eq!(
        values(&client, &topic, IsolationLevel::ReadCommitted).await,
        ["inside"]
    );
    producer.close().await;
    plain.close().await;
}
