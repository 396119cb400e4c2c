//! A transactional producer's state, sans-io: which call is allowed in which phase, what a
//! failure does to the transaction, which partitions the coordinator already has in it, and
//! how each error the brokers answer is classified. Kafka's `TransactionManager`, without
//! the sender plumbing.
//!
//! ```text
//! Uninitialized ─init─▶ Initializing ─▶ Ready ─begin─▶ InTransaction ─commit─▶ Committing ─▶ Ready
//!                                        ▲                  │ abort     failure │
//!                                        │                  ▼                   ▼
//!                                        └───── Aborting ◀──abort──── Abortable(first error)
//! a fatal error, in any phase ─▶ Fatal(error): every call fails with it from then on
//! ```
//!
//! Errors come out classified: [`Error::TxnFatal`] (the producer is done: fenced, not
//! authorized, broker too old) or [`Error::TxnAbortable`] (only `abort_transaction` may
//! follow). Call-order mistakes are [`Error::TxnState`] and change nothing.

use std::collections::BTreeSet;

use crate::error::{Error, KafkaCode};
use crate::record::TopicPartition;

/// TRANSACTION_ABORTABLE (KIP-890): the coordinator wants this transaction aborted.
const TRANSACTION_ABORTABLE: KafkaCode = KafkaCode(120);

/// Where a transactional producer stands.
#[derive(Debug, Clone)]
pub(super) enum Phase {
    Uninitialized,
    Initializing,
    Ready,
    InTransaction,
    Committing,
    Aborting,
    /// The transaction failed with this error; only an abort may follow.
    Abortable(Error),
    /// The producer failed with this error for good.
    Fatal(Error),
}

/// The transaction bookkeeping; lives under the producer's buffers lock, so a record's
/// admission and a phase change never interleave.
#[derive(Debug)]
pub(super) struct TxnState {
    phase: Phase,
    /// Partitions the coordinator has in the open transaction (AddPartitionsToTxn answered).
    partitions: BTreeSet<TopicPartition>,
    /// AddOffsetsToTxn answered: the transaction needs an EndTxn even without partitions.
    offsets_added: bool,
    /// A batch that had sequence numbers failed, so the broker's sequences may not be ours:
    /// after the abort the epoch must move on (KIP-360) unless EndTxn moved it already.
    pub epoch_bump_required: bool,
    /// Transactions V2 (KIP-890): the broker finalized `transaction.version` >= 2, so EndTxn
    /// v5 bumps the epoch at every ending.
    pub v2: bool,
}

/// What to do after a coordinator answered an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Try again after a pause; `refind` looks the coordinator up again first.
    Retry {
        refind: bool,
    },
    Abortable,
    Fatal,
}

/// The coordinator requests, whose errors are classified differently (as Java's handlers do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    InitProducerId,
    AddPartitions,
    AddOffsets,
    TxnOffsetCommit,
    EndTxn,
}

/// Codes after which no transactional call of this producer can succeed.
fn fatal_code(code: KafkaCode) -> bool {
    [
        KafkaCode::PRODUCER_FENCED,
        // A produce or end with an old epoch: another instance took the transactional id
        // over (Kafka answers it where newer brokers answer PRODUCER_FENCED).
        KafkaCode::INVALID_PRODUCER_EPOCH,
        KafkaCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaCode::CLUSTER_AUTHORIZATION_FAILED,
        KafkaCode::UNSUPPORTED_VERSION,
        KafkaCode::UNSUPPORTED_FOR_MESSAGE_FORMAT,
        // The coordinator forgot the id (expired) or gave it a new producer id.
        KafkaCode::INVALID_PRODUCER_ID_MAPPING,
        KafkaCode::INVALID_TRANSACTION_TIMEOUT,
    ]
    .contains(&code)
}

/// How an error code from the coordinator of `call` is handled.
pub(super) fn classify(call: Call, code: KafkaCode) -> Outcome {
    assert!(!code.is_ok(), "only errors are classified");
    if code == KafkaCode::NOT_COORDINATOR || code == KafkaCode::COORDINATOR_NOT_AVAILABLE {
        return Outcome::Retry { refind: true };
    }
    if code == KafkaCode::CONCURRENT_TRANSACTIONS || code.is_retriable() {
        return Outcome::Retry { refind: false };
    }
    if fatal_code(code) {
        return Outcome::Fatal;
    }
    match call {
        Call::EndTxn if code == TRANSACTION_ABORTABLE => Outcome::Abortable,
        // An ending the coordinator does not expect, or an unknown error: the producer no
        // longer knows what the transaction's outcome is.
        Call::EndTxn | Call::InitProducerId => Outcome::Fatal,
        Call::AddPartitions | Call::AddOffsets | Call::TxnOffsetCommit => Outcome::Abortable,
    }
}

/// A failed client-side operation (`Error` other than a broker code) during `call`.
pub(super) fn classify_error(error: &Error) -> Outcome {
    match error {
        Error::TxnFatal { .. }
        | Error::UnsupportedVersion { .. }
        | Error::UnsupportedApi { .. } => Outcome::Fatal,
        Error::Kafka { code, .. } if fatal_code(*code) => Outcome::Fatal,
        e if e.is_retriable() => Outcome::Retry { refind: true },
        _ => Outcome::Abortable,
    }
}

/// `error` as fatal (not wrapped twice).
pub(super) fn fatal(error: Error) -> Error {
    match error {
        Error::TxnFatal { .. } => error,
        Error::TxnAbortable { cause } => Error::TxnFatal { cause },
        cause => Error::TxnFatal {
            cause: Box::new(cause),
        },
    }
}

/// `error` as abortable (not wrapped twice; a fatal error stays fatal).
pub(super) fn abortable(error: Error) -> Error {
    match error {
        Error::TxnFatal { .. } | Error::TxnAbortable { .. } => error,
        cause => Error::TxnAbortable {
            cause: Box::new(cause),
        },
    }
}

/// A batch's final error inside a transaction: fatal for fencing and the like, else the
/// transaction must be aborted.
pub(super) fn classify_produce(error: Error) -> Error {
    match classify_error(&error) {
        Outcome::Fatal => fatal(error),
        _ => abortable(error),
    }
}

fn misuse(call: &str, phase: &Phase) -> Error {
    let (state, hint) = match phase {
        Phase::Uninitialized => (
            "before init_transactions()",
            "call init_transactions() first",
        ),
        Phase::Initializing => ("while init_transactions() runs", "wait for it"),
        Phase::Ready => (
            "without an open transaction",
            "call begin_transaction() first",
        ),
        Phase::InTransaction => ("while a transaction is open", "commit or abort it first"),
        Phase::Committing => (
            "while the transaction commits",
            "wait for commit_transaction()",
        ),
        Phase::Aborting => (
            "while the transaction aborts",
            "wait for abort_transaction()",
        ),
        Phase::Abortable(_) | Phase::Fatal(_) => unreachable!("failed phases answer their error"),
    };
    Error::TxnState(format!("cannot {call} {state}\nhint: {hint}"))
}

impl TxnState {
    pub fn new() -> TxnState {
        TxnState {
            phase: Phase::Uninitialized,
            partitions: BTreeSet::new(),
            offsets_added: false,
            epoch_bump_required: false,
            v2: false,
        }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The error a call gets in a failed phase; `call` allowed in `ok` phases, else misuse.
    fn allow(&self, call: &str, ok: impl Fn(&Phase) -> bool) -> Result<(), Error> {
        match &self.phase {
            Phase::Fatal(e) => Err(fatal(e.clone())),
            p if ok(p) => Ok(()),
            Phase::Abortable(e) => Err(abortable(e.clone())),
            p => Err(misuse(call, p)),
        }
    }

    pub fn start_init(&mut self) -> Result<(), Error> {
        self.allow("call init_transactions()", |p| {
            matches!(p, Phase::Uninitialized)
        })?;
        self.phase = Phase::Initializing;
        Ok(())
    }

    /// `init_transactions` failed: fatal errors end the producer, others (a timeout) allow
    /// calling it again.
    pub fn init_failed(&mut self, error: Error) -> Error {
        if matches!(classify_error(&error), Outcome::Fatal) {
            let error = fatal(error);
            self.phase = Phase::Fatal(unwrap(&error));
            return error;
        }
        self.phase = Phase::Uninitialized;
        error
    }

    pub fn initialized(&mut self, v2: bool) {
        assert!(matches!(self.phase, Phase::Initializing));
        self.v2 = v2;
        self.epoch_bump_required = false;
        self.phase = Phase::Ready;
    }

    pub fn begin(&mut self) -> Result<(), Error> {
        self.allow("begin a transaction", |p| matches!(p, Phase::Ready))?;
        assert!(self.partitions.is_empty() && !self.offsets_added);
        self.phase = Phase::InTransaction;
        Ok(())
    }

    /// A record may join the transaction (`send`), or offsets (`send_offsets_to_transaction`).
    pub fn check_open(&self, call: &str) -> Result<(), Error> {
        self.allow(call, |p| matches!(p, Phase::InTransaction))
    }

    /// A drained batch may go to its partition: the transaction is open or committing.
    /// Otherwise the error the batch fails with.
    pub fn check_sending(&self) -> Result<(), Error> {
        match &self.phase {
            Phase::InTransaction | Phase::Committing => Ok(()),
            Phase::Aborting => Err(abortable(Error::TxnState(
                "the transaction was aborted before this record was sent".to_owned(),
            ))),
            Phase::Abortable(e) => Err(abortable(e.clone())),
            Phase::Fatal(e) => Err(fatal(e.clone())),
            p => Err(misuse("send a batch", p)),
        }
    }

    /// Those of `wanted` the coordinator does not have in the transaction yet, sorted.
    pub fn missing(&self, wanted: impl IntoIterator<Item = TopicPartition>) -> Vec<TopicPartition> {
        let missing: BTreeSet<TopicPartition> = wanted
            .into_iter()
            .filter(|tp| !self.partitions.contains(tp))
            .collect();
        missing.into_iter().collect()
    }

    pub fn partitions_added(&mut self, added: &[TopicPartition]) {
        self.partitions.extend(added.iter().cloned());
    }

    pub fn offsets_added(&mut self) {
        self.offsets_added = true;
    }

    /// Whether the coordinator knows of this transaction, so its end needs an EndTxn.
    pub fn started(&self) -> bool {
        !self.partitions.is_empty() || self.offsets_added
    }

    /// `commit_transaction` begins; a commit that failed before its EndTxn was answered is
    /// abortable, so Committing here means another call is committing.
    pub fn start_commit(&mut self) -> Result<(), Error> {
        self.allow("commit", |p| matches!(p, Phase::InTransaction))?;
        self.phase = Phase::Committing;
        Ok(())
    }

    /// Every record was reported: whether the commit may go on to EndTxn.
    pub fn check_committing(&self) -> Result<(), Error> {
        self.allow("commit", |p| matches!(p, Phase::Committing))
    }

    /// `abort_transaction` begins: allowed in an open or failed transaction, and again after
    /// an abort that did not finish.
    pub fn start_abort(&mut self) -> Result<(), Error> {
        match &self.phase {
            Phase::InTransaction | Phase::Abortable(_) | Phase::Aborting => {
                self.phase = Phase::Aborting;
                Ok(())
            }
            Phase::Fatal(e) => Err(fatal(e.clone())),
            p => Err(misuse("abort", p)),
        }
    }

    /// A failure inside the transaction: records the first cause and moves to Abortable or
    /// Fatal (an abort under way stays under way). Returns the classified error to report.
    pub fn fail(&mut self, error: Error) -> Error {
        let error = match error {
            e @ (Error::TxnFatal { .. } | Error::TxnAbortable { .. }) => e,
            other => abortable(other),
        };
        match (&self.phase, &error) {
            (Phase::Fatal(first), _) => fatal(first.clone()),
            (_, Error::TxnFatal { .. }) => {
                self.phase = Phase::Fatal(unwrap(&error));
                error
            }
            (Phase::InTransaction | Phase::Committing, _) => {
                self.phase = Phase::Abortable(unwrap(&error));
                error
            }
            // Keep the first cause: it is what went wrong; the rest follow from it.
            (Phase::Abortable(first), _) => abortable(first.clone()),
            _ => error,
        }
    }

    /// The transaction ended (EndTxn answered, or nothing to end): ready for the next one.
    pub fn completed(&mut self) {
        assert!(matches!(self.phase, Phase::Committing | Phase::Aborting));
        self.partitions.clear();
        self.offsets_added = false;
        self.epoch_bump_required = false;
        self.phase = Phase::Ready;
    }
}

/// The cause inside a classified error.
fn unwrap(error: &Error) -> Error {
    match error {
        Error::TxnFatal { cause } | Error::TxnAbortable { cause } => (**cause).clone(),
        other => other.clone(),
    }
}

#[cfg(test)]
#[path = "txn_state_tests.rs"]
mod tests;
