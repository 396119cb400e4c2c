//! Produce: validate, check idempotent sequences, append, and (in the
//! durable mode) wait for the flusher before acknowledging.
//!
//! Transactional batches come in a request that names its
//! `transactional_id`; the coordinator checks the producer's id and epoch
//! and that the partitions are in its open transaction (Produce v12+,
//! Transactions V2: adds them) before anything is appended. Clients never
//! write control batches: markers come from the coordinator only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eddy_log::batch::{self, BatchHeader};
use eddy_log::LogError;
use eddy_protocol::codes;
use kafka_protocol::messages::produce_request::ProduceRequest;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::ResponseKind;
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

use super::{text, Reply};
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::flusher::FlushResult;
use crate::partition::Partition;
use crate::producer_state::Check;

/// Leader epoch stamped into stored batches: one node, one epoch.
pub const LEADER_EPOCH: i32 = 0;
/// From this Produce version on, a transactional produce adds its
/// partitions to the transaction itself (KIP-890 part 2, Transactions V2).
const IMPLICIT_ADD_VERSION_MIN: i16 = 12;

/// What one partition's append produced, before any fsync wait.
struct Appended {
    response: PartitionProduceResponse,
    wait: Option<oneshot::Receiver<FlushResult>>,
}

pub fn handle(broker: &Arc<Broker>, req: ProduceRequest, version: i16) -> Reply {
    let acks = req.acks;
    let timeout_ms = req.timeout_ms.max(0) as u64;
    let mut topics = Vec::with_capacity(req.topic_data.len());
    let mut waits = Vec::new();
    let txn_refused = txn_check(broker, &req, version);
    let transactional = req.transactional_id.is_some();
    for t in req.topic_data {
        let topic = if version >= 13 {
            broker.topic_by_id(t.topic_id)
        } else {
            broker.topic(&t.name)
        };
        let mut partitions = Vec::with_capacity(t.partition_data.len());
        for p in t.partition_data {
            let appended = if acks != 0 && acks != 1 && acks != -1 {
                failed(
                    p.index,
                    codes::INVALID_REQUIRED_ACKS,
                    "acks must be -1 (all), 0 or 1".into(),
                )
            } else if let Some(&code) = topic
                .as_ref()
                .and_then(|t| txn_refused.get(&(t.name.to_string(), p.index)))
            {
                let m = format!("the transaction coordinator refused: {}", codes::name(code));
                failed(p.index, code, m)
            } else {
                match topic.as_ref().and_then(|t| t.partition(p.index)) {
                    Some(partition) => append(
                        broker,
                        &partition,
                        p.records.unwrap_or_default(),
                        acks,
                        transactional,
                    ),
                    None => {
                        let code = if version >= 13 && topic.is_none() {
                            codes::UNKNOWN_TOPIC_ID
                        } else {
                            codes::UNKNOWN_TOPIC_OR_PARTITION
                        };
                        failed(
                            p.index,
                            code,
                            "This server does not host this topic-partition.".into(),
                        )
                    }
                }
            };
            if let Some(w) = appended.wait {
                waits.push((topics.len(), partitions.len(), w));
            }
            partitions.push(appended.response);
        }
        topics.push(
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partition_responses(partitions),
        );
    }
    Box::pin(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        for (ti, pi, wait) in waits {
            let outcome = tokio::time::timeout_at(deadline, wait).await;
            let code = match outcome {
                Ok(Ok(Ok(()))) => codes::NONE,
                Ok(Ok(Err(code))) => code,
                Ok(Err(_)) => codes::KAFKA_STORAGE_ERROR,
                Err(_) => codes::REQUEST_TIMED_OUT,
            };
            if code != codes::NONE {
                let r = &mut topics[ti].partition_responses[pi];
                r.error_code = code;
                r.base_offset = -1;
                r.error_message = Some(text(format!(
                    "the write was not made durable: {}",
                    codes::name(code)
                )));
            }
        }
        if acks == 0 {
            return None;
        }
        Some(ResponseKind::Produce(
            ProduceResponse::default().with_responses(topics),
        ))
    })
}

/// The coordinator's check of a transactional produce, once per producer
/// id and epoch in the request: the partitions it refused, with the code.
fn txn_check(broker: &Broker, req: &ProduceRequest, version: i16) -> HashMap<(String, i32), i16> {
    let mut refused = HashMap::new();
    let Some(txn_id) = req.transactional_id.as_ref() else {
        return refused;
    };
    let mut by_producer: HashMap<(i64, i16), Vec<(String, i32)>> = HashMap::new();
    for t in &req.topic_data {
        let topic = if version >= 13 {
            broker.topic_by_id(t.topic_id)
        } else {
            broker.topic(&t.name)
        };
        let Some(topic) = topic else { continue };
        for p in &t.partition_data {
            let first = p
                .records
                .as_ref()
                .and_then(|r| batch::split(r).next())
                .and_then(|b| b.ok())
                .and_then(|b| BatchHeader::parse(b).ok());
            // Non-transactional batches need no coordinator; malformed
            // ones are refused by append().
            if let Some(h) = first.filter(|h| h.is_transactional() && !h.is_control()) {
                by_producer
                    .entry((h.producer_id, h.producer_epoch))
                    .or_default()
                    .push((topic.name.to_string(), p.index));
            }
        }
    }
    let implicit_add = version >= IMPLICIT_ADD_VERSION_MIN;
    for ((pid, epoch), partitions) in by_producer {
        if let Err(code) =
            broker
                .txns
                .check_produce(txn_id.as_str(), pid, epoch, &partitions, implicit_add)
        {
            refused.extend(partitions.into_iter().map(|p| (p, code)));
        }
    }
    refused
}

fn failed(index: i32, code: i16, message: String) -> Appended {
    let response = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_error_message(Some(StrBytes::from_string(message)));
    Appended {
        response,
        wait: None,
    }
}

fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::InvalidBatch(_) => codes::CORRUPT_MESSAGE,
        LogError::BatchTooLarge { .. } => codes::MESSAGE_TOO_LARGE,
        LogError::OffsetOutOfRange { .. } => codes::OFFSET_OUT_OF_RANGE,
        LogError::InvalidConfig(_) => codes::INVALID_CONFIG,
        _ => codes::KAFKA_STORAGE_ERROR,
    }
}

/// Reads the batch headers of a produce payload (no CRC check yet: the log
/// validates every batch fully before writing anything).
fn headers(records: &[u8]) -> Result<Vec<BatchHeader>, String> {
    let mut out = Vec::new();
    for b in batch::split(records) {
        let b = b.map_err(|e| e.to_string())?;
        let h = BatchHeader::parse(b).map_err(|e| e.to_string())?;
        if h.magic != 2 {
            return Err(format!("record batch magic {} is not supported; Eddy accepts v2 batches (Kafka 0.11+ clients)", h.magic));
        }
        out.push(h);
    }
    if out.is_empty() {
        return Err("the produce request carries no record batch".into());
    }
    Ok(out)
}

/// Appends one partition's batches. `transactional`: the request named a
/// transactional id, so the coordinator has already checked its
/// transactional batches (`txn_check`).
fn append(
    broker: &Arc<Broker>,
    partition: &Arc<Partition>,
    records: Bytes,
    acks: i16,
    transactional: bool,
) -> Appended {
    let index = partition.index;
    if partition.is_failed() {
        return failed(
            index,
            codes::KAFKA_STORAGE_ERROR,
            "the partition's log failed and is offline until restart".into(),
        );
    }
    let incoming = match headers(&records) {
        Ok(h) => h,
        Err(m) => return failed(index, codes::CORRUPT_MESSAGE, m),
    };
    if incoming.iter().any(|h| h.is_control()) {
        return failed(
            index,
            codes::INVALID_RECORD,
            "clients may not write control batches; transaction markers come from the coordinator"
                .into(),
        );
    }
    if let Some(refused) = check_transactional(index, &incoming, transactional) {
        return refused;
    }
    if let Some(rejected) = reject_keyless(broker, partition, &records) {
        return rejected;
    }
    let now = now_ms();
    let mut buf = match recompress(broker, partition, &records, &incoming) {
        Ok(Some(b)) => b,
        Ok(None) => records.to_vec(),
        Err(code_and_message) => return failed(index, code_and_message.0, code_and_message.1),
    };
    // Recompression changed the batches' sizes: read the headers again.
    let incoming = if buf.len() != records.len() {
        match headers(&buf) {
            Ok(h) => h,
            Err(m) => return failed(index, codes::CORRUPT_MESSAGE, m),
        }
    } else {
        incoming
    };
    let log_append_time =
        topic_config(broker, partition, "message.timestamp.type") == "LogAppendTime";
    if log_append_time {
        let mut at = 0;
        for h in &incoming {
            let end = at + h.total_bytes();
            batch::set_log_append_time(&mut buf[at..end], now);
            at = end;
        }
    }
    let mut state = partition.lock();
    // Sequence checks for every batch before anything is written.
    for (i, h) in incoming.iter().enumerate() {
        match state.producers.check(h) {
            Check::Append => {}
            Check::Duplicate(meta) if incoming.len() == 1 => {
                let response = PartitionProduceResponse::default()
                    .with_index(index)
                    .with_base_offset(meta.base_offset)
                    .with_log_start_offset(state.log.log_start_offset());
                drop(state);
                // The original write may still be waiting for its fsync.
                let wait = durable_wait(broker, partition, meta.last_offset + 1, acks);
                return Appended { response, wait };
            }
            Check::Duplicate(_) => {
                return failed(
                    index,
                    codes::DUPLICATE_SEQUENCE_NUMBER,
                    format!("batch {i} of the request repeats an earlier batch"),
                );
            }
            Check::Reject(code) => {
                let m = format!(
                    "producer {} epoch {} sequence {}: {}",
                    h.producer_id,
                    h.producer_epoch,
                    h.base_sequence,
                    codes::name(code)
                );
                return failed(index, code, m);
            }
        }
    }
    let info = match state
        .log
        .append(&mut buf, super::produce::LEADER_EPOCH, now)
    {
        Ok(info) => info,
        Err(e) => {
            let code = log_error_code(&e);
            if code == codes::KAFKA_STORAGE_ERROR {
                partition.mark_failed();
                tracing::error!(topic = %partition.topic, partition = index, error = %e, "append failed");
            }
            return failed(index, code, e.to_string());
        }
    };
    for h in &info.batches {
        state.producers.update(h, now);
    }
    let records_appended: i64 = info.batches.iter().map(|h| h.records_count as i64).sum();
    state.unflushed_messages += records_appended;
    let log_start = state.log.log_start_offset();
    let unflushed = state.unflushed_messages;
    partition.publish(&state);
    drop(state);
    let mut response = PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(info.base_offset)
        .with_log_start_offset(log_start);
    if log_append_time {
        response.log_append_time_ms = now;
    }
    let wait = durable_wait(broker, partition, info.last_offset + 1, acks);
    if !partition.is_durable() {
        broker.data_ready.notify_waiters();
        let flush_messages = partition_flush_messages(broker, partition);
        if unflushed >= flush_messages {
            broker
                .flusher
                .nudge(partition.clone(), info.last_offset + 1);
        }
    }
    Appended { response, wait }
}

/// A transactional batch needs a producer id and a request that names
/// the transaction; batches of one request are all transactional or none
/// (Kafka's rule: the coordinator's check covers the whole request).
fn check_transactional(
    index: i32,
    incoming: &[BatchHeader],
    transactional: bool,
) -> Option<Appended> {
    let txn_batches = incoming.iter().filter(|h| h.is_transactional()).count();
    if txn_batches == 0 {
        return None;
    }
    let message = if !transactional {
        "a transactional batch needs a produce request with a transactional id"
    } else if txn_batches != incoming.len() {
        "a produce request mixes transactional and non-transactional batches"
    } else if incoming.iter().any(|h| !h.has_producer_id()) {
        "a transactional batch has no producer id"
    } else if incoming.iter().any(|h| {
        (h.producer_id, h.producer_epoch) != (incoming[0].producer_id, incoming[0].producer_epoch)
    }) {
        "the transactional batches of one partition come from different producers"
    } else {
        return None;
    };
    Some(failed(index, codes::INVALID_RECORD, message.into()))
}

/// In the durable mode every write waits for its fsync before it is
/// acknowledged (acks=1 and acks=all alike: on one node they mean the same)
/// or becomes visible. acks=0 writes are flushed too but nobody waits.
fn durable_wait(
    broker: &Broker,
    partition: &Arc<Partition>,
    offset: i64,
    acks: i16,
) -> Option<oneshot::Receiver<FlushResult>> {
    if !partition.is_durable() {
        return None;
    }
    if acks == 0 {
        broker.flusher.nudge(partition.clone(), offset);
        return None;
    }
    Some(broker.flusher.request(partition.clone(), offset))
}

/// A compacted topic keeps the latest record per key, so a record without a
/// key has no place in it: Kafka rejects the batch with INVALID_RECORD and
/// names each keyless record.
fn reject_keyless(broker: &Broker, partition: &Partition, records: &[u8]) -> Option<Appended> {
    if !topic_config(broker, partition, "cleanup.policy")
        .split(',')
        .any(|p| p.trim() == "compact")
    {
        return None;
    }
    let limit_bytes = decompressed_bytes_max(broker, partition);
    let mut errors = Vec::new();
    let mut first_index = 0i32;
    for b in batch::split(records) {
        let keyless = b
            .and_then(|b| batch::records_bytes(b, limit_bytes))
            .and_then(|(h, section)| {
                batch::keyless_records(&section, h.records_count.max(0) as usize).map(|k| (h, k))
            });
        match keyless {
            Ok((h, k)) => {
                errors.extend(k.into_iter().map(|i| first_index + i));
                first_index += h.records_count;
            }
            Err(e) => {
                return Some(failed(
                    partition.index,
                    codes::CORRUPT_MESSAGE,
                    e.to_string(),
                ))
            }
        }
    }
    if errors.is_empty() {
        return None;
    }
    let message = format!(
        "Compacted topic cannot accept message without key in topic partition {}-{}.",
        partition.topic, partition.index
    );
    let mut appended = failed(
        partition.index,
        codes::INVALID_RECORD,
        "One or more records have been rejected".into(),
    );
    appended.response.record_errors = errors
        .into_iter()
        .map(|i| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(i)
                .with_batch_index_error_message(Some(text(&message)))
        })
        .collect();
    Some(appended)
}

/// A topic whose `compression.type` names a codec stores every batch in
/// that codec, as Kafka does; `producer` (the default) keeps what was sent.
/// Records are not decoded: only the records section is re-encoded.
fn recompress(
    broker: &Broker,
    partition: &Partition,
    records: &[u8],
    incoming: &[BatchHeader],
) -> Result<Option<Vec<u8>>, (i16, String)> {
    let target = match topic_config(broker, partition, "compression.type").as_str() {
        "uncompressed" => eddy_log::compression::NONE,
        "gzip" => eddy_log::compression::GZIP,
        "snappy" => eddy_log::compression::SNAPPY,
        "lz4" => eddy_log::compression::LZ4,
        "zstd" => eddy_log::compression::ZSTD,
        _ => return Ok(None),
    };
    if incoming.iter().all(|h| h.compression() == target) {
        return Ok(None);
    }
    let limit_bytes = decompressed_bytes_max(broker, partition);
    let mut out = Vec::with_capacity(records.len());
    for b in batch::split(records) {
        let b = b.map_err(|e| (codes::CORRUPT_MESSAGE, e.to_string()))?;
        let re = batch::recompress(b, target, limit_bytes).map_err(|e| {
            let code = match e {
                batch::BatchError::UnknownCodec(_) => codes::UNSUPPORTED_COMPRESSION_TYPE,
                _ => codes::CORRUPT_MESSAGE,
            };
            (code, e.to_string())
        })?;
        out.extend_from_slice(&re);
    }
    Ok(Some(out))
}

/// Bound on one batch's decompressed records (decompression bombs): the
/// same bound eddy-log uses for its own lookups.
fn decompressed_bytes_max(broker: &Broker, partition: &Partition) -> usize {
    let max_message_bytes = topic_config(broker, partition, "max.message.bytes")
        .parse::<usize>()
        .unwrap_or(1 << 20);
    (max_message_bytes * 4).max(16 << 20)
}

fn topic_config(broker: &Broker, partition: &Partition, name: &str) -> String {
    let Some(topic) = broker.topic(&partition.topic) else {
        return String::new();
    };
    let configs = topic.configs.read().expect("topic lock");
    configs
        .get(name)
        .cloned()
        .unwrap_or_else(|| broker.config.topic_default(name).0)
}

fn partition_flush_messages(broker: &Broker, partition: &Partition) -> i64 {
    topic_config(broker, partition, "flush.messages")
        .parse()
        .unwrap_or(i64::MAX)
}
