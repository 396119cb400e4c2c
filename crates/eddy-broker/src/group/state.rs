//! The classic group state machine (Kafka's GroupMetadata and the
//! rebalance logic of its GroupCoordinator), sans-io: time comes in as
//! `now_ms`, waiting requests are oneshot senders kept on the members, and
//! [`Group::tick`] fires whatever timer has come due.
//!
//! ```text
//! Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
//!   ^                  ^      |                                   |
//!   |                  |      +--no members left--> Empty         | leader's SyncGroup
//!   |                  +---- join, leave, session expiry ----- Stable <-+
//! ```

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::codes;
use super::member::{JoinParams, JoinResult, JoinedMember, Member, SyncParams, SyncResult};
use super::offsets::Offsets;

mod persist;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl State {
    /// The name DescribeGroups and ListGroups use.
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

/// Coordinator settings, by Kafka's names.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout_ms: i32,
    /// `offsets.retention.minutes`, in ms: offsets of an Empty group older
    /// than this are deleted.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`
    pub offsets_retention_check_interval_ms: i64,
}

impl Default for GroupConfig {
    fn default() -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            offsets_retention_ms: 10_080 * 60_000,
            offsets_retention_check_interval_ms: 600_000,
        }
    }
}

/// The join phase of a new group waits `group.initial.rebalance.delay.ms`
/// and again (up to the rebalance timeout) while new members keep arriving,
/// so a group starting many consumers at once rebalances once.
#[derive(Debug, Clone, Copy)]
struct InitialDelay {
    delay_ms: i64,
    remaining_ms: i64,
    new_member_added: bool,
}

pub struct Group {
    pub id: String,
    pub state: State,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// Members by id, in the order they joined (the leader falls to the oldest).
    pub members: Vec<Member>,
    /// group.instance.id -> member id of the static member holding it.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, by the time they lapse.
    pub pending: BTreeMap<String, i64>,
    join_deadline_ms: Option<i64>,
    initial: Option<InitialDelay>,
    pub offsets: Offsets,
}

impl Group {
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: Vec::new(),
            static_members: HashMap::new(),
            pending: BTreeMap::new(),
            join_deadline_ms: None,
            initial: None,
            offsets: Offsets::default(),
        }
    }

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    /// Kafka's fencing check: a static member's instance id now belongs to
    /// another member id.
    pub fn is_fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        match instance_id.and_then(|i| self.static_members.get(i)) {
            Some(owner) => owner != member_id,
            None => false,
        }
    }

    /// Validates a member of the current generation (Heartbeat, OffsetCommit).
    pub fn check_member(&self, member_id: &str, instance_id: Option<&str>, generation: i32) -> i16 {
        if self.is_fenced(member_id, instance_id) {
            codes::FENCED_INSTANCE_ID
        } else if self.member(member_id).is_none() {
            codes::UNKNOWN_MEMBER_ID
        } else if generation != self.generation {
            codes::ILLEGAL_GENERATION
        } else {
            codes::NONE
        }
    }

    /// Protocols every member except `except` supports, in the order of the
    /// oldest such member's preference.
    fn candidate_protocols(&self, except: &str) -> Option<Vec<String>> {
        let mut others = self.members.iter().filter(|m| m.id != except);
        let first = others.next()?;
        let mut names: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in others {
            names.retain(|n| m.protocols.iter().any(|(p, _)| p == n));
        }
        Some(names)
    }

    fn supports(&self, member_id: &str, p: &JoinParams) -> bool {
        if p.protocol_type.is_empty() || p.protocols.is_empty() {
            return false;
        }
        match self.candidate_protocols(member_id) {
            None => true,
            Some(names) => {
                self.protocol_type.as_deref() == Some(p.protocol_type.as_str())
                    && p.protocols.iter().any(|(n, _)| names.contains(n))
            }
        }
    }

    /// Each member votes for its most preferred protocol that all support.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols("")?;
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for m in &self.members {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == name) {
                    v.1 += 1;
                }
            }
        }
        // max_by_key keeps the last of equals; iterate reversed to keep the first.
        votes
            .into_iter()
            .rev()
            .max_by_key(|(_, n)| *n)
            .map(|(c, _)| c)
    }

    fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
    }

    /// JoinGroup. The answer arrives on the receiver: at once for errors,
    /// when the join phase completes otherwise.
    pub fn join(
        &mut self,
        p: JoinParams,
        config: &GroupConfig,
        now_ms: i64,
    ) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if p.session_timeout_ms < config.min_session_timeout_ms
            || p.session_timeout_ms > config.max_session_timeout_ms
        {
            let _ = tx.send(JoinResult::error(
                codes::INVALID_SESSION_TIMEOUT,
                &p.member_id,
            ));
            return rx;
        }
        if !self.supports(&p.member_id, &p) {
            let _ = tx.send(JoinResult::error(
                codes::INCONSISTENT_GROUP_PROTOCOL,
                &p.member_id,
            ));
            return rx;
        }
        if p.member_id.is_empty() {
            self.join_unknown(p, tx, now_ms, config);
        } else {
            self.join_known(p, tx, now_ms, config);
        }
        rx
    }

    fn join_unknown(
        &mut self,
        p: JoinParams,
        tx: oneshot::Sender<JoinResult>,
        now_ms: i64,
        config: &GroupConfig,
    ) {
        let new_id = format!("{}-{}", p.client_id, uuid::Uuid::new_v4());
        if let Some(instance) = p.instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static(old_id, new_id, p, tx, now_ms, config);
            }
            // A new static member skips the member-id round trip.
            return self.add_member(new_id, p, tx, now_ms, config);
        }
        if p.require_known_member_id {
            self.pending
                .insert(new_id.clone(), now_ms + p.session_timeout_ms as i64);
            let _ = tx.send(JoinResult::error(codes::MEMBER_ID_REQUIRED, &new_id));
            return;
        }
        self.add_member(new_id, p, tx, now_ms, config)
    }

    fn join_known(
        &mut self,
        p: JoinParams,
        tx: oneshot::Sender<JoinResult>,
        now_ms: i64,
        config: &GroupConfig,
    ) {
        if self.pending.remove(&p.member_id).is_some() {
            let id = p.member_id.clone();
            return self.add_member(id, p, tx, now_ms, config);
        }
        if self.is_fenced(&p.member_id, p.instance_id.as_deref()) {
            let _ = tx.send(JoinResult::error(codes::FENCED_INSTANCE_ID, &p.member_id));
            return;
        }
        let leader = self.leader.as_deref() == Some(p.member_id.as_str());
        let unchanged = match self.member(&p.member_id) {
            None => {
                let _ = tx.send(JoinResult::error(codes::UNKNOWN_MEMBER_ID, &p.member_id));
                return;
            }
            Some(m) => m.same_protocols(&p.protocols),
        };
        match self.state {
            State::Empty | State::Dead => {
                let _ = tx.send(JoinResult::error(codes::UNKNOWN_MEMBER_ID, &p.member_id));
            }
            // A member that lost its JoinGroup answer asks again: same answer.
            State::CompletingRebalance if unchanged => {
                let _ = tx.send(self.join_result(&p.member_id, leader, false));
            }
            State::Stable if unchanged && !leader => {
                let _ = tx.send(self.join_result(&p.member_id, false, false));
            }
            _ => self.update_and_rebalance(p, tx, now_ms, config),
        }
    }

    /// A static member rejoined with a new member id: the old id is fenced.
    ///
    /// KIP-345: in Stable, when the group's protocol stays what it is, the
    /// member takes over its old assignment without a rebalance (its new
    /// subscription is kept for the next one). A rejoining leader is told
    /// to skip the assignment (JoinGroup v9+, KIP-814); an older client is
    /// answered as a follower, the leader id being its old member id, as
    /// Kafka does, so it asks SyncGroup for its assignment.
    fn replace_static(
        &mut self,
        old_id: String,
        new_id: String,
        p: JoinParams,
        tx: oneshot::Sender<JoinResult>,
        now_ms: i64,
        config: &GroupConfig,
    ) {
        let Some(m) = self.member_mut(&old_id) else {
            return self.add_member(new_id, p, tx, now_ms, config);
        };
        m.fail_waiters(codes::FENCED_INSTANCE_ID);
        m.id = new_id.clone();
        m.update(&p);
        m.heard_from(now_ms);
        if let Some(instance) = &p.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        let was_leader = self.leader.as_deref() == Some(old_id.as_str());
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        let same_protocol =
            self.protocol_name.is_some() && self.select_protocol() == self.protocol_name;
        if self.state != State::Stable || !same_protocol {
            let p = JoinParams {
                member_id: new_id,
                ..p
            };
            return self.update_and_rebalance(p, tx, now_ms, config);
        }
        let result = match (was_leader, p.supports_skip_assignment) {
            (true, true) => self.join_result(&new_id, true, true),
            (true, false) => JoinResult {
                leader: old_id,
                ..self.join_result(&new_id, false, false)
            },
            (false, _) => self.join_result(&new_id, false, false),
        };
        let _ = tx.send(result);
    }

    fn add_member(
        &mut self,
        id: String,
        p: JoinParams,
        tx: oneshot::Sender<JoinResult>,
        now_ms: i64,
        config: &GroupConfig,
    ) {
        let mut m = Member::new(id.clone(), &p, now_ms);
        m.join_waiter = Some(tx);
        if let Some(instance) = &p.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(p.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id);
        }
        self.members.push(m);
        if let (State::PreparingRebalance, Some(initial)) = (self.state, self.initial.as_mut()) {
            initial.new_member_added = true;
        }
        self.rebalance(now_ms, config);
    }

    fn update_and_rebalance(
        &mut self,
        p: JoinParams,
        tx: oneshot::Sender<JoinResult>,
        now_ms: i64,
        config: &GroupConfig,
    ) {
        let m = self
            .member_mut(&p.member_id)
            .expect("caller checked membership");
        m.update(&p);
        m.join_waiter = Some(tx);
        self.rebalance(now_ms, config);
    }

    /// Starts a rebalance unless one is under way, then completes the join
    /// phase if everyone is in.
    fn rebalance(&mut self, now_ms: i64, config: &GroupConfig) {
        if matches!(
            self.state,
            State::Empty | State::Stable | State::CompletingRebalance
        ) {
            self.prepare_rebalance(now_ms, config);
        }
        self.maybe_complete_join(now_ms);
    }

    fn prepare_rebalance(&mut self, now_ms: i64, config: &GroupConfig) {
        if self.state == State::CompletingRebalance {
            for m in &mut self.members {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(codes::REBALANCE_IN_PROGRESS));
                }
                m.assignment = Bytes::new();
            }
        }
        if self.state == State::Empty {
            let delay_ms = config.initial_rebalance_delay_ms.max(0);
            self.initial = Some(InitialDelay {
                delay_ms,
                remaining_ms: (self.rebalance_timeout_ms() - delay_ms).max(0),
                new_member_added: false,
            });
            self.join_deadline_ms = Some(now_ms + delay_ms);
        } else {
            self.initial = None;
            self.join_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
        }
        tracing::info!(group = %self.id, generation = self.generation, "preparing to rebalance");
        self.state = State::PreparingRebalance;
    }

    fn maybe_complete_join(&mut self, now_ms: i64) {
        let all_joined = self.members.iter().all(|m| m.join_waiter.is_some());
        if self.state == State::PreparingRebalance
            && self.initial.is_none()
            && all_joined
            && self.pending.is_empty()
        {
            self.complete_join(now_ms);
        }
    }

    /// The join phase ends: members that did not rejoin are dropped (static
    /// ones keep their place), a new generation starts and every joined
    /// member learns it; the leader also learns everyone's metadata.
    fn complete_join(&mut self, now_ms: i64) {
        self.initial = None;
        self.join_deadline_ms = None;
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove(&id, codes::UNKNOWN_MEMBER_ID);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.protocol_type = None;
            self.leader = None;
            self.state = State::Empty;
            tracing::info!(group = %self.id, generation = self.generation, "group is empty");
            return;
        }
        let leader_joined = self
            .leader
            .as_deref()
            .and_then(|l| self.member(l))
            .is_some_and(|m| m.join_waiter.is_some());
        if !leader_joined {
            let first = self.members.iter().find(|m| m.join_waiter.is_some());
            self.leader = first.or(self.members.first()).map(|m| m.id.clone());
        }
        self.protocol_name = self.select_protocol();
        self.state = State::CompletingRebalance;
        // Kafka's pending-sync timeout: members that have not sent SyncGroup
        // within the rebalance timeout are removed, so a leader that joined
        // and never assigns cannot hold the group forever.
        self.join_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(), protocol = ?self.protocol_name, "rebalance: join phase complete");
        let leader = self.leader.clone().unwrap_or_default();
        let ids: Vec<String> = self.members.iter().map(|m| m.id.clone()).collect();
        for id in ids {
            let result = self.join_result(&id, id == leader, false);
            let m = self.member_mut(&id).expect("listed above");
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(result);
                m.heard_from(now_ms);
            }
        }
    }

    fn join_result(
        &self,
        member_id: &str,
        with_members: bool,
        skip_assignment: bool,
    ) -> JoinResult {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if with_members {
            self.members
                .iter()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: codes::NONE,
            member_id: member_id.to_string(),
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment,
            members,
        }
    }

    /// SyncGroup. Followers wait for the leader's assignment; in Stable a
    /// member gets its current assignment at once.
    pub fn sync(&mut self, p: SyncParams, now_ms: i64) -> oneshot::Receiver<SyncResult> {
        let (tx, rx) = oneshot::channel();
        let error = self.check_member(&p.member_id, p.instance_id.as_deref(), p.generation);
        let inconsistent = p
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref())
            || p.protocol_name
                .as_ref()
                .is_some_and(|n| Some(n) != self.protocol_name.as_ref());
        let error = match (error, self.state) {
            (codes::NONE, _) if inconsistent => codes::INCONSISTENT_GROUP_PROTOCOL,
            (codes::NONE, State::Empty | State::Dead) => codes::UNKNOWN_MEMBER_ID,
            (codes::NONE, State::PreparingRebalance) => codes::REBALANCE_IN_PROGRESS,
            (e, _) => e,
        };
        if error != codes::NONE {
            let _ = tx.send(SyncResult::error(error));
            return rx;
        }
        let result = |g: &Group, assignment: Bytes| SyncResult {
            error: codes::NONE,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            assignment,
        };
        let stable = self.state == State::Stable;
        let m = self.member_mut(&p.member_id).expect("checked above");
        m.heard_from(now_ms);
        if stable {
            let assignment = m.assignment.clone();
            let _ = tx.send(result(self, assignment));
            return rx;
        }
        m.sync_waiter = Some(tx);
        if self.leader.as_deref() != Some(p.member_id.as_str()) {
            return rx;
        }
        for m in &mut self.members {
            m.assignment = p
                .assignments
                .iter()
                .find(|(id, _)| *id == m.id)
                .map(|(_, a)| a.clone())
                .unwrap_or_default();
        }
        self.state = State::Stable;
        self.join_deadline_ms = None;
        tracing::info!(group = %self.id, generation = self.generation, "group is stable");
        let answers: Vec<_> = self
            .members
            .iter()
            .map(|m| result(self, m.assignment.clone()))
            .collect();
        for (m, answer) in self.members.iter_mut().zip(answers) {
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(answer);
            }
        }
        rx
    }

    /// Heartbeat: keeps the session alive and tells the member to rejoin
    /// while a rebalance is under way.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> i16 {
        let error = self.check_member(member_id, instance_id, generation);
        if error != codes::NONE {
            return error;
        }
        match self.state {
            State::Empty | State::Dead => return codes::UNKNOWN_MEMBER_ID,
            _ => {}
        }
        self.member_mut(member_id)
            .expect("checked above")
            .heard_from(now_ms);
        if self.state == State::PreparingRebalance {
            codes::REBALANCE_IN_PROGRESS
        } else {
            codes::NONE
        }
    }

    /// LeaveGroup for one member (identified by id, instance id or both).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
        config: &GroupConfig,
    ) -> i16 {
        let id = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                Some(owner) if member_id.is_empty() || owner == member_id => owner.clone(),
                Some(_) => return codes::FENCED_INSTANCE_ID,
                None => return codes::UNKNOWN_MEMBER_ID,
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&id).is_some() {
            self.maybe_complete_join(now_ms);
            return codes::NONE;
        }
        if self.member(&id).is_none() {
            return codes::UNKNOWN_MEMBER_ID;
        }
        tracing::info!(group = %self.id, member = %id, "member left");
        self.remove_and_rebalance(&id, now_ms, config);
        codes::NONE
    }

    fn remove(&mut self, id: &str, error: i16) {
        let Some(at) = self.members.iter().position(|m| m.id == id) else {
            return;
        };
        let mut m = self.members.remove(at);
        m.fail_waiters(error);
        if let Some(instance) = &m.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(id) {
                self.static_members.remove(instance);
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
    }

    fn remove_and_rebalance(&mut self, id: &str, now_ms: i64, config: &GroupConfig) {
        self.remove(id, codes::UNKNOWN_MEMBER_ID);
        match self.state {
            State::Stable | State::CompletingRebalance => self.rebalance(now_ms, config),
            State::PreparingRebalance => self.maybe_complete_join(now_ms),
            State::Empty | State::Dead => {}
        }
    }

    /// Fires every timer due at `now_ms`: lapsed pending member ids, expired
    /// sessions, the end of the join phase.
    pub fn tick(&mut self, now_ms: i64, config: &GroupConfig) {
        let before = self.pending.len();
        self.pending.retain(|_, deadline| *deadline > now_ms);
        if self.pending.len() != before {
            self.maybe_complete_join(now_ms);
        }
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|m| !m.waiting() && m.session_deadline_ms <= now_ms)
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "session timed out; removing member");
            self.remove_and_rebalance(&id, now_ms, config);
        }
        if self.join_deadline_ms.is_none_or(|d| d > now_ms) {
            return;
        }
        if self.state == State::CompletingRebalance {
            return self.expire_pending_sync(now_ms, config);
        }
        if self.state != State::PreparingRebalance {
            return;
        }
        match self.initial.as_mut() {
            Some(i) if i.new_member_added && i.remaining_ms > 0 => {
                let delay_ms = i.delay_ms.min(i.remaining_ms);
                i.remaining_ms = (i.remaining_ms - delay_ms).max(0);
                i.new_member_added = false;
                self.join_deadline_ms = Some(now_ms + delay_ms);
            }
            _ => self.complete_join(now_ms),
        }
    }

    /// The earliest time [`Group::tick`] has something to do.
    fn expire_pending_sync(&mut self, now_ms: i64, config: &GroupConfig) {
        self.join_deadline_ms = None;
        let unsynced: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.sync_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in unsynced {
            tracing::info!(group = %self.id, member = %id, "no SyncGroup within the rebalance timeout; removing member");
            self.remove_and_rebalance(&id, now_ms, config);
        }
    }

    pub fn next_deadline_ms(&self) -> Option<i64> {
        let sessions = self
            .members
            .iter()
            .filter(|m| !m.waiting())
            .map(|m| m.session_deadline_ms);
        let join = self.join_deadline_ms.filter(|_| {
            matches!(
                self.state,
                State::PreparingRebalance | State::CompletingRebalance
            )
        });
        sessions
            .chain(self.pending.values().copied())
            .chain(join)
            .min()
    }
}
