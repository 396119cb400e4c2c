//! The producer: records are partitioned, batched per partition by the `Accumulator`, and
//! sent by one sender task that keeps several Produce requests in flight per broker.
//!
//! ```text
//! send() --partition--> Accumulator --drain (full / linger.ms / flush)--> sender task
//!    ^ waits for buffer.memory           one request per leader, one batch per partition
//!                                                         |
//!   DeliveryFuture / callback <-- response task <-- Connection::dispatch (in-flight bounded)
//! ```
//!
//! Retriable failures (leader moved, timeout, broken connection) put the batch back at the
//! head of the queue, at most `retries` times. With idempotence, a batch keeps its sequence
//! numbers across retries so the broker drops a duplicate instead of writing it twice.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, ProduceRequest, ProducerId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{self, RecordBatchEncoder, RecordEncodeOptions};
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::accumulator::{Accumulator, Batch, PendingRecord, Report};
use crate::client::{topic_name, Client};
use crate::error::{Error, KafkaCode, Result};
use crate::partitioner::{partition_for_key, Partitioner, UnkeyedState};
use crate::record::{ProducerRecord, RecordMetadata};

mod config;
pub use config::{Acks, Compression, ProducerConfig};

/// Resolves to where a record landed, once the broker acknowledged it.
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<RecordMetadata>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::ProducerClosed)))
    }
}

/// State guarded by one lock. std Mutex, not tokio's: never held across an await.
struct Buffers {
    acc: Accumulator,
    unkeyed: UnkeyedState,
    /// Next sequence number per partition (idempotence only).
    sequences: HashMap<(String, i32), i32>,
}

struct Shared {
    client: Client,
    config: ProducerConfig,
    buffers: Mutex<Buffers>,
    /// Wakes the sender: a batch was started or sealed, a flush began, a retry is due.
    wake: Notify,
    /// `buffer.memory`, in bytes.
    memory: Arc<Semaphore>,
    /// Producer id and epoch when idempotent.
    identity: Option<(i64, i16)>,
    /// Records accepted by `send` and not yet reported.
    unfinished: AtomicUsize,
    /// Signalled whenever records are reported; flush waits on it.
    reported: Notify,
    flushing: AtomicUsize,
    closed: AtomicBool,
}

impl Shared {
    fn buffers(&self) -> std::sync::MutexGuard<'_, Buffers> {
        self.buffers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finished(&self, records: usize) {
        let before = self.unfinished.fetch_sub(records, Ordering::AcqRel);
        assert!(before >= records, "reported more records than were sent");
        self.reported.notify_waiters();
        if self.closed.load(Ordering::Acquire) {
            self.wake.notify_one();
        }
    }
}

/// An asynchronous, batching producer. See the [module docs](self).
pub struct Producer {
    shared: Arc<Shared>,
    sender: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Producer {
    fn drop(&mut self) {
        // Unsent records are dropped; their futures resolve to `ProducerClosed`.
        if let Some(task) = self.sender.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

impl Producer {
    /// Starts a producer; with idempotence this asks the cluster for a producer id first.
    pub async fn new(client: Client, config: ProducerConfig) -> Result<Producer> {
        config.validate(client.config().connection.max_in_flight_requests)?;
        let identity = if config.enable_idempotence {
            Some(init_producer_id(&client).await?)
        } else {
            None
        };
        let linger = Duration::from_millis(config.linger_ms);
        let shared = Arc::new(Shared {
            buffers: Mutex::new(Buffers {
                acc: Accumulator::new(config.batch_size_bytes, linger),
                unkeyed: UnkeyedState::new(config.batch_size_bytes),
                sequences: HashMap::new(),
            }),
            memory: Arc::new(Semaphore::new(config.buffer_memory_bytes)),
            client,
            config,
            wake: Notify::new(),
            identity,
            unfinished: AtomicUsize::new(0),
            reported: Notify::new(),
            flushing: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        });
        let sender = tokio::spawn(run_sender(shared.clone()));
        Ok(Producer {
            shared,
            sender: Mutex::new(Some(sender)),
        })
    }

    /// Queues `record`; the future resolves once the broker acknowledged it. Waits while
    /// `buffer.memory` is used up.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(record, Report::Channel(tx)).await?;
        Ok(DeliveryFuture { rx })
    }

    /// Like [`Producer::send`], but reports through `callback`, called on the task that read
    /// the acknowledgement (so it sees the real send-to-ack latency). It must not block.
    pub async fn send_with_callback(
        &self,
        record: ProducerRecord,
        callback: impl FnOnce(Result<RecordMetadata>) + Send + 'static,
    ) -> Result<()> {
        self.enqueue(record, Report::Callback(Box::new(callback)))
            .await
    }

    async fn enqueue(&self, record: ProducerRecord, report: Report) -> Result<()> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(Error::ProducerClosed);
        }
        let size_bytes = record.size_estimate_bytes();
        let max_bytes = shared
            .config
            .max_request_size_bytes
            .min(shared.config.buffer_memory_bytes);
        if size_bytes > max_bytes {
            return Err(Error::RecordTooLarge {
                size_bytes,
                max_bytes,
            });
        }
        let topic = shared.client.topic(&record.topic).await?;
        let partition_count = topic.partitions.len();
        let permit = shared
            .memory
            .clone()
            .acquire_many_owned(size_bytes as u32)
            .await
            .expect("the memory semaphore is never closed");
        let pending = PendingRecord {
            key: record.key.clone(),
            value: record.value,
            headers: record.headers,
            timestamp_ms: record.timestamp_ms.unwrap_or_else(now_ms),
            size_bytes,
            report,
        };
        let appended = {
            let mut buffers = shared.buffers();
            let partition = choose_partition(
                &mut buffers,
                shared.config.partitioner,
                &record.topic,
                record.partition,
                record.key.as_deref(),
                partition_count,
                size_bytes,
            )?;
            shared.unfinished.fetch_add(1, Ordering::AcqRel);
            let now = Instant::now();
            buffers
                .acc
                .append(&record.topic, partition, pending, permit, now)
        };
        if appended.new_batch || appended.sealed {
            shared.wake.notify_one();
        }
        Ok(())
    }

    /// Sends everything queued now, without waiting for `linger.ms`, and waits until every
    /// record sent so far has been reported.
    pub async fn flush(&self) {
        let shared = &self.shared;
        shared.flushing.fetch_add(1, Ordering::AcqRel);
        shared.wake.notify_one();
        loop {
            let reported = shared.reported.notified();
            tokio::pin!(reported);
            reported.as_mut().enable();
            if shared.unfinished.load(Ordering::Acquire) == 0 {
                break;
            }
            reported.await;
        }
        shared.flushing.fetch_sub(1, Ordering::AcqRel);
    }

    /// Refuses new records, sends and reports the queued ones, and stops the sender. The
    /// client's connections stay open; [`Client::close`] ends them gracefully.
    pub async fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.flush().await;
        self.shared.wake.notify_one();
        let task = self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// The producer id and epoch, when idempotent.
    pub fn producer_identity(&self) -> Option<(i64, i16)> {
        self.shared.identity
    }
}

fn choose_partition(
    buffers: &mut Buffers,
    strategy: Partitioner,
    topic: &str,
    explicit: Option<i32>,
    key: Option<&[u8]>,
    partition_count: usize,
    size_bytes: usize,
) -> Result<i32> {
    match (explicit, key) {
        (Some(p), _) if p < 0 || p as usize >= partition_count => Err(Error::UnknownPartition {
            topic: topic.to_owned(),
            partition: p,
            partition_count,
        }),
        (Some(p), _) => Ok(p),
        (None, Some(key)) => Ok(partition_for_key(key, partition_count)),
        (None, None) => Ok(buffers
            .unkeyed
            .choose(strategy, topic, partition_count, size_bytes)),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn init_producer_id(client: &Client) -> Result<(i64, i16)> {
    let mut attempt = 0;
    loop {
        let conn = client.any_connection().await?;
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            // Not transactional: the timeout is unused, Java sends i32::MAX too.
            .with_transaction_timeout_ms(i32::MAX)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let response = conn.send(&request).await?;
        let code = KafkaCode(response.error_code);
        if code.is_ok() {
            return Ok((response.producer_id.0, response.producer_epoch));
        }
        attempt += 1;
        if !code.is_retriable() || attempt > client.config().metadata_retries {
            code.check("InitProducerId")?;
        }
        tokio::time::sleep(Duration::from_millis(client.config().retry_backoff_ms)).await;
    }
}

/// The sender task: drains ready batches and sends them, until closed and everything sent
/// has been reported.
async fn run_sender(shared: Arc<Shared>) {
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
    let mut plan: Vec<PlannedRequest> = Vec::new();
    for mut batch in ready {
        let leader = match shared.client.leader_id(&batch.topic, batch.partition).await {
            Ok(leader) => leader,
            Err(e) => {
                fail_or_retry(shared, batch, e);
                continue;
            }
        };
        assign_sequence(shared, &mut batch);
        let encoded = match encode_batch(&batch, shared.identity, shared.config.compression) {
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

fn assign_sequence(shared: &Shared, batch: &mut Batch) {
    if shared.identity.is_none() || batch.base_sequence.is_some() {
        return;
    }
    let mut buffers = shared.buffers();
    let next = buffers
        .sequences
        .entry((batch.topic.clone(), batch.partition))
        .or_insert(0);
    batch.base_sequence = Some(*next);
    *next = increment_sequence(*next, batch.records.len() as i32);
}

/// Kafka's sequence numbers wrap from i32::MAX to 0 (`DefaultRecordBatch.incrementSequence`).
fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// One v2 record batch holding all of `batch`'s records.
fn encode_batch(
    batch: &Batch,
    identity: Option<(i64, i16)>,
    compression: Compression,
) -> Result<Bytes> {
    let (producer_id, producer_epoch) = identity.unwrap_or((-1, -1));
    // Non-idempotent batches carry base sequence -1. The encoder derives the base from the
    // first record and splits a batch wherever offset - sequence changes, so sequences
    // count up from the base either way.
    let base_sequence = batch.base_sequence.unwrap_or(-1);
    let records: Vec<records::Record> = batch
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: records::TimestampType::Creation,
            offset: i as i64,
            sequence: base_sequence.wrapping_add(i as i32),
            timestamp: r.timestamp_ms,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|h| (StrBytes::from_string(h.key.clone()), h.value.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::with_capacity(batch.size_bytes + 128);
    let options = RecordEncodeOptions {
        version: 2,
        compression: compression.codec(),
    };
    RecordBatchEncoder::encode_with_custom_compression(
        &mut buf,
        &records,
        &options,
        Some(compress_records),
    )
    .map_err(|e| Error::Encode {
        what: format!("record batch for {}-{}", batch.topic, batch.partition),
        detail: e.to_string(),
    })?;
    // The whole batch must be one record batch: its length field covers the rest.
    let batch_len = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
    assert_eq!(
        batch_len as usize + 12,
        buf.len(),
        "encoder split the batch"
    );
    Ok(buf.freeze())
}

/// Compresses a batch's encoded records into `out`. The codec crate's own LZ4 runs at level
/// 4, which LZ4 implements as LZ4-HC: about ten times slower than LZ4's fast mode, which is
/// what Kafka's clients used before KIP-390 and what a streaming producer wants. The other
/// codecs keep the crate's settings (gzip 6, zstd 3, snappy).
fn compress_records(
    records: &mut BytesMut,
    out: &mut BytesMut,
    compression: records::Compression,
) -> anyhow::Result<()> {
    use kafka_protocol::compression::{Compressor, Gzip, Snappy, Zstd};
    let copy = |tmp: &mut BytesMut| {
        tmp.extend_from_slice(records);
        Ok(())
    };
    match compression {
        records::Compression::None => out.extend_from_slice(records),
        records::Compression::Gzip => Gzip::compress(out, copy)?,
        records::Compression::Snappy => Snappy::compress(out, copy)?,
        records::Compression::Zstd => Zstd::compress(out, copy)?,
        records::Compression::Lz4 => {
            use std::io::Write;
            let mut encoder = lz4::EncoderBuilder::new()
                .level(LZ4_FAST_LEVEL)
                .block_mode(lz4::BlockMode::Independent)
                .build(bytes::BufMut::writer(out))?;
            encoder.write_all(records)?;
            encoder.finish().1?;
        }
    }
    Ok(())
}

/// LZ4 frame levels below 3 select the fast compressor.
const LZ4_FAST_LEVEL: u32 = 1;

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
    ProduceRequest::default()
        .with_transactional_id(None)
        .with_acks(shared.config.acks.wire())
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topic_data)
}

async fn send_request(shared: &Arc<Shared>, request: PlannedRequest) {
    let conn = match shared.client.broker(request.leader).await {
        Ok(conn) => conn,
        Err(e) => return fail_all(shared, request.batches, e),
    };
    let version = match conn.version(ApiKey::Produce) {
        Ok(v) => v,
        Err(e) => return fail_all(shared, request.batches, e),
    };
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
    let out_of_order = shared.identity.is_some() && error.kafka_code() == Some(KafkaCode(45));
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
    let n = batch.records.len();
    batch.complete(|_, _| Err(error.clone()));
    shared.finished(n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(increment_sequence(0, 5), 5);
        assert_eq!(increment_sequence(i32::MAX - 2, 2), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX - 2, 3), 0);
        assert_eq!(increment_sequence(i32::MAX, 10), 9);
    }

    #[test]
    fn settings_parse_from_their_kafka_spellings() {
        assert_eq!("all".parse::<Acks>().unwrap(), Acks::All);
        assert_eq!("-1".parse::<Acks>().unwrap(), Acks::All);
        assert_eq!("0".parse::<Acks>().unwrap(), Acks::None);
        assert!("2".parse::<Acks>().is_err());
        for c in ["none", "gzip", "snappy", "lz4", "zstd"] {
            assert_eq!(c.parse::<Compression>().unwrap().to_string(), c);
        }
        assert!("brotli".parse::<Compression>().is_err());
    }

    #[test]
    fn config_limits_are_checked() {
        let ok = ProducerConfig::default();
        assert!(ok.validate(5).is_ok());
        let idempotent_acks1 = ProducerConfig {
            enable_idempotence: true,
            acks: Acks::Leader,
            ..ProducerConfig::default()
        };
        assert!(idempotent_acks1.validate(5).is_err());
        let idempotent = ProducerConfig {
            enable_idempotence: true,
            ..ProducerConfig::default()
        };
        assert!(idempotent.validate(6).is_err());
    }

    fn batch_of(n: usize, base_sequence: Option<i32>) -> Batch {
        let memory = Arc::new(Semaphore::new(1 << 20));
        let mut acc = Accumulator::new(1 << 20, Duration::ZERO);
        let now = Instant::now();
        for i in 0..n {
            let (tx, _rx) = oneshot::channel();
            let record = PendingRecord {
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![b'x'; 100])),
                headers: vec![crate::Header {
                    key: "h".into(),
                    value: Some(Bytes::from_static(b"v")),
                }],
                timestamp_ms: 1_700_000_000_000 + i as i64,
                size_bytes: 130,
                report: Report::Channel(tx),
            };
            let permit = memory.clone().try_acquire_many_owned(130).unwrap();
            acc.append("t", 0, record, permit, now);
        }
        let mut batch = acc.drain(now, true).0.pop().unwrap();
        batch.base_sequence = base_sequence;
        batch
    }

    /// Encode, then decode with the codec crate: one batch, every field back, per codec.
    #[test]
    fn batches_round_trip_through_every_codec() {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for codec in codecs {
            for (identity, base_sequence) in [(None, None), (Some((7, 1)), Some(40))] {
                let batch = batch_of(50, base_sequence);
                let mut encoded = encode_batch(&batch, identity, codec).unwrap();
                let set = RecordBatchDecoder::decode(&mut encoded).unwrap();
                assert!(encoded.is_empty(), "{codec}: one batch only");
                assert_eq!(set.compression, codec.codec());
                assert_eq!(set.records.len(), 50);
                for (i, r) in set.records.iter().enumerate() {
                    assert_eq!(r.offset, i as i64);
                    assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
                    assert_eq!(r.value.as_deref(), Some(&[b'x'; 100][..]));
                    assert_eq!(r.timestamp, 1_700_000_000_000 + i as i64);
                    assert_eq!(r.headers.len(), 1);
                    assert_eq!(r.producer_id, identity.map_or(-1, |p| p.0));
                    assert_eq!(r.sequence, base_sequence.unwrap_or(-1) + i as i32);
                }
            }
        }
    }
}
