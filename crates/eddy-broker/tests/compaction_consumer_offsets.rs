//! `__consumer_offsets` is compacted by the same cleaner, and the group
//! coordinator's replay at start still gives the latest committed offset
//! per key afterwards, with tombstoned (expired) offsets staying gone even
//! once the tombstones themselves have been removed.

use std::sync::Arc;

use eddy_broker::broker::Broker;
use eddy_broker::cleaner::clean_partition;
use eddy_broker::config::BrokerConfig;
use eddy_broker::consumer_offsets::TOPIC;
use eddy_broker::group::CommitPartition;
use eddy_log::cleaner::CleanerLimits;

fn open(dir: &std::path::Path) -> Arc<Broker> {
    let mut c = BrokerConfig::default();
    c.set("offsets.topic.num.partitions", "1").unwrap();
    c.set("log.segment.bytes", "400").unwrap();
    c.set("log.cleaner.min.cleanable.ratio", "0.01").unwrap();
    c.set("log.cleaner.delete.retention.ms", "0").unwrap();
    c.set("log.cleaner.enable", "false").unwrap();
    Broker::open(c, dir, ("localhost".into(), 9092)).unwrap()
}

fn commit(broker: &Broker, group: &str, offset: i64) {
    let partitions: Vec<CommitPartition> = (0..2)
        .map(|partition| CommitPartition {
            topic: "t".into(),
            partition,
            offset: offset + partition as i64,
            leader_epoch: -1,
            metadata: None,
        })
        .collect();
    let committed = broker
        .groups
        .commit(group, "", None, -1, &partitions)
        .unwrap();
    assert_eq!(committed.errors, vec![0, 0]);
    let durable = committed.durable.expect("a log-backed commit waits");
    assert_eq!(durable.blocking_recv().unwrap(), Ok(()));
}

fn offset_of(broker: &Broker, group: &str, partition: i32) -> Option<i64> {
    let fetched = broker
        .groups
        .fetch(group, Some(&[("t".to_string(), partition)]));
    fetched[0].2.as_ref().map(|c| c.offset)
}

fn size_bytes(broker: &Broker) -> u64 {
    let p = broker.partition(TOPIC, 0).unwrap();
    let state = p.lock();
    state.log.size_bytes()
}

#[test]
fn group_replay_after_compaction_keeps_latest_offsets_and_deletions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = open(dir.path());
        broker.create_topic("t", 2, 1, Default::default()).unwrap();
        commit(&broker, "old", 3);
        let later = eddy_broker::clock::now_ms() + 10_080 * 60_000 + 1_000;
        assert_eq!(broker.groups.expire_offsets(later), 2, "tombstones written");
        for offset in 1..=60 {
            commit(&broker, "g1", offset);
            commit(&broker, "g2", 1000 + offset);
        }
        let partition = broker.partition(TOPIC, 0).unwrap();
        let before = size_bytes(&broker);
        let limits = CleanerLimits::default();
        assert!(clean_partition(&broker, &partition, &limits), "first pass");
        let after_first = size_bytes(&broker);
        // delete.retention.ms=0: the next pass drops the tombstones too.
        assert!(
            clean_partition(&broker, &partition, &limits),
            "tombstone pass"
        );
        let after_second = size_bytes(&broker);
        eprintln!("__consumer_offsets: {before} bytes, {after_first} after a pass, {after_second} after the tombstone pass");
        assert!(after_first * 4 < before, "{before} -> {after_first}");
        assert!(after_second < after_first);
        assert!(
            !clean_partition(&broker, &partition, &limits),
            "nothing left to do"
        );
        // No shutdown: a crash, as far as the logs are concerned.
    }
    let broker = open(dir.path());
    assert_eq!(offset_of(&broker, "g1", 0), Some(60));
    assert_eq!(offset_of(&broker, "g1", 1), Some(61));
    assert_eq!(offset_of(&broker, "g2", 0), Some(1060));
    assert_eq!(offset_of(&broker, "old", 0), None);
    assert_eq!(offset_of(&broker, "old", 1), None);
    commit(&broker, "g1", 70);
    broker.shutdown();
    let broker = open(dir.path());
    assert_eq!(offset_of(&broker, "g1", 0), Some(70));
    assert_eq!(offset_of(&broker, "g2", 1), Some(1061));
}
