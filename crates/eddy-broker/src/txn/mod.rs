//! The transaction coordinator (Kafka's TransactionCoordinator): one
//! [`TxnMetadata`] per transactional id, persisted to `__transaction_state`.
//!
//! # Layout
//! - [`state`]: one transactional id's state machine, sans-io.
//! - [`records`]: the `__transaction_state` key/value codec (Kafka's format).
//! - `log`: appending to and replaying `__transaction_state`.
//! - `timer`: aborting timed-out transactions, expiring idle ids.
//!
//! Every transition is computed by [`state`], appended to the log and
//! applied to memory under one std Mutex (no await while held), so the log's
//! order is the memory's order; the caller then awaits durability before it
//! answers. An ending is: Prepare* durable → markers written to every
//! partition through [`crate::txn_markers::write_markers`] (retried until
//! each partition answers) → Complete* appended. A Prepare* state is a lock:
//! any other request for that id gets CONCURRENT_TRANSACTIONS meanwhile.
//! See docs/decisions/transactions.md for what each crash point does.

mod log;
pub mod records;
#[cfg(test)]
mod recovery_tests;
pub mod state;
mod timer;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::broker::Broker;
use crate::clock::now_ms;
use crate::flusher::FlushResult;
pub use state::{EndStep, InitStep, TopicPartition, TxnMetadata, TxnState};

/// Kafka error codes of the transaction APIs.
pub mod codes {
    pub use eddy_protocol::codes::*;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
    pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
    pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
    pub const INVALID_GROUP_ID: i16 = 24;
}

/// The coordinator epoch markers carry: one node, never re-elected.
pub const COORDINATOR_EPOCH: i32 = 0;
/// First and longest pause between marker-writing attempts.
const MARKER_RETRY_MS_MIN: u64 = 20;
const MARKER_RETRY_MS_MAX: u64 = 2000;
/// Bound on transactional ids the coordinator keeps.
pub const TRANSACTIONAL_IDS_MAX: usize = 1_000_000;

/// The coordinator's settings, from the broker config.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`
    pub max_timeout_ms: i32,
    /// `transaction.state.log.num.partitions`
    pub log_partitions: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`
    pub abort_interval_ms: i64,
    /// `transactional.id.expiration.ms`
    pub id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            log_partitions: 50,
            abort_interval_ms: 10_000,
            id_expiration_ms: 604_800_000,
        }
    }
}

impl TxnConfig {
    pub fn from_broker(config: &crate::config::BrokerConfig) -> TxnConfig {
        TxnConfig {
            max_timeout_ms: config
                .i64("transaction.max.timeout.ms")
                .clamp(1, i32::MAX as i64) as i32,
            log_partitions: config
                .i64("transaction.state.log.num.partitions")
                .clamp(1, 1000) as i32,
            abort_interval_ms: config
                .i64("transaction.abort.timed.out.transaction.cleanup.interval.ms")
                .max(1),
            id_expiration_ms: config.i64("transactional.id.expiration.ms").max(1),
        }
    }
}

pub struct TxnCoordinator {
    txns: Mutex<HashMap<String, TxnMetadata>>,
    pub config: TxnConfig,
    started: AtomicBool,
    /// The broker, for the produce path's check (Weak: the broker owns us).
    broker: std::sync::Weak<Broker>,
}

/// One DescribeTransactions / ListTransactions entry.
pub type Described = TxnMetadata;

impl TxnCoordinator {
    pub fn new(config: TxnConfig, broker: std::sync::Weak<Broker>) -> TxnCoordinator {
        TxnCoordinator {
            txns: Mutex::new(HashMap::new()),
            config,
            started: AtomicBool::new(false),
            broker,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TxnMetadata>> {
        self.txns.lock().expect("txn lock")
    }

    /// Appends `next` and applies it, under the lock the caller holds.
    fn persist(
        broker: &Broker,
        txns: &mut HashMap<String, TxnMetadata>,
        next: TxnMetadata,
    ) -> Result<oneshot::Receiver<FlushResult>, i16> {
        let rx = broker.append_txn(&next)?;
        txns.insert(next.transactional_id.clone(), next);
        Ok(rx)
    }

    /// The current metadata of `transactional_id`.
    pub fn get(&self, transactional_id: &str) -> Option<TxnMetadata> {
        self.lock().get(transactional_id).cloned()
    }

    /// InitProducerId with a transactional id: the producer id and epoch
    /// the (new or reconnecting) producer uses from now on.
    pub async fn init_producer_id(
        &self,
        broker: &Arc<Broker>,
        transactional_id: &str,
        timeout_ms: i32,
        mut expected: (i64, i16),
    ) -> Result<(i64, i16), i16> {
        // A broker opened outside a runtime (tests) starts its timer here.
        self.start(broker);
        if transactional_id.is_empty() || transactional_id.len() > records::STRING_BYTES_MAX {
            return Err(codes::INVALID_REQUEST);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(codes::INVALID_TRANSACTION_TIMEOUT);
        }
        // Twice at most: an open transaction is aborted, then the bump.
        for _ in 0..2 {
            let (step, rx) = {
                let mut txns = self.lock();
                let mut new_id = || broker.next_producer_id().map_err(|e| e.code);
                let step = match txns.get(transactional_id) {
                    None => {
                        if txns.len() >= TRANSACTIONAL_IDS_MAX {
                            return Err(codes::COORDINATOR_NOT_AVAILABLE);
                        }
                        let m = TxnMetadata::new(transactional_id, new_id()?, timeout_ms, now_ms());
                        InitStep::Ready(m)
                    }
                    Some(m) => m.init(expected, timeout_ms, now_ms(), &mut new_id)?,
                };
                let next = match &step {
                    InitStep::Ready(m) | InitStep::AbortFirst(m) => m.clone(),
                };
                let rx = Self::persist(broker, &mut txns, next)?;
                (step, rx)
            };
            wait(rx).await?;
            match step {
                InitStep::Ready(m) => return Ok((m.producer_id, m.producer_epoch)),
                InitStep::AbortFirst(m) => {
                    self.finish(broker, m).await?;
                    expected = (-1, -1);
                }
            }
        }
        Err(codes::CONCURRENT_TRANSACTIONS)
    }

    /// Adds partitions to the open transaction (starting one if none is).
    /// Resolves once the addition is durable.
    pub async fn add_partitions(
        &self,
        broker: &Arc<Broker>,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<(), i16> {
        let rx = {
            let mut txns = self.lock();
            let m = txns
                .get(transactional_id)
                .ok_or(codes::INVALID_PRODUCER_ID_MAPPING)?;
            match m.add_partitions(producer_id, epoch, partitions, now_ms())? {
                None => return Ok(()),
                Some(next) => Self::persist(broker, &mut txns, next)?,
            }
        };
        wait(rx).await
    }

    /// AddPartitionsToTxn v4+ verify_only: every partition is in the open
    /// transaction of that producer.
    pub fn verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<(), i16> {
        let txns = self.lock();
        let m = txns
            .get(transactional_id)
            .ok_or(codes::INVALID_PRODUCER_ID_MAPPING)?;
        m.check_producer(producer_id, epoch)?;
        let all_in = partitions.iter().all(|p| m.partitions.contains(p));
        if m.state != TxnState::Ongoing || !all_in {
            return Err(codes::INVALID_TXN_STATE);
        }
        Ok(())
    }

    /// The produce path's check of a transactional batch (see the issue's
    /// interface): the producer is the current one of the id and the
    /// partitions are in its open transaction. With `implicit_add`
    /// (Produce v12+, Transactions V2) missing partitions are added here.
    ///
    /// Durability of an implicit add: the `__transaction_state` record is
    /// appended and its flush requested before this returns, so it is queued
    /// to the flusher ahead of the produce's own flush request; the flusher
    /// signals a round's waiters only after every fsync of the round, so the
    /// coordinator's record is durable before any record of the
    /// transaction is acknowledged, and an abort after a crash covers it.
    pub fn check_produce(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        implicit_add: bool,
    ) -> Result<(), i16> {
        let broker = self
            .broker
            .upgrade()
            .ok_or(codes::COORDINATOR_NOT_AVAILABLE)?;
        let mut txns = self.lock();
        let m = txns
            .get(transactional_id)
            .ok_or(codes::INVALID_PRODUCER_ID_MAPPING)?;
        match m.check_producer(producer_id, producer_epoch) {
            Err(codes::PRODUCER_FENCED) => return Err(codes::INVALID_PRODUCER_EPOCH),
            other => other?,
        }
        if !implicit_add {
            let all_in = partitions.iter().all(|p| m.partitions.contains(p));
            if m.state != TxnState::Ongoing || !all_in {
                return Err(codes::INVALID_TXN_STATE);
            }
            return Ok(());
        }
        let Some(next) = m.add_partitions(producer_id, producer_epoch, partitions, now_ms())?
        else {
            return Ok(());
        };
        // The receiver is dropped: ordering in the flusher is the guarantee.
        drop(Self::persist(&broker, &mut txns, next)?);
        Ok(())
    }

    /// EndTxn: Prepare* durable, markers written, Complete* appended; the
    /// answer (id and epoch the producer uses next) comes after the markers
    /// so a read_committed consumer sees the commit once the client does.
    pub async fn end_txn(
        &self,
        broker: &Arc<Broker>,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        v2: bool,
    ) -> Result<(i64, i16), i16> {
        let (prepared, rx) = {
            let mut txns = self.lock();
            let m = txns
                .get(transactional_id)
                .ok_or(codes::INVALID_PRODUCER_ID_MAPPING)?;
            let mut new_id = || broker.next_producer_id().map_err(|e| e.code);
            match m.end(producer_id, epoch, commit, v2, now_ms(), &mut new_id)? {
                EndStep::Done(id, epoch) => return Ok((id, epoch)),
                EndStep::Prepare(next) => {
                    let rx = Self::persist(broker, &mut txns, next.clone())?;
                    (next, rx)
                }
            }
        };
        wait(rx).await?;
        let answer = (prepared.producer_id, prepared.producer_epoch);
        // The ending runs to completion even if the client goes away.
        let (broker2, done) = (broker.clone(), oneshot::channel());
        tokio::spawn(async move {
            let result = broker2.txns.finish(&broker2, prepared).await;
            let _ = done.0.send(result);
        });
        match done.1.await {
            Ok(Ok(())) => Ok(answer),
            Ok(Err(code)) => Err(code),
            Err(_) => Err(codes::COORDINATOR_NOT_AVAILABLE),
        }
    }

    /// Writes the markers of a Prepare* ending until every partition has
    /// them, applies the group side of transactional offsets, then appends
    /// Complete*.
    pub(crate) async fn finish(
        &self,
        broker: &Arc<Broker>,
        prepared: TxnMetadata,
    ) -> Result<(), i16> {
        assert!(prepared.state.is_prepare(), "finish takes a prepared txn");
        let (pid, epoch) = prepared.marker_producer();
        let commit = prepared.state == TxnState::PrepareCommit;
        let mut pending: Vec<TopicPartition> = prepared.partitions.iter().cloned().collect();
        let mut pause_ms = MARKER_RETRY_MS_MIN;
        while !pending.is_empty() {
            let results = crate::txn_markers::write_markers(
                broker,
                pid,
                epoch,
                COORDINATOR_EPOCH,
                commit,
                pending.clone(),
            )
            .await;
            pending = failed_markers(results);
            if !pending.is_empty() {
                tracing::warn!(transactional_id = %prepared.transactional_id, partitions = pending.len(), "writing transaction markers failed; retrying");
                tokio::time::sleep(Duration::from_millis(pause_ms)).await;
                pause_ms = (pause_ms * 2).min(MARKER_RETRY_MS_MAX);
            }
        }
        broker.groups.end_txn_offsets(pid, commit);
        let rx = {
            let mut txns = self.lock();
            let current = txns.get(&prepared.transactional_id);
            if current != Some(&prepared) {
                // Replaced meanwhile (expired and re-created): nothing to do.
                return Ok(());
            }
            Self::persist(broker, &mut txns, prepared.complete(now_ms()))?
        };
        wait(rx).await
    }

    /// DescribeTransactions: the metadata of each id (None: unknown).
    pub fn describe(&self, ids: &[String]) -> Vec<Option<TxnMetadata>> {
        let txns = self.lock();
        ids.iter().map(|id| txns.get(id).cloned()).collect()
    }

    /// ListTransactions with its filters (empty: all); `duration_ms` >= 0
    /// keeps only transactions open longer than that (KIP-994).
    pub fn list(
        &self,
        states: &BTreeSet<TxnState>,
        producer_ids: &BTreeSet<i64>,
        duration_ms: i64,
        now_ms: i64,
    ) -> Vec<TxnMetadata> {
        let txns = self.lock();
        let mut out: Vec<TxnMetadata> = txns
            .values()
            .filter(|m| states.is_empty() || states.contains(&m.state))
            .filter(|m| producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
            .filter(|m| {
                duration_ms < 0
                    || (m.state == TxnState::Ongoing
                        && m.start_ms >= 0
                        && now_ms - m.start_ms > duration_ms)
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }
}

/// The partitions whose marker must be retried: all but NONE, and
/// UNKNOWN_TOPIC_OR_PARTITION (a deleted partition needs none).
fn failed_markers(results: Vec<(TopicPartition, i16)>) -> Vec<TopicPartition> {
    results
        .into_iter()
        .filter(|(_, code)| *code != codes::NONE && *code != codes::UNKNOWN_TOPIC_OR_PARTITION)
        .map(|(tp, _)| tp)
        .collect()
}

/// Awaits a flush; a failed one is the coordinator unable to persist.
async fn wait(rx: oneshot::Receiver<FlushResult>) -> Result<(), i16> {
    match rx.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(code)) => Err(code),
        Err(_) => Err(codes::COORDINATOR_NOT_AVAILABLE),
    }
}

/// `PRODUCER_FENCED` for clients too old to know it (before Kafka 2.7).
pub fn fenced_code(code: i16, knows_fenced: bool) -> i16 {
    if code == codes::PRODUCER_FENCED && !knows_fenced {
        codes::INVALID_PRODUCER_EPOCH
    } else {
        code
    }
}

impl TxnCoordinator {
    /// Marks the coordinator started; true the first time.
    fn start_once(&self) -> bool {
        !self.started.swap(true, Ordering::SeqCst)
    }
}
