//! DescribeConfigs for topics (type 2) and the broker (type 4).

use std::sync::Arc;

use eddy_protocol::codes;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
    DescribeConfigsSynonym,
};

use super::text;
use crate::broker::Broker;
use crate::config::{Kind, TOPIC_DEFS};
use crate::topic::ConfigSource;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Kafka's ConfigType values (DescribeConfigs v3+).
fn config_type(kind: Kind) -> i8 {
    match kind {
        Kind::Bool => 1,
        Kind::Str => 2,
        Kind::Int => 5,
        Kind::Double => 6,
        Kind::List => 7,
    }
}

pub fn handle(
    broker: &Arc<Broker>,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let mut result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let wanted = |name: &str| r.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == name));
            let entry = |name: &str, value: String, source: ConfigSource, kind: Kind| {
                let mut e = DescribeConfigsResourceResult::default()
                    .with_name(text(name))
                    .with_value(Some(text(&value)))
                    .with_config_source(source as i8);
                if version >= 3 {
                    e.config_type = config_type(kind);
                }
                if req.include_synonyms && source != ConfigSource::Default {
                    e.synonyms = vec![DescribeConfigsSynonym::default().with_name(text(name)).with_value(Some(text(&value))).with_source(source as i8)];
                }
                e
            };
            match r.resource_type {
                RESOURCE_TOPIC => match broker.topic(&r.resource_name) {
                    Some(t) => {
                        result.configs = t
                            .effective_configs(&broker.config)
                            .into_iter()
                            .filter(|(n, _, _)| wanted(n))
                            .map(|(n, v, s)| {
                                let kind = TOPIC_DEFS.iter().find(|d| d.0 == n).map_or(Kind::Str, |d| d.2);
                                entry(n, v, s, kind)
                            })
                            .collect();
                    }
                    None => {
                        result.error_code = codes::UNKNOWN_TOPIC_OR_PARTITION;
                        result.error_message = Some(text(format!("Topic '{}' does not exist.", r.resource_name.as_str())));
                    }
                },
                RESOURCE_BROKER => {
                    if !r.resource_name.is_empty() && r.resource_name.as_str() != broker.node_id.to_string() {
                        result.error_code = codes::INVALID_REQUEST;
                        result.error_message = Some(text(format!("Broker '{}' is not this node ({}).", r.resource_name.as_str(), broker.node_id)));
                    } else {
                        result.configs = broker
                            .config
                            .all()
                            .into_iter()
                            .filter(|(n, _, _)| wanted(n))
                            .map(|(n, v, explicit)| {
                                // The listener Metadata advertises comes from
                                // --kafka-addr when not configured: static either way.
                                let (v, explicit) = if n == "advertised.listeners" && v.is_empty() {
                                    (format!("PLAINTEXT://{}:{}", broker.advertised.0, broker.advertised.1), true)
                                } else {
                                    (v, explicit)
                                };
                                let source = if explicit { ConfigSource::StaticBroker } else { ConfigSource::Default };
                                let kind = crate::config::BROKER_DEFS.iter().find(|d| d.name == n).map_or(Kind::Str, |d| d.kind);
                                let mut e = entry(n, v, source, kind);
                                e.read_only = true;
                                e
                            })
                            .collect();
                    }
                }
                other => {
                    result.error_code = codes::INVALID_REQUEST;
                    result.error_message = Some(text(format!("Resource type {other} is not supported by DescribeConfigs on Eddy (topics: 2, brokers: 4).")));
                }
            }
            result
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
