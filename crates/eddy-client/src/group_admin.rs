//! Consumer group administration, as `kafka-consumer-groups` does it: ListGroups,
//! DescribeGroups (assignments decoded), OffsetFetch, OffsetCommit as an admin
//! (generation -1, no member id: the broker takes it only while the group is empty),
//! DeleteGroups and OffsetDelete. Every group request goes to the group's coordinator,
//! found with FindCoordinator.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::client::topic_name;
use crate::connection::Connection;
use crate::error::{Error, KafkaCode, Result};

/// GROUP_ID_NOT_FOUND: the group does not exist.
pub const GROUP_ID_NOT_FOUND: KafkaCode = KafkaCode(69);
/// NON_EMPTY_GROUP: the group has members.
pub const NON_EMPTY_GROUP: KafkaCode = KafkaCode(68);
/// The newest OffsetFetch version with one group per request; v8+ batch groups.
const OFFSET_FETCH_VERSION_MAX: i16 = 7;
/// OffsetCommit v9 commits by member epoch (KIP-848); v8 is the classic one.
const OFFSET_COMMIT_VERSION_MAX: i16 = 8;

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    /// `consumer` for consumer groups; empty for groups that only commit offsets.
    pub protocol_type: String,
    /// `Stable`, `Empty`...; `None` from brokers before ListGroups v4.
    pub state: Option<String>,
}

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    /// (topic, partitions) assigned, for `consumer` groups whose assignment decodes.
    pub assignment: Option<Vec<(String, Vec<i32>)>>,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    /// The assignor of consumer groups (`range`, `roundrobin`...), empty unless Stable.
    pub protocol: String,
    pub members: Vec<MemberDescription>,
    /// The coordinator's node id.
    pub coordinator: i32,
}

/// One committed offset of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub metadata: Option<String>,
}

impl Admin {
    /// The group's coordinator: its node id and a connection to it. Retries (bounded)
    /// while the coordinator is loading or not yet available.
    pub async fn group_coordinator(&self, group: &str) -> Result<(i32, Arc<Connection>)> {
        let client = self.client();
        let mut attempt = 0;
        loop {
            let conn = client.any_connection().await?;
            let version = conn.version(ApiKey::FindCoordinator)?;
            let mut request = FindCoordinatorRequest::default().with_key_type(0);
            // v4 looks up a batch of keys; before, one.
            if version >= 4 {
                request.coordinator_keys = vec![text(group)];
            } else {
                request.key = text(group);
            }
            let response = conn.dispatch(&request, version).await?.wait().await?;
            let (code, node, host, port, message) = match response.coordinators.first() {
                Some(c) if version >= 4 => (
                    c.error_code,
                    c.node_id.0,
                    c.host.to_string(),
                    c.port,
                    c.error_message.clone(),
                ),
                _ => (
                    response.error_code,
                    response.node_id.0,
                    response.host.to_string(),
                    response.port,
                    response.error_message.clone(),
                ),
            };
            let code = KafkaCode(code);
            if code.is_ok() {
                return Ok((node, client.connection(&format!("{host}:{port}")).await?));
            }
            if !code.is_retriable() || attempt >= client.config().metadata_retries {
                let context = format!("find the coordinator of group {group:?}");
                code.check_with_message(context, message.as_deref())?;
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(client.config().retry_backoff_ms)).await;
        }
    }

    /// Every group of every broker, sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let metadata = self.client().metadata(Some(&[])).await?;
        let mut groups = Vec::new();
        for broker in &metadata.brokers {
            let conn = self.client().broker(broker.node_id).await?;
            let version = conn.version(ApiKey::ListGroups)?;
            let request = ListGroupsRequest::default();
            let response = conn.dispatch(&request, version).await?.wait().await?;
            KafkaCode(response.error_code)
                .check(format!("list groups of node {}", broker.node_id))?;
            groups.extend(response.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: (version >= 4).then(|| g.group_state.to_string()),
            }));
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(groups)
    }

    /// State, protocol and members of `group` (assignments decoded for consumer groups).
    /// An unknown group is a GROUP_ID_NOT_FOUND error, whatever the broker's version.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let (coordinator, conn) = self.group_coordinator(group).await?;
        let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
        let response = conn.send(&request).await?;
        let Some(g) = response
            .groups
            .into_iter()
            .find(|g| g.group_id.0.as_str() == group)
        else {
            return Err(decode_error("DescribeGroups", "the group is missing"));
        };
        let context = format!("describe group {group:?}");
        KafkaCode(g.error_code).check_with_message(&context, g.error_message.as_deref())?;
        // Before v6, an unknown group comes back Dead without an error.
        if g.group_state.as_str() == "Dead" {
            GROUP_ID_NOT_FOUND.check(&context)?;
        }
        let consumer = g.protocol_type.as_str() == "consumer";
        let members = g
            .members
            .into_iter()
            .map(|m| MemberDescription {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment: consumer
                    .then(|| {
                        eddy_protocol::consumer_protocol::assignment_partitions(
                            &m.member_assignment,
                        )
                        .ok()
                    })
                    .flatten(),
            })
            .collect();
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members,
            coordinator,
        })
    }

    /// Committed offsets of `group`: every one (`None`), or those of the named partitions
    /// that have one. Sorted by topic, then partition.
    pub async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<GroupOffset>> {
        let (_, conn) = self.group_coordinator(group).await?;
        let version = conn
            .version(ApiKey::OffsetFetch)?
            .min(OFFSET_FETCH_VERSION_MAX);
        let topics = partitions.map(|wanted| {
            let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = Default::default();
            for (t, p) in wanted {
                by_topic.entry(t.as_str()).or_default().push(*p);
            }
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partition_indexes(ps)
                })
                .collect()
        });
        let request = OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(topics);
        let response = conn.dispatch(&request, version).await?.wait().await?;
        let context = format!("fetch committed offsets of group {group:?}");
        KafkaCode(response.error_code).check(&context)?;
        let mut out = Vec::new();
        for t in response.topics {
            for p in t.partitions {
                KafkaCode(p.error_code).check(&context)?;
                // -1: nothing committed for this partition.
                if p.committed_offset >= 0 {
                    out.push(GroupOffset {
                        topic: t.name.0.to_string(),
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        metadata: p.metadata.map(|m| m.to_string()),
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(out)
    }

    /// Commits `offsets` (topic, partition, offset) for `group` from outside it, as
    /// `kafka-consumer-groups --reset-offsets --execute` does: the broker accepts this only
    /// while the group has no members.
    pub async fn commit_group_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, i64)],
    ) -> Result<()> {
        let (_, conn) = self.group_coordinator(group).await?;
        let version = conn
            .version(ApiKey::OffsetCommit)?
            .min(OFFSET_COMMIT_VERSION_MAX);
        let mut by_topic: std::collections::BTreeMap<&str, Vec<OffsetCommitRequestPartition>> =
            Default::default();
        for (t, p, offset) in offsets {
            by_topic.entry(t.as_str()).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(*p)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(Some(StrBytes::default())),
            );
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::default())
            .with_retention_time_ms(-1)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let response = conn.dispatch(&request, version).await?.wait().await?;
        for t in response.topics {
            for p in t.partitions {
                let context = format!(
                    "commit offset of {}-{} for group {group:?}",
                    t.name.0.as_str(),
                    p.partition_index
                );
                KafkaCode(p.error_code).check(context)?;
            }
        }
        Ok(())
    }

    /// Deletes groups; each answer is the group's own outcome (NON_EMPTY_GROUP,
    /// GROUP_ID_NOT_FOUND...), in the order asked.
    pub async fn delete_groups(&self, groups: &[&str]) -> Result<Vec<(String, Result<()>)>> {
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let (_, conn) = self.group_coordinator(group).await?;
            let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
            let response = conn.send(&request).await?;
            let code = response
                .results
                .iter()
                .find(|r| r.group_id.0.as_str() == *group)
                .map(|r| KafkaCode(r.error_code))
                .ok_or_else(|| decode_error("DeleteGroups", "the group is missing"))?;
            out.push((
                group.to_string(),
                code.check(format!("delete group {group:?}")),
            ));
        }
        Ok(out)
    }

    /// Deletes committed offsets of `group` for `partitions` (topic, partition). The
    /// answer per partition says whether it was deleted (GROUP_SUBSCRIBED_TO_TOPIC when a
    /// member consumes the topic); a group-level refusal is the error.
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<(String, i32, KafkaCode)>> {
        let (_, conn) = self.group_coordinator(group).await?;
        let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = Default::default();
        for (t, p) in partitions {
            by_topic.entry(t.as_str()).or_default().push(*p);
        }
        let request = OffsetDeleteRequest::default()
            .with_group_id(group_id(group))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetDeleteRequestTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|p| {
                                        OffsetDeleteRequestPartition::default()
                                            .with_partition_index(p)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = conn.send(&request).await?;
        KafkaCode(response.error_code).check(format!("delete offsets of group {group:?}"))?;
        Ok(response
            .topics
            .into_iter()
            .flat_map(|t| {
                let name = t.name.0.to_string();
                t.partitions
                    .into_iter()
                    .map(move |p| (name.clone(), p.partition_index, KafkaCode(p.error_code)))
            })
            .collect())
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn group_id(s: &str) -> GroupId {
    GroupId(text(s))
}

fn decode_error(what: &str, detail: &str) -> Error {
    Error::Decode {
        what: format!("{what} response"),
        detail: detail.to_owned(),
    }
}
