//! The internal topic `__consumer_offsets`: where the group coordinator's
//! records go (committed offsets, group metadata, tombstones) and where they
//! come back from at start.
//!
//! The topic is created on first use with `offsets.topic.num.partitions`
//! partitions and `cleanup.policy=compact`; a group's records all go to
//! partition `abs(groupId.hashCode()) % partitions`, as in Kafka, so the
//! topic reads the same to Kafka tooling. Records are written in one
//! uncompressed batch per commit and acknowledged only once the flusher has
//! made them durable, whatever the topic's flush policy.

use std::collections::BTreeMap;
use std::sync::Arc;

use eddy_log::batch::{self, BatchHeader, SimpleRecord};
use eddy_log::LogError;
use eddy_protocol::codes;
use tokio::sync::oneshot;

use crate::apis::produce::LEADER_EPOCH;
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::flusher::FlushResult;
use crate::group::{records, GroupLog, Record};
use crate::partition::Partition;
use crate::topic::Topic;

pub const TOPIC: &str = "__consumer_offsets";

impl GroupLog for Broker {
    fn append(
        &self,
        group: &str,
        records: Vec<Record>,
    ) -> Result<oneshot::Receiver<FlushResult>, i16> {
        assert!(!records.is_empty(), "an append carries records");
        let topic = self.offsets_topic()?;
        let index = records::partition_for(group, topic.partition_count());
        let partition = topic
            .partition(index)
            .ok_or(codes::COORDINATOR_NOT_AVAILABLE)?;
        if partition.is_failed() {
            return Err(codes::KAFKA_STORAGE_ERROR);
        }
        let count = records.len() as i64;
        let simple: Vec<SimpleRecord> = records
            .into_iter()
            .map(|(key, value)| SimpleRecord {
                key: Some(key),
                value,
                ..SimpleRecord::default()
            })
            .collect();
        let now = now_ms();
        let mut buf = batch::encode_batch(&simple, now, -1, -1, -1);
        let mut state = partition.lock();
        let info = state
            .log
            .append(&mut buf, LEADER_EPOCH, now)
            .map_err(|e| append_failed(&partition, &e))?;
        state.unflushed_messages += count;
        partition.publish(&state);
        drop(state);
        if !partition.is_durable() {
            self.data_ready.notify_waiters();
        }
        Ok(self.flusher.request(partition, info.last_offset + 1))
    }
}

fn append_failed(partition: &Partition, e: &LogError) -> i16 {
    tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "writing group records failed");
    match e {
        LogError::BatchTooLarge { .. } => codes::MESSAGE_TOO_LARGE,
        LogError::InvalidBatch(_)
        | LogError::InvalidConfig(_)
        | LogError::OffsetOutOfRange { .. } => codes::UNKNOWN_SERVER_ERROR,
        _ => {
            partition.mark_failed();
            codes::KAFKA_STORAGE_ERROR
        }
    }
}

impl Broker {
    /// `__consumer_offsets`, created on first use.
    pub(crate) fn offsets_topic(&self) -> Result<Arc<Topic>, i16> {
        if let Some(t) = self.topic(TOPIC) {
            return Ok(t);
        }
        let partitions = self
            .config
            .i64("offsets.topic.num.partitions")
            .clamp(1, 1000) as i32;
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

    /// Replays `__consumer_offsets` into the group coordinator: every
    /// partition from its log start, last record per key wins.
    ///
    /// The coordinator's timer starts only after the replay: a replay holds
    /// a partition lock while it hands records to the coordinator, and the
    /// timer, under the groups lock, appends to these partitions (a restored
    /// group that rebalances) — the two orders would deadlock.
    pub(crate) fn load_groups(&self) {
        if let Some(topic) = self.topic(TOPIC) {
            let mut loaded = 0usize;
            for p in topic.all_partitions() {
                loaded += self.load_partition(&p);
            }
            tracing::info!(records = loaded, "loaded {TOPIC}");
        }
        self.groups.start_timer();
    }

    /// Replays one partition; a corrupt batch ends its replay with a warning.
    fn load_partition(&self, partition: &Partition) -> usize {
        crate::partition::replay_batches(partition, TOPIC, |header, b| {
            if header.is_control() || header.is_transactional() {
                // Transactional offsets wait for their marker
                // (group/txn_offsets.rs).
                self.load_txn_batch(header, b)
            } else {
                self.load_batch(partition.index, b)
            }
        })
    }

    fn load_txn_batch(&self, header: &BatchHeader, b: &[u8]) -> usize {
        let Ok(decoded) = batch::decode_records(b) else {
            return 0;
        };
        if header.is_control() {
            self.groups.replay_txn_marker(header.producer_id, &decoded);
            return 0;
        }
        let n = decoded.len();
        self.groups.replay_txn_batch(header.producer_id, decoded);
        n
    }

    fn load_batch(&self, index: i32, b: &[u8]) -> usize {
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
            let parsed = records::decode_key(key)
                .and_then(|k| records::decode_value(&k, r.value.as_deref()).map(|v| (k, v)));
            match parsed {
                Ok((k, v)) => {
                    self.groups.load(k, v);
                    loaded += 1;
                }
                Err(e) => {
                    tracing::warn!(partition = index, error = %e, "skipping a {TOPIC} record")
                }
            }
        }
        loaded
    }
}
