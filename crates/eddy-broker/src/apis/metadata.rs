//! Metadata: the one broker, and topics with their partitions (auto-created
//! on request when allowed).

use std::sync::Arc;

use eddy_protocol::codes;
use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, TopicName};

use super::text;
use crate::broker::Broker;
use crate::topic::Topic;

pub fn handle(broker: &Arc<Broker>, req: MetadataRequest, version: i16) -> MetadataResponse {
    let mut topics = Vec::new();
    // In v0 an empty list (the field is not nullable there) means all topics.
    let requested = if version == 0 && req.topics.as_ref().is_some_and(|t| t.is_empty()) {
        None
    } else {
        req.topics
    };
    match requested {
        None => {
            for t in broker.topics() {
                topics.push(describe(&t, version));
            }
        }
        Some(requested) => {
            let auto = version < 4 || req.allow_auto_topic_creation;
            for r in requested {
                let topic = match (&r.name, r.topic_id.is_nil()) {
                    (Some(name), _) => lookup(broker, name, auto),
                    (None, false) => broker
                        .topic_by_id(r.topic_id)
                        .ok_or((codes::UNKNOWN_TOPIC_ID, String::new())),
                    (None, true) => Err((codes::INVALID_REQUEST, String::new())),
                };
                topics.push(match topic {
                    Ok(t) => describe(&t, version),
                    Err((code, _)) => MetadataResponseTopic::default()
                        .with_error_code(code)
                        .with_name(r.name.clone())
                        .with_topic_id(r.topic_id),
                });
            }
        }
    }
    let (host, port) = broker.advertised.clone();
    let node = MetadataResponseBroker::default()
        .with_node_id(BrokerId(broker.node_id))
        .with_host(text(host))
        .with_port(port);
    let mut response = MetadataResponse::default()
        .with_brokers(vec![node])
        .with_cluster_id(Some(text(&broker.cluster_id)))
        .with_controller_id(BrokerId(broker.node_id))
        .with_topics(topics);
    if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
        response.cluster_authorized_operations = 0;
    }
    response
}

fn lookup(broker: &Broker, name: &TopicName, auto: bool) -> Result<Arc<Topic>, (i16, String)> {
    if let Some(t) = broker.topic(name) {
        return Ok(t);
    }
    if let Err(m) = crate::topic::validate_name(name) {
        return Err((codes::INVALID_TOPIC_EXCEPTION, m));
    }
    if !auto {
        return Err((codes::UNKNOWN_TOPIC_OR_PARTITION, String::new()));
    }
    broker.auto_create(name).map_err(|e| (e.code, e.message))
}

fn describe(t: &Topic, version: i16) -> MetadataResponseTopic {
    let partitions = t
        .all_partitions()
        .iter()
        .map(|p| {
            let mut mp = MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_leader_id(BrokerId(0))
                .with_replica_nodes(vec![BrokerId(0)])
                .with_isr_nodes(vec![BrokerId(0)]);
            if version >= 7 {
                mp.leader_epoch = super::produce::LEADER_EPOCH;
            }
            if p.is_failed() {
                mp.error_code = codes::KAFKA_STORAGE_ERROR;
            }
            mp
        })
        .collect();
    let mut topic = MetadataResponseTopic::default()
        .with_name(Some(TopicName(text(&t.name))))
        .with_is_internal(t.internal)
        .with_partitions(partitions);
    if version >= 10 {
        topic.topic_id = t.id;
    }
    topic
}
