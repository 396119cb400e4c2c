//! The background heartbeat of a member in a generation, and what it reports to `poll()`.
//!
//! The task never changes the member itself: it raises a [`Signal`] (rejoin, and how much of
//! the identity to reset; the coordinator is gone; a fatal error), which the next `poll()`
//! acts on. It also enforces `max.poll.interval.ms`: a member whose application stopped
//! polling leaves the group, as the Java client's heartbeat thread does, so its partitions
//! go to members that make progress.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::codes;
use super::coordinator::{Coordinator, Identity};
use crate::error::Error;

/// Why the member must rejoin, least to most severe: a more severe one replaces a lesser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejoin {
    /// The group is rebalancing, the subscription changed, or the coordinator moved:
    /// rejoin as the same member of the same generation.
    Requested,
    /// ILLEGAL_GENERATION: the generation ended without us; rejoin with our member id.
    ResetGeneration,
    /// UNKNOWN_MEMBER_ID, or we left the group: rejoin as a new member.
    ResetMember,
}

impl Rejoin {
    /// What rejoining after `self` leaves of the identity, as Kafka's consumer resets it.
    pub fn apply(self, id: &mut Identity) {
        match self {
            Rejoin::Requested => {}
            Rejoin::ResetGeneration => id.generation_id = -1,
            Rejoin::ResetMember => {
                id.generation_id = -1;
                id.member_id.clear();
            }
        }
    }
}

/// What the heartbeat found since `poll()` last looked.
#[derive(Debug, Default)]
pub struct Signal {
    pub rejoin: Option<Rejoin>,
    /// The coordinator moved or cannot be reached: find it again before rejoining.
    pub coordinator_lost: bool,
    /// FENCED_INSTANCE_ID, or an error no retry can cure: every later poll fails with it.
    pub fatal: Option<Error>,
}

impl Signal {
    fn raise(&mut self, rejoin: Rejoin) {
        self.rejoin = self.rejoin.max(Some(rejoin));
    }
}

/// Shared by the member and its heartbeat task. std Mutex: never held across an await.
#[derive(Default)]
pub struct Shared {
    signal: Mutex<Signal>,
    /// When `poll()` was last called.
    last_poll: Mutex<Option<Instant>>,
    /// Wakes a `poll()` that waits with nothing to fetch.
    pub wake: Notify,
}

impl Shared {
    fn signal(&self) -> std::sync::MutexGuard<'_, Signal> {
        self.signal.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn raise(&self, rejoin: Rejoin) {
        self.signal().raise(rejoin);
        self.wake.notify_one();
    }

    fn lose_coordinator(&self) {
        let mut signal = self.signal();
        signal.raise(Rejoin::Requested);
        signal.coordinator_lost = true;
        drop(signal);
        self.wake.notify_one();
    }

    fn fail(&self, error: Error) {
        self.signal().fatal.get_or_insert(error);
        self.wake.notify_one();
    }

    /// Takes what was raised, leaving nothing.
    pub fn take(&self) -> Signal {
        std::mem::take(&mut *self.signal())
    }

    pub fn touch_poll(&self) {
        *self.last_poll.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn since_poll(&self) -> Duration {
        let last = *self.last_poll.lock().unwrap_or_else(|p| p.into_inner());
        last.map_or(Duration::ZERO, |at| at.elapsed())
    }
}

/// The heartbeat's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub interval_ms: u64,
    pub max_poll_interval_ms: u64,
    /// Static members do not send LeaveGroup; their session times out instead.
    pub is_static: bool,
}

/// A running heartbeat task; stopped when dropped.
pub struct Heartbeat {
    task: JoinHandle<()>,
}

impl Heartbeat {
    pub fn start(
        coordinator: Coordinator,
        id: Identity,
        settings: Settings,
        shared: Arc<Shared>,
    ) -> Heartbeat {
        Heartbeat {
            task: tokio::spawn(run(coordinator, id, settings, shared)),
        }
    }

    /// Stops the task and waits until it has, so it raises nothing afterwards.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(coordinator: Coordinator, id: Identity, settings: Settings, shared: Arc<Shared>) {
    let interval = Duration::from_millis(settings.interval_ms);
    let max_poll_interval = Duration::from_millis(settings.max_poll_interval_ms);
    loop {
        let since_poll = shared.since_poll();
        if since_poll >= max_poll_interval {
            tracing::warn!(group = %id.group_id, member = %id.member_id,
                "poll() not called for max.poll.interval.ms ({} ms): leaving the group",
                settings.max_poll_interval_ms);
            if !settings.is_static {
                if let Err(e) = coordinator
                    .leave(&id, "consumer poll timeout has expired")
                    .await
                {
                    tracing::warn!(%e, "LeaveGroup after the poll timeout failed");
                }
            }
            return shared.raise(Rejoin::ResetMember);
        }
        tokio::time::sleep(interval.min(max_poll_interval - since_poll)).await;
        if shared.since_poll() >= max_poll_interval {
            continue;
        }
        let code = match coordinator.heartbeat(&id).await {
            Ok(code) => code,
            // Unreachable or timed out: look for the coordinator again, as Java does.
            Err(e) if e.is_retriable() => {
                tracing::info!(%e, group = %id.group_id, "heartbeat failed; coordinator lost");
                return shared.lose_coordinator();
            }
            Err(e) => return shared.fail(e),
        };
        match code {
            codes::NONE => {}
            // Keep heartbeating: the session must outlive the application's handling of
            // Revoked, which comes before the rejoin.
            codes::REBALANCE_IN_PROGRESS => shared.raise(Rejoin::Requested),
            codes::ILLEGAL_GENERATION => return shared.raise(Rejoin::ResetGeneration),
            codes::UNKNOWN_MEMBER_ID => return shared.raise(Rejoin::ResetMember),
            codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE => {
                return shared.lose_coordinator()
            }
            code if code.is_retriable() => {
                tracing::debug!(%code, "heartbeat refused; trying again next interval");
            }
            code => {
                let context = format!(
                    "heartbeat of member {:?} in group {:?}",
                    id.member_id, id.group_id
                );
                if let Err(e) = code.check(context) {
                    return shared.fail(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            group_id: "g".into(),
            member_id: "m-1".into(),
            generation_id: 4,
            instance_id: None,
        }
    }

    #[test]
    fn the_most_severe_rejoin_wins() {
        let shared = Shared::default();
        shared.raise(Rejoin::ResetMember);
        shared.raise(Rejoin::Requested);
        shared.raise(Rejoin::ResetGeneration);
        let signal = shared.take();
        assert_eq!(signal.rejoin, Some(Rejoin::ResetMember));
        assert!(!signal.coordinator_lost);
        assert!(shared.take().rejoin.is_none(), "take leaves nothing");
    }

    #[test]
    fn resets_follow_kafka() {
        let mut id = identity();
        Rejoin::Requested.apply(&mut id);
        assert_eq!(id, identity());
        Rejoin::ResetGeneration.apply(&mut id);
        assert_eq!((id.member_id.as_str(), id.generation_id), ("m-1", -1));
        let mut id = identity();
        Rejoin::ResetMember.apply(&mut id);
        assert_eq!((id.member_id.as_str(), id.generation_id), ("", -1));
    }

    #[test]
    fn a_lost_coordinator_also_asks_for_a_rejoin() {
        let shared = Shared::default();
        shared.lose_coordinator();
        let signal = shared.take();
        assert!(signal.coordinator_lost);
        assert_eq!(signal.rejoin, Some(Rejoin::Requested));
    }

    #[test]
    fn the_first_fatal_error_is_kept() {
        let shared = Shared::default();
        shared.fail(Error::Config("first".into()));
        shared.fail(Error::Config("second".into()));
        let fatal = shared.take().fatal.expect("raised");
        assert!(fatal.to_string().contains("first"));
    }
}
