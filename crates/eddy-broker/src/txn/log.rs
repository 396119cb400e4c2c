//! The internal topic `__transaction_state`: where the coordinator's
//! records go and where they come back from at start.
//!
//! Created on first use with `transaction.state.log.num.partitions`
//! partitions and `cleanup.policy=compact`; a transactional id's records all
//! go to partition `abs(id.hashCode()) % partitions`, as in Kafka. One record
//! per transition, in one uncompressed batch, flushed before the coordinator
//! acts on it (whatever the topic's flush policy).

use std::collections::BTreeMap;
use std::sync::Arc;

use eddy_log::batch::{self, SimpleRecord};
use tokio::sync::oneshot;

use super::records;
use super::state::TxnMetadata;
use super::TxnCoordinator;
use crate::apis::produce::LEADER_EPOCH;
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::flusher::FlushResult;
use crate::group::records::partition_for;
use crate::partition::Partition;
use crate::topic::Topic;
use eddy_protocol::codes;

pub const TOPIC: &str = "__transaction_state";

impl Broker {
    /// `__transaction_state`, created on first use.
    fn txn_topic(&self) -> Result<Arc<Topic>, i16> {
        if let Some(t) = self.topic(TOPIC) {
            return Ok(t);
        }
        let partitions = self.txns.config.log_partitions.clamp(1, 1000);
        let configs = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
        match self.create_topic(TOPIC, partitions, -1, configs) {
            Ok(t) => Ok(t),
            Err(e) if e.code == codes::TOPIC_ALREADY_EXISTS => {
                self.topic(TOPIC).ok_or(codes::COORDINATOR_NOT_AVAILABLE)
            }
            Err(e) => {
                tracing::error!(error = %e.message, "creating {TOPIC} failed");
                Err(codes::COORDINATOR_NOT_AVAILABLE)
            }
        }
    }

    /// Appends the record of `m` and asks for it to be made durable.
    pub(crate) fn append_txn(
        &self,
        m: &TxnMetadata,
    ) -> Result<oneshot::Receiver<FlushResult>, i16> {
        let topic = self.txn_topic()?;
        let index = partition_for(&m.transactional_id, topic.partition_count());
        let partition = topic
            .partition(index)
            .ok_or(codes::COORDINATOR_NOT_AVAILABLE)?;
        if partition.is_failed() {
            return Err(codes::COORDINATOR_NOT_AVAILABLE);
        }
        let record = SimpleRecord {
            key: Some(records::encode_key(&m.transactional_id)),
            value: Some(records::encode_value(m)),
            ..SimpleRecord::default()
        };
        let now = now_ms();
        let mut buf = batch::encode_batch(&[record], now, -1, -1, -1);
        let mut state = partition.lock();
        let info = state.log.append(&mut buf, LEADER_EPOCH, now).map_err(|e| {
            tracing::error!(error = %e, "writing {TOPIC} failed");
            codes::COORDINATOR_NOT_AVAILABLE
        })?;
        state.unflushed_messages += 1;
        partition.publish(&state);
        drop(state);
        Ok(self.flusher.request(partition, info.last_offset + 1))
    }

    /// Replays `__transaction_state` into the coordinator, then starts its
    /// timer and completes the endings a crash interrupted.
    pub(crate) fn load_txns(self: &Arc<Self>) {
        if let Some(topic) = self.topic(TOPIC) {
            let mut loaded = 0usize;
            for p in topic.all_partitions() {
                loaded += load_partition(&self.txns, &p);
            }
            tracing::info!(records = loaded, "loaded {TOPIC}");
        }
        self.txns.start(self);
    }
}

/// Replays one partition; a corrupt batch ends its replay with a warning.
fn load_partition(txns: &TxnCoordinator, partition: &Partition) -> usize {
    crate::partition::replay_batches(partition, TOPIC, |header, b| {
        if header.is_control() {
            0
        } else {
            load_batch(txns, partition.index, b)
        }
    })
}

fn load_batch(txns: &TxnCoordinator, index: i32, b: &[u8]) -> usize {
    let decoded = match batch::decode_records(b) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(partition = index, error = %e, "skipping a {TOPIC} batch Eddy cannot decode");
            return 0;
        }
    };
    let mut loaded = 0;
    for r in decoded {
        let Some(key) = r.key.as_deref() else {
            continue;
        };
        let parsed = records::decode_key(key).and_then(|id| {
            let value = r
                .value
                .as_deref()
                .map(|v| records::decode_value(&id, v))
                .transpose()?;
            Ok((id, value))
        });
        match parsed {
            Ok((id, value)) => {
                txns.load(id, value);
                loaded += 1;
            }
            Err(e) => tracing::warn!(partition = index, error = %e, "skipping a {TOPIC} record"),
        }
    }
    loaded
}

impl TxnCoordinator {
    /// Replays one record: the last one of an id wins, a tombstone forgets.
    pub fn load(&self, transactional_id: String, value: Option<TxnMetadata>) {
        let mut txns = self.lock();
        match value {
            Some(m) => txns.insert(transactional_id, m),
            None => txns.remove(&transactional_id),
        };
    }

    /// Appends a tombstone for an expired id.
    pub(crate) fn append_tombstone(broker: &Broker, transactional_id: &str) -> Result<(), i16> {
        let topic = broker.txn_topic()?;
        let index = partition_for(transactional_id, topic.partition_count());
        let partition = topic
            .partition(index)
            .ok_or(codes::COORDINATOR_NOT_AVAILABLE)?;
        let record = SimpleRecord {
            key: Some(records::encode_key(transactional_id)),
            value: None,
            ..SimpleRecord::default()
        };
        let now = now_ms();
        let mut buf = batch::encode_batch(&[record], now, -1, -1, -1);
        let mut state = partition.lock();
        let info = state
            .log
            .append(&mut buf, LEADER_EPOCH, now)
            .map_err(|_| codes::COORDINATOR_NOT_AVAILABLE)?;
        state.unflushed_messages += 1;
        partition.publish(&state);
        drop(state);
        broker.flusher.nudge(partition, info.last_offset + 1);
        Ok(())
    }
}
