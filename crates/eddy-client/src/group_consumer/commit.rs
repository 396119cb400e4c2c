//! Committed offsets as a member of a generation, the identity a transactional producer
//! commits with, and leaving the group.

use super::coordinator::Coordinator;
use super::{GroupConsumer, Step};
use crate::error::Result;
use crate::record::{ConsumerGroupMetadata, TopicPartition};

impl GroupConsumer {
    /// Commits `offsets` (the next offset to read, per partition) with this member's
    /// generation and member id. A member the group moved on from is refused by the
    /// broker (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS: see
    /// [`super::is_membership_lost`]); the error is the first partition refused.
    pub async fn commit(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let coordinator = self.coordinator().await?;
        let result = coordinator.commit(&self.id, offsets).await;
        if let Err(e) = &result {
            if super::membership::next_step(e) == Step::FindCoordinator {
                self.coordinator = None;
            }
        }
        result
    }

    /// The group's committed offsets of `tps`, `None` where nothing is committed.
    pub async fn committed(
        &self,
        tps: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<i64>)>> {
        if let Some(coordinator) = &self.coordinator {
            return coordinator.committed(&self.id.group_id, tps).await;
        }
        // `&self` cannot keep what it finds; the next poll or commit finds it again.
        let coordinator = Coordinator::find(
            &self.client,
            &self.config.group_id,
            self.config.max_poll_interval_ms,
        )
        .await?;
        let result = coordinator.committed(&self.id.group_id, tps).await;
        coordinator.close().await;
        result
    }

    /// Who this member is, for a transactional producer's `send_offsets_to_transaction`:
    /// the broker refuses offsets from a generation that is over. While the application
    /// handles Revoked, this is still the generation being left.
    pub fn group_metadata(&self) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata {
            group_id: self.id.group_id.clone(),
            generation_id: self.id.generation_id,
            member_id: self.id.member_id.clone(),
            group_instance_id: self.id.instance_id.clone(),
        }
    }

    /// Stops the heartbeat and leaves the group (LeaveGroup), so the others rebalance at
    /// once rather than after `session.timeout.ms`. A static member does not leave, as with
    /// Kafka: its place waits for it until its session times out. The error, if any, is
    /// LeaveGroup's; everything is stopped either way.
    pub async fn close(mut self) -> Result<()> {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.stop().await;
        }
        if let Some(reset) = self.reset.take() {
            reset.apply(&mut self.id);
        }
        let member = !self.id.member_id.is_empty() && self.fatal.is_none();
        let result = if member && self.id.instance_id.is_none() {
            match self.coordinator().await {
                Ok(coordinator) => {
                    coordinator
                        .leave(&self.id, "the consumer is being closed")
                        .await
                }
                Err(e) => Err(e),
            }
        } else {
            Ok(())
        };
        if let Err(e) = &result {
            tracing::warn!(%e, group = %self.id.group_id,
                "LeaveGroup failed; the group will notice after session.timeout.ms");
        }
        if let Some(coordinator) = self.coordinator.take() {
            coordinator.close().await;
        }
        result
    }
}
