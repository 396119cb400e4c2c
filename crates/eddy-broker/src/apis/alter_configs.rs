//! AlterConfigs (replace all overrides) and IncrementalAlterConfigs
//! (SET / DELETE / APPEND / SUBTRACT) for topics.

use std::collections::BTreeMap;
use std::sync::Arc;

use eddy_protocol::codes;
use kafka_protocol::messages::alter_configs_request::AlterConfigsRequest;
use kafka_protocol::messages::alter_configs_response::{
    AlterConfigsResourceResponse, AlterConfigsResponse,
};
use kafka_protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use kafka_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse as IncResult, IncrementalAlterConfigsResponse,
};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::text;
use crate::broker::{ApiError, Broker};

fn not_topic(resource_type: i8) -> ApiError {
    if resource_type == RESOURCE_BROKER {
        ApiError::new(codes::INVALID_REQUEST, "Broker settings are static on Eddy: set them in the properties file or with --set and restart.")
    } else {
        ApiError::new(
            codes::INVALID_REQUEST,
            format!("Resource type {resource_type} cannot be altered (topics: 2)."),
        )
    }
}

pub fn handle(broker: &Arc<Broker>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let outcome = if r.resource_type != RESOURCE_TOPIC {
                Err(not_topic(r.resource_type))
            } else {
                let configs: BTreeMap<String, String> = r
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                broker.set_topic_configs(&r.resource_name, configs, req.validate_only)
            };
            let mut out = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name);
            if let Err(e) = outcome {
                out.error_code = e.code;
                out.error_message = Some(text(e.message));
            }
            out
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub fn handle_incremental(
    broker: &Arc<Broker>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let outcome = if r.resource_type != RESOURCE_TOPIC {
                Err(not_topic(r.resource_type))
            } else {
                apply(broker, &r.resource_name, &r.configs, req.validate_only)
            };
            let mut out = IncResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name);
            if let Err(e) = outcome {
                out.error_code = e.code;
                out.error_message = Some(text(e.message));
            }
            out
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

fn apply(
    broker: &Broker,
    topic: &str,
    ops: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
    validate_only: bool,
) -> Result<(), ApiError> {
    let t = broker.existing_topic(topic)?;
    let mut configs = t.configs.read().expect("topic lock").clone();
    for op in ops {
        let name = op.name.to_string();
        let value = op.value.as_ref().map(|v| v.to_string());
        match op.config_operation {
            OP_SET => {
                let v = value.ok_or_else(|| {
                    ApiError::new(
                        codes::INVALID_REQUEST,
                        format!("SET of '{name}' needs a value."),
                    )
                })?;
                configs.insert(name, v);
            }
            OP_DELETE => {
                configs.remove(&name);
            }
            OP_APPEND | OP_SUBTRACT => {
                let current = configs
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| broker.config.topic_default(&name).0);
                let mut items: Vec<String> = current
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                for v in value
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    if op.config_operation == OP_APPEND {
                        if !items.iter().any(|i| i == v) {
                            items.push(v.to_string());
                        }
                    } else {
                        items.retain(|i| i != v);
                    }
                }
                configs.insert(name, items.join(","));
            }
            other => {
                return Err(ApiError::new(
                    codes::INVALID_REQUEST,
                    format!("Unknown config operation {other}."),
                ))
            }
        }
    }
    broker.set_topic_configs(topic, configs, validate_only)
}
