//! The broker's state: topics, partitions, metadata, the flusher.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use eddy_log::Log;
use eddy_protocol::codes;
use tokio::sync::Notify;

use crate::clock::now_ms;
use crate::config::{check_topic_config, BrokerConfig, ConfigError};
use crate::fetch_session::FetchSessions;
use crate::flusher::{DuePartitions, Flusher};
use crate::group::{GroupConfig, GroupCoordinator, GroupLog};
use crate::meta::{MetaStore, TopicMeta};
use crate::partition::Partition;
use crate::producer_state::ProducerStates;
use crate::topic::{self, Topic};

/// Producer ids are reserved durably in blocks of this many.
const PRODUCER_ID_BLOCK: i64 = 1000;
/// Bound on partitions per topic (Kafka has no hard limit; we want one).
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

/// A Kafka error code with a message for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: i16,
    pub message: String,
}

impl ApiError {
    pub fn new(code: i16, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

pub struct Broker {
    pub config: BrokerConfig,
    pub data_dir: PathBuf,
    pub node_id: i32,
    pub cluster_id: String,
    /// Host and port that Metadata advertises.
    pub advertised: (String, i32),
    meta: MetaStore,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serializes topic creation, deletion and alteration.
    admin: Mutex<()>,
    producer_ids: Mutex<(i64, i64)>,
    pub flusher: Flusher,
    /// Woken whenever data becomes visible to consumers (long-poll fetch).
    pub data_ready: Arc<Notify>,
    pub fetch_sessions: FetchSessions,
    pub groups: GroupCoordinator,
    /// The log cleaner's counters (the thread itself is started by `run`).
    pub cleaner: crate::cleaner::CleanerMetrics,
    /// The transaction coordinator (`__transaction_state`).
    pub txns: crate::txn::TxnCoordinator,
}

impl DuePartitions for Broker {
    fn due_for_flush(&self) -> Vec<Arc<Partition>> {
        self.partitions_due_for_flush()
    }
}

impl Broker {
    /// Opens the data directory, recovering every partition's log.
    pub fn open(
        config: BrokerConfig,
        data_dir: &Path,
        advertised: (String, i32),
    ) -> anyhow::Result<Arc<Broker>> {
        std::fs::create_dir_all(data_dir)?;
        let meta = MetaStore::open(data_dir)?;
        let node_id = config.i64("node.id") as i32;
        let cluster = meta.cluster(node_id, &config.get("cluster.id"))?;
        let data_ready = Arc::new(Notify::new());
        let topics_meta = meta.load_topics()?;
        let fetch_slots = config
            .i64("max.incremental.fetch.session.cache.slots")
            .max(0) as usize;
        let tick = Duration::from_millis(
            config
                .i64("log.flush.scheduler.interval.ms")
                .clamp(10, 60_000) as u64,
        );
        let group_config = GroupConfig {
            initial_rebalance_delay_ms: config.i64("group.initial.rebalance.delay.ms"),
            min_session_timeout_ms: config
                .i64("group.min.session.timeout.ms")
                .clamp(1, i32::MAX as i64) as i32,
            max_session_timeout_ms: config
                .i64("group.max.session.timeout.ms")
                .clamp(1, i32::MAX as i64) as i32,
            offsets_retention_ms: config
                .i64("offsets.retention.minutes")
                .saturating_mul(60_000),
            offsets_retention_check_interval_ms: config
                .i64("offsets.retention.check.interval.ms")
                .max(1),
        };
        let txn_config = crate::txn::TxnConfig::from_broker(&config);
        let broker = Arc::new_cyclic(|weak: &std::sync::Weak<Broker>| {
            let due: std::sync::Weak<dyn DuePartitions> = weak.clone();
            let group_log: std::sync::Weak<dyn GroupLog> = weak.clone();
            Broker {
                flusher: Flusher::start(data_ready.clone(), due, tick),
                config,
                data_dir: data_dir.to_path_buf(),
                node_id,
                cluster_id: cluster.cluster_id,
                advertised,
                meta,
                topics: RwLock::new(BTreeMap::new()),
                admin: Mutex::new(()),
                producer_ids: Mutex::new((0, 0)),
                data_ready,
                fetch_sessions: FetchSessions::new(fetch_slots),
                groups: GroupCoordinator::with_log(group_config, Some(group_log)),
                cleaner: Default::default(),
                txns: crate::txn::TxnCoordinator::new(txn_config, weak.clone()),
            }
        });
        for t in topics_meta {
            broker.load_topic(t)?;
        }
        broker.remove_deleted_dirs();
        broker.load_groups();
        broker.load_txns();
        Ok(broker)
    }

    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{index}"))
    }

    fn open_partition(
        &self,
        name: &Arc<str>,
        index: i32,
        overrides: &BTreeMap<String, String>,
    ) -> anyhow::Result<Arc<Partition>> {
        let (log_config, durable) = topic::log_config(overrides, &self.config);
        let dir = self.partition_dir(name, index);
        let log = Log::open(&dir, log_config, now_ms())
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", dir.display()))?;
        let headers = log
            .headers_from(log.log_start_offset())
            .map_err(|e| anyhow::anyhow!("scanning {}: {e}", dir.display()))?;
        let producers = ProducerStates::rebuild_from_log(&log, &headers);
        Ok(Arc::new(Partition::new(
            name.clone(),
            index,
            log,
            producers,
            durable,
            now_ms(),
        )))
    }

    fn load_topic(&self, t: TopicMeta) -> anyhow::Result<()> {
        let name: Arc<str> = Arc::from(t.name.as_str());
        let mut partitions = Vec::with_capacity(t.partitions as usize);
        for i in 0..t.partitions {
            partitions.push(self.open_partition(&name, i, &t.configs)?);
        }
        let topic = Topic {
            name,
            id: t.id,
            internal: t.internal,
            configs: RwLock::new(t.configs),
            partitions: RwLock::new(partitions),
        };
        self.topics
            .write()
            .expect("topics lock")
            .insert(t.name, Arc::new(topic));
        Ok(())
    }

    fn remove_deleted_dirs(&self) {
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with("-delete") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().expect("topics lock").get(name).cloned()
    }

    /// The topic, or UNKNOWN_TOPIC_OR_PARTITION naming it.
    pub fn existing_topic(&self, name: &str) -> Result<Arc<Topic>, ApiError> {
        self.topic(name).ok_or_else(|| {
            ApiError::new(
                codes::UNKNOWN_TOPIC_OR_PARTITION,
                format!("Topic '{name}' does not exist."),
            )
        })
    }

    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .expect("topics lock")
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .expect("topics lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.topic(topic)?.partition(index)
    }

    /// Checks a CreateTopics entry without creating anything.
    pub fn validate_new_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        topic::validate_name(name).map_err(|m| ApiError::new(codes::INVALID_TOPIC_EXCEPTION, m))?;
        if self.topic(name).is_some() {
            return Err(ApiError::new(
                codes::TOPIC_ALREADY_EXISTS,
                format!("Topic '{name}' already exists."),
            ));
        }
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
            return Err(ApiError::new(
                codes::INVALID_PARTITIONS,
                format!("Number of partitions must be between 1 and {PARTITIONS_PER_TOPIC_MAX}, got {partitions}."),
            ));
        }
        if replication != 1 {
            return Err(ApiError::new(
                codes::INVALID_REPLICATION_FACTOR,
                format!("Replication factor {replication} is larger than the number of brokers (1); Eddy runs one node: use 1 or -1."),
            ));
        }
        for (k, v) in configs {
            check_topic_config(k, v).map_err(|e| config_error(&e))?;
        }
        Ok(())
    }

    /// Creates a topic; `replication` -1 means the default.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, ApiError> {
        let _admin = self.admin.lock().expect("admin lock");
        let partitions = if partitions == -1 {
            self.config.i64("num.partitions") as i32
        } else {
            partitions
        };
        let replication = if replication == -1 { 1 } else { replication };
        self.validate_new_topic(name, partitions, replication, &configs)?;
        let meta = TopicMeta {
            name: name.to_string(),
            id: uuid::Uuid::new_v4(),
            partitions,
            configs,
            internal: name.starts_with("__"),
        };
        self.meta.save_topic(&meta).map_err(storage_error)?;
        self.load_topic(meta)
            .map_err(|e| ApiError::new(codes::KAFKA_STORAGE_ERROR, e.to_string()))?;
        tracing::info!(topic = name, partitions, "created topic");
        self.topic(name).ok_or_else(|| {
            ApiError::new(codes::UNKNOWN_SERVER_ERROR, "topic vanished after creation")
        })
    }

    /// Creates a topic on first use when `auto.create.topics.enable` allows it.
    pub fn auto_create(&self, name: &str) -> Result<Arc<Topic>, ApiError> {
        if let Some(t) = self.topic(name) {
            return Ok(t);
        }
        if !self.config.bool("auto.create.topics.enable") {
            return Err(ApiError::new(
                codes::UNKNOWN_TOPIC_OR_PARTITION,
                format!("Topic '{name}' does not exist."),
            ));
        }
        match self.create_topic(name, -1, -1, BTreeMap::new()) {
            Err(e) if e.code == codes::TOPIC_ALREADY_EXISTS => self
                .topic(name)
                .ok_or_else(|| ApiError::new(codes::UNKNOWN_TOPIC_OR_PARTITION, "topic vanished")),
            other => other,
        }
    }

    pub fn delete_topic(&self, name: &str) -> Result<(), ApiError> {
        if !self.config.bool("delete.topic.enable") {
            return Err(ApiError::new(
                codes::TOPIC_DELETION_DISABLED,
                "Topic deletion is disabled (delete.topic.enable=false).",
            ));
        }
        let _admin = self.admin.lock().expect("admin lock");
        let topic = self.existing_topic(name)?;
        // The metadata file goes first: after a crash the topic is gone and
        // its leftover directories are swept at start.
        self.meta.delete_topic(name).map_err(storage_error)?;
        self.topics.write().expect("topics lock").remove(name);
        for p in topic.all_partitions() {
            let dir = self.partition_dir(name, p.index);
            let doomed = self.data_dir.join(format!(
                "{name}-{}.{}-delete",
                p.index,
                uuid::Uuid::new_v4().simple()
            ));
            if std::fs::rename(&dir, &doomed).is_ok() {
                let _ = std::fs::remove_dir_all(&doomed);
            }
            p.mark_failed();
        }
        self.data_ready.notify_waiters();
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _admin = self.admin.lock().expect("admin lock");
        let topic = self.existing_topic(name)?;
        let current = topic.partition_count();
        if count <= current {
            return Err(ApiError::new(codes::INVALID_PARTITIONS, format!("Topic currently has {current} partitions, which is higher than or equal to the requested {count}.")));
        }
        if count > PARTITIONS_PER_TOPIC_MAX {
            return Err(ApiError::new(
                codes::INVALID_PARTITIONS,
                format!("At most {PARTITIONS_PER_TOPIC_MAX} partitions per topic."),
            ));
        }
        if validate_only {
            return Ok(());
        }
        let overrides = topic.configs.read().expect("topic lock").clone();
        let mut added = Vec::new();
        for i in current..count {
            added.push(
                self.open_partition(&topic.name, i, &overrides)
                    .map_err(|e| ApiError::new(codes::KAFKA_STORAGE_ERROR, e.to_string()))?,
            );
        }
        let meta = TopicMeta {
            name: name.to_string(),
            id: topic.id,
            partitions: count,
            configs: overrides,
            internal: topic.internal,
        };
        self.meta.save_topic(&meta).map_err(storage_error)?;
        topic.partitions.write().expect("topic lock").extend(added);
        Ok(())
    }

    /// Replaces a topic's overrides (AlterConfigs semantics) after validation.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _admin = self.admin.lock().expect("admin lock");
        let topic = self.existing_topic(name)?;
        for (k, v) in &configs {
            check_topic_config(k, v).map_err(|e| config_error(&e))?;
        }
        if validate_only {
            return Ok(());
        }
        let meta = TopicMeta {
            name: name.to_string(),
            id: topic.id,
            partitions: topic.partition_count(),
            configs: configs.clone(),
            internal: topic.internal,
        };
        self.meta.save_topic(&meta).map_err(storage_error)?;
        let (log_config, durable) = topic::log_config(&configs, &self.config);
        *topic.configs.write().expect("topic lock") = configs;
        for p in topic.all_partitions() {
            p.set_config(log_config.clone(), durable);
        }
        Ok(())
    }

    /// A fresh producer id from the durably reserved block.
    pub fn next_producer_id(&self) -> Result<i64, ApiError> {
        let mut ids = self.producer_ids.lock().expect("producer id lock");
        if ids.0 >= ids.1 {
            let start = self
                .meta
                .reserve_producer_ids(PRODUCER_ID_BLOCK)
                .map_err(storage_error)?;
            *ids = (start, start + PRODUCER_ID_BLOCK);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    fn partitions_due_for_flush(&self) -> Vec<Arc<Partition>> {
        let now = now_ms();
        let mut due = Vec::new();
        for t in self.topics() {
            let flush_ms = t
                .configs
                .read()
                .expect("topic lock")
                .get("flush.ms")
                .cloned()
                .unwrap_or_else(|| self.config.topic_default("flush.ms").0)
                .parse::<i64>()
                .unwrap_or(i64::MAX);
            if flush_ms == i64::MAX {
                continue;
            }
            for p in t.all_partitions() {
                if p.is_durable() {
                    continue;
                }
                let state = p.lock();
                if state.unflushed_messages > 0 && now - state.last_flush_ms >= flush_ms {
                    drop(state);
                    due.push(p);
                }
            }
        }
        due
    }

    /// Applies time and size retention to every partition.
    pub fn enforce_retention(&self) {
        let now = now_ms();
        let expiration_ms = self.config.i64("producer.id.expiration.ms");
        for t in self.topics() {
            for p in t.all_partitions() {
                let mut state = p.lock();
                match state.log.enforce_retention(now) {
                    Ok(n) if n > 0 => {
                        tracing::info!(topic = %p.topic, partition = p.index, segments = n, "retention deleted segments")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "retention failed")
                    }
                }
                state.producers.expire(now, expiration_ms);
                p.publish(&state);
            }
        }
    }

    /// Clean shutdown: every log flushed and closed with its clean marker.
    pub fn shutdown(&self) {
        self.flusher.shutdown();
        let topics = std::mem::take(&mut *self.topics.write().expect("topics lock"));
        for (_, t) in topics {
            let partitions = std::mem::take(&mut *t.partitions.write().expect("topic lock"));
            for p in partitions {
                let (topic, index) = (p.topic.clone(), p.index);
                match Arc::try_unwrap(p) {
                    Ok(p) => {
                        if let Err(e) = p.into_state().log.close() {
                            tracing::error!(%topic, partition = index, error = %e, "closing log failed");
                        }
                    }
                    Err(p) => {
                        // Still referenced by a request that outlived the
                        // drain: flush what it has; recovery does the rest.
                        let mut state = p.lock();
                        if let Some(job) = state.log.flush_job() {
                            let _ = state.log.mark_flushed(job.complete());
                        }
                    }
                }
            }
        }
    }

    /// Per-partition overview for tests and the CLI: (topic, partition, start, end, hw).
    pub fn offsets(&self) -> HashMap<(String, i32), (i64, i64, i64)> {
        let mut out = HashMap::new();
        for t in self.topics() {
            for p in t.all_partitions() {
                out.insert(
                    (t.name.to_string(), p.index),
                    (p.log_start_offset(), p.log_end_offset(), p.high_watermark()),
                );
            }
        }
        out
    }
}

fn storage_error(e: std::io::Error) -> ApiError {
    ApiError::new(
        codes::KAFKA_STORAGE_ERROR,
        format!("metadata write failed: {e}"),
    )
}

pub fn config_error(e: &ConfigError) -> ApiError {
    ApiError::new(codes::INVALID_CONFIG, e.to_string())
}
