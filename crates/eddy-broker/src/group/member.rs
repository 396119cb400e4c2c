//! A member of a classic group and the answers it may be waiting for.

use bytes::Bytes;
use tokio::sync::oneshot;

use super::records::MemberMetadata;

/// What a JoinGroup request learns when its join completes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinResult {
    pub error: i16,
    pub member_id: String,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    /// Every member's metadata for the chosen protocol; the leader's answer only.
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    pub fn error(error: i16, member_id: &str) -> JoinResult {
        JoinResult {
            error,
            member_id: member_id.to_string(),
            generation: -1,
            ..JoinResult::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// What a SyncGroup request learns: the member's assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: i16) -> SyncResult {
        SyncResult {
            error,
            ..SyncResult::default()
        }
    }
}

/// A JoinGroup request as the state machine sees it.
#[derive(Debug, Clone, Default)]
pub struct JoinParams {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: an unknown member gets MEMBER_ID_REQUIRED and must rejoin with its id.
    pub require_known_member_id: bool,
    /// v9+: a rejoining static leader may be told to skip assignment (KIP-814).
    pub supports_skip_assignment: bool,
}

/// A SyncGroup request as the state machine sees it.
#[derive(Debug, Clone, Default)]
pub struct SyncParams {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignments by member id; ignored from other members.
    pub assignments: Vec<(String, Bytes)>,
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// Set while the member waits in JoinGroup for the rebalance to complete.
    pub join_waiter: Option<oneshot::Sender<JoinResult>>,
    /// Set while the member waits in SyncGroup for the leader's assignment.
    pub sync_waiter: Option<oneshot::Sender<SyncResult>>,
    /// The session ends at this time unless a heartbeat (or join/sync) extends it.
    pub session_deadline_ms: i64,
}

impl Member {
    pub fn new(id: String, p: &JoinParams, now_ms: i64) -> Member {
        Member {
            id,
            instance_id: p.instance_id.clone(),
            client_id: p.client_id.clone(),
            client_host: p.client_host.clone(),
            session_timeout_ms: p.session_timeout_ms,
            rebalance_timeout_ms: p.rebalance_timeout_ms,
            protocol_type: p.protocol_type.clone(),
            protocols: p.protocols.clone(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            session_deadline_ms: now_ms + p.session_timeout_ms as i64,
        }
    }

    /// A member as `__consumer_offsets` recorded it, with a fresh session.
    pub fn restored(
        r: &MemberMetadata,
        protocol: &str,
        protocol_type: &Option<String>,
        now_ms: i64,
    ) -> Member {
        Member {
            id: r.member_id.clone(),
            instance_id: r.instance_id.clone(),
            client_id: r.client_id.clone(),
            client_host: r.client_host.clone(),
            session_timeout_ms: r.session_timeout_ms,
            rebalance_timeout_ms: r.rebalance_timeout_ms,
            protocol_type: protocol_type.clone().unwrap_or_default(),
            protocols: vec![(protocol.to_string(), Bytes::from(r.subscription.clone()))],
            assignment: Bytes::from(r.assignment.clone()),
            join_waiter: None,
            sync_waiter: None,
            session_deadline_ms: now_ms + r.session_timeout_ms as i64,
        }
    }

    pub fn update(&mut self, p: &JoinParams) {
        self.client_id = p.client_id.clone();
        self.client_host = p.client_host.clone();
        self.session_timeout_ms = p.session_timeout_ms;
        self.rebalance_timeout_ms = p.rebalance_timeout_ms;
        self.protocol_type = p.protocol_type.clone();
        self.protocols = p.protocols.clone();
    }

    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    pub fn heard_from(&mut self, now_ms: i64) {
        self.session_deadline_ms = now_ms + self.session_timeout_ms as i64;
    }

    /// A member waiting in JoinGroup or SyncGroup is alive: its client is
    /// blocked on us, not failing to heartbeat.
    pub fn waiting(&self) -> bool {
        self.join_waiter.is_some() || self.sync_waiter.is_some()
    }

    /// Answers whatever the member waits for with `error` (it left, was
    /// fenced or removed).
    pub fn fail_waiters(&mut self, error: i16) {
        if let Some(w) = self.join_waiter.take() {
            let _ = w.send(JoinResult::error(error, &self.id));
        }
        if let Some(w) = self.sync_waiter.take() {
            let _ = w.send(SyncResult::error(error));
        }
    }
}
