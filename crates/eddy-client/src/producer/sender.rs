//! The sender task: drains ready batches, groups them into one Produce request per leader,
//! and hands the answers back to the records. A transactional producer's batches pass a gate
//! first: none goes out once the transaction failed or aborts, and a partition joins the
//! transaction (AddPartitionsToTxn) before its first batch does.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{ApiKey, ProduceRequest, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::encode::{encode_batch, increment_sequence};
use super::txn_state::classify_produce;
use super::{Acks, Shared};
use crate::accumulator::Batch;
use crate::client::topic_name;
use crate::error::{Error, KafkaCode, Result};
use crate::record::{RecordMetadata, TopicPartition};

/// Produce v12 is the first a broker may treat as adding partitions to a transaction
/// implicitly (KIP-890); Java sends it only to brokers with Transactions V2, and so do we.
const PRODUCE_TXN_V1_VERSION_MAX: i16 = 11;

/// Drains ready batches and sends them, until closed and everything sent has been reported.
pub(super) async fn run_sender(shared: Arc<Shared>) {
    loop {
        let closed = shared.closed.load(Ordering::Acquire);
        let force = closed || shared.flushing.load(Ordering::Acquire) > 0;
        let (ready, next_due) = shared.buffers().acc.drain(Instant::now(), force);
        if !ready.is_empty() {
            send_ready(&shared, ready).await;
            continue;
        }
        if closed && shared.unfinished.load(Ordering::Acquire) == 0 {
            return;
        }
        match next_due {
            Some(due) => {
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    _ = tokio::time::sleep_until(due.into()) => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

/// Batches for one Produce request to one leader: at most one per partition.
struct PlannedRequest {
    leader: i32,
    batches: Vec<(Batch, Bytes)>,
    size_bytes: usize,
}

async fn send_ready(shared: &Arc<Shared>, ready: Vec<Batch>) {
    let ready = match &shared.coordinators {
        Some(_) => admit(shared, ready).await,
        None => ready,
    };
    let transactional = shared.coordinators.is_some();
    let mut plan: Vec<PlannedRequest> = Vec::new();
    for mut batch in ready {
        let leader = match shared.client.leader_id(&batch.topic, batch.partition).await {
            Ok(leader) => leader,
            Err(e) => {
                fail_or_retry(shared, batch, e);
                continue;
            }
        };
        // Read with the sequence: both change together when the epoch is bumped.
        let identity = assign_sequence(shared, &mut batch);
        let encoded = encode_batch(&batch, identity, transactional, shared.config.compression);
        let encoded = match encoded {
            Ok(encoded) => encoded,
            Err(e) => {
                fail_or_retry(shared, batch, e);
                continue;
            }
        };
        let max_bytes = shared.config.max_request_size_bytes;
        // Join the newest request to this leader, unless that would reorder this partition's
        // batches or overflow max.request.size.
        let open = plan
            .iter_mut()
            .rev()
            .find(|r| r.leader == leader)
            .filter(|r| {
                let same_partition = r
                    .batches
                    .iter()
                    .any(|(b, _)| b.topic == batch.topic && b.partition == batch.partition);
                !same_partition && r.size_bytes + encoded.len() <= max_bytes
            });
        match open {
            Some(request) => {
                request.size_bytes += encoded.len();
                request.batches.push((batch, encoded));
            }
            None => plan.push(PlannedRequest {
                leader,
                size_bytes: encoded.len(),
                batches: vec![(batch, encoded)],
            }),
        }
    }
    for request in plan {
        send_request(shared, request).await;
    }
}

/// A transactional producer's gate: fails the batches if the transaction failed or is being
/// aborted, else adds their partitions that are new to the transaction. Returns those that
/// may go.
async fn admit(shared: &Arc<Shared>, ready: Vec<Batch>) -> Vec<Batch> {
    let coordinators = shared.coordinators.as_ref().expect("transactional");
    let checked = {
        let mut buffers = shared.buffers();
        let identity = buffers.identity;
        let txn = buffers.txn_mut();
        txn.check_sending().map(|()| {
            let wanted = ready
                .iter()
                .map(|b| TopicPartition::new(&b.topic, b.partition));
            (txn.missing(wanted), identity)
        })
    };
    let (missing, identity) = match checked {
        Ok(found) => found,
        Err(e) => return fail_batches(shared, ready, e),
    };
    if missing.is_empty() {
        return ready;
    }
    let identity = identity.expect("an open transaction has a producer id");
    let added = coordinators.add_partitions(identity, &missing).await;
    let checked = {
        let mut buffers = shared.buffers();
        let txn = buffers.txn_mut();
        match added {
            Ok(()) => {
                txn.partitions_added(&missing);
                // An abort may have begun meanwhile.
                txn.check_sending()
            }
            Err(e) => Err(txn.fail(e)),
        }
    };
    match checked {
        Ok(()) => ready,
        Err(e) => fail_batches(shared, ready, e),
    }
}

fn fail_batches(shared: &Shared, batches: Vec<Batch>, error: Error) -> Vec<Batch> {
    for batch in batches {
        fail_batch(shared, batch, error.clone());
    }
    Vec::new()
}

/// Gives `batch` its sequence numbers on its first drain (idempotence only); returns the
/// producer id and epoch to encode it with.
fn assign_sequence(shared: &Shared, batch: &mut Batch) -> Option<(i64, i16)> {
    let mut buffers = shared.buffers();
    let identity = buffers.identity;
    if identity.is_none() || batch.base_sequence.is_some() {
        return identity;
    }
    let next = buffers
        .sequences
        .entry((batch.topic.clone(), batch.partition))
        .or_insert(0);
    batch.base_sequence = Some(*next);
    *next = increment_sequence(*next, batch.records.len() as i32);
    identity
}

fn produce_request(shared: &Shared, batches: &[(Batch, Bytes)]) -> ProduceRequest {
    let mut topics: BTreeMap<&str, Vec<PartitionProduceData>> = BTreeMap::new();
    for (batch, encoded) in batches {
        topics.entry(&batch.topic).or_default().push(
            PartitionProduceData::default()
                .with_index(batch.partition)
                .with_records(Some(encoded.clone())),
        );
    }
    let topic_data = topics
        .into_iter()
        .map(|(name, partitions)| {
            TopicProduceData::default()
                .with_name(topic_name(name))
                .with_partition_data(partitions)
        })
        .collect();
    let timeout_ms = shared.client.config().connection.request_timeout_ms as i32;
    let transactional_id = shared
        .coordinators
        .as_ref()
        .map(|c| TransactionalId(StrBytes::from_string(c.transactional_id().to_owned())));
    ProduceRequest::default()
        .with_transactional_id(transactional_id)
        .with_acks(shared.config.acks.wire())
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topic_data)
}

async fn send_request(shared: &Arc<Shared>, request: PlannedRequest) {
    let conn = match shared.client.broker(request.leader).await {
        Ok(conn) => conn,
        Err(e) => return fail_all(shared, request.batches, e),
    };
    let mut version = match conn.version(ApiKey::Produce) {
        Ok(v) => v,
        Err(e) => return fail_all(shared, request.batches, e),
    };
    if shared.coordinators.is_some() && !shared.buffers().txn_mut().v2 {
        version = version.min(PRODUCE_TXN_V1_VERSION_MAX);
    }
    let produce = produce_request(shared, &request.batches);
    if shared.config.acks == Acks::None {
        let sent = conn.send_oneway(&produce, version).await;
        for (batch, _) in request.batches {
            match &sent {
                Ok(()) => complete_unacknowledged(shared, batch),
                Err(e) => fail_or_retry(shared, batch, e.clone()),
            }
        }
        return;
    }
    let pending = match conn.dispatch(&produce, version).await {
        Ok(pending) => pending,
        Err(e) => return fail_all(shared, request.batches, e),
    };
    drop(produce);
    let shared = shared.clone();
    tokio::spawn(async move {
        match pending.wait().await {
            Ok(response) => {
                let mut answers: HashMap<(String, i32), PartitionProduceResponse> = HashMap::new();
                for topic in response.responses {
                    for p in topic.partition_responses {
                        answers.insert((topic.name.0.to_string(), p.index), p);
                    }
                }
                for (batch, _) in request.batches {
                    let key = (batch.topic.clone(), batch.partition);
                    handle_answer(&shared, batch, answers.remove(&key));
                }
            }
            Err(e) => fail_all(&shared, request.batches, e),
        }
    });
}

fn handle_answer(shared: &Arc<Shared>, batch: Batch, answer: Option<PartitionProduceResponse>) {
    let Some(answer) = answer else {
        let e = Error::Decode {
            what: "Produce response".into(),
            detail: format!("no answer for {}-{}", batch.topic, batch.partition),
        };
        return fail_or_retry(shared, batch, e);
    };
    let code = KafkaCode(answer.error_code);
    // A duplicate means an earlier attempt of this very batch was written: success.
    if code.is_ok() || code == KafkaCode::DUPLICATE_SEQUENCE_NUMBER {
        let n = batch.records.len();
        let (topic, partition) = (batch.topic.clone(), batch.partition);
        batch.complete(|i, r| {
            Ok(RecordMetadata {
                topic: topic.clone(),
                partition,
                offset: if answer.base_offset >= 0 {
                    answer.base_offset + i as i64
                } else {
                    -1
                },
                timestamp_ms: if answer.log_append_time_ms >= 0 {
                    answer.log_append_time_ms
                } else {
                    r.timestamp_ms
                },
            })
        });
        shared.finished(n);
        return;
    }
    let e = Error::Kafka {
        code,
        context: format!("produce to {}-{}", batch.topic, batch.partition),
        message: answer.error_message.map(|m| m.to_string()),
    };
    fail_or_retry(shared, batch, e);
}

fn complete_unacknowledged(shared: &Shared, batch: Batch) {
    let n = batch.records.len();
    let (topic, partition) = (batch.topic.clone(), batch.partition);
    batch.complete(|_, r| {
        Ok(RecordMetadata {
            topic: topic.clone(),
            partition,
            offset: -1,
            timestamp_ms: r.timestamp_ms,
        })
    });
    shared.finished(n);
}

fn fail_all(shared: &Arc<Shared>, batches: Vec<(Batch, Bytes)>, error: Error) {
    for (batch, _) in batches {
        fail_or_retry(shared, batch, error.clone());
    }
}

/// Retries `batch` after `retry.backoff.ms` if `error` may pass, else reports it.
fn fail_or_retry(shared: &Arc<Shared>, mut batch: Batch, error: Error) {
    // With idempotence, a batch behind one being retried is refused as out of order; it
    // must be retried too, after the one ahead of it.
    let out_of_order = shared.config.idempotent()
        && error.kafka_code() == Some(KafkaCode::OUT_OF_ORDER_SEQUENCE_NUMBER);
    let retriable = error.is_retriable() || out_of_order;
    if retriable && batch.attempts < shared.config.retries {
        batch.attempts += 1;
        tracing::debug!(topic = %batch.topic, partition = batch.partition, attempt = batch.attempts, %error, "retrying batch");
        shared.client.invalidate(&batch.topic);
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(shared.config.retry_backoff_ms)).await;
            shared.buffers().acc.requeue(batch);
            shared.wake.notify_one();
        });
        return;
    }
    fail_batch(shared, batch, error);
}

/// Reports `error` to every record of `batch`. In a transaction the error is classified
/// first, and fails the transaction (fatal or abortable).
pub(super) fn fail_batch(shared: &Shared, batch: Batch, error: Error) {
    let error: Result<RecordMetadata> = Err(if shared.coordinators.is_some() {
        let mut buffers = shared.buffers();
        let txn = buffers.txn_mut();
        if batch.base_sequence.is_some() {
            // The broker may or may not have this batch: our sequences are no longer sure.
            txn.epoch_bump_required = true;
        }
        txn.fail(classify_produce(error))
    } else {
        error
    });
    let n = batch.records.len();
    batch.complete(|_, _| error.clone());
    shared.finished(n);
}
