//! Committed offsets and group metadata are written to `__consumer_offsets`
//! and come back when the broker reopens the same data directory, after a
//! clean shutdown or none at all (the drop without `shutdown` is a crash as
//! far as the logs are concerned: only what was fsynced is there).

use std::sync::Arc;
use std::time::Duration;

use eddy_broker::broker::Broker;
use eddy_broker::config::BrokerConfig;
use eddy_broker::consumer_offsets::TOPIC;
use eddy_broker::group::{CommitPartition, JoinParams, State, SyncParams};

fn config() -> BrokerConfig {
    let mut c = BrokerConfig::default();
    c.set("offsets.topic.num.partitions", "3").unwrap();
    c.set("group.initial.rebalance.delay.ms", "0").unwrap();
    c
}

fn open(dir: &std::path::Path) -> Arc<Broker> {
    Broker::open(config(), dir, ("localhost".into(), 9092)).unwrap()
}

fn commit(broker: &Broker, group: &str, generation: i32, member: &str, offset: i64) {
    let partitions = [
        CommitPartition {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: 0,
            metadata: Some("m".into()),
        },
        CommitPartition {
            topic: "t".into(),
            partition: 1,
            offset: offset + 1,
            leader_epoch: -1,
            metadata: None,
        },
    ];
    let committed = broker
        .groups
        .commit(group, member, None, generation, &partitions)
        .unwrap();
    assert_eq!(committed.errors, vec![0, 0]);
    let durable = committed.durable.expect("a log-backed commit waits");
    assert_eq!(durable.blocking_recv().unwrap(), Ok(()));
}

fn offset_of(broker: &Broker, group: &str, partition: i32) -> Option<i64> {
    let wanted = [("t".to_string(), partition)];
    let fetched = broker.groups.fetch(group, Some(&wanted));
    fetched[0].2.as_ref().map(|c| c.offset)
}

#[test]
fn simple_commits_come_back_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = open(dir.path());
        broker.create_topic("t", 2, 1, Default::default()).unwrap();
        commit(&broker, "g1", -1, "", 10);
        commit(&broker, "g1", -1, "", 20);
        commit(&broker, "g2", -1, "", 5);
        assert!(broker.topic(TOPIC).unwrap().internal);
        assert_eq!(broker.topic(TOPIC).unwrap().partition_count(), 3);
        // No shutdown: the process "dies" here.
    }
    let broker = open(dir.path());
    assert_eq!(offset_of(&broker, "g1", 0), Some(20));
    assert_eq!(offset_of(&broker, "g1", 1), Some(21));
    assert_eq!(offset_of(&broker, "g2", 0), Some(5));
    assert_eq!(offset_of(&broker, "g3", 0), None);
    let fetched = broker.groups.fetch("g1", Some(&[("t".to_string(), 0)]));
    assert_eq!(fetched[0].2.as_ref().unwrap().metadata, "m");
    broker.shutdown();
    let broker = open(dir.path());
    assert_eq!(offset_of(&broker, "g1", 0), Some(20));
}

#[test]
fn expired_offsets_are_tombstoned_and_stay_gone() {
    let dir = tempfile::tempdir().unwrap();
    let retention_ms = 10_080 * 60_000;
    {
        let broker = open(dir.path());
        broker.create_topic("t", 2, 1, Default::default()).unwrap();
        commit(&broker, "old", -1, "", 1);
        let now = eddy_broker::clock::now_ms();
        assert_eq!(broker.groups.expire_offsets(now), 0);
        assert_eq!(broker.groups.expire_offsets(now + retention_ms + 1000), 2);
        assert_eq!(offset_of(&broker, "old", 0), None);
        assert!(broker.groups.describe("old").is_none());
        commit(&broker, "young", -1, "", 7);
        broker.shutdown();
    }
    let broker = open(dir.path());
    assert_eq!(offset_of(&broker, "old", 0), None);
    assert_eq!(offset_of(&broker, "young", 0), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_comes_back_with_its_members_generation_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 2, 1, Default::default()).unwrap();
    let join = |member_id: &str| JoinParams {
        group_id: "cg".into(),
        member_id: member_id.into(),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), bytes::Bytes::from_static(b"sub"))],
        ..JoinParams::default()
    };
    let joined = tokio::time::timeout(Duration::from_secs(10), broker.groups.join(join("")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(joined.error, 0);
    assert_eq!(joined.generation, 1);
    let member = joined.member_id.clone();
    let sync = SyncParams {
        group_id: "cg".into(),
        member_id: member.clone(),
        generation: 1,
        assignments: vec![(member.clone(), bytes::Bytes::from_static(b"a"))],
        ..SyncParams::default()
    };
    let synced = broker.groups.sync(sync).await.unwrap();
    assert_eq!(synced.error, 0);
    let b = broker.clone();
    let m = member.clone();
    tokio::task::spawn_blocking(move || commit(&b, "cg", 1, &m, 100))
        .await
        .unwrap();
    // The generation's metadata is written without a waiter: let it land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.shutdown())
        .await
        .unwrap();
    drop(broker);

    let broker = open(dir.path());
    let described = broker.groups.describe("cg").expect("the group is back");
    // As after a Kafka coordinator failover: members, generation and
    // assignments come back, so the member carries on without a rebalance.
    assert_eq!(described.state, State::Stable);
    assert_eq!(described.protocol_type, "consumer");
    assert_eq!(described.members.len(), 1);
    assert_eq!(offset_of(&broker, "cg", 0), Some(100));
    let resync = SyncParams {
        group_id: "cg".into(),
        member_id: member.clone(),
        generation: 1,
        ..SyncParams::default()
    };
    let resynced = broker.groups.sync(resync).await.unwrap();
    assert_eq!(
        (resynced.error, resynced.assignment.as_ref()),
        (0, &b"a"[..])
    );
    // A new member starts the next generation from the recorded one.
    let joiner = broker.groups.join(join(""));
    let rejoined = broker.groups.join(join(&member));
    let (joined, _) = tokio::time::timeout(Duration::from_secs(20), async {
        (joiner.await.unwrap(), rejoined.await.unwrap())
    })
    .await
    .unwrap();
    assert_eq!(joined.error, 0);
    assert_eq!(joined.generation, 2);
}
