//! The marker writer: ends a transaction on its partitions.
//!
//! The transaction coordinator calls [`write_markers`] once it has decided
//! (PrepareCommit/PrepareAbort written to `__transaction_state`). Per
//! partition, under the partition lock as a produce does: check the
//! producer's epoch, append one COMMIT or ABORT control batch, end the
//! producer's transaction in the partition's producer state (an abort goes
//! into the aborted index; the LSO may advance). Then wait for the flusher,
//! so the coordinator writes CompleteCommit/CompleteAbort only over durable
//! markers. On one broker the coordinator calls this directly; Kafka's
//! inter-broker WriteTxnMarkers API is not needed.

use std::sync::Arc;

use eddy_log::batch::{self, EndTxnMarker};
use eddy_protocol::codes;
use tokio::sync::oneshot;

use crate::broker::Broker;
use crate::clock::now_ms;
use crate::flusher::FlushResult;
use crate::partition::Partition;

/// Leader epoch stamped into stored batches: one node, one epoch (as
/// `apis/produce.rs` stamps data batches).
const LEADER_EPOCH: i32 = 0;

/// Appends one COMMIT (`commit`) or ABORT marker for `producer_id` to
/// each partition and resolves once they are durable, with a Kafka error
/// code per partition: NONE on success; UNKNOWN_TOPIC_OR_PARTITION for a
/// partition that no longer exists (the coordinator treats it as done);
/// INVALID_PRODUCER_EPOCH when the partition has seen a newer epoch of
/// that producer (the marker would come from a zombie); KAFKA_STORAGE_ERROR
/// when the append or its fsync failed.
pub async fn write_markers(
    broker: &Arc<Broker>,
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
    partitions: Vec<(String, i32)>,
) -> Vec<((String, i32), i16)> {
    let marker = EndTxnMarker {
        producer_id,
        producer_epoch,
        coordinator_epoch,
        commit,
    };
    let mut waits = Vec::with_capacity(partitions.len());
    for (topic, index) in partitions {
        let outcome = match broker.partition(&topic, index) {
            None => Err(codes::UNKNOWN_TOPIC_OR_PARTITION),
            Some(partition) => append_marker(broker, &partition, &marker),
        };
        waits.push(((topic, index), outcome));
    }
    let mut out = Vec::with_capacity(waits.len());
    for (key, outcome) in waits {
        let code = match outcome {
            Err(code) => code,
            Ok(wait) => match wait.await {
                Ok(Ok(())) => codes::NONE,
                Ok(Err(code)) => code,
                Err(_) => codes::KAFKA_STORAGE_ERROR,
            },
        };
        out.push((key, code));
    }
    out
}

/// The synchronous part: append under the lock, then ask the flusher.
/// Markers are always flushed, whatever `flush.messages` says: the
/// coordinator must not record a transaction complete over markers a
/// crash could take back.
fn append_marker(
    broker: &Broker,
    partition: &Arc<Partition>,
    marker: &EndTxnMarker,
) -> Result<oneshot::Receiver<FlushResult>, i16> {
    if partition.is_failed() {
        return Err(codes::KAFKA_STORAGE_ERROR);
    }
    let now = now_ms();
    let mut buf = batch::encode_end_txn_marker(marker, now);
    let mut state = partition.lock();
    state
        .producers
        .check_marker(marker.producer_id, marker.producer_epoch)?;
    let info = match state.log.append(&mut buf, LEADER_EPOCH, now) {
        Ok(info) => info,
        Err(e) => {
            partition.mark_failed();
            tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "writing a transaction marker failed");
            return Err(codes::KAFKA_STORAGE_ERROR);
        }
    };
    let header = info.batches[0];
    let hw = partition.high_watermark();
    // Retention may have moved the log start: aborted transactions wholly
    // below it have nothing left to filter.
    let log_start = state.log.log_start_offset();
    state.producers.truncate_below(log_start);
    state.producers.end_txn(&header, marker, hw, now);
    state.unflushed_messages += 1;
    partition.publish(&state);
    drop(state);
    if !partition.is_durable() {
        broker.data_ready.notify_waiters();
    }
    Ok(broker
        .flusher
        .request(partition.clone(), info.last_offset + 1))
}
