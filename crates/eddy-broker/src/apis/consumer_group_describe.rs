//! ConsumerGroupDescribe (KIP-848): epochs, assignor and each member's
//! current and target assignment of consumer-protocol groups.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, ConsumerGroupDescribeResponse, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::TopicName;
use uuid::Uuid;

use super::text;
use crate::broker::Broker;
use crate::group::codes;
use crate::group::consumer::{self, ConsumerDescribed};

/// Member type of ConsumerGroupDescribe v1: a member of the consumer protocol.
const MEMBER_TYPE_CONSUMER: i8 = 1;

pub fn handle(
    broker: &Arc<Broker>,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let names: HashMap<Uuid, String> = broker
        .topics()
        .into_iter()
        .map(|t| (t.id, t.name.to_string()))
        .collect();
    let groups = req
        .group_ids
        .into_iter()
        .map(|id| {
            let mut out = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(i32::MIN);
            if id.is_empty() {
                return out
                    .with_error_code(codes::INVALID_GROUP_ID)
                    .with_error_message(Some(text("GroupId can't be empty.")));
            }
            let Some(d) = broker.groups.describe_consumer(&id) else {
                let why = if broker.groups.describe(&id).is_some() {
                    format!("Group {} is not a consumer group.", id.as_str())
                } else {
                    format!("Group {} not found.", id.as_str())
                };
                return out
                    .with_error_code(codes::GROUP_ID_NOT_FOUND)
                    .with_error_message(Some(text(why)));
            };
            if req.include_authorized_operations {
                // Eddy has no ACLs: every group operation is allowed
                // (READ, DESCRIBE, DELETE as Kafka's bit set).
                out.authorized_operations = (1 << 3) | (1 << 8) | (1 << 6);
            }
            described(out, d, &names)
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

fn described(
    out: DescribedGroup,
    d: ConsumerDescribed,
    names: &HashMap<Uuid, String>,
) -> DescribedGroup {
    let assignment = |a: &consumer::Assignment| {
        Assignment::default().with_topic_partitions(
            a.iter()
                .map(|(topic, ps)| {
                    let name = names.get(topic).cloned().unwrap_or_default();
                    TopicPartitions::default()
                        .with_topic_id(*topic)
                        .with_topic_name(TopicName(text(name)))
                        .with_partitions(ps.iter().copied().collect())
                })
                .collect(),
        )
    };
    let members = d
        .members
        .iter()
        .map(|m| {
            let target = d.target.get(&m.id).cloned().unwrap_or_default();
            Member::default()
                .with_member_id(text(&m.id))
                .with_instance_id(m.instance_id.as_ref().map(text))
                .with_rack_id(m.rack_id.as_ref().map(text))
                .with_member_epoch(m.epoch)
                .with_client_id(text(&m.client_id))
                .with_client_host(text(&m.client_host))
                .with_subscribed_topic_names(
                    m.topic_names.iter().map(|n| TopicName(text(n))).collect(),
                )
                .with_subscribed_topic_regex(m.topic_regex.as_ref().map(text))
                .with_assignment(assignment(&m.assigned))
                .with_target_assignment(assignment(&target))
                .with_member_type(MEMBER_TYPE_CONSUMER)
        })
        .collect();
    out.with_group_state(text(d.state.name()))
        .with_group_epoch(d.group_epoch)
        .with_assignment_epoch(d.assignment_epoch)
        .with_assignor_name(text(d.assignor))
        .with_members(members)
}

/// A consumer-protocol member as DescribeGroups shows it: its subscription
/// and assignment in the classic consumer protocol's encoding, as Kafka
/// does for tools that only know DescribeGroups.
pub fn classic_member(
    broker: &Broker,
    m: &consumer::ConsumerMember,
) -> (bytes::Bytes, bytes::Bytes) {
    let topics: Vec<&str> = m.topic_names.iter().map(String::as_str).collect();
    let metadata = eddy_protocol::consumer_protocol::encode_subscription(&topics);
    let names: Vec<(String, Vec<i32>)> = m
        .assigned
        .iter()
        .filter_map(|(id, ps)| {
            let topic = broker.topic_by_id(*id)?;
            Some((topic.name.to_string(), ps.iter().copied().collect()))
        })
        .collect();
    let assigned: Vec<(&str, &[i32])> = names
        .iter()
        .map(|(t, ps)| (t.as_str(), ps.as_slice()))
        .collect();
    let assignment = eddy_protocol::consumer_protocol::encode_assignment(&assigned);
    (metadata.into(), assignment.into())
}
