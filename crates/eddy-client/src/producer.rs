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
//!
//! With a `transactional.id` the producer is transactional, as Java's `KafkaProducer`:
//! `init_transactions` once, then `begin_transaction`, `send`s and
//! `send_offsets_to_transaction`, then `commit_transaction` or `abort_transaction`. Records of
//! a transaction become visible to read_committed consumers all together, at commit.
//!
//! ```no_run
//! # use eddy_client::{Client, ConsumerGroupMetadata, Producer, ProducerConfig, ProducerRecord, TopicPartition};
//! # async fn example(client: Client) -> eddy_client::Result<()> {
//! let config = ProducerConfig {
//!     transactional_id: Some("copier-1".to_owned()),
//!     ..ProducerConfig::default()
//! };
//! let producer = Producer::new(client, config).await?;
//! producer.init_transactions().await?; // fences older instances of "copier-1"
//! producer.begin_transaction()?;
//! producer.send(ProducerRecord::new("out", "v")).await?;
//! let consumed = [(TopicPartition::new("in", 0), 42)];
//! let group = ConsumerGroupMetadata::group_only("copiers");
//! producer.send_offsets_to_transaction(&consumed, &group).await?;
//! match producer.commit_transaction().await {
//!     Ok(()) => {}
//!     Err(e) if e.txn_requires_abort() => producer.abort_transaction().await?, // then rewind
//!     Err(e) => return Err(e), // fatal (fenced): drop the producer, make a new one
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - `config`: [`ProducerConfig`] and its enums.
//! - `sender`: the sender task, and the transactional gate before a batch goes out.
//! - `encode`: batches to record-batch bytes.
//! - `txn_state`: the transaction state machine and error classification, sans-io.
//! - `coordinator`: requests to the transaction and group coordinators.
//! - `txn`: the transactional calls of [`Producer`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::{InitProducerIdRequest, ProducerId};
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::accumulator::{Accumulator, PendingRecord, Report};
use crate::client::Client;
use crate::error::{Error, KafkaCode, Result};
use crate::partitioner::{partition_for_key, Partitioner, UnkeyedState};
use crate::record::{ProducerRecord, RecordMetadata};

mod config;
mod coordinator;
mod encode;
mod sender;
mod txn;
mod txn_state;
pub use config::{Acks, Compression, ProducerConfig};
use coordinator::Coordinators;
use txn_state::{classify_produce, TxnState};

/// Resolves to where a record landed, once the broker acknowledged it.
#[derive(Debug)]
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
    /// Producer id and epoch when idempotent. A transactional producer gets them from
    /// `init_transactions`, and a new epoch when a transaction's end bumps it.
    identity: Option<(i64, i16)>,
    /// Next sequence number per partition (idempotence only); restarts with a new epoch.
    sequences: HashMap<(String, i32), i32>,
    /// The transaction state, when transactional. Under this lock so that admitting a
    /// record and ending a transaction never interleave.
    txn: Option<TxnState>,
}

impl Buffers {
    fn txn_mut(&mut self) -> &mut TxnState {
        self.txn
            .as_mut()
            .expect("only a transactional producer has a transaction")
    }

    /// The producer id or epoch changed: sequence numbers start again at 0.
    fn new_identity(&mut self, identity: (i64, i16)) {
        if self.identity != Some(identity) {
            self.identity = Some(identity);
            self.sequences.clear();
        }
    }
}

struct Shared {
    client: Client,
    config: ProducerConfig,
    buffers: Mutex<Buffers>,
    /// Wakes the sender: a batch was started or sealed, a flush began, a retry is due.
    wake: Notify,
    /// `buffer.memory`, in bytes.
    memory: Arc<Semaphore>,
    /// The coordinators' requests, when transactional.
    coordinators: Option<Coordinators>,
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

    /// Sends everything queued now and waits until every record sent so far was reported.
    async fn flush(&self) {
        self.flushing.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_one();
        loop {
            let reported = self.reported.notified();
            tokio::pin!(reported);
            reported.as_mut().enable();
            if self.unfinished.load(Ordering::Acquire) == 0 {
                break;
            }
            reported.await;
        }
        self.flushing.fetch_sub(1, Ordering::AcqRel);
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
        // Counted as reported, so that a transactional call still running on its own task
        // (see `txn`) does not wait for them forever.
        let (unsent, _) = self.shared.buffers().acc.drain(Instant::now(), true);
        for batch in unsent {
            let n = batch.records.len();
            drop(batch);
            self.shared.finished(n);
        }
    }
}

impl Producer {
    /// Starts a producer; with idempotence this asks the cluster for a producer id first. A
    /// transactional producer gets its id from [`Producer::init_transactions`] instead.
    pub async fn new(client: Client, config: ProducerConfig) -> Result<Producer> {
        config.validate(client.config().connection.max_in_flight_requests)?;
        let coordinators = config.transactional_id.as_deref().map(|id| {
            let (timeout_ms, backoff_ms) = (config.transaction_timeout_ms, config.retry_backoff_ms);
            Coordinators::new(
                client.clone(),
                id,
                timeout_ms,
                backoff_ms,
                config.max_block_ms,
            )
        });
        let identity = if config.enable_idempotence && coordinators.is_none() {
            Some(init_producer_id(&client).await?)
        } else {
            None
        };
        let linger = Duration::from_millis(config.linger_ms);
        let shared = Arc::new(Shared {
            buffers: Mutex::new(Buffers {
                acc: Accumulator::new(config.batch_size_bytes, linger),
                unkeyed: UnkeyedState::new(config.batch_size_bytes),
                identity,
                sequences: HashMap::new(),
                txn: coordinators.as_ref().map(|_| TxnState::new()),
            }),
            memory: Arc::new(Semaphore::new(config.buffer_memory_bytes)),
            client,
            config,
            wake: Notify::new(),
            coordinators,
            unfinished: AtomicUsize::new(0),
            reported: Notify::new(),
            flushing: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        });
        let sender = tokio::spawn(sender::run_sender(shared.clone()));
        Ok(Producer {
            shared,
            sender: Mutex::new(Some(sender)),
        })
    }

    /// Queues `record`; the future resolves once the broker acknowledged it. Waits while
    /// `buffer.memory` is used up. A transactional producer sends only inside a transaction;
    /// a failure there (here or in the future) makes the transaction abortable or, if the
    /// producer was fenced, fatal.
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
        if shared.coordinators.is_none() {
            return self.append(record, report).await;
        }
        shared.buffers().txn_mut().check_open("send")?;
        match self.append(record, report).await {
            Err(e @ (Error::TxnState(_) | Error::TxnAbortable { .. } | Error::TxnFatal { .. })) => {
                Err(e)
            }
            // As in Java, a record that cannot be sent fails its transaction.
            Err(e) => Err(shared.buffers().txn_mut().fail(classify_produce(e))),
            Ok(()) => Ok(()),
        }
    }

    async fn append(&self, record: ProducerRecord, report: Report) -> Result<()> {
        let shared = &self.shared;
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
            if let Some(txn) = &buffers.txn {
                // Checked again under the lock: a commit or abort may have begun meanwhile.
                txn.check_open("send")?;
            }
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
        self.shared.flush().await;
    }

    /// Refuses new records, sends and reports the queued ones, and stops the sender. A
    /// transaction still open is aborted first, as Java's producer does, so read_committed
    /// consumers need not wait for its timeout. The client's connections stay open;
    /// [`Client::close`] ends them gracefully.
    pub async fn close(&self) {
        if self.transaction_open() {
            if let Err(e) = self.abort_transaction().await {
                tracing::warn!(%e, "aborting the open transaction at close failed");
            }
        }
        self.shared.closed.store(true, Ordering::Release);
        self.flush().await;
        self.shared.wake.notify_one();
        let task = self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// The producer id and epoch, when idempotent (for a transactional producer: once
    /// initialized; the epoch moves on as transactions end with Transactions V2).
    pub fn producer_identity(&self) -> Option<(i64, i16)> {
        self.shared.buffers().identity
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
