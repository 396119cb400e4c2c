//! One transactional id's state machine, sans-io: every transition is a
//! pure function of the current metadata, the request and `now_ms`, and
//! returns the metadata to persist. The coordinator writes that to
//! `__transaction_state` before it acts on it.
//!
//! ```text
//!   Empty ──add──▶ Ongoing ──end(commit)──▶ PrepareCommit ──markers──▶ CompleteCommit
//!     ▲              │ └────end(abort)/timeout/fence──▶ PrepareAbort ──markers──▶ CompleteAbort
//!     └──init────────┴─────────── (Complete* ──add──▶ Ongoing)
//! ```
//!
//! Transactions V2 (KIP-890 part 2): an EndTxn of version 5+ bumps the
//! producer epoch when the transaction ends, so markers carry an epoch newer
//! than any record of the transaction and a late write of a zombie is fenced.

use std::collections::BTreeSet;

use super::codes;

/// The last usable epoch; at it a new producer id is allocated instead.
pub const EPOCH_MAX: i16 = i16::MAX - 1;

/// Kafka's TransactionState, with its on-disk byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnState {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl TxnState {
    pub fn from_byte(b: i8) -> Option<TxnState> {
        use TxnState::*;
        Some(match b {
            0 => Empty,
            1 => Ongoing,
            2 => PrepareCommit,
            3 => PrepareAbort,
            4 => CompleteCommit,
            5 => CompleteAbort,
            6 => Dead,
            7 => PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        use TxnState::*;
        match self {
            Empty => "Empty",
            Ongoing => "Ongoing",
            PrepareCommit => "PrepareCommit",
            PrepareAbort => "PrepareAbort",
            CompleteCommit => "CompleteCommit",
            CompleteAbort => "CompleteAbort",
            Dead => "Dead",
            PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TxnState> {
        (0..=7)
            .filter_map(TxnState::from_byte)
            .find(|s| s.name() == name)
    }

    /// Markers still have to be written.
    pub fn is_prepare(self) -> bool {
        matches!(
            self,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }

    /// No transaction is open: a new one may start.
    fn is_idle(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}

pub type TopicPartition = (String, i32);

/// What `__transaction_state` keeps of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The id before an epoch exhaustion moved to a new one (-1: none).
    pub prev_producer_id: i64,
    /// The id a Transactions V2 end moves to when the epoch is exhausted.
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, to recognise a retried request.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TopicPartition>,
    /// When the open transaction started (-1: none open).
    pub start_ms: i64,
    pub update_ms: i64,
    /// The epoch was bumped when this ending was prepared: an EndTxn v5+
    /// (Transactions V2), a timeout or a fencing InitProducerId. Persisted
    /// as the client transaction version (2 or 0).
    pub v2: bool,
}

/// What InitProducerId leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Persist this and answer with its id and epoch.
    Ready(TxnMetadata),
    /// An open transaction must be aborted first (epoch bumped to fence its
    /// producer); persist this, write abort markers, complete, then retry.
    AbortFirst(TxnMetadata),
}

/// What EndTxn leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStep {
    /// Persist this Prepare* metadata, write markers, complete.
    Prepare(TxnMetadata),
    /// A retry of an ending that already happened: answer with this id/epoch.
    Done(i64, i16),
}

impl TxnMetadata {
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            prev_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            update_ms: now_ms,
            v2: false,
        }
    }

    /// The request's producer id and epoch are the current ones; else the
    /// producer was fenced (an older epoch) or never had this id.
    pub fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), i16> {
        if producer_id != self.producer_id {
            return Err(codes::INVALID_PRODUCER_ID_MAPPING);
        }
        if epoch != self.producer_epoch {
            return Err(codes::PRODUCER_FENCED);
        }
        Ok(())
    }

    /// The epoch moved one on (or a new id when exhausted).
    fn bumped(&self, new_id: &mut dyn FnMut() -> Result<i64, i16>) -> Result<Self, i16> {
        let mut next = self.clone();
        if self.producer_epoch >= EPOCH_MAX {
            next.prev_producer_id = self.producer_id;
            next.producer_id = new_id()?;
            next.producer_epoch = 0;
            next.last_producer_epoch = -1;
        } else {
            next.producer_epoch = self.producer_epoch + 1;
            next.last_producer_epoch = self.producer_epoch;
        }
        Ok(next)
    }

    /// InitProducerId: a new (or reconnecting) producer of this id.
    /// `expected` is the id/epoch a KIP-360 producer passes (-1/-1: none).
    pub fn init(
        &self,
        expected: (i64, i16),
        timeout_ms: i32,
        now_ms: i64,
        new_id: &mut dyn FnMut() -> Result<i64, i16>,
    ) -> Result<InitStep, i16> {
        if expected.0 >= 0 {
            let current = expected == (self.producer_id, self.producer_epoch);
            let retried = expected.0 == self.producer_id
                && self.last_producer_epoch >= 0
                && expected.1 == self.last_producer_epoch;
            let renewed = expected.0 == self.prev_producer_id && self.producer_epoch == 0;
            if !current && !retried && !renewed {
                return Err(codes::PRODUCER_FENCED);
            }
            if (retried || renewed) && self.state.is_idle() {
                // The answer to the first attempt was lost: give it again.
                return Ok(InitStep::Ready(self.clone()));
            }
        }
        match self.state {
            s if s.is_prepare() => Err(codes::CONCURRENT_TRANSACTIONS),
            TxnState::Ongoing => {
                let mut fenced = self.bumped(new_id)?;
                fenced.state = TxnState::PrepareAbort;
                fenced.update_ms = now_ms;
                // Bumped at prepare: the markers carry the new epoch.
                fenced.v2 = true;
                Ok(InitStep::AbortFirst(fenced))
            }
            _ => {
                let mut next = self.bumped(new_id)?;
                next.state = TxnState::Empty;
                next.partitions.clear();
                next.timeout_ms = timeout_ms;
                next.start_ms = -1;
                next.update_ms = now_ms;
                next.v2 = false;
                Ok(InitStep::Ready(next))
            }
        }
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn / an implicit add: None when
    /// every partition is already in the transaction (nothing to persist).
    pub fn add_partitions(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
        now_ms: i64,
    ) -> Result<Option<Self>, i16> {
        self.check_producer(producer_id, epoch)?;
        if self.state.is_prepare() {
            return Err(codes::CONCURRENT_TRANSACTIONS);
        }
        if self.state == TxnState::Dead {
            return Err(codes::INVALID_TXN_STATE);
        }
        let ongoing = self.state == TxnState::Ongoing;
        if ongoing && partitions.iter().all(|p| self.partitions.contains(p)) {
            return Ok(None);
        }
        let mut next = self.clone();
        if !ongoing {
            next.partitions.clear();
            next.start_ms = now_ms;
            next.state = TxnState::Ongoing;
            next.v2 = false;
        }
        next.partitions.extend(partitions.iter().cloned());
        next.update_ms = now_ms;
        Ok(Some(next))
    }

    /// EndTxn. `v2`: version 5+, which bumps the epoch on every ending.
    pub fn end(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        v2: bool,
        now_ms: i64,
        new_id: &mut dyn FnMut() -> Result<i64, i16>,
    ) -> Result<EndStep, i16> {
        let wanted = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        let retry_v2 =
            v2 && producer_id == self.producer_id && epoch == self.last_producer_epoch && self.v2;
        let retry_v2_new_id =
            v2 && producer_id == self.prev_producer_id && self.producer_epoch == 0;
        if retry_v2 || retry_v2_new_id {
            // A retried V2 ending: its epoch was bumped already.
            return match self.state {
                s if s == wanted => Ok(EndStep::Done(self.producer_id, self.producer_epoch)),
                s if s.is_prepare() => Err(codes::CONCURRENT_TRANSACTIONS),
                _ => Err(codes::INVALID_TXN_STATE),
            };
        }
        self.check_producer(producer_id, epoch)?;
        match self.state {
            TxnState::Ongoing => {}
            s if s == wanted && !v2 => {
                return Ok(EndStep::Done(self.producer_id, self.producer_epoch))
            }
            TxnState::Empty if v2 && !commit => {
                // V2 clients may abort a transaction that never added
                // anything; it still bumps the epoch.
            }
            s if s.is_prepare() => return Err(codes::CONCURRENT_TRANSACTIONS),
            _ => return Err(codes::INVALID_TXN_STATE),
        }
        let mut next = if v2 {
            self.bumped(new_id)?
        } else {
            self.clone()
        };
        next.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        next.v2 = v2;
        next.update_ms = now_ms;
        Ok(EndStep::Prepare(next))
    }

    /// The markers are written: Prepare* becomes Complete*.
    pub fn complete(&self, now_ms: i64) -> Self {
        assert!(self.state.is_prepare(), "only a prepared ending completes");
        let mut next = self.clone();
        next.state = if self.state == TxnState::PrepareCommit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        next.update_ms = now_ms;
        next
    }

    /// An Ongoing transaction older than its timeout.
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.state == TxnState::Ongoing
            && self.start_ms >= 0
            && now_ms.saturating_sub(self.start_ms) > self.timeout_ms as i64
    }

    /// The coordinator aborts a timed-out transaction, bumping the epoch
    /// so its producer is fenced.
    pub fn abort_timed_out(
        &self,
        now_ms: i64,
        new_id: &mut dyn FnMut() -> Result<i64, i16>,
    ) -> Result<Self, i16> {
        assert_eq!(self.state, TxnState::Ongoing, "only an open txn times out");
        let mut next = self.bumped(new_id)?;
        next.state = TxnState::PrepareAbort;
        next.update_ms = now_ms;
        next.v2 = true;
        Ok(next)
    }

    /// Idle long enough that `transactional.id.expiration.ms` forgets it.
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        self.state.is_idle() && now_ms.saturating_sub(self.update_ms) > expiration_ms
    }

    /// The producer id and epoch the markers of this ending carry. V2
    /// endings already bumped the epoch; if that moved to a new id, the
    /// markers belong to the old one at the last epoch.
    pub fn marker_producer(&self) -> (i64, i16) {
        if self.v2 && self.producer_epoch == 0 && self.prev_producer_id >= 0 {
            (self.prev_producer_id, EPOCH_MAX)
        } else {
            (self.producer_id, self.producer_epoch)
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
