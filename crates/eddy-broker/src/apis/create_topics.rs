//! CreateTopics, including validate_only and per-topic errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use eddy_protocol::codes;
use kafka_protocol::messages::create_topics_request::CreateTopicsRequest;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};

use super::text;
use crate::broker::{ApiError, Broker};
use crate::topic;

pub fn handle(
    broker: &Arc<Broker>,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    let mut seen = std::collections::HashSet::new();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut result = CreatableTopicResult::default().with_name(t.name.clone());
        if !seen.insert(name.clone()) {
            result.error_code = codes::INVALID_REQUEST;
            result.error_message = Some(text(format!(
                "Topic '{name}' appears more than once in the request."
            )));
            results.push(result);
            continue;
        }
        let configs: BTreeMap<String, String> = t
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let partitions = if t.num_partitions == -1 && t.assignments.is_empty() {
            broker.config.i64("num.partitions") as i32
        } else if !t.assignments.is_empty() {
            t.assignments.len() as i32
        } else {
            t.num_partitions
        };
        let replication = if t.replication_factor == -1 {
            1
        } else {
            t.replication_factor
        };
        let outcome = if !t.assignments.is_empty()
            && t.assignments
                .iter()
                .any(|a| a.broker_ids.iter().any(|b| b.0 != broker.node_id))
        {
            Err(ApiError::new(
                codes::INVALID_REPLICA_ASSIGNMENT,
                "Replica assignments may only name broker 0.",
            ))
        } else if req.validate_only {
            broker
                .validate_new_topic(&name, partitions, replication, &configs)
                .map(|_| None)
        } else {
            broker
                .create_topic(&name, partitions, replication, configs.clone())
                .map(Some)
        };
        match outcome {
            Ok(created) => {
                result.num_partitions = partitions;
                result.replication_factor = replication;
                if let Some(t) = created {
                    result.topic_id = t.id;
                }
                if version >= 5 {
                    let effective = topic::effective_configs(&configs, &broker.config);
                    result.configs = Some(
                        effective
                            .into_iter()
                            .map(|(n, v, source)| {
                                CreatableTopicConfigs::default()
                                    .with_name(text(n))
                                    .with_value(Some(text(v)))
                                    .with_config_source(source as i8)
                            })
                            .collect(),
                    );
                }
            }
            Err(e) => {
                result.error_code = e.code;
                result.error_message = Some(text(e.message));
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}
