//! The consumer group protocol of KIP-848: the coordinator assigns
//! partitions itself, members heartbeat (ConsumerGroupHeartbeat) and are
//! brought to their target assignment one step at a time. Sans-io: time
//! comes in as `now_ms`, topics as a snapshot, and [`ConsumerGroups::tick`]
//! fires whatever deadline has come due.
//!
//! # Layout
//! - [`group`]: one group: members, group epoch, target assignment and who
//!   holds which partition; the heartbeat and leave logic.
//! - [`member`]: a member and its reconciliation state.
//! - [`reconcile`]: one member's next step towards its target.
//! - [`assignor`]: `uniform` and `range`.
//! - [`pattern`]: `SubscribedTopicRegex` matching.
//! - `coordinator`: the [`super::GroupCoordinator`] methods that reach here.
//!
//! # Epochs
//! The group epoch moves whenever what the assignor would see changes (a
//! member joins, leaves, changes its subscription; a subscribed topic gains
//! partitions). The target assignment is recomputed lazily, on the next
//! heartbeat, and stamped with the group epoch (the assignment epoch). Each
//! member's epoch reaches the assignment epoch once it owns its target
//! partitions or waits only for partitions other members still hold.
//!
//! # Durability
//! Membership lives in memory. After a restart members find themselves
//! unknown (UNKNOWN_MEMBER_ID), rejoin with epoch 0 and are assigned anew;
//! committed offsets live in the classic coordinator's store and in
//! `__consumer_offsets`, and survive.

pub mod assignor;
mod coordinator;
pub mod group;
pub mod member;
pub mod pattern;
pub mod reconcile;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

pub use coordinator::ConsumerDescribed;
pub use group::{ConsumerGroup, GroupState};
pub use member::{ConsumerMember, MemberState};

use super::codes;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Error codes this protocol added (KIP-848).
pub mod errors {
    pub const FENCED_MEMBER_EPOCH: i16 = 110;
    pub const UNRELEASED_INSTANCE_ID: i16 = 111;
    pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
    pub const STALE_MEMBER_EPOCH: i16 = 113;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const INVALID_REGULAR_EXPRESSION: i16 = 128;
}

/// Member epochs with a meaning of their own.
pub const LEAVE_EPOCH: i32 = -1;
pub const LEAVE_STATIC_EPOCH: i32 = -2;

/// A topic as the coordinator sees it when it assigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicMeta {
    pub id: Uuid,
    pub partitions: i32,
}

/// Every topic by name, taken when the request arrives.
pub type Topics = BTreeMap<String, TopicMeta>;

/// Settings, by Kafka's names.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `group.consumer.session.timeout.ms`
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`
    pub max_size: usize,
    /// `group.consumer.assignors`, canonical names, the default first.
    pub assignors: Vec<&'static str>,
    /// For this long after the coordinator starts serving, no partition is
    /// handed out: membership is not persisted, so members from before a
    /// restart are unknown to it and may still be consuming until their
    /// next heartbeat tells them (UNKNOWN_MEMBER_ID). Two heartbeat
    /// intervals in the broker; 0 in tests of the state machine.
    pub startup_grace_ms: i64,
}

impl Default for ConsumerConfig {
    fn default() -> ConsumerConfig {
        ConsumerConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: 10_000,
            assignors: assignor::NAMES.to_vec(),
            startup_grace_ms: 10_000,
        }
    }
}

/// A ConsumerGroupHeartbeat as the state machine sees it.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1: unchanged since the last heartbeat.
    pub rebalance_timeout_ms: i32,
    /// None: unchanged.
    pub topic_names: Option<Vec<String>>,
    pub topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// None: the member did not say what it owns.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// What the member is told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Sent when the member joins, sends a full request or its assignment
    /// changed; None otherwise.
    pub assignment: Option<Assignment>,
}

/// A refused heartbeat: a Kafka error code and what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (error {code})")]
pub struct Refused {
    pub code: i16,
    pub message: String,
}

impl Refused {
    pub fn new(code: i16, message: impl Into<String>) -> Refused {
        Refused {
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Refused {
        Refused::new(codes::INVALID_REQUEST, message)
    }
}

/// Checks what Kafka checks before looking at the group. `version` is the
/// request's: from v1 the client generates its member id (KIP-1082).
pub fn validate(hb: &Heartbeat, version: i16, config: &ConsumerConfig) -> Result<(), Refused> {
    if hb.group_id.is_empty() {
        return Err(Refused::invalid("GroupId can't be empty."));
    }
    if hb.group_id.len() > super::records::STRING_BYTES_MAX {
        return Err(Refused::new(
            codes::INVALID_GROUP_ID,
            "GroupId is too long.",
        ));
    }
    if hb.member_id.len() > super::records::STRING_BYTES_MAX {
        return Err(Refused::invalid("MemberId is too long."));
    }
    if hb.rack_id.as_deref() == Some("") {
        return Err(Refused::invalid("RackId can't be empty."));
    }
    if hb.instance_id.as_deref() == Some("") {
        return Err(Refused::invalid("InstanceId can't be empty."));
    }
    if (version >= 1 || hb.member_epoch != 0) && hb.member_id.is_empty() {
        return Err(Refused::invalid("MemberId can't be empty."));
    }
    match hb.member_epoch {
        0 => validate_join(hb)?,
        LEAVE_STATIC_EPOCH if hb.instance_id.is_none() => {
            return Err(Refused::invalid("InstanceId can't be null."));
        }
        e if e < LEAVE_STATIC_EPOCH => return Err(Refused::invalid("MemberEpoch is invalid.")),
        _ => {}
    }
    if let Some(name) = &hb.server_assignor {
        let known = assignor::canonical(name).filter(|n| config.assignors.contains(n));
        if known.is_none() {
            return Err(Refused::new(
                errors::UNSUPPORTED_ASSIGNOR,
                format!(
                    "ServerAssignor {name} is not supported. Supported assignors: {}.",
                    config.assignors.join(", ")
                ),
            ));
        }
    }
    if let Some(regex) = &hb.topic_regex {
        if let Err(why) = pattern::Pattern::compile(regex) {
            return Err(Refused::new(
                errors::INVALID_REGULAR_EXPRESSION,
                format!("SubscribedTopicRegex `{regex}` is not supported by Eddy: {why}."),
            ));
        }
    }
    Ok(())
}

fn validate_join(hb: &Heartbeat) -> Result<(), Refused> {
    if hb.rebalance_timeout_ms == -1 {
        return Err(Refused::invalid(
            "RebalanceTimeoutMs must be provided in first request.",
        ));
    }
    if hb.owned.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(Refused::invalid(
            "TopicPartitions must be empty when (re-)joining.",
        ));
    }
    if hb.topic_names.is_none() && hb.topic_regex.is_none() {
        return Err(Refused::invalid(
            "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
        ));
    }
    Ok(())
}

/// Every consumer-protocol group.
#[derive(Default)]
pub struct ConsumerGroups {
    pub groups: BTreeMap<String, ConsumerGroup>,
    /// The first time seen (heartbeat or tick): when serving began.
    serving_since_ms: Option<i64>,
}

impl ConsumerGroups {
    /// A heartbeat for a group that is a consumer group or may become one
    /// (the caller checked that no classic group with members has the id).
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        topics: &Topics,
        config: &ConsumerConfig,
        now_ms: i64,
    ) -> Result<HeartbeatAnswer, Refused> {
        self.heartbeat_stored(hb, topics, config, now_ms, true)
    }

    /// [`Self::heartbeat`], saying whether the group has stored state
    /// (committed offsets) that may predate a restart: only such a group can
    /// have members from before, so only it waits out the startup grace.
    pub fn heartbeat_stored(
        &mut self,
        hb: Heartbeat,
        topics: &Topics,
        config: &ConsumerConfig,
        now_ms: i64,
        stored: bool,
    ) -> Result<HeartbeatAnswer, Refused> {
        let leaving = hb.member_epoch < 0;
        if leaving && !self.groups.contains_key(&hb.group_id) {
            return Err(Refused::new(
                codes::UNKNOWN_MEMBER_ID,
                format!(
                    "Member {} is not a member of group {}.",
                    hb.member_id, hb.group_id
                ),
            ));
        }
        let group = self
            .groups
            .entry(hb.group_id.clone())
            .or_insert_with(|| ConsumerGroup::new(&hb.group_id));
        let since = *self.serving_since_ms.get_or_insert(now_ms);
        let grace = stored && now_ms < since.saturating_add(config.startup_grace_ms);
        let out = group.heartbeat(hb, topics, config, now_ms, grace);
        if group.members.is_empty() && group.group_epoch == 0 {
            // A join that failed left nothing worth keeping.
            let id = group.id.clone();
            self.groups.remove(&id);
        }
        out
    }

    /// Removes members whose session or revocation deadline has passed.
    pub fn tick(&mut self, now_ms: i64) {
        self.serving_since_ms.get_or_insert(now_ms);
        for g in self.groups.values_mut() {
            g.tick(now_ms);
        }
    }

    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.groups
            .values()
            .filter_map(|g| g.next_deadline_ms())
            .min()
    }

    /// Ids of the groups with members.
    pub fn active(&self) -> BTreeSet<String> {
        self.groups
            .values()
            .filter(|g| !g.members.is_empty())
            .map(|g| g.id.clone())
            .collect()
    }

    /// OffsetCommit and OffsetFetch checks: None when `group_id` is not a
    /// consumer group, else the error code (NONE when accepted). Epoch -1
    /// with no member id is an admin or manual-assignment commit, accepted
    /// while the group has no members.
    pub fn check_offsets(&self, group_id: &str, member_id: &str, member_epoch: i32) -> Option<i16> {
        let g = self.groups.get(group_id)?;
        if member_epoch < 0 && member_id.is_empty() && g.members.is_empty() {
            return Some(codes::NONE);
        }
        Some(match g.members.get(member_id) {
            None => codes::UNKNOWN_MEMBER_ID,
            Some(m) if m.epoch != member_epoch => errors::STALE_MEMBER_EPOCH,
            Some(_) => codes::NONE,
        })
    }
}
