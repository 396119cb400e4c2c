//! A member of a consumer-protocol group and its reconciliation state.

use super::Assignment;

/// Where a member is on its way to its target assignment (Kafka's
/// `MemberState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Owns its target assignment at the target epoch.
    Stable,
    /// Must give up `revoking` before it gets anything new; it stays at its
    /// epoch until it acknowledges (owned partitions without them).
    UnrevokedPartitions,
    /// At the target epoch, waiting for partitions other members still own.
    UnreleasedPartitions,
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub topic_names: Vec<String>,
    pub topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub state: MemberState,
    pub epoch: i32,
    /// The epoch before the last bump: a member whose answer was lost may
    /// still send it.
    pub previous_epoch: i32,
    /// What the member may own now (sent to it as its assignment).
    pub assigned: Assignment,
    /// What it still owns but must give up; nobody else gets these yet.
    pub revoking: Assignment,
    pub session_deadline_ms: i64,
    /// Set while the member must revoke: it is removed if it has not by then.
    pub revocation_deadline_ms: Option<i64>,
    /// A static member that left with epoch -2: it keeps its partitions
    /// until its session ends or its instance id rejoins.
    pub left_static: bool,
}

impl ConsumerMember {
    pub fn new(id: String, instance_id: Option<String>) -> ConsumerMember {
        ConsumerMember {
            id,
            instance_id,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms: 0,
            topic_names: Vec::new(),
            topic_regex: None,
            server_assignor: None,
            state: MemberState::Stable,
            epoch: 0,
            previous_epoch: 0,
            assigned: Assignment::new(),
            revoking: Assignment::new(),
            session_deadline_ms: 0,
            revocation_deadline_ms: None,
            left_static: false,
        }
    }

    /// Every partition the member may still be consuming.
    pub fn held(&self) -> impl Iterator<Item = (uuid::Uuid, i32)> + '_ {
        self.assigned
            .iter()
            .chain(self.revoking.iter())
            .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
    }

    /// Forgets what the member held: it rejoined with epoch 0, having given
    /// up its partitions.
    pub fn reset(&mut self) {
        self.state = MemberState::Stable;
        self.epoch = 0;
        self.previous_epoch = 0;
        self.assigned.clear();
        self.revoking.clear();
        self.revocation_deadline_ms = None;
        self.left_static = false;
    }

    pub fn set_epoch(&mut self, epoch: i32) {
        if epoch != self.epoch {
            self.previous_epoch = self.epoch;
            self.epoch = epoch;
        }
    }
}
