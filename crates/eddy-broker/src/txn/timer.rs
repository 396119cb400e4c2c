//! The coordinator's background work: at start, completing the endings a
//! crash left in Prepare*; then every
//! `transaction.abort.timed.out.transaction.cleanup.interval.ms`, aborting
//! transactions open longer than their timeout (epoch bumped: their
//! producer is fenced) and forgetting ids idle for
//! `transactional.id.expiration.ms`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::state::TxnMetadata;
use super::TxnCoordinator;
use crate::broker::Broker;
use crate::clock::now_ms;

type Durable = tokio::sync::oneshot::Receiver<crate::flusher::FlushResult>;

impl TxnCoordinator {
    /// Starts the timer (once, and only inside a tokio runtime) and
    /// resumes the interrupted endings.
    pub(crate) fn start(&self, broker: &Arc<Broker>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.start_once() {
            return;
        }
        let prepared: Vec<TxnMetadata> = self
            .lock()
            .values()
            .filter(|m| m.state.is_prepare())
            .cloned()
            .collect();
        for m in prepared {
            let b = broker.clone();
            runtime.spawn(async move {
                let id = m.transactional_id.clone();
                if let Err(code) = b.txns.finish(&b, m).await {
                    tracing::warn!(transactional_id = %id, error = code, "completing a recovered transaction failed");
                }
            });
        }
        runtime.spawn(run(Arc::downgrade(broker)));
    }

    /// Ongoing transactions past their timeout, moved to PrepareAbort and
    /// appended; the caller awaits durability, then writes their markers.
    fn abort_timed_out(&self, broker: &Broker, now_ms: i64) -> Vec<(TxnMetadata, Durable)> {
        let mut txns = self.lock();
        let due: Vec<String> = txns
            .values()
            .filter(|m| m.timed_out(now_ms))
            .map(|m| m.transactional_id.clone())
            .collect();
        let mut out = Vec::new();
        for id in due {
            let mut new_id = || broker.next_producer_id().map_err(|e| e.code);
            let Some(next) = txns
                .get(&id)
                .and_then(|m| m.abort_timed_out(now_ms, &mut new_id).ok())
            else {
                continue;
            };
            match Self::persist(broker, &mut txns, next.clone()) {
                Ok(rx) => out.push((next, rx)),
                Err(code) => {
                    tracing::warn!(transactional_id = %id, error = code, "aborting a timed-out transaction failed")
                }
            }
        }
        out
    }

    /// Forgets ids idle longer than `transactional.id.expiration.ms`.
    fn expire_ids(&self, broker: &Broker, now_ms: i64) {
        let mut txns = self.lock();
        let expiration_ms = self.config.id_expiration_ms;
        let expired: Vec<String> = txns
            .values()
            .filter(|m| m.expired(now_ms, expiration_ms))
            .map(|m| m.transactional_id.clone())
            .collect();
        for id in expired {
            if Self::append_tombstone(broker, &id).is_ok() {
                txns.remove(&id);
                tracing::info!(transactional_id = %id, "transactional id expired");
            }
        }
    }
}

async fn run(broker: Weak<Broker>) {
    loop {
        let interval_ms = match broker.upgrade() {
            Some(b) => b.txns.config.abort_interval_ms.clamp(10, 3_600_000) as u64,
            None => return,
        };
        tokio::time::sleep(Duration::from_millis(interval_ms)).await;
        let Some(b) = broker.upgrade() else {
            return;
        };
        let now = now_ms();
        for (m, durable) in b.txns.abort_timed_out(&b, now) {
            tracing::info!(transactional_id = %m.transactional_id, "aborting a transaction that outlived its timeout");
            let b2 = b.clone();
            tokio::spawn(async move {
                // Markers only over a durable PrepareAbort: after a crash
                // the replayed state must cover what the partitions hold.
                if super::wait(durable).await.is_ok() {
                    let _ = b2.txns.finish(&b2, m).await;
                }
            });
        }
        b.txns.expire_ids(&b, now);
    }
}
