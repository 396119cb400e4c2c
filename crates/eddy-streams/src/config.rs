//! Streams settings, named after Kafka Streams' configs.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::task::TaskId;

/// One store's restoration from its changelog, as Kafka's `StateRestoreListener` sees it
/// at `onRestoreEnd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreEvent {
    pub task: TaskId,
    pub store: String,
    pub topic: String,
    pub partition: i32,
    /// First changelog offset replayed: the checkpoint's for a persistent store that has
    /// one, else the start.
    pub from_offset: i64,
    /// The position the restore reached.
    pub to_offset: i64,
    /// Changelog records applied.
    pub records: u64,
}

/// Called once per store restoration (`StateRestoreListener`), on the stream thread: keep
/// it short.
#[derive(Clone)]
pub struct RestoreListener(pub Arc<dyn Fn(&RestoreEvent) + Send + Sync>);

impl fmt::Debug for RestoreListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RestoreListener")
    }
}

/// What to do with a record that cannot be deserialized or processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorHandler {
    /// Stop the task (and the application) with the error: Kafka's default.
    LogAndFail,
    /// Log, count in `dropped-records`, go on.
    LogAndContinue,
    /// Write the input record to this topic with the error in its headers
    /// (`__streams.errors.*`, KIP-1034), count it, go on.
    DeadLetterQueue(String),
}

/// `default.deserialization.exception.handler` and `processing.exception.handler`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorHandling {
    pub deserialization: ErrorHandler,
    pub processing: ErrorHandler,
}

impl Default for ErrorHandling {
    fn default() -> Self {
        ErrorHandling {
            deserialization: ErrorHandler::LogAndFail,
            processing: ErrorHandler::LogAndFail,
        }
    }
}

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingGuarantee {
    AtLeastOnce,
    /// Transactions: outputs, changelogs and consumed offsets commit together (KIP-447).
    ExactlyOnceV2,
}

#[derive(Debug, Clone)]
pub struct StreamsConfig {
    /// `application.id`: the consumer group, and the prefix of internal topics.
    pub application_id: String,
    /// `bootstrap.servers`
    pub bootstrap_servers: String,
    pub processing_guarantee: ProcessingGuarantee,
    /// `commit.interval.ms`: 30000 by default, 100 under exactly-once (as Kafka).
    pub commit_interval_ms: u64,
    /// `state.dir`
    pub state_dir: PathBuf,
    /// `num.standby.replicas`
    pub num_standby_replicas: u32,
    /// `application.server`: host:port this instance serves interactive queries on.
    pub application_server: Option<String>,
    pub errors: ErrorHandling,
    /// `replication.factor` of internal topics (-1: the broker's default).
    pub replication_factor: i16,
    /// `group.instance.id`: a static member (KIP-345) that restarts within the session
    /// timeout gets its tasks back without a rebalance.
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms` of the group member.
    pub session_timeout_ms: i32,
    /// `heartbeat.interval.ms`
    pub heartbeat_interval_ms: i32,
    /// `max.poll.interval.ms`
    pub max_poll_interval_ms: i32,
    /// `auto.offset.reset` of source topics without committed offsets: earliest, as
    /// Kafka Streams sets it.
    pub auto_offset_reset_earliest: bool,
    /// Told of every store restoration (Kafka's `setGlobalStateRestoreListener`).
    pub restore_listener: Option<RestoreListener>,
}

impl StreamsConfig {
    pub fn new(application_id: &str, bootstrap_servers: &str) -> StreamsConfig {
        StreamsConfig {
            application_id: application_id.to_owned(),
            bootstrap_servers: bootstrap_servers.to_owned(),
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            commit_interval_ms: 30_000,
            state_dir: std::env::temp_dir().join("eddy-streams"),
            num_standby_replicas: 0,
            application_server: None,
            errors: ErrorHandling::default(),
            replication_factor: -1,
            group_instance_id: None,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            auto_offset_reset_earliest: true,
            restore_listener: None,
        }
    }

    /// Sets `processing.guarantee`, and `commit.interval.ms` to its default for it.
    pub fn with_guarantee(mut self, g: ProcessingGuarantee) -> StreamsConfig {
        self.processing_guarantee = g;
        self.commit_interval_ms = match g {
            ProcessingGuarantee::AtLeastOnce => 30_000,
            ProcessingGuarantee::ExactlyOnceV2 => 100,
        };
        self
    }
}
