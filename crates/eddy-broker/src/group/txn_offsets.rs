//! Transactional offsets (TxnOffsetCommit, KIP-98/KIP-447), Kafka's way:
//! written to `__consumer_offsets` as transactional records of the
//! producer (same key/value format as a plain commit, in a batch with the
//! transactional attribute and the producer id/epoch), and pending until
//! that producer's COMMIT or ABORT marker reaches the same partition. A
//! COMMIT applies them, an ABORT drops them. Replay follows the same rule,
//! so offsets of a transaction left in PrepareCommit by a crash come back
//! pending and are applied when the recovered coordinator writes its marker.
//!
//! While an offset is pending, OffsetFetch with require_stable answers
//! UNSTABLE_OFFSET_COMMIT for its partition.

use std::collections::HashMap;
use std::sync::Mutex;

use eddy_log::batch::{self, SimpleRecord};
use tokio::sync::oneshot;

use super::{codes, records, CommittedOffset, GroupCoordinator};
use crate::apis::produce::LEADER_EPOCH;
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::flusher::FlushResult;

/// Batch attribute of a transactional batch.
const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Control record type of a COMMIT marker (the key is version, type).
const CONTROL_TYPE_COMMIT: i16 = 1;
/// Bound on pending offsets per producer (one transaction's worth).
pub const PENDING_PER_PRODUCER_MAX: usize = 100_000;

/// One pending offset: (group, topic, partition) and its value.
type Pending = ((String, String, i32), CommittedOffset);

/// Offsets of open transactions, by producer id.
#[derive(Debug, Default)]
pub struct PendingTxnOffsets {
    by_producer: Mutex<HashMap<i64, Vec<Pending>>>,
}

impl PendingTxnOffsets {
    fn add(&self, producer_id: i64, entries: Vec<Pending>) -> Result<(), i16> {
        let mut map = self.by_producer.lock().expect("pending offsets lock");
        let list = map.entry(producer_id).or_default();
        if list.len() + entries.len() > PENDING_PER_PRODUCER_MAX {
            return Err(codes::INVALID_REQUEST);
        }
        list.extend(entries);
        Ok(())
    }

    fn take(&self, producer_id: i64) -> Vec<Pending> {
        let mut map = self.by_producer.lock().expect("pending offsets lock");
        map.remove(&producer_id).unwrap_or_default()
    }

    fn is_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        let map = self.by_producer.lock().expect("pending offsets lock");
        map.values()
            .flatten()
            .any(|((g, t, p), _)| g == group && t == topic && *p == partition)
    }
}

/// One partition of a TxnOffsetCommit.
#[derive(Debug, Clone)]
pub struct TxnCommitPartition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

impl GroupCoordinator {
    /// A TxnOffsetCommit the transaction coordinator accepted: writes the
    /// offsets as transactional records of the producer and keeps them
    /// pending. Returns per-partition codes and the durability wait.
    pub fn txn_commit(
        &self,
        broker: &Broker,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TxnCommitPartition],
    ) -> Result<(Vec<i16>, Option<oneshot::Receiver<FlushResult>>), i16> {
        if group_id.is_empty() || group_id.len() > records::STRING_BYTES_MAX {
            return Err(codes::INVALID_GROUP_ID);
        }
        let now = now_ms();
        let mut accepted = Vec::new();
        let errors = partitions
            .iter()
            .map(|p| {
                let metadata = p.metadata.clone().unwrap_or_default();
                if metadata.len() > super::offsets::METADATA_BYTES_MAX {
                    return codes::OFFSET_METADATA_TOO_LARGE;
                }
                let c = CommittedOffset {
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata,
                    commit_timestamp_ms: now,
                };
                accepted.push(((group_id.to_string(), p.topic.clone(), p.partition), c));
                codes::NONE
            })
            .collect();
        if accepted.is_empty() {
            return Ok((errors, None));
        }
        let records: Vec<SimpleRecord> = accepted
            .iter()
            .map(|((g, t, p), c)| SimpleRecord {
                key: Some(records::encode_offset_key(g, t, *p)),
                value: Some(records::encode_offset_value(c)),
                ..SimpleRecord::default()
            })
            .collect();
        // Pending first: the marker can only follow this append.
        self.pending_txn.add(producer_id, accepted)?;
        let rx = append_transactional(broker, group_id, producer_id, producer_epoch, &records)?;
        Ok((errors, Some(rx)))
    }

    /// The producer's marker was written: apply (commit) or drop its
    /// pending offsets.
    pub fn end_txn_offsets(&self, producer_id: i64, commit: bool) {
        let pending = self.pending_txn.take(producer_id);
        if !commit {
            return;
        }
        for ((group, topic, partition), c) in pending {
            let key = records::Key::Offset {
                group,
                topic,
                partition,
            };
            self.load(key, Some(records::Value::Offset(c)));
        }
    }

    /// A transactional offset of this partition awaits its marker.
    pub fn has_pending_txn_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn.is_pending(group, topic, partition)
    }

    /// Replay of a transactional `__consumer_offsets` batch: its offset
    /// records become pending for the producer.
    pub(crate) fn replay_txn_batch(&self, producer_id: i64, decoded: Vec<SimpleRecord>) {
        let mut entries = Vec::new();
        for r in decoded {
            let Some(key) = r.key.as_deref() else {
                continue;
            };
            let Ok(k) = records::decode_key(key) else {
                continue;
            };
            if let (
                records::Key::Offset {
                    group,
                    topic,
                    partition,
                },
                Ok(Some(records::Value::Offset(c))),
            ) = (k.clone(), records::decode_value(&k, r.value.as_deref()))
            {
                entries.push(((group, topic, partition), c));
            }
        }
        if let Err(code) = self.pending_txn.add(producer_id, entries) {
            tracing::warn!(
                producer_id,
                error = code,
                "too many pending transactional offsets at replay"
            );
        }
    }

    /// Replay of a control batch: COMMIT applies the producer's pending
    /// offsets, ABORT drops them.
    pub(crate) fn replay_txn_marker(&self, producer_id: i64, decoded: &[SimpleRecord]) {
        let Some(key) = decoded.first().and_then(|r| r.key.as_deref()) else {
            return;
        };
        if key.len() < 4 {
            return;
        }
        let kind = i16::from_be_bytes([key[2], key[3]]);
        self.end_txn_offsets(producer_id, kind == CONTROL_TYPE_COMMIT);
    }
}

/// Appends `records` to the group's `__consumer_offsets` partition as one
/// transactional batch of the producer, and records it in the partition's
/// producer state so its marker ends a known transaction.
fn append_transactional(
    broker: &Broker,
    group_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    records: &[SimpleRecord],
) -> Result<oneshot::Receiver<FlushResult>, i16> {
    let topic = broker.offsets_topic()?;
    let index = records::partition_for(group_id, topic.partition_count());
    let partition = topic
        .partition(index)
        .ok_or(codes::COORDINATOR_NOT_AVAILABLE)?;
    if partition.is_failed() {
        return Err(codes::KAFKA_STORAGE_ERROR);
    }
    let now = now_ms();
    let mut buf = batch::encode_batch_with_attributes(
        records,
        now,
        producer_id,
        producer_epoch,
        -1,
        ATTR_TRANSACTIONAL,
    );
    let mut state = partition.lock();
    let info = state.log.append(&mut buf, LEADER_EPOCH, now).map_err(|e| {
        tracing::error!(error = %e, "writing transactional offsets failed");
        codes::KAFKA_STORAGE_ERROR
    })?;
    for h in &info.batches {
        state.producers.update(h, now);
    }
    state.unflushed_messages += records.len() as i64;
    partition.publish(&state);
    drop(state);
    Ok(broker.flusher.request(partition, info.last_offset + 1))
}
