//! ConsumerGroupHeartbeat (KIP-848): join, leave and every step of a
//! consumer-protocol member's reconciliation (see `group::consumer`).

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, ConsumerGroupHeartbeatResponse, TopicPartitions,
};

use super::text;
use crate::broker::Broker;
use crate::group::consumer::{self, assignor, ConsumerConfig, Heartbeat, TopicMeta, Topics};

/// Partitions a heartbeat may report owning, over all topics: Kafka bounds
/// nothing here, but the request guard already bounds the arrays by the
/// frame; this keeps a member from making the coordinator hold more.
const OWNED_PARTITIONS_MAX: usize = 100_000;

pub fn handle(
    broker: &Arc<Broker>,
    req: ConsumerGroupHeartbeatRequest,
    version: i16,
    client_id: String,
    client_host: String,
) -> ConsumerGroupHeartbeatResponse {
    let config = consumer_config(broker);
    let hb = heartbeat(req, client_id, client_host);
    let owned_count: usize = hb
        .owned
        .iter()
        .flat_map(|o| o.values())
        .map(|ps| ps.len())
        .sum();
    let outcome = if owned_count > OWNED_PARTITIONS_MAX {
        Err(consumer::Refused::new(
            crate::group::codes::INVALID_REQUEST,
            format!("TopicPartitions lists more than {OWNED_PARTITIONS_MAX} partitions."),
        ))
    } else {
        consumer::validate(&hb, version, &config).and_then(|()| {
            broker
                .groups
                .consumer_heartbeat(hb, &topics(broker), &config)
        })
    };
    match outcome {
        Ok(answer) => ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(text(answer.member_id)))
            .with_member_epoch(answer.member_epoch)
            .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
            .with_assignment(answer.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(topic, ps)| {
                            TopicPartitions::default()
                                .with_topic_id(topic)
                                .with_partitions(ps.into_iter().collect())
                        })
                        .collect(),
                )
            })),
        Err(refused) => ConsumerGroupHeartbeatResponse::default()
            .with_error_code(refused.code)
            .with_error_message(Some(text(refused.message))),
    }
}

fn heartbeat(
    req: ConsumerGroupHeartbeatRequest,
    client_id: String,
    client_host: String,
) -> Heartbeat {
    let string = |s: Option<kafka_protocol::protocol::StrBytes>| s.map(|s| s.to_string());
    Heartbeat {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: string(req.instance_id),
        rack_id: string(req.rack_id),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        topic_names: req
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|n| n.to_string()).collect()),
        topic_regex: string(req.subscribed_topic_regex),
        server_assignor: string(req.server_assignor),
        owned: req.topic_partitions.map(|tps| {
            let mut owned = consumer::Assignment::new();
            for tp in tps {
                owned.entry(tp.topic_id).or_default().extend(tp.partitions);
            }
            owned
        }),
        client_id,
        client_host,
    }
}

/// The coordinator's settings, read per request (they are a few lookups).
pub fn consumer_config(broker: &Broker) -> ConsumerConfig {
    let c = &broker.config;
    let mut assignors: Vec<&'static str> = c
        .get("group.consumer.assignors")
        .split(',')
        .filter_map(assignor::canonical)
        .collect();
    if assignors.is_empty() {
        assignors = assignor::NAMES.to_vec();
    }
    let heartbeat_interval_ms = c
        .i64("group.consumer.heartbeat.interval.ms")
        .clamp(1, i64::from(i32::MAX)) as i32;
    ConsumerConfig {
        session_timeout_ms: c
            .i64("group.consumer.session.timeout.ms")
            .clamp(1, i64::from(i32::MAX)) as i32,
        heartbeat_interval_ms,
        max_size: c.i64("group.consumer.max.size").max(1) as usize,
        assignors,
        // Members from before a restart heartbeat within an interval and
        // learn they are unknown; the second interval is slack.
        startup_grace_ms: 2 * i64::from(heartbeat_interval_ms),
    }
}

/// Every user topic by name (internal topics are not for consumers to
/// subscribe to, by name or pattern).
pub fn topics(broker: &Broker) -> Topics {
    broker
        .topics()
        .into_iter()
        .filter(|t| !t.internal)
        .map(|t| {
            let meta = TopicMeta {
                id: t.id,
                partitions: t.partition_count(),
            };
            (t.name.to_string(), meta)
        })
        .collect()
}
