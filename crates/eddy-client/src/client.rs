//! The cluster as a client sees it: bootstrap, broker connections, and a cache of Metadata
//! (which broker leads which partition). Producer, consumer and admin all route through it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::connection::{Connection, ConnectionConfig};
use crate::error::{Error, KafkaCode, Result};

/// How to reach the cluster. Names follow Kafka's client configs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `bootstrap.servers`: `host:port` addresses tried in order.
    pub bootstrap_servers: Vec<String>,
    pub connection: ConnectionConfig,
    /// `metadata.max.age.ms`: cached leaders are refreshed at least this often.
    pub metadata_max_age_ms: u64,
    /// How often a lookup retries while a partition has no leader yet (a topic just created).
    pub metadata_retries: u32,
    /// `retry.backoff.ms`.
    pub retry_backoff_ms: u64,
}

impl ClientConfig {
    /// A config for a comma-separated `bootstrap.servers` list.
    pub fn new(bootstrap_servers: &str) -> ClientConfig {
        ClientConfig {
            bootstrap_servers: bootstrap_servers
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            connection: ConnectionConfig::default(),
            metadata_max_age_ms: 300_000,
            metadata_retries: 20,
            retry_backoff_ms: 100,
        }
    }
}

/// One partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: i32,
    /// Node id of the leader, -1 when there is none.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error: KafkaCode,
}

/// One topic as Metadata describes it; partitions sorted by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    pub topic_id: uuid::Uuid,
    pub is_internal: bool,
    /// Topic-level error, e.g. UNKNOWN_TOPIC_OR_PARTITION.
    pub error: KafkaCode,
    pub partitions: Vec<PartitionMetadata>,
}

/// A broker as Metadata advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMetadata {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

impl BrokerMetadata {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The answer to one Metadata request.
#[derive(Debug, Clone, Default)]
pub struct ClusterMetadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerMetadata>,
    pub topics: Vec<TopicMetadata>,
}

struct CachedTopic {
    topic: Arc<TopicMetadata>,
    fetched_at: Instant,
}

#[derive(Default)]
struct State {
    /// Live connections by `host:port`.
    connections: HashMap<String, Arc<Connection>>,
    /// Advertised address of each node id.
    brokers: HashMap<i32, String>,
    controller_id: Option<i32>,
    topics: HashMap<String, CachedTopic>,
}

/// A handle on the cluster; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Client {
    config: Arc<ClientConfig>,
    // std Mutex, not tokio's: never held across an await (connects happen outside it).
    state: Arc<Mutex<State>>,
}

impl Client {
    /// Connects to the first bootstrap broker that answers and learns the cluster's brokers.
    pub async fn connect(config: ClientConfig) -> Result<Client> {
        if config.bootstrap_servers.is_empty() {
            return Err(Error::Config("bootstrap.servers is empty".into()));
        }
        let client = Client {
            config: Arc::new(config),
            state: Arc::new(Mutex::new(State::default())),
        };
        client.metadata(Some(&[])).await?;
        Ok(client)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A live connection to `addr`, opening one if needed.
    pub async fn connection(&self, addr: &str) -> Result<Arc<Connection>> {
        if let Some(conn) = self.state().connections.get(addr) {
            if !conn.is_broken() {
                return Ok(conn.clone());
            }
        }
        let conn = Arc::new(Connection::connect(addr, self.config.connection.clone()).await?);
        let mut state = self.state();
        // Another task may have connected meanwhile; keep one connection per broker.
        let entry = state.connections.entry(addr.to_owned());
        let conn = match entry {
            std::collections::hash_map::Entry::Occupied(mut e) if e.get().is_broken() => {
                e.insert(conn.clone());
                conn
            }
            std::collections::hash_map::Entry::Occupied(e) => e.get().clone(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(conn).clone(),
        };
        Ok(conn)
    }

    /// Closes every connection gracefully (see [`Connection::close`]). Call it before the
    /// process exits, after producers are closed; the client can still reconnect afterwards.
    pub async fn close(&self) {
        let connections: Vec<Arc<Connection>> =
            self.state().connections.drain().map(|(_, c)| c).collect();
        for conn in connections {
            conn.close().await;
        }
    }

    /// A connection to any broker: a known one first, then the bootstrap list.
    pub async fn any_connection(&self) -> Result<Arc<Connection>> {
        let known: Vec<String> = {
            let state = self.state();
            let mut addrs: Vec<String> = state.brokers.values().cloned().collect();
            addrs.sort();
            addrs
        };
        let mut last_error = None;
        for addr in known.iter().chain(self.config.bootstrap_servers.iter()) {
            match self.connection(addr).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last_error = Some(e),
            }
        }
        match last_error {
            Some(e) if known.is_empty() && self.config.bootstrap_servers.len() == 1 => Err(e),
            _ => Err(Error::NoBroker(self.config.bootstrap_servers.join(","))),
        }
    }

    /// A connection to broker `node_id`, as last advertised by Metadata.
    pub async fn broker(&self, node_id: i32) -> Result<Arc<Connection>> {
        let addr = self.state().brokers.get(&node_id).cloned();
        match addr {
            Some(addr) => self.connection(&addr).await,
            None => {
                self.metadata(Some(&[])).await?;
                let addr = self.state().brokers.get(&node_id).cloned();
                let addr = addr.ok_or_else(|| Error::NoBroker(format!("node {node_id}")))?;
                self.connection(&addr).await
            }
        }
    }

    /// A connection to the controller (where topic admin requests go), or any broker.
    pub async fn controller(&self) -> Result<Arc<Connection>> {
        let controller = self.state().controller_id;
        match controller {
            Some(id) if id >= 0 => self.broker(id).await,
            _ => self.any_connection().await,
        }
    }

    /// Fetches fresh Metadata for `topics` (all topics when `None`) and updates the cache.
    pub async fn metadata(&self, topics: Option<&[&str]>) -> Result<ClusterMetadata> {
        let conn = self.any_connection().await?;
        let request_topics = topics.map(|names| {
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                .collect()
        });
        let request = MetadataRequest::default()
            .with_topics(request_topics)
            .with_allow_auto_topic_creation(false);
        let response = conn.send(&request).await?;
        let metadata = convert_metadata(response);
        self.remember(&metadata);
        Ok(metadata)
    }

    fn remember(&self, metadata: &ClusterMetadata) {
        let mut state = self.state();
        for broker in &metadata.brokers {
            state.brokers.insert(broker.node_id, broker.addr());
        }
        state.controller_id = Some(metadata.controller_id);
        let now = Instant::now();
        for topic in metadata.topics.iter().filter(|t| t.error.is_ok()) {
            let cached = CachedTopic {
                topic: Arc::new(topic.clone()),
                fetched_at: now,
            };
            state.topics.insert(topic.name.clone(), cached);
        }
    }

    /// Metadata of one topic, from the cache while it is fresh. Waits (bounded) for every
    /// partition to have a leader, since a topic created a moment ago may not have one yet.
    pub async fn topic(&self, name: &str) -> Result<Arc<TopicMetadata>> {
        let max_age = Duration::from_millis(self.config.metadata_max_age_ms);
        if let Some(cached) = self.state().topics.get(name) {
            let led = cached.topic.partitions.iter().all(|p| p.leader >= 0);
            if led && cached.fetched_at.elapsed() < max_age {
                return Ok(cached.topic.clone());
            }
        }
        let mut attempt = 0;
        loop {
            let metadata = self.metadata(Some(&[name])).await?;
            let topic = metadata.topics.into_iter().find(|t| t.name == name);
            let code = match &topic {
                None => KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                Some(t) if !t.error.is_ok() => t.error,
                Some(t) => t
                    .partitions
                    .iter()
                    .find(|p| p.leader < 0 || !p.error.is_ok())
                    .map(|p| {
                        if p.error.is_ok() {
                            KafkaCode(5)
                        } else {
                            p.error
                        }
                    })
                    .unwrap_or(KafkaCode::NONE),
            };
            if code.is_ok() {
                let topic = topic.expect("code is ok only when the topic was found");
                if topic.partitions.is_empty() {
                    return Err(Error::UnknownTopic(name.to_owned()));
                }
                return Ok(Arc::new(topic));
            }
            if code == KafkaCode::UNKNOWN_TOPIC_OR_PARTITION
                || attempt >= self.config.metadata_retries
            {
                if code == KafkaCode::UNKNOWN_TOPIC_OR_PARTITION {
                    return Err(Error::UnknownTopic(name.to_owned()));
                }
                return Err(Error::Kafka {
                    code,
                    context: format!("metadata of topic {name}"),
                    message: None,
                });
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)).await;
        }
    }

    /// Forgets cached metadata of `topic`, e.g. after NOT_LEADER_OR_FOLLOWER.
    pub fn invalidate(&self, topic: &str) {
        self.state().topics.remove(topic);
    }

    /// The leader's node id of `topic`-`partition`.
    pub async fn leader_id(&self, topic: &str, partition: i32) -> Result<i32> {
        let metadata = self.topic(topic).await?;
        let Some(p) = metadata
            .partitions
            .iter()
            .find(|p| p.partition == partition)
        else {
            return Err(Error::UnknownPartition {
                topic: topic.to_owned(),
                partition,
                partition_count: metadata.partitions.len(),
            });
        };
        if p.leader < 0 {
            return Err(Error::NoLeader {
                topic: topic.to_owned(),
                partition,
            });
        }
        Ok(p.leader)
    }

    /// A connection to the leader of `topic`-`partition`.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<Arc<Connection>> {
        let id = self.leader_id(topic, partition).await?;
        self.broker(id).await
    }
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn convert_metadata(response: MetadataResponse) -> ClusterMetadata {
    let brokers = response
        .brokers
        .into_iter()
        .map(|b| BrokerMetadata {
            node_id: b.node_id.0,
            host: b.host.to_string(),
            port: b.port,
        })
        .collect();
    let topics = response
        .topics
        .into_iter()
        .filter_map(|t| {
            let name = t.name?.0.to_string();
            let mut partitions: Vec<PartitionMetadata> = t
                .partitions
                .into_iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.into_iter().map(|n| n.0).collect(),
                    isr: p.isr_nodes.into_iter().map(|n| n.0).collect(),
                    error: KafkaCode(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            Some(TopicMetadata {
                name,
                topic_id: t.topic_id,
                is_internal: t.is_internal,
                error: KafkaCode(t.error_code),
                partitions,
            })
        })
        .collect();
    ClusterMetadata {
        cluster_id: response.cluster_id.map(|c| c.to_string()),
        controller_id: response.controller_id.0,
        brokers,
        topics,
    }
}
