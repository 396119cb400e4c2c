//! One partition: its log, producer and transaction state, and the
//! watermarks (log start, high watermark, last stable offset, log end).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use eddy_log::{Log, LogConfig};

use crate::producer_state::ProducerStates;

/// Mutable state of a partition, behind one mutex: the log and the producer
/// state change together so that sequence checks and appends are atomic.
/// std Mutex, not tokio's: nothing awaits while holding it.
pub struct PartitionState {
    pub log: Log,
    pub producers: ProducerStates,
    /// Records appended since the last flush (for `flush.messages`).
    pub unflushed_messages: i64,
    pub last_flush_ms: i64,
}

pub struct Partition {
    pub topic: Arc<str>,
    pub index: i32,
    state: Mutex<PartitionState>,
    /// `flush.messages == 1`: acknowledge and expose records only once they
    /// are fsynced. Otherwise Kafka's relaxed policy.
    durable: AtomicBool,
    /// Highest offset + 1 visible to consumers. In durable mode it trails
    /// the fsynced offset so that no consumer ever sees a record a crash
    /// could take back; in relaxed mode it is the log end.
    high_watermark: AtomicI64,
    log_start: AtomicI64,
    log_end: AtomicI64,
    /// First offset of the oldest ongoing transaction (`i64::MAX`: none);
    /// the last stable offset is the high watermark capped by it.
    first_unstable: AtomicI64,
    /// Set when a storage error poisoned this partition's log.
    failed: AtomicBool,
}

impl Partition {
    pub fn new(
        topic: Arc<str>,
        index: i32,
        log: Log,
        producers: ProducerStates,
        durable: bool,
        now_ms: i64,
    ) -> Partition {
        let end = log.log_end_offset();
        let start = log.log_start_offset();
        let first_unstable = producers.first_unstable_offset(end).unwrap_or(i64::MAX);
        // Everything recovered from disk is treated as durable: it survived.
        Partition {
            topic,
            index,
            state: Mutex::new(PartitionState {
                log,
                producers,
                unflushed_messages: 0,
                last_flush_ms: now_ms,
            }),
            durable: AtomicBool::new(durable),
            high_watermark: AtomicI64::new(end),
            log_start: AtomicI64::new(start),
            log_end: AtomicI64::new(end),
            first_unstable: AtomicI64::new(first_unstable),
            failed: AtomicBool::new(false),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, PartitionState> {
        // A poisoned mutex means a panic while appending: a bug. Surface it.
        self.state
            .lock()
            .expect("partition lock poisoned by a panic")
    }

    /// Takes the state out for a clean close.
    pub fn into_state(self) -> PartitionState {
        self.state
            .into_inner()
            .expect("partition lock poisoned by a panic")
    }

    pub fn is_durable(&self) -> bool {
        self.durable.load(Ordering::Acquire)
    }

    pub fn set_config(&self, config: LogConfig, durable: bool) {
        let mut state = self.lock();
        state.log.set_config(config);
        self.durable.store(durable, Ordering::Release);
        if !durable {
            let end = state.log.log_end_offset();
            self.high_watermark.fetch_max(end, Ordering::AcqRel);
        }
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    /// The last stable offset: consumers reading committed data see
    /// nothing at or past it. It is the high watermark unless an ongoing
    /// transaction started below it.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        hw.min(self.first_unstable.load(Ordering::Acquire))
    }

    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    pub fn mark_failed(&self) {
        self.failed.store(true, Ordering::Release);
    }

    /// Refreshes the cached offsets after a change made under the lock.
    pub fn publish(&self, state: &PartitionState) {
        // Before the high watermark moves, so that a reader never pairs the
        // new watermark with a bound that misses a transaction just begun.
        let first_unstable = state
            .producers
            .first_unstable_offset(self.high_watermark())
            .unwrap_or(i64::MAX);
        self.first_unstable.store(first_unstable, Ordering::Release);
        self.log_start
            .store(state.log.log_start_offset(), Ordering::Release);
        self.log_end
            .store(state.log.log_end_offset(), Ordering::Release);
        let visible = if self.is_durable() {
            state.log.flushed_offset()
        } else {
            state.log.log_end_offset()
        };
        // The high watermark never moves backwards, except by truncation.
        let hw = visible.min(state.log.log_end_offset());
        self.high_watermark.fetch_max(hw, Ordering::AcqRel);
        if self.high_watermark() > state.log.log_end_offset() {
            self.high_watermark
                .store(state.log.log_end_offset(), Ordering::Release);
        }
        // After the high watermark: a marker the new watermark covers no
        // longer holds the LSO back.
        let first_unstable = state
            .producers
            .first_unstable_offset(self.high_watermark())
            .unwrap_or(i64::MAX);
        self.first_unstable.store(first_unstable, Ordering::Release);
    }
}

/// Bytes read per step when an internal topic is replayed at start.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// Replays an internal topic's partition (`__consumer_offsets`,
/// `__transaction_state`) from its log start: `f` gets every batch with its
/// header and returns how many records it took. A batch that cannot be read
/// ends the replay of this partition with a warning. Returns the total.
pub(crate) fn replay_batches(
    partition: &Partition,
    topic: &str,
    mut f: impl FnMut(&eddy_log::batch::BatchHeader, &[u8]) -> usize,
) -> usize {
    use eddy_log::batch::{self, BatchHeader};
    let state = partition.lock();
    let end = state.log.log_end_offset();
    let mut offset = state.log.log_start_offset();
    let mut loaded = 0;
    while offset < end {
        let read = match state.log.read(offset, REPLAY_READ_BYTES, end, true) {
            Ok(r) if !r.records.is_empty() => r,
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(topic, partition = partition.index, offset, error = %e, "cannot read; later records of this partition are not loaded");
                break;
            }
        };
        let before = offset;
        for b in batch::split(&read.records) {
            let Some((b, header)) = b.ok().and_then(|b| Some((b, BatchHeader::parse(b).ok()?)))
            else {
                break;
            };
            offset = header.next_offset();
            loaded += f(&header, b);
        }
        if offset == before {
            tracing::warn!(
                topic,
                partition = partition.index,
                offset,
                "unreadable batch; later records of this partition are not loaded"
            );
            break;
        }
    }
    loaded
}
