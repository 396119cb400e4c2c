//! The transactional calls of [`Producer`], as Java's `KafkaProducer` has them.
//!
//! Each call that talks to a coordinator runs on a task of its own, so that dropping the
//! caller's future halfway cannot leave the transaction half ended: the call finishes, and
//! the next one sees where it ended.
//!
//! Transactions V2 (KIP-890): when the broker finalized `transaction.version` 2, EndTxn v5
//! answers a new epoch (or a new producer id once the epoch is exhausted); the producer takes
//! it and starts its sequence numbers again at 0. Without it the epoch stays, and after an
//! abort that lost batches it is bumped with InitProducerId (KIP-360).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use super::coordinator::Coordinators;
use super::sender::fail_batch;
use super::txn_state::{abortable, fatal, Phase, TxnState};
use super::{Producer, Shared};
use crate::error::{Error, Result};
use crate::record::{ConsumerGroupMetadata, TopicPartition};

impl Producer {
    /// Registers the `transactional.id` with its coordinator and gets the producer id and
    /// epoch to use. Any earlier producer with this id is fenced, and the transaction it left
    /// open is aborted (the broker does it before it answers). Call it once, before the
    /// first transaction; after a timeout it may be called again.
    pub async fn init_transactions(&self) -> Result<()> {
        run_to_end(init(self.shared.clone())).await
    }

    /// Starts a transaction: from now on `send` and `send_offsets_to_transaction` add to it.
    /// Local only; the coordinator learns of it with the first partition or offsets.
    pub fn begin_transaction(&self) -> Result<()> {
        coordinators(&self.shared)?;
        self.shared.buffers().txn_mut().begin()
    }

    /// Adds consumed offsets of `group` to the transaction (AddOffsetsToTxn, then
    /// TxnOffsetCommit to the group's coordinator): they are committed if and only if the
    /// transaction commits. `offsets` are the next offsets to consume, as Java's.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, i64)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let (offsets, group) = (offsets.to_vec(), group.clone());
        run_to_end(send_offsets(self.shared.clone(), offsets, group)).await
    }

    /// Sends every queued record, waits until each is acknowledged, then commits (EndTxn).
    /// If a record failed, nothing is committed and the error says the transaction must be
    /// aborted ([`Error::txn_requires_abort`]).
    pub async fn commit_transaction(&self) -> Result<()> {
        run_to_end(commit(self.shared.clone())).await
    }

    /// Aborts the transaction: records not sent yet are dropped (their futures fail), those
    /// in flight are waited for, then EndTxn. Allowed in an open or failed transaction, and
    /// again after an abort that failed other than fatally.
    pub async fn abort_transaction(&self) -> Result<()> {
        run_to_end(abort(self.shared.clone())).await
    }

    /// Whether a transaction is open or failed: what `close` aborts.
    pub(super) fn transaction_open(&self) -> bool {
        let buffers = self.shared.buffers();
        let phase = buffers.txn.as_ref().map(TxnState::phase);
        matches!(phase, Some(Phase::InTransaction | Phase::Abortable(_)))
    }
}

/// Runs `call` on its own task and waits for it (see the module docs).
async fn run_to_end<T: Send + 'static>(
    call: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    match tokio::spawn(call).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::ProducerClosed), // the runtime is shutting down
    }
}

fn coordinators(shared: &Shared) -> Result<&Coordinators> {
    shared.coordinators.as_ref().ok_or_else(|| {
        Error::TxnState("this producer is not transactional\nhint: set transactional.id".to_owned())
    })
}

async fn init(shared: Arc<Shared>) -> Result<()> {
    let coordinators = coordinators(&shared)?;
    shared.buffers().txn_mut().start_init()?;
    let found = async {
        let v2 = coordinators.supports_v2().await?;
        let identity = coordinators.init_producer_id(None).await?;
        Ok::<_, Error>((v2, identity))
    }
    .await;
    let mut buffers = shared.buffers();
    match found {
        Ok((v2, identity)) => {
            tracing::debug!(
                transactional_id = coordinators.transactional_id(),
                ?identity,
                v2,
                "transactions initialized"
            );
            buffers.new_identity(identity);
            buffers.txn_mut().initialized(v2);
            Ok(())
        }
        Err(e) => Err(buffers.txn_mut().init_failed(e)),
    }
}

/// The producer id and epoch of an open transaction, checked open for `call`.
fn open_identity(shared: &Shared, call: &str) -> Result<(i64, i16)> {
    let mut buffers = shared.buffers();
    buffers.txn_mut().check_open(call)?;
    Ok(buffers.identity.expect("an initialized producer has an id"))
}

async fn send_offsets(
    shared: Arc<Shared>,
    offsets: Vec<(TopicPartition, i64)>,
    group: ConsumerGroupMetadata,
) -> Result<()> {
    let coordinators = coordinators(&shared)?;
    let identity = open_identity(&shared, "send offsets")?;
    if offsets.is_empty() {
        return Ok(());
    }
    let sent = async {
        coordinators.add_offsets(identity, &group.group_id).await?;
        shared.buffers().txn_mut().offsets_added();
        coordinators
            .commit_offsets(identity, &offsets, &group)
            .await
    }
    .await;
    sent.map_err(|e| shared.buffers().txn_mut().fail(e))
}

async fn commit(shared: Arc<Shared>) -> Result<()> {
    let coordinators = coordinators(&shared)?;
    shared.buffers().txn_mut().start_commit()?;
    shared.flush().await;
    let (identity, started, v2) = {
        let mut buffers = shared.buffers();
        let identity = buffers.identity.expect("an initialized producer has an id");
        let txn = buffers.txn_mut();
        txn.check_committing()?; // a record failed: the transaction must be aborted
        (identity, txn.started(), txn.v2)
    };
    let next = if started {
        let ended = coordinators.end_txn(identity, true, v2).await;
        ended.map_err(|e| shared.buffers().txn_mut().fail(e))?
    } else {
        None // the coordinator never heard of it: nothing to end
    };
    ended(&shared, next);
    Ok(())
}

async fn abort(shared: Arc<Shared>) -> Result<()> {
    let coordinators = coordinators(&shared)?;
    shared.buffers().txn_mut().start_abort()?;
    // Records not sent yet never will be. Those in flight are waited for: their partitions
    // must not receive them after the abort marker.
    let (unsent, _) = shared.buffers().acc.drain(Instant::now(), true);
    let dropped = abortable(Error::TxnState(
        "the transaction was aborted before this record was sent".to_owned(),
    ));
    for batch in unsent {
        fail_batch(&shared, batch, dropped.clone());
    }
    shared.flush().await;
    let (identity, started, v2, bump) = {
        let mut buffers = shared.buffers();
        let identity = buffers.identity.expect("an initialized producer has an id");
        let txn = buffers.txn_mut();
        if let Phase::Fatal(e) = txn.phase() {
            return Err(fatal(e.clone())); // fenced while waiting for the batches
        }
        (identity, txn.started(), txn.v2, txn.epoch_bump_required)
    };
    let mut next = None;
    if started {
        let ended = coordinators.end_txn(identity, false, v2).await;
        next = ended.map_err(|e| shared.buffers().txn_mut().fail(e))?;
    }
    if bump && next.is_none() {
        // Batches failed with sequence numbers the broker may or may not have: a new epoch
        // makes both sides start again at 0 (KIP-360).
        let bumped = coordinators.init_producer_id(Some(identity)).await;
        next = Some(bumped.map_err(|e| shared.buffers().txn_mut().fail(fatal(e)))?);
    }
    ended(&shared, next);
    Ok(())
}

/// The transaction ended; `next` is the id and epoch the coordinator moved this producer to.
fn ended(shared: &Shared, next: Option<(i64, i16)>) {
    let mut buffers = shared.buffers();
    if let Some(identity) = next {
        buffers.new_identity(identity);
    }
    buffers.txn_mut().completed();
}
