//! The group's coordinator and the requests a member sends it: JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch. Each returns the broker's answer;
//! what an error code means for the membership is decided by the caller.
//!
//! A member talks to its coordinator over a connection of its own, as the Java client does
//! (it gives the coordinator a separate node id for this). A Kafka broker reads one request
//! of a connection at a time, so a JoinGroup parked until the rebalance ends would stall
//! every other request on a shared connection, including another member's JoinGroup, which
//! the first one waits for. Its request timeout covers the rebalance timeout; every other
//! request is held to `request.timeout.ms` by [`Coordinator::call`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::{Request, StrBytes};

use crate::admin::Admin;
use crate::client::{topic_name, Client};
use crate::connection::Connection;
use crate::error::{Error, KafkaCode, Result};
use crate::record::TopicPartition;

use super::codes;

/// The protocol type of consumer groups.
const PROTOCOL_TYPE: &str = "consumer";
/// OffsetCommit v9 commits by member epoch (KIP-848); v8 is the classic one.
const OFFSET_COMMIT_VERSION_MAX: i16 = 8;
/// The newest OffsetFetch version with one group per request; v8+ batch groups.
const OFFSET_FETCH_VERSION_MAX: i16 = 7;
/// How long past the rebalance timeout a JoinGroup answer is waited for, as Java's 5 s.
const JOIN_GRACE_MS: u64 = 5_000;

/// Who this member is in its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub group_id: String,
    /// Empty before the coordinator gave one.
    pub member_id: String,
    /// -1 outside a generation.
    pub generation_id: i32,
    pub instance_id: Option<String>,
}

/// What a JoinGroup asks for.
pub struct JoinRequest<'a> {
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol: &'a str,
    pub metadata: Bytes,
    pub reason: &'a str,
}

/// A dedicated connection to the group's coordinator.
#[derive(Clone)]
pub struct Coordinator {
    pub node_id: i32,
    conn: Arc<Connection>,
    /// `request.timeout.ms`, for every request but JoinGroup.
    request_timeout_ms: u64,
    retry_backoff_ms: u64,
}

impl Coordinator {
    /// Finds the coordinator of `group_id` (FindCoordinator, key type 0) and connects to it.
    pub async fn find(client: &Client, group_id: &str, rebalance_timeout_ms: i32) -> Result<Self> {
        let (node_id, shared) = Admin::new(client.clone())
            .group_coordinator(group_id)
            .await?;
        let mut config = client.config().connection.clone();
        let request_timeout_ms = config.request_timeout_ms;
        let join_timeout_ms = u64::try_from(rebalance_timeout_ms).unwrap_or(0) + JOIN_GRACE_MS;
        config.request_timeout_ms = request_timeout_ms.max(join_timeout_ms);
        let conn = Arc::new(Connection::connect(shared.addr(), config).await?);
        Ok(Coordinator {
            node_id,
            conn,
            request_timeout_ms,
            retry_backoff_ms: client.config().retry_backoff_ms,
        })
    }

    pub fn addr(&self) -> &str {
        self.conn.addr()
    }

    /// Ends the connection gracefully.
    pub async fn close(&self) {
        self.conn.close().await;
    }

    fn version(&self, key: ApiKey, max: i16) -> Result<i16> {
        Ok(self.conn.version(key)?.min(max))
    }

    /// Sends `request` and waits at most `timeout_ms` (None: the connection's own timeout,
    /// which covers a rebalance). A request given up on leaves the connection broken.
    async fn call<R: Request>(
        &self,
        request: &R,
        version: i16,
        timeout_ms: Option<u64>,
    ) -> Result<R::Response> {
        let pending = self.conn.dispatch(request, version).await?;
        let Some(timeout_ms) = timeout_ms else {
            return pending.wait().await;
        };
        match tokio::time::timeout(Duration::from_millis(timeout_ms), pending.wait()).await {
            Ok(result) => result,
            Err(_elapsed) => {
                self.conn.mark_broken("a group request timed out");
                Err(Error::Timeout {
                    what: format!(
                        "{} request to {}",
                        crate::frame::api_name(R::KEY),
                        self.conn.addr()
                    ),
                    timeout_ms,
                })
            }
        }
    }

    pub async fn join(&self, id: &Identity, join: JoinRequest<'_>) -> Result<JoinGroupResponse> {
        let version = self.version(ApiKey::JoinGroup, i16::MAX)?;
        if id.instance_id.is_some() && version < 5 {
            return Err(Error::Config(format!(
                "group.instance.id needs JoinGroup v5+; broker {} speaks v{version}",
                self.addr()
            )));
        }
        let mut request = JoinGroupRequest::default()
            .with_group_id(group_id(&id.group_id))
            .with_session_timeout_ms(join.session_timeout_ms)
            .with_member_id(text(&id.member_id))
            .with_group_instance_id(id.instance_id.as_deref().map(text))
            .with_protocol_type(text(PROTOCOL_TYPE))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(text(join.protocol))
                .with_metadata(join.metadata)]);
        if version >= 1 {
            request.rebalance_timeout_ms = join.rebalance_timeout_ms;
        }
        if version >= 8 {
            request.reason = Some(text(join.reason));
        }
        self.call(&request, version, None).await
    }

    /// SyncGroup; `assignments` (member id, bytes) are the leader's, empty for followers.
    pub async fn sync(
        &self,
        id: &Identity,
        protocol: &str,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<SyncGroupResponse> {
        let version = self.version(ApiKey::SyncGroup, i16::MAX)?;
        let mut request = SyncGroupRequest::default()
            .with_group_id(group_id(&id.group_id))
            .with_generation_id(id.generation_id)
            .with_member_id(text(&id.member_id))
            .with_assignments(
                assignments
                    .into_iter()
                    .map(|(member, bytes)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(text(&member))
                            .with_assignment(bytes)
                    })
                    .collect(),
            );
        if version >= 3 {
            request.group_instance_id = id.instance_id.as_deref().map(text);
        }
        if version >= 5 {
            request.protocol_type = Some(text(PROTOCOL_TYPE));
            request.protocol_name = Some(text(protocol));
        }
        // Followers wait for the leader's SyncGroup, which may take a rebalance timeout.
        self.call(&request, version, None).await
    }

    pub async fn heartbeat(&self, id: &Identity) -> Result<KafkaCode> {
        let version = self.version(ApiKey::Heartbeat, i16::MAX)?;
        let mut request = HeartbeatRequest::default()
            .with_group_id(group_id(&id.group_id))
            .with_generation_id(id.generation_id)
            .with_member_id(text(&id.member_id));
        if version >= 3 {
            request.group_instance_id = id.instance_id.as_deref().map(text);
        }
        let response = self
            .call(&request, version, Some(self.request_timeout_ms))
            .await?;
        Ok(KafkaCode(response.error_code))
    }

    /// LeaveGroup. A member the coordinator no longer knows has left already: not an error.
    pub async fn leave(&self, id: &Identity, reason: &str) -> Result<()> {
        let version = self.version(ApiKey::LeaveGroup, i16::MAX)?;
        let mut request = LeaveGroupRequest::default().with_group_id(group_id(&id.group_id));
        if version >= 3 {
            let mut member = MemberIdentity::default()
                .with_member_id(text(&id.member_id))
                .with_group_instance_id(id.instance_id.as_deref().map(text));
            if version >= 5 {
                member.reason = Some(text(reason));
            }
            request.members = vec![member];
        } else {
            request.member_id = text(&id.member_id);
        }
        let response = self
            .call(&request, version, Some(self.request_timeout_ms))
            .await?;
        let member_codes = response.members.iter().map(|m| m.error_code);
        let context = format!("leave group {:?}", id.group_id);
        for code in std::iter::once(response.error_code).chain(member_codes) {
            if code != codes::UNKNOWN_MEMBER_ID.0 {
                KafkaCode(code).check(&context)?;
            }
        }
        Ok(())
    }

    /// OffsetCommit as a member of generation `id.generation_id`; the first partition the
    /// broker refused is the error.
    pub async fn commit(&self, id: &Identity, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        let version = self.version(ApiKey::OffsetCommit, OFFSET_COMMIT_VERSION_MAX)?;
        let mut by_topic: std::collections::BTreeMap<&str, Vec<OffsetCommitRequestPartition>> =
            Default::default();
        for (tp, offset) in offsets {
            by_topic.entry(tp.topic.as_str()).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(*offset),
            );
        }
        let topics = by_topic
            .into_iter()
            .map(|(t, ps)| {
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name(t))
                    .with_partitions(ps)
            })
            .collect();
        let mut request = OffsetCommitRequest::default()
            .with_group_id(group_id(&id.group_id))
            .with_generation_id_or_member_epoch(id.generation_id)
            .with_member_id(text(&id.member_id))
            .with_topics(topics);
        if version >= 7 {
            request.group_instance_id = id.instance_id.as_deref().map(text);
        }
        let response = self
            .call(&request, version, Some(self.request_timeout_ms))
            .await?;
        for t in &response.topics {
            for p in &t.partitions {
                KafkaCode(p.error_code).check(format_args!(
                    "commit offset of {}-{} for group {:?} (generation {}, member {:?})",
                    t.name.0.as_str(),
                    p.partition_index,
                    id.group_id,
                    id.generation_id,
                    id.member_id
                ))?;
            }
        }
        Ok(())
    }

    /// Committed offsets of `partitions`, `None` where nothing is committed. Asks for stable
    /// offsets (v7+, KIP-447): while a transaction that commits offsets of a partition is
    /// open, the broker says UNSTABLE_OFFSET_COMMIT and we ask again, for at most
    /// `request.timeout.ms`, so a new owner does not start before the old one's commit.
    pub async fn committed(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<i64>)>> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.request_timeout_ms);
        loop {
            match self.committed_once(group, partitions).await {
                Err(e)
                    if e.kafka_code() == Some(codes::UNSTABLE_OFFSET_COMMIT)
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(self.retry_backoff_ms)).await;
                }
                other => return other,
            }
        }
    }

    async fn committed_once(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<i64>)>> {
        let version = self.version(ApiKey::OffsetFetch, OFFSET_FETCH_VERSION_MAX)?;
        let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = Default::default();
        for tp in partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        let topics = by_topic
            .into_iter()
            .map(|(t, ps)| {
                OffsetFetchRequestTopic::default()
                    .with_name(topic_name(t))
                    .with_partition_indexes(ps)
            })
            .collect();
        let mut request = OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(Some(topics));
        if version >= 7 {
            request.require_stable = true;
        }
        let response = self
            .call(&request, version, Some(self.request_timeout_ms))
            .await?;
        let context = format!("fetch committed offsets of group {group:?}");
        KafkaCode(response.error_code).check(&context)?;
        let mut found = std::collections::HashMap::new();
        for t in response.topics {
            for p in t.partitions {
                KafkaCode(p.error_code).check(&context)?;
                let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                // -1: nothing committed.
                found.insert(tp, (p.committed_offset >= 0).then_some(p.committed_offset));
            }
        }
        Ok(partitions
            .iter()
            .map(|tp| (tp.clone(), found.get(tp).copied().flatten()))
            .collect())
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn group_id(s: &str) -> GroupId {
    GroupId(text(s))
}
