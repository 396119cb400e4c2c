//! One consumer-protocol group (Kafka's ConsumerGroup and the heartbeat
//! logic of its GroupMetadataManager), sans-io.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use super::assignor::{self, MemberSpec, Spec};
use super::member::{ConsumerMember, MemberState};
use super::pattern::Pattern;
use super::reconcile::{reconcile, Target};
use super::{
    codes, errors, Assignment, ConsumerConfig, Heartbeat, HeartbeatAnswer, Refused, TopicMeta,
    Topics, LEAVE_EPOCH, LEAVE_STATIC_EPOCH,
};

/// The group's state as ListGroups and ConsumerGroupDescribe name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    /// The group epoch moved; the target is recomputed on the next heartbeat.
    Assigning,
    /// Some member has not reached its target yet.
    Reconciling,
    Stable,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::Assigning => "Assigning",
            GroupState::Reconciling => "Reconciling",
            GroupState::Stable => "Stable",
        }
    }
}

pub struct ConsumerGroup {
    pub id: String,
    pub group_epoch: i32,
    /// The group epoch the target assignment was computed at.
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    /// group.instance.id -> member id.
    pub static_members: HashMap<String, String>,
    /// Target assignment by member id.
    pub target: BTreeMap<String, Assignment>,
    /// Who holds each partition (assigned or pending revocation): the
    /// single source of "is this partition free to give".
    holders: HashMap<(Uuid, i32), String>,
    /// Subscribed topics as the last target saw them.
    subscribed: BTreeMap<String, TopicMeta>,
    /// The assignor the last target was computed with.
    pub assignor: &'static str,
    /// Set by a heartbeat that changed what the assignor sees: the group
    /// epoch moves once per heartbeat, however many things changed.
    changed: bool,
    /// Subscription patterns the group has resolved. As in Kafka, where a
    /// new pattern is resolved asynchronously, a pattern's topics join the
    /// target one heartbeat after the pattern first appears (librdkafka's
    /// tests expect literal topics first, matched ones next).
    resolved: BTreeSet<String>,
}

impl ConsumerGroup {
    pub fn new(id: &str) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            target: BTreeMap::new(),
            holders: HashMap::new(),
            subscribed: BTreeMap::new(),
            assignor: assignor::NAMES[0],
            changed: false,
            resolved: BTreeSet::new(),
        }
    }

    pub fn state(&self) -> GroupState {
        if self.members.is_empty() {
            GroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            GroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            GroupState::Reconciling
        } else {
            GroupState::Stable
        }
    }

    /// Who holds `partition` of `topic`, if anyone.
    pub fn holder(&self, topic: Uuid, partition: i32) -> Option<&str> {
        self.holders.get(&(topic, partition)).map(String::as_str)
    }

    /// One heartbeat: join, leave, or a step of reconciliation.
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        topics: &Topics,
        config: &ConsumerConfig,
        now_ms: i64,
        grace: bool,
    ) -> Result<HeartbeatAnswer, Refused> {
        if hb.member_epoch == LEAVE_EPOCH || hb.member_epoch == LEAVE_STATIC_EPOCH {
            return self.leave(&hb, now_ms, config);
        }
        let (id, joining) = self.member_for(&hb, config)?;
        let m = self
            .members
            .get_mut(&id)
            .expect("member_for returns a member");
        if !joining {
            check_epoch(m, hb.member_epoch, hb.owned.as_ref())?;
        }
        m.session_deadline_ms = now_ms + i64::from(config.session_timeout_ms);
        m.client_id.clone_from(&hb.client_id);
        m.client_host.clone_from(&hb.client_host);
        let full = hb.rebalance_timeout_ms != -1
            && (hb.topic_names.is_some() || hb.topic_regex.is_some())
            && hb.owned.is_some();
        self.changed |= update_subscription(m, &hb);
        self.refresh_target(topics, config);
        let before = self.members[&id].assigned.clone();
        self.reconcile_member(&id, hb.owned.as_ref(), now_ms, grace);
        self.resolve_patterns();
        let m = &self.members[&id];
        let changed = m.assigned != before;
        Ok(HeartbeatAnswer {
            member_id: id,
            member_epoch: m.epoch,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            assignment: (joining || full || changed).then(|| m.assigned.clone()),
        })
    }

    /// Finds the heartbeat's member, creating it on a join: (id, joining).
    fn member_for(
        &mut self,
        hb: &Heartbeat,
        config: &ConsumerConfig,
    ) -> Result<(String, bool), Refused> {
        let joining = hb.member_epoch == 0;
        let id = if hb.member_id.is_empty() {
            Uuid::new_v4().to_string()
        } else {
            hb.member_id.clone()
        };
        if let Some(instance) = &hb.instance_id {
            if let Some(owner) = self.static_members.get(instance).cloned() {
                if owner != id {
                    return self.replace_static(&owner, id, instance, joining);
                }
            } else if !joining {
                return Err(Refused::new(
                    codes::UNKNOWN_MEMBER_ID,
                    format!("Instance id {instance} is unknown."),
                ));
            }
        }
        if let Some(m) = self.members.get_mut(&id) {
            if joining {
                // A member rejoins with epoch 0 after losing its partitions
                // (fenced, or its session lapsed on its side).
                let held: Vec<(Uuid, i32)> = m.held().collect();
                m.reset();
                for key in held {
                    self.holders.remove(&key);
                }
            }
            return Ok((id, joining));
        }
        if !joining {
            return Err(Refused::new(
                codes::UNKNOWN_MEMBER_ID,
                format!("Member {id} is not a member of group {}.", self.id),
            ));
        }
        if self.members.len() >= config.max_size {
            return Err(Refused::new(
                errors::GROUP_MAX_SIZE_REACHED,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    config.max_size
                ),
            ));
        }
        let m = ConsumerMember::new(id.clone(), hb.instance_id.clone());
        if let Some(instance) = &hb.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        self.members.insert(id.clone(), m);
        tracing::info!(group = %self.id, member = %id, "member joins the consumer group");
        self.changed = true;
        Ok((id, true))
    }

    /// A static member's instance id comes with another member id: it takes
    /// over the old member if that one left with epoch -2, keeping its
    /// assignment and epoch.
    fn replace_static(
        &mut self,
        owner: &str,
        id: String,
        instance: &str,
        joining: bool,
    ) -> Result<(String, bool), Refused> {
        if !joining {
            return Err(Refused::new(
                codes::FENCED_INSTANCE_ID,
                format!("Instance id {instance} is now owned by member {owner}."),
            ));
        }
        let left = self.members.get(owner).is_some_and(|m| m.left_static);
        if !left {
            return Err(Refused::new(
                errors::UNRELEASED_INSTANCE_ID,
                format!("Static member {owner} with instance id {instance} has not left the group yet; a new member cannot take its instance id."),
            ));
        }
        let mut m = self.members.remove(owner).expect("checked above");
        m.id.clone_from(&id);
        m.left_static = false;
        for (topic, p) in m.held().collect::<Vec<_>>() {
            self.holders.insert((topic, p), id.clone());
        }
        if let Some(t) = self.target.remove(owner) {
            self.target.insert(id.clone(), t);
        }
        self.members.insert(id.clone(), m);
        self.static_members.insert(instance.to_string(), id.clone());
        // Answered as a join (with its assignment), though the member goes
        // on from the old member's epoch.
        Ok((id, true))
    }

    /// Epoch -1 (leave) or -2 (a static member leaves for now).
    fn leave(
        &mut self,
        hb: &Heartbeat,
        now_ms: i64,
        config: &ConsumerConfig,
    ) -> Result<HeartbeatAnswer, Refused> {
        let id = match &hb.instance_id {
            Some(instance) => match self.static_members.get(instance) {
                Some(owner) if *owner == hb.member_id => owner.clone(),
                Some(owner) => {
                    return Err(Refused::new(
                        codes::FENCED_INSTANCE_ID,
                        format!("Instance id {instance} is owned by member {owner}."),
                    ))
                }
                None => hb.member_id.clone(),
            },
            None => hb.member_id.clone(),
        };
        let Some(m) = self.members.get_mut(&id) else {
            return Err(Refused::new(
                codes::UNKNOWN_MEMBER_ID,
                format!("Member {id} is not a member of group {}.", self.id),
            ));
        };
        if hb.member_epoch == LEAVE_STATIC_EPOCH {
            tracing::info!(group = %self.id, member = %id, "static member leaves for now");
            m.left_static = true;
            m.session_deadline_ms = now_ms + i64::from(config.session_timeout_ms);
        } else {
            tracing::info!(group = %self.id, member = %id, "member leaves the consumer group");
            self.remove(&id);
        }
        Ok(HeartbeatAnswer {
            member_id: id,
            member_epoch: hb.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        })
    }

    /// Removes a member, freeing what it held, and moves the group epoch.
    pub fn remove(&mut self, id: &str) {
        let Some(m) = self.members.remove(id) else {
            return;
        };
        for key in m.held() {
            if self.holders.get(&key).map(String::as_str) == Some(id) {
                self.holders.remove(&key);
            }
        }
        if let Some(instance) = &m.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(id) {
                self.static_members.remove(instance);
            }
        }
        self.target.remove(id);
        // A pattern nobody uses any more is forgotten: whoever subscribes to
        // it next waits for it to be resolved again, as in Kafka.
        let used: BTreeSet<&String> = self
            .members
            .values()
            .filter_map(|m| m.topic_regex.as_ref())
            .collect();
        self.resolved.retain(|r| used.contains(r));
        self.bump("member removed");
    }

    fn bump(&mut self, why: &str) {
        self.group_epoch += 1;
        tracing::debug!(group = %self.id, epoch = self.group_epoch, why, "group epoch bumped");
    }

    /// Topics the members subscribe to (by name or pattern), as they are now.
    fn subscribed_topics(&self, topics: &Topics) -> BTreeMap<String, TopicMeta> {
        let names: BTreeSet<&str> = self
            .members
            .values()
            .flat_map(|m| m.topic_names.iter().map(String::as_str))
            .collect();
        let patterns: Vec<Pattern> = self
            .members
            .values()
            .filter_map(|m| m.topic_regex.as_ref())
            .filter(|r| self.resolved.contains(*r))
            .filter_map(|r| Pattern::compile(r).ok())
            .collect();
        topics
            .iter()
            .filter(|(name, _)| {
                names.contains(name.as_str()) || patterns.iter().any(|p| p.matches(name))
            })
            .map(|(name, meta)| (name.clone(), *meta))
            .collect()
    }

    /// Marks the members' new patterns resolved, for the next heartbeat to
    /// take their topics in; forgets patterns nobody uses.
    fn resolve_patterns(&mut self) {
        let used: BTreeSet<String> = self
            .members
            .values()
            .filter_map(|m| m.topic_regex.clone())
            .collect();
        if used.iter().any(|r| !self.resolved.contains(r)) {
            self.changed = true;
        }
        self.resolved = used;
    }

    /// Moves the group epoch if the subscribed topics changed, then
    /// recomputes the target if the group epoch is ahead of it.
    fn refresh_target(&mut self, topics: &Topics, config: &ConsumerConfig) {
        let subscribed = self.subscribed_topics(topics);
        if subscribed != self.subscribed {
            self.subscribed = subscribed;
            self.changed = true;
        }
        if std::mem::take(&mut self.changed) {
            self.bump("members, subscriptions or topics changed");
        }
        if self.group_epoch <= self.assignment_epoch {
            return;
        }
        let assignor = self.choose_assignor(config);
        let specs: BTreeMap<String, MemberSpec> = self
            .members
            .values()
            .map(|m| {
                (
                    m.id.clone(),
                    member_spec(m, &self.subscribed, &self.resolved),
                )
            })
            .collect();
        let partitions: BTreeMap<Uuid, i32> = self
            .subscribed
            .values()
            .map(|t| (t.id, t.partitions))
            .collect();
        let spec = Spec {
            members: &specs,
            partitions: &partitions,
            current: &self.target,
        };
        self.target = assignor::assign(assignor, &spec);
        self.assignor = assignor;
        self.assignment_epoch = self.group_epoch;
        tracing::info!(group = %self.id, epoch = self.group_epoch, assignor, "target assignment computed");
    }

    /// The assignor most members ask for, else the configured default.
    fn choose_assignor(&self, config: &ConsumerConfig) -> &'static str {
        let mut votes: BTreeMap<&'static str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(name) = m.server_assignor.as_deref().and_then(assignor::canonical) {
                *votes.entry(name).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(name, n)| (*n, std::cmp::Reverse(*name)))
            .map(|(name, _)| name)
            .or_else(|| config.assignors.first().copied())
            .unwrap_or(assignor::NAMES[0])
    }

    /// One reconciliation step of member `id`; in the startup `grace`, every
    /// partition it does not hold counts as held by someone else.
    fn reconcile_member(&mut self, id: &str, owned: Option<&Assignment>, now_ms: i64, grace: bool) {
        let empty = Assignment::new();
        let target_assignment = self.target.get(id).unwrap_or(&empty);
        let holders = &self.holders;
        let held_by_other = |t: Uuid, p: i32| match holders.get(&(t, p)) {
            Some(h) => h != id,
            None => grace,
        };
        let target = Target {
            epoch: self.assignment_epoch,
            assignment: target_assignment,
            held_by_other: &held_by_other,
        };
        let m = self.members.get_mut(id).expect("reconciled members exist");
        let held_before: Vec<(Uuid, i32)> = m.held().collect();
        let was_revoking = m.state == MemberState::UnrevokedPartitions;
        reconcile(m, &target, owned);
        match (was_revoking, m.state == MemberState::UnrevokedPartitions) {
            (false, true) => {
                m.revocation_deadline_ms = Some(now_ms + i64::from(m.rebalance_timeout_ms));
            }
            (_, false) => m.revocation_deadline_ms = None,
            (true, true) => {}
        }
        let held_after: Vec<(Uuid, i32)> = m.held().collect();
        for key in held_before {
            if self.holders.get(&key).map(String::as_str) == Some(id) {
                self.holders.remove(&key);
            }
        }
        for key in held_after {
            let previous = self.holders.insert(key, id.to_string());
            debug_assert!(
                previous.as_deref().is_none_or(|p| p == id),
                "partition {key:?} given to {id} while {previous:?} holds it"
            );
        }
    }

    /// Removes members whose session lapsed or who did not revoke in time.
    pub fn tick(&mut self, now_ms: i64) {
        let due: Vec<(String, &'static str)> = self
            .members
            .values()
            .filter_map(|m| {
                if m.session_deadline_ms <= now_ms {
                    Some((m.id.clone(), "session timed out"))
                } else if m.revocation_deadline_ms.is_some_and(|d| d <= now_ms) {
                    Some((m.id.clone(), "did not revoke within its rebalance timeout"))
                } else {
                    None
                }
            })
            .collect();
        for (id, why) in due {
            tracing::info!(group = %self.id, member = %id, why, "removing member");
            self.remove(&id);
        }
    }

    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.members
            .values()
            .flat_map(|m| std::iter::once(m.session_deadline_ms).chain(m.revocation_deadline_ms))
            .min()
    }
}

/// A heartbeat's epoch against the member's (Kafka's
/// throwIfMemberEpochIsInvalid): ahead is fenced; behind is accepted only
/// as the previous epoch with owned partitions within the assignment (the
/// answer that bumped it was lost).
fn check_epoch(m: &ConsumerMember, epoch: i32, owned: Option<&Assignment>) -> Result<(), Refused> {
    let fenced = |how: &str| {
        Refused::new(
            errors::FENCED_MEMBER_EPOCH,
            format!(
                "The consumer group member has a {how} member epoch ({epoch}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                m.epoch
            ),
        )
    };
    if epoch > m.epoch {
        return Err(fenced("greater"));
    }
    if epoch < m.epoch {
        let within = owned.is_some_and(|o| {
            o.iter()
                .all(|(t, ps)| ps.is_empty() || m.assigned.get(t).is_some_and(|a| ps.is_subset(a)))
        });
        if epoch != m.previous_epoch || !within {
            return Err(fenced("smaller"));
        }
    }
    Ok(())
}

/// Applies what the heartbeat says of the subscription; true if it changed
/// what the assignor sees.
fn update_subscription(m: &mut ConsumerMember, hb: &Heartbeat) -> bool {
    let mut changed = false;
    if let Some(names) = &hb.topic_names {
        let mut names = names.clone();
        names.sort();
        names.dedup();
        changed |= names != m.topic_names;
        m.topic_names = names;
    }
    if let Some(regex) = &hb.topic_regex {
        let regex = (!regex.is_empty()).then(|| regex.clone());
        changed |= regex != m.topic_regex;
        m.topic_regex = regex;
    }
    if let Some(name) = &hb.server_assignor {
        let name = Some(name.clone());
        changed |= name != m.server_assignor;
        m.server_assignor = name;
    }
    if hb.rack_id.is_some() {
        m.rack_id.clone_from(&hb.rack_id);
    }
    if hb.rebalance_timeout_ms >= 0 {
        m.rebalance_timeout_ms = hb.rebalance_timeout_ms;
    }
    changed
}

fn member_spec(
    m: &ConsumerMember,
    subscribed: &BTreeMap<String, TopicMeta>,
    resolved: &BTreeSet<String>,
) -> MemberSpec {
    let pattern = m
        .topic_regex
        .as_ref()
        .filter(|r| resolved.contains(*r))
        .and_then(|r| Pattern::compile(r).ok());
    let topics = subscribed
        .iter()
        .filter(|(name, _)| {
            m.topic_names.contains(name) || pattern.as_ref().is_some_and(|p| p.matches(name))
        })
        .map(|(_, t)| t.id)
        .collect();
    MemberSpec { topics }
}
