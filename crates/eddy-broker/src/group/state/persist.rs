//! What `__consumer_offsets` keeps of a classic group, and taking a group
//! back from it at start.

use super::{Group, GroupConfig, State};
use crate::group::member::Member;
use crate::group::records::{GroupMetadata, MemberMetadata};

impl Group {
    /// The group as `__consumer_offsets` records it.
    pub fn metadata(&self, now_ms: i64) -> GroupMetadata {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupMetadata {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: now_ms,
            members: self
                .members
                .iter()
                .map(|m| MemberMetadata {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(&protocol).to_vec(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        }
    }

    /// Takes back a group recorded in `__consumer_offsets` at start (later
    /// records replace earlier ones). As in Kafka, members come back with a
    /// fresh session, so consumers carry on across a broker restart with
    /// their member ids, generation and assignments, and a member that does
    /// not come back is dropped when its session runs out. A record written
    /// when a join phase ended but before the leader's assignment (no member
    /// has one) cannot be resumed: the group rebalances.
    pub fn restore(&mut self, m: &GroupMetadata, now_ms: i64, config: &GroupConfig) {
        assert!(
            self.members.iter().all(|m| !m.waiting()),
            "groups are restored before serving"
        );
        self.generation = m.generation;
        self.protocol_type = (!m.protocol_type.is_empty()).then(|| m.protocol_type.clone());
        self.protocol_name = m.protocol.clone();
        self.leader = None;
        self.members.clear();
        self.static_members.clear();
        self.join_deadline_ms = None;
        self.state = State::Empty;
        let Some(protocol) = m.protocol.clone().filter(|_| !m.members.is_empty()) else {
            return;
        };
        for r in &m.members {
            let member = Member::restored(r, &protocol, &self.protocol_type, now_ms);
            if let Some(instance) = &r.instance_id {
                self.static_members
                    .insert(instance.clone(), r.member_id.clone());
            }
            self.members.push(member);
        }
        self.leader = m
            .leader
            .clone()
            .filter(|l| self.members.iter().any(|x| &x.id == l))
            .or_else(|| self.members.first().map(|x| x.id.clone()));
        // Stable either way first: a group that comes back with members is
        // not a new group, so no initial delay applies to its rebalance.
        self.state = State::Stable;
        if m.members.iter().all(|r| r.assignment.is_empty()) {
            self.prepare_rebalance(now_ms, config);
        }
    }

    /// What `__consumer_offsets` keeps of the group: a change of it is
    /// written (a new generation, assignments in place, a member gone or
    /// replaced — a static member rejoining under a new member id must be
    /// recorded, or after a restart its old id would fence the live one).
    /// Members joining mid-rebalance are not written: the record would
    /// otherwise restore them as Stable members with no assignment.
    pub fn persisted_view(&self) -> (i32, bool, bool, Vec<String>) {
        let stable = self.state == State::Stable;
        let ids = if stable {
            self.members.iter().map(|m| m.id.clone()).collect()
        } else {
            Vec::new()
        };
        (self.generation, stable, self.members.is_empty(), ids)
    }
}
