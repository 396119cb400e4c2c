//! Topics: names, ids, configs and partitions.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use eddy_log::LogConfig;

use crate::config::{BrokerConfig, TOPIC_DEFS};
use crate::partition::Partition;

/// Kafka's limit on topic name length.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

pub struct Topic {
    pub name: Arc<str>,
    pub id: uuid::Uuid,
    pub internal: bool,
    /// Overrides only; see [`Topic::effective_configs`].
    pub configs: RwLock<BTreeMap<String, String>>,
    pub partitions: RwLock<Vec<Arc<Partition>>>,
}

/// Where a config value comes from, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    StaticBroker = 4,
    Default = 5,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        if index < 0 {
            return None;
        }
        self.partitions
            .read()
            .expect("topic lock")
            .get(index as usize)
            .cloned()
    }

    pub fn partition_count(&self) -> i32 {
        self.partitions.read().expect("topic lock").len() as i32
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().expect("topic lock").clone()
    }

    /// Every topic config with its effective value and source.
    pub fn effective_configs(
        &self,
        broker: &BrokerConfig,
    ) -> Vec<(&'static str, String, ConfigSource)> {
        let overrides = self.configs.read().expect("topic lock");
        effective_configs(&overrides, broker)
    }
}

pub fn effective_configs(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> Vec<(&'static str, String, ConfigSource)> {
    TOPIC_DEFS
        .iter()
        .map(|(name, _, _)| {
            if let Some(v) = overrides.get(*name) {
                return (*name, v.clone(), ConfigSource::DynamicTopic);
            }
            let (v, explicit) = broker.topic_default(name);
            (
                *name,
                v,
                if explicit {
                    ConfigSource::StaticBroker
                } else {
                    ConfigSource::Default
                },
            )
        })
        .collect()
}

fn value<'a>(configs: &'a [(&'static str, String, ConfigSource)], name: &str) -> &'a str {
    configs
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, v, _)| v.as_str())
        .unwrap_or("")
}

/// Whether `cleanup.policy` (a list) names `policy`.
fn policy(configs: &[(&'static str, String, ConfigSource)], policy: &str) -> bool {
    value(configs, "cleanup.policy")
        .split(',')
        .any(|p| p.trim() == policy)
}

/// The log settings and durability mode that a topic's configs give.
pub fn log_config(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> (LogConfig, bool) {
    let c = effective_configs(overrides, broker);
    let int = |n: &str, d: i64| value(&c, n).parse::<i64>().unwrap_or(d);
    let defaults = LogConfig::default();
    let log = LogConfig {
        segment_bytes: int("segment.bytes", defaults.segment_bytes as i64).max(14) as u64,
        segment_ms: int("segment.ms", defaults.segment_ms).max(1),
        index_interval_bytes: int("index.interval.bytes", 4096).max(1) as u64,
        retention_ms: int("retention.ms", defaults.retention_ms),
        retention_bytes: int("retention.bytes", -1),
        max_message_bytes: int("max.message.bytes", 1_048_588).max(1) as usize,
        cleanup_delete: policy(&c, "delete"),
        cleanup_compact: policy(&c, "compact"),
        delete_retention_ms: int("delete.retention.ms", defaults.delete_retention_ms).max(0),
        min_compaction_lag_ms: int("min.compaction.lag.ms", 0).max(0),
        max_compaction_lag_ms: int("max.compaction.lag.ms", i64::MAX).max(1),
        min_cleanable_dirty_ratio: value(&c, "min.cleanable.dirty.ratio")
            .parse::<f64>()
            .ok()
            .and_then(eddy_log::DirtyRatio::new)
            .unwrap_or(defaults.min_cleanable_dirty_ratio),
    };
    let durable = int("flush.messages", 1) <= 1;
    (log, durable)
}

/// Kafka's topic-name rules, with the error message Kafka gives.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {TOPIC_NAME_BYTES_MAX} characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_name("orders.v1_x-2").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("..").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name(&"x".repeat(250)).is_err());
        assert!(validate_name(&"x".repeat(249)).is_ok());
    }

    #[test]
    fn durability_follows_flush_messages() {
        let broker = BrokerConfig::default();
        let (_, durable) = log_config(&BTreeMap::new(), &broker);
        assert!(durable);
        let relaxed: BTreeMap<_, _> = [(
            "flush.messages".to_string(),
            "9223372036854775807".to_string(),
        )]
        .into();
        assert!(!log_config(&relaxed, &broker).1);
    }
}
