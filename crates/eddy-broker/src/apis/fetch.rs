//! Fetch: long poll honouring max_wait_ms, min_bytes, max_bytes and
//! partition_max_bytes, with incremental fetch sessions.
//!
//! `isolation_level=1` (read_committed) reads only up to the last stable
//! offset and lists the aborted transactions that overlap the returned
//! range, so the consumer can drop their batches; control batches are
//! returned as stored (consumers skip them).

use std::sync::Arc;
use std::time::Duration;

use eddy_log::LogError;
use eddy_protocol::codes;
use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchResponse, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{ProducerId, ResponseKind, TopicName};

use super::Reply;
use crate::broker::Broker;
use crate::fetch_session::{Heard, Key, Plan, Wanted};

/// Bound on one long poll, whatever the client asks.
const MAX_WAIT_MS_MAX: i64 = 60_000;
/// `isolation_level` of a read_committed consumer.
const READ_COMMITTED: i8 = 1;

pub fn handle(broker: Arc<Broker>, req: FetchRequest, version: i16) -> Reply {
    Box::pin(async move { Some(ResponseKind::Fetch(fetch(&broker, req, version).await)) })
}

fn plan(broker: &Broker, req: &FetchRequest, version: i16) -> Result<Plan, i16> {
    let by_id = version >= 13;
    let name_of = |name: &TopicName, id: uuid::Uuid| -> String {
        if by_id {
            broker
                .topic_by_id(id)
                .map(|t| t.name.to_string())
                .unwrap_or_default()
        } else {
            name.to_string()
        }
    };
    let mut requested = Vec::new();
    for t in &req.topics {
        let topic = name_of(&t.topic, t.topic_id);
        for p in &t.partitions {
            let key = Key {
                topic: topic.clone(),
                topic_id: t.topic_id,
                partition: p.partition,
            };
            requested.push((
                key,
                Wanted {
                    fetch_offset: p.fetch_offset,
                    partition_max_bytes: p.partition_max_bytes,
                },
            ));
        }
    }
    let mut forgotten = Vec::new();
    if version >= 7 {
        for t in &req.forgotten_topics_data {
            let topic = name_of(&t.topic, t.topic_id);
            for p in &t.partitions {
                forgotten.push(Key {
                    topic: topic.clone(),
                    topic_id: t.topic_id,
                    partition: *p,
                });
            }
        }
    }
    if version < 7 {
        return Ok(Plan {
            session_id: 0,
            incremental: false,
            partitions: requested,
        });
    }
    broker
        .fetch_sessions
        .plan(req.session_id, req.session_epoch, requested, forgotten)
}

async fn fetch(broker: &Broker, req: FetchRequest, version: i16) -> FetchResponse {
    let plan = match plan(broker, &req, version) {
        Ok(p) => p,
        Err(code) => return FetchResponse::default().with_error_code(code),
    };
    let max_wait_ms = (req.max_wait_ms as i64).clamp(0, MAX_WAIT_MS_MAX) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(max_wait_ms);
    let fetch_max_bytes = broker.config.i64("fetch.max.bytes").max(1) as usize;
    let max_bytes = if req.max_bytes > 0 {
        (req.max_bytes as usize).min(fetch_max_bytes)
    } else {
        fetch_max_bytes
    };
    loop {
        // Arm the wake-up before reading, so data arriving in between is not missed.
        let notified = broker.data_ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (parts, bytes, any_error) = read_all(broker, &plan, max_bytes, req.isolation_level);
        let expired = tokio::time::Instant::now() >= deadline;
        if bytes >= req.min_bytes.max(0) as usize
            || any_error
            || expired
            || plan.partitions.is_empty()
        {
            return respond(broker, &plan, parts, version);
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Reads every planned partition; the first partition with data may exceed
/// its limits by one batch (KIP-74) so a large batch never stalls a consumer.
fn read_all(
    broker: &Broker,
    plan: &Plan,
    max_bytes: usize,
    isolation_level: i8,
) -> (Vec<(Key, PartitionData)>, usize, bool) {
    let mut out = Vec::with_capacity(plan.partitions.len());
    let mut total = 0usize;
    let mut any_error = false;
    for (key, wanted) in &plan.partitions {
        let data = read_one(
            broker,
            key,
            wanted,
            max_bytes.saturating_sub(total),
            total == 0,
            isolation_level,
        );
        total += data.records.as_ref().map_or(0, |r| r.len());
        any_error |= data.error_code != codes::NONE;
        out.push((key.clone(), data));
    }
    (out, total, any_error)
}

fn read_one(
    broker: &Broker,
    key: &Key,
    wanted: &Wanted,
    budget: usize,
    first: bool,
    isolation_level: i8,
) -> PartitionData {
    let mut data = PartitionData::default().with_partition_index(key.partition);
    if isolation_level == READ_COMMITTED {
        data.aborted_transactions = Some(Vec::new());
    } else {
        data.aborted_transactions = None;
    }
    let Some(partition) = broker.partition(&key.topic, key.partition) else {
        let unknown_id = key.topic.is_empty() && !key.topic_id.is_nil();
        data.error_code = if unknown_id {
            codes::UNKNOWN_TOPIC_ID
        } else {
            codes::UNKNOWN_TOPIC_OR_PARTITION
        };
        data.high_watermark = -1;
        return data;
    };
    if partition.is_failed() {
        data.error_code = codes::KAFKA_STORAGE_ERROR;
        data.high_watermark = -1;
        return data;
    }
    // The LSO first: it is bounded by the high watermark read after it,
    // and the watermarks only grow, so the pair stays consistent.
    let lso = partition.last_stable_offset();
    let hw = partition.high_watermark();
    data.high_watermark = hw;
    data.last_stable_offset = lso.min(hw);
    data.log_start_offset = partition.log_start_offset();
    let committed = isolation_level == READ_COMMITTED;
    let max_offset = if committed {
        data.last_stable_offset
    } else {
        hw
    };
    let limit = (wanted.partition_max_bytes.max(0) as usize).min(budget);
    if wanted.fetch_offset == max_offset || (limit == 0 && !first) {
        data.records = Some(Default::default());
        return data;
    }
    let state = partition.lock();
    match state
        .log
        .read(wanted.fetch_offset, limit, max_offset, first)
    {
        Ok(r) => {
            data.log_start_offset = r.log_start_offset;
            if committed {
                let upper = records_end(&r.records).unwrap_or(wanted.fetch_offset);
                let aborted = state
                    .producers
                    .aborted()
                    .aborted_transactions(wanted.fetch_offset, upper);
                data.aborted_transactions = Some(
                    aborted
                        .into_iter()
                        .map(|(pid, first_offset)| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(pid))
                                .with_first_offset(first_offset)
                        })
                        .collect(),
                );
            }
            data.records = Some(r.records);
        }
        Err(LogError::OffsetOutOfRange { .. }) => {
            data.error_code = codes::OFFSET_OUT_OF_RANGE;
            data.records = Some(Default::default());
        }
        Err(e) => {
            tracing::error!(topic = %key.topic, partition = key.partition, error = %e, "fetch read failed");
            data.error_code = codes::KAFKA_STORAGE_ERROR;
            data.records = Some(Default::default());
        }
    }
    data
}

/// Offset after the last batch of a read (headers only), `None` if empty.
fn records_end(records: &[u8]) -> Option<i64> {
    eddy_log::batch::split(records)
        .filter_map(|b| b.ok())
        .filter_map(|b| eddy_log::batch::BatchHeader::parse(b).ok())
        .last()
        .map(|h| h.next_offset())
}

fn respond(
    broker: &Broker,
    plan: &Plan,
    parts: Vec<(Key, PartitionData)>,
    version: i16,
) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    for (key, data) in parts {
        if plan.session_id != 0 {
            let heard = Heard {
                high_watermark: data.high_watermark,
                log_start_offset: data.log_start_offset,
                last_stable_offset: data.last_stable_offset,
            };
            let has_records = data.records.as_ref().is_some_and(|r| !r.is_empty());
            let include = broker.fetch_sessions.heard(
                plan.session_id,
                &key,
                heard,
                has_records,
                data.error_code,
            );
            if plan.incremental && !include {
                continue;
            }
        }
        let same_topic = topics
            .last()
            .is_some_and(|t| t.topic.0.as_str() == key.topic && t.topic_id == key.topic_id);
        if !same_topic {
            let mut t = FetchableTopicResponse::default().with_topic_id(key.topic_id);
            if version < 13 {
                t.topic = TopicName(super::text(&key.topic));
            }
            topics.push(t);
        }
        topics
            .last_mut()
            .expect("pushed above")
            .partitions
            .push(data);
    }
    let mut response = FetchResponse::default().with_responses(topics);
    if version >= 7 {
        response.session_id = plan.session_id;
    }
    response
}
