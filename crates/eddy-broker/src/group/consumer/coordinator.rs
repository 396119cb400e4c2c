//! The consumer protocol inside the [`GroupCoordinator`]: a group id is
//! either classic or consumer. Consumer groups keep their membership here
//! and their committed offsets in the classic store (one `Group` entry with
//! no members holds them), so OffsetCommit/OffsetFetch, `__consumer_offsets`
//! and offset expiry serve both kinds unchanged.
//!
//! Lock order: the classic `groups` lock, then `consumer`; never the other
//! way round.

use std::sync::MutexGuard;

use super::{
    ConsumerConfig, ConsumerGroup, ConsumerGroups, GroupState, Heartbeat, HeartbeatAnswer, Refused,
    Topics,
};
use crate::clock::now_ms;
use crate::group::{codes, Described, DescribedMember, GroupCoordinator, Inner, State};

impl Inner {
    pub(in crate::group) fn consumer(&self) -> MutexGuard<'_, ConsumerGroups> {
        self.consumer.lock().expect("consumer groups lock")
    }
}

/// A consumer group as ConsumerGroupDescribe shows it (a copy, taken under
/// the lock).
pub struct ConsumerDescribed {
    pub state: GroupState,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<super::ConsumerMember>,
    pub target: std::collections::BTreeMap<String, super::Assignment>,
}

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat. A classic group with members keeps its id:
    /// GROUP_ID_NOT_FOUND, as Kafka answers when online migration is off.
    /// An empty classic group (offsets only) becomes a consumer group.
    pub fn consumer_heartbeat(
        &self,
        hb: Heartbeat,
        topics: &Topics,
        config: &ConsumerConfig,
    ) -> Result<HeartbeatAnswer, Refused> {
        self.start_timer();
        let groups = self.inner.groups.lock().expect("groups lock");
        if groups
            .get(&hb.group_id)
            .is_some_and(|g| !g.members.is_empty())
        {
            return Err(Refused::new(
                codes::GROUP_ID_NOT_FOUND,
                format!("Group {} is not a consumer group.", hb.group_id),
            ));
        }
        let stored = groups.contains_key(&hb.group_id);
        let out = self
            .inner
            .consumer()
            .heartbeat_stored(hb, topics, config, now_ms(), stored);
        drop(groups);
        self.wake.notify_one();
        out
    }

    /// JoinGroup's check: a consumer group with members refuses classic
    /// members (INCONSISTENT_GROUP_PROTOCOL); an empty one is dropped so the
    /// id becomes a classic group again, keeping its offsets.
    pub(in crate::group) fn classic_join_refused(&self, group_id: &str) -> Option<i16> {
        let mut consumer = self.inner.consumer();
        let g = consumer.groups.get(group_id)?;
        if g.members.is_empty() {
            consumer.groups.remove(group_id);
            return None;
        }
        Some(codes::INCONSISTENT_GROUP_PROTOCOL)
    }

    /// OffsetCommit's and OffsetFetch's member check for consumer groups:
    /// None when `group_id` is not one; else the error code, NONE when the
    /// member id and epoch are current.
    pub fn consumer_offsets_check(
        &self,
        group_id: &str,
        member_id: &str,
        member_epoch: i32,
    ) -> Option<i16> {
        self.inner
            .consumer()
            .check_offsets(group_id, member_id, member_epoch)
    }

    /// (group id, state) of every consumer group.
    pub fn list_consumer(&self) -> Vec<(String, GroupState)> {
        let consumer = self.inner.consumer();
        consumer
            .groups
            .values()
            .map(|g| (g.id.clone(), g.state()))
            .collect()
    }

    pub fn describe_consumer(&self, group_id: &str) -> Option<ConsumerDescribed> {
        let consumer = self.inner.consumer();
        let g: &ConsumerGroup = consumer.groups.get(group_id)?;
        Some(ConsumerDescribed {
            state: g.state(),
            group_epoch: g.group_epoch,
            assignment_epoch: g.assignment_epoch,
            assignor: g.assignor.to_string(),
            members: g.members.values().cloned().collect(),
            target: g.target.clone(),
        })
    }

    /// DescribeGroups of a consumer group: Kafka describes it in classic
    /// terms (protocol type "consumer", the assignor as protocol, states
    /// mapped: Assigning is PreparingRebalance, Reconciling is
    /// CompletingRebalance), with each member's subscription and assignment
    /// in the classic consumer protocol's encoding (`encode` gives both).
    pub fn describe_consumer_as_classic(
        &self,
        group_id: &str,
        encode: impl Fn(&super::ConsumerMember) -> (bytes::Bytes, bytes::Bytes),
    ) -> Option<Described> {
        let consumer = self.inner.consumer();
        let g = consumer.groups.get(group_id)?;
        let state = match g.state() {
            GroupState::Empty => State::Empty,
            GroupState::Assigning => State::PreparingRebalance,
            GroupState::Reconciling => State::CompletingRebalance,
            GroupState::Stable => State::Stable,
        };
        let members = g
            .members
            .values()
            .map(|m| {
                let (metadata, assignment) = encode(m);
                DescribedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata,
                    assignment,
                }
            })
            .collect();
        Some(Described {
            state,
            protocol_type: "consumer".to_string(),
            protocol_name: g.assignor.to_string(),
            members,
        })
    }
}
