//! Topic and config administration: CreateTopics, DeleteTopics, Metadata, DescribeConfigs,
//! IncrementalAlterConfigs, ListOffsets.

use std::collections::HashMap;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::{topic_name, Client, TopicMetadata};
use crate::error::{Error, KafkaCode, Result};
use crate::offsets::{list_offsets, ListedOffset, OffsetSpec};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1 lets the broker pick (`num.partitions`).
    pub partitions: i32,
    /// -1 lets the broker pick (`default.replication.factor`).
    pub replication_factor: i16,
    /// Topic configs by Kafka name, e.g. `("retention.ms", "60000")`.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    pub fn new(name: &str, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.to_owned(),
            partitions,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }

    pub fn with_config(mut self, key: &str, value: &str) -> NewTopic {
        self.configs.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// What a config belongs to; the wire numbers are Kafka's `ConfigResource.Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    Topic(String),
    Broker(i32),
}

impl ConfigResource {
    fn wire(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(name) => (2, name.clone()),
            ConfigResource::Broker(id) => (4, id.to_string()),
        }
    }
}

/// Where a config value comes from, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic,
    DynamicBroker,
    DynamicDefaultBroker,
    StaticBroker,
    Default,
    Other(i8),
}

impl ConfigSource {
    fn from_wire(source: i8) -> ConfigSource {
        match source {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            other => ConfigSource::Other(other),
        }
    }
}

/// One config entry as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    /// `None` for sensitive or unset values.
    pub value: Option<String>,
    pub read_only: bool,
    pub is_sensitive: bool,
    pub source: ConfigSource,
}

/// One change for IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    Set(String, String),
    /// Back to the default.
    Delete(String),
}

/// A partition of a described topic, with its offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub earliest_offset: i64,
    pub latest_offset: i64,
}

/// A topic with its partitions, offsets and configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub topic_id: uuid::Uuid,
    pub partitions: Vec<PartitionDescription>,
    pub configs: Vec<ConfigEntry>,
}

/// Administrative operations on topics and configs.
#[derive(Clone)]
pub struct Admin {
    client: Client,
}

impl Admin {
    pub fn new(client: Client) -> Admin {
        Admin { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates `topics`; fails on the first topic the broker refused.
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<()> {
        let conn = self.client.controller().await?;
        let timeout_ms = self.client.config().connection.request_timeout_ms as i32;
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(timeout_ms)
            .with_topics(topics.iter().map(creatable_topic).collect());
        let response = conn.send(&request).await?;
        for result in response.topics {
            let context = format!("create topic {:?}", result.name.0.as_str());
            KafkaCode(result.error_code)
                .check_with_message(context, result.error_message.as_deref())?;
        }
        for topic in topics {
            self.client.invalidate(&topic.name);
        }
        Ok(())
    }

    /// Deletes topics by name.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<()> {
        let conn = self.client.controller().await?;
        let version = conn.version(ApiKey::DeleteTopics)?;
        let timeout_ms = self.client.config().connection.request_timeout_ms as i32;
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
        // v6 names topics in structs (so they can be named by id instead); older, by string.
        if version >= 6 {
            request.topics = names
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                .collect();
        } else {
            request.topic_names = names.iter().map(|n| topic_name(n)).collect();
        }
        let response = conn.dispatch(&request, version).await?.wait().await?;
        for result in response.responses {
            let name = result.name.map(|n| n.0.to_string()).unwrap_or_default();
            KafkaCode(result.error_code).check_with_message(
                format!("delete topic {name:?}"),
                result.error_message.as_deref(),
            )?;
        }
        for name in names {
            self.client.invalidate(name);
        }
        Ok(())
    }

    /// All topics (internal ones included), sorted by name.
    pub async fn list_topics(&self) -> Result<Vec<TopicMetadata>> {
        let metadata = self.client.metadata(None).await?;
        let mut topics: Vec<TopicMetadata> = metadata
            .topics
            .into_iter()
            .filter(|t| t.error.is_ok())
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// A topic's partitions (leaders, replicas, earliest and latest offsets) and configs.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        self.client.invalidate(name);
        let topic = self.client.topic(name).await?;
        let ids: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
        let earliest = self.list_offsets(name, &ids, OffsetSpec::Earliest).await?;
        let latest = self.list_offsets(name, &ids, OffsetSpec::Latest).await?;
        let offset_of = |found: &HashMap<i32, ListedOffset>, p: i32| {
            found.get(&p).and_then(|o| o.offset).unwrap_or(-1)
        };
        let partitions = topic
            .partitions
            .iter()
            .map(|p| PartitionDescription {
                partition: p.partition,
                leader: p.leader,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                earliest_offset: offset_of(&earliest, p.partition),
                latest_offset: offset_of(&latest, p.partition),
            })
            .collect();
        let configs = self
            .describe_configs(&ConfigResource::Topic(name.to_owned()))
            .await?;
        Ok(TopicDescription {
            name: topic.name.clone(),
            topic_id: topic.topic_id,
            partitions,
            configs,
        })
    }

    /// Every config of `resource`, sorted by name.
    pub async fn describe_configs(&self, resource: &ConfigResource) -> Result<Vec<ConfigEntry>> {
        let conn = match resource {
            ConfigResource::Broker(id) => self.client.broker(*id).await?,
            ConfigResource::Topic(_) => self.client.any_connection().await?,
        };
        let (resource_type, resource_name) = resource.wire();
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(resource_name.clone()))
                // null: all keys
                .with_configuration_keys(None),
        ]);
        let response = conn.send(&request).await?;
        let mut entries = Vec::new();
        for result in response.results {
            KafkaCode(result.error_code).check_with_message(
                format!("describe configs of {resource_name:?}"),
                result.error_message.as_deref(),
            )?;
            entries.extend(result.configs.into_iter().map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                read_only: c.read_only,
                is_sensitive: c.is_sensitive,
                source: ConfigSource::from_wire(c.config_source),
            }));
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Applies `ops` to `resource` with IncrementalAlterConfigs (other keys are untouched).
    pub async fn alter_configs(
        &self,
        resource: &ConfigResource,
        ops: &[AlterConfigOp],
    ) -> Result<()> {
        if ops.is_empty() {
            return Err(Error::Config("no config changes given".into()));
        }
        let conn = match resource {
            ConfigResource::Broker(id) => self.client.broker(*id).await?,
            ConfigResource::Topic(_) => self.client.controller().await?,
        };
        let (resource_type, resource_name) = resource.wire();
        let configs = ops
            .iter()
            .map(|op| {
                let (name, operation, value) = match op {
                    AlterConfigOp::Set(k, v) => (k, 0, Some(v)),
                    AlterConfigOp::Delete(k) => (k, 1, None),
                };
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_config_operation(operation)
                    .with_value(value.map(|v| StrBytes::from_string(v.clone())))
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(resource_name.clone()))
                .with_configs(configs),
        ]);
        let response = conn.send(&request).await?;
        for result in response.responses {
            KafkaCode(result.error_code).check_with_message(
                format!("alter configs of {resource_name:?}"),
                result.error_message.as_deref(),
            )?;
        }
        Ok(())
    }

    /// Looks up `spec` for `partitions` of `topic`.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
    ) -> Result<HashMap<i32, ListedOffset>> {
        list_offsets(&self.client, topic, partitions, spec).await
    }
}

fn creatable_topic(topic: &NewTopic) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(topic_name(&topic.name))
        .with_num_partitions(topic.partitions)
        .with_replication_factor(topic.replication_factor)
        .with_configs(
            topic
                .configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.clone()))
                        .with_value(Some(StrBytes::from_string(v.clone())))
                })
                .collect(),
        )
}
