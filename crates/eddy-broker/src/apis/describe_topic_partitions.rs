//! DescribeTopicPartitions (KIP-966) with the cursor for paging.

use std::sync::Arc;

use eddy_protocol::codes;
use kafka_protocol::messages::describe_topic_partitions_request::DescribeTopicPartitionsRequest;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{BrokerId, TopicName};

use super::text;
use crate::broker::Broker;

/// Kafka's default and cap for response_partition_limit.
const PARTITION_LIMIT_MAX: i32 = 2000;

pub fn handle(
    broker: &Arc<Broker>,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let mut names: Vec<String> = if req.topics.is_empty() {
        broker.topics().iter().map(|t| t.name.to_string()).collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let limit = if req.response_partition_limit <= 0 {
        PARTITION_LIMIT_MAX
    } else {
        req.response_partition_limit.min(PARTITION_LIMIT_MAX)
    };
    let (start_topic, start_partition) = req.cursor.as_ref().map_or((String::new(), 0), |c| {
        (c.topic_name.0.to_string(), c.partition_index)
    });
    let mut budget = limit;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names.into_iter().filter(|n| *n >= start_topic) {
        let mut out =
            DescribeTopicPartitionsResponseTopic::default().with_name(Some(TopicName(text(&name))));
        let Some(t) = broker.topic(&name) else {
            out.error_code = codes::UNKNOWN_TOPIC_OR_PARTITION;
            topics.push(out);
            continue;
        };
        out.topic_id = t.id;
        out.is_internal = t.internal;
        let first = if name == start_topic {
            start_partition
        } else {
            0
        };
        for p in t.all_partitions().into_iter().skip(first.max(0) as usize) {
            if budget == 0 {
                next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(TopicName(text(&name)))
                        .with_partition_index(p.index),
                );
                break;
            }
            budget -= 1;
            out.partitions.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p.index)
                    .with_leader_id(BrokerId(broker.node_id))
                    .with_leader_epoch(super::produce::LEADER_EPOCH)
                    .with_replica_nodes(vec![BrokerId(broker.node_id)])
                    .with_isr_nodes(vec![BrokerId(broker.node_id)]),
            );
        }
        topics.push(out);
        if next_cursor.is_some() {
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}
