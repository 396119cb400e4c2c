//! The coordinator over a real broker and data directory: endings,
//! transactional offsets, and what a reopened broker does with each state
//! left by a crash (the broker is dropped without `shutdown`: only what
//! was flushed is there).

use std::sync::Arc;
use std::time::Duration;

use super::state::TxnState;
use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::consumer_offsets::TOPIC as OFFSETS;
use crate::group::records::partition_for;
use crate::group::txn_offsets::TxnCommitPartition;

fn open(dir: &std::path::Path) -> Arc<Broker> {
    let mut c = BrokerConfig::default();
    c.set("offsets.topic.num.partitions", "3").unwrap();
    c.set("transaction.state.log.num.partitions", "3").unwrap();
    c.set(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "50",
    )
    .unwrap();
    Broker::open(c, dir, ("localhost".into(), 9092)).unwrap()
}

async fn wait_for_state(broker: &Broker, id: &str, state: TxnState) -> super::TxnMetadata {
    for _ in 0..200 {
        if let Some(m) = broker.txns.get(id).filter(|m| m.state == state) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{id} never reached {state:?}: {:?}", broker.txns.get(id));
}

fn offset_of(broker: &Broker, group: &str) -> Option<i64> {
    let wanted = [("t".to_string(), 0)];
    broker.groups.fetch(group, Some(&wanted))[0]
        .2
        .as_ref()
        .map(|c| c.offset)
}

fn offsets_partition(broker: &Broker, group: &str) -> (String, i32) {
    let n = broker.topic(OFFSETS).unwrap().partition_count();
    (OFFSETS.to_string(), partition_for(group, n))
}

/// Opens a transaction on t-0 and the group's offsets partition, with a
/// transactional offset of `offset` pending.
async fn open_txn_with_offset(broker: &Arc<Broker>, id: &str, group: &str, offset: i64) -> i64 {
    if broker.topic("t").is_none() {
        broker.create_topic("t", 1, -1, Default::default()).unwrap();
    }
    let (pid, epoch) = broker
        .txns
        .init_producer_id(broker, id, 60_000, (-1, -1))
        .await
        .unwrap();
    broker.offsets_topic().unwrap();
    let parts = [("t".to_string(), 0), offsets_partition(broker, group)];
    broker
        .txns
        .add_partitions(broker, id, pid, epoch, &parts)
        .await
        .unwrap();
    let commit = [TxnCommitPartition {
        topic: "t".into(),
        partition: 0,
        offset,
        leader_epoch: -1,
        metadata: None,
    }];
    let (errors, durable) = broker
        .groups
        .txn_commit(broker, group, pid, epoch, &commit)
        .unwrap();
    assert_eq!(errors, vec![0]);
    assert_eq!(durable.unwrap().await.unwrap(), Ok(()));
    assert!(broker.groups.has_pending_txn_offset(group, "t", 0));
    pid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_applies_offsets_and_abort_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let pid = open_txn_with_offset(&broker, "tx", "g", 5).await;
    assert_eq!(offset_of(&broker, "g"), None, "pending until the marker");
    let m = broker.txns.get("tx").unwrap();
    let next = broker
        .txns
        .end_txn(&broker, "tx", pid, m.producer_epoch, true, true)
        .await
        .unwrap();
    assert_eq!(next, (pid, m.producer_epoch + 1), "V2 bumps the epoch");
    assert_eq!(offset_of(&broker, "g"), Some(5));
    assert!(!broker.groups.has_pending_txn_offset("g", "t", 0));
    assert_eq!(
        broker.txns.get("tx").unwrap().state,
        TxnState::CompleteCommit
    );

    open_txn_with_offset(&broker, "tx", "g", 9).await;
    let m = broker.txns.get("tx").unwrap();
    broker
        .txns
        .end_txn(&broker, "tx", m.producer_id, m.producer_epoch, false, false)
        .await
        .unwrap();
    assert_eq!(
        offset_of(&broker, "g"),
        Some(5),
        "an abort drops its offsets"
    );
    drop(broker);
    // Replay: the committed offset comes back, the aborted one does not.
    let broker = open(dir.path());
    assert_eq!(offset_of(&broker, "g"), Some(5));
    assert_eq!(
        broker.txns.get("tx").unwrap().state,
        TxnState::CompleteAbort
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_commit_is_completed_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let pid = open_txn_with_offset(&broker, "tx", "g", 7).await;
    // Crash right after PrepareCommit is durable: no marker written.
    let m = broker.txns.get("tx").unwrap();
    let super::EndStep::Prepare(prepared) = m
        .end(pid, m.producer_epoch, true, false, 0, &mut || Ok(999))
        .unwrap()
    else {
        panic!("an open transaction prepares");
    };
    let rx = broker.append_txn(&prepared).unwrap();
    assert_eq!(rx.await.unwrap(), Ok(()));
    drop(broker);
    let broker = open(dir.path());
    // Replayed: the offset is pending until the recovered ending's marker.
    let done = wait_for_state(&broker, "tx", TxnState::CompleteCommit).await;
    assert_eq!(done.producer_id, pid);
    assert_eq!(offset_of(&broker, "g"), Some(7));
    let p = broker.partition("t", 0).unwrap();
    assert_eq!(
        p.lock().producers.ongoing_transactions(),
        vec![],
        "the marker ended the transaction on the data partition"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ongoing_transaction_is_recovered_and_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("t", 1, -1, Default::default()).unwrap();
    let (pid, epoch) = broker
        .txns
        .init_producer_id(&broker, "short", 300, (-1, -1))
        .await
        .unwrap();
    broker
        .txns
        .add_partitions(&broker, "short", pid, epoch, &[("t".into(), 0)])
        .await
        .unwrap();
    drop(broker);
    let broker = open(dir.path());
    let m = broker.txns.get("short").unwrap();
    assert!(
        m.state == TxnState::Ongoing || m.state.is_prepare() || m.state == TxnState::CompleteAbort,
        "recovered as {:?}",
        m.state
    );
    let aborted = wait_for_state(&broker, "short", TxnState::CompleteAbort).await;
    assert_eq!(
        aborted.producer_epoch,
        epoch + 1,
        "the timeout fences the producer"
    );
    assert_eq!(
        broker
            .txns
            .check_produce("short", pid, epoch, &[("t".into(), 0)], false),
        Err(super::codes::INVALID_PRODUCER_EPOCH)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_fences_and_aborts_the_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let pid = open_txn_with_offset(&broker, "tx", "g", 3).await;
    let (pid2, epoch2) = broker
        .txns
        .init_producer_id(&broker, "tx", 60_000, (-1, -1))
        .await
        .unwrap();
    assert_eq!(
        (pid2, epoch2),
        (pid, 2),
        "one bump to fence, one for the new producer"
    );
    assert_eq!(
        offset_of(&broker, "g"),
        None,
        "the fenced txn's offsets are dropped"
    );
    assert_eq!(broker.txns.get("tx").unwrap().state, TxnState::Empty);
    assert_eq!(
        broker
            .txns
            .add_partitions(&broker, "tx", pid, 0, &[("t".into(), 0)])
            .await,
        Err(super::codes::PRODUCER_FENCED)
    );
    assert_eq!(
        broker
            .txns
            .init_producer_id(&broker, "tx", 900_001, (-1, -1))
            .await,
        Err(super::codes::INVALID_TRANSACTION_TIMEOUT)
    );
}
