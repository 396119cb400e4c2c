//! `KafkaStreams`: runs a topology against a Kafka-protocol broker. The application id is
//! the consumer group; instances with one application id share the tasks, and when one
//! goes, the others take its tasks over and rebuild its stores from their changelogs.
//!
//! One stream thread per instance (run more instances to scale out). Persistent stores live
//! in the state directory and restore from their checkpoint on; in-memory stores restore
//! their whole changelog when a task is assigned (`stores`). Interactive queries of the
//! stores and of where keys live are in `query` (an `impl KafkaStreams` block); `http`
//! serves them over HTTP.

mod assignor;
mod global;
#[cfg(feature = "http")]
pub mod http;
mod process;
mod query;
mod standby;
mod stores;
mod thread;
mod topics;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::StreamsConfig;
use crate::error::{Result, StreamsError};
use crate::state::StoreHandle;
use crate::task::{Task, TaskId, TaskMetrics};
use crate::topology::Topology;

pub use assignor::{HostMap, StreamsAssignor};
pub use query::{KeyQueryMetadata, QueryHandle, StreamsMetadata};

/// Kafka Streams' application states, simplified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamsState {
    Created,
    Rebalancing,
    Running,
    /// Stopped by an error, which it carries.
    Error(String),
    NotRunning,
}

/// What the thread shares with the application: state, stores (interactive queries),
/// metrics.
pub(crate) struct Shared {
    state: Mutex<StreamsState>,
    stores: Mutex<HashMap<TaskId, HashMap<String, StoreHandle>>>,
    standby_tasks: Mutex<Vec<TaskId>>,
    /// Which `application.server` runs which tasks, from the last assignment.
    hosts: Mutex<HostMap>,
    metrics: Mutex<TaskMetrics>,
    state_changed: watch::Sender<StreamsState>,
}

impl Shared {
    fn set_state(&self, s: StreamsState) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = s.clone();
        self.state_changed.send_replace(s);
    }

    fn set_hosts(&self, hosts: HostMap) {
        *self.hosts.lock().unwrap_or_else(|p| p.into_inner()) = hosts;
    }

    fn set_standby_tasks(&self, ids: Vec<TaskId>) {
        *self.standby_tasks.lock().unwrap_or_else(|p| p.into_inner()) = ids;
    }

    fn set_tasks(&self, tasks: &BTreeMap<TaskId, Task>) {
        let map = tasks
            .iter()
            .map(|(id, t)| (*id, t.stores().clone()))
            .collect();
        *self.stores.lock().unwrap_or_else(|p| p.into_inner()) = map;
    }

    fn set_metrics(&self, tasks: &BTreeMap<TaskId, Task>) {
        let mut m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        let mut sum = TaskMetrics::default();
        for t in tasks.values() {
            let x = t.metrics();
            sum.processed += x.processed;
            sum.dropped_records += x.dropped_records;
            sum.deserialization_errors += x.deserialization_errors;
            sum.processing_errors += x.processing_errors;
            sum.dead_lettered += x.dead_lettered;
        }
        *m = sum;
    }
}

pub struct KafkaStreams {
    topology: Arc<Topology>,
    config: StreamsConfig,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<Result<()>>>,
    state_rx: watch::Receiver<StreamsState>,
}

impl KafkaStreams {
    pub fn new(topology: Topology, config: StreamsConfig) -> KafkaStreams {
        let (state_changed, state_rx) = watch::channel(StreamsState::Created);
        KafkaStreams {
            topology: Arc::new(topology),
            config,
            shared: Arc::new(Shared {
                state: Mutex::new(StreamsState::Created),
                stores: Mutex::default(),
                standby_tasks: Mutex::default(),
                hosts: Mutex::default(),
                metrics: Mutex::default(),
                state_changed,
            }),
            stop: watch::channel(false).0,
            thread: None,
            state_rx,
        }
    }

    /// Starts processing on the current tokio runtime.
    pub fn start(&mut self) {
        assert!(self.thread.is_none(), "started twice");
        let (topology, config, shared) = (
            self.topology.clone(),
            self.config.clone(),
            self.shared.clone(),
        );
        let stop = self.stop.subscribe();
        self.shared.set_state(StreamsState::Rebalancing);
        self.thread = Some(tokio::spawn(async move {
            let result = async {
                let thread = thread::StreamThread::start(topology, config, shared.clone()).await?;
                thread.run(stop).await
            }
            .await;
            match &result {
                Ok(()) => shared.set_state(StreamsState::NotRunning),
                Err(e) => {
                    tracing::error!(error = %e, "stream thread failed");
                    shared.set_state(StreamsState::Error(e.to_string()));
                }
            }
            result
        }));
    }

    /// The topology this application runs.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn state(&self) -> StreamsState {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until the application is in `want` (or failed), at most `timeout`.
    pub async fn wait_for(
        &mut self,
        want: StreamsState,
        timeout: std::time::Duration,
    ) -> Result<()> {
        let wait = self
            .state_rx
            .wait_for(|s| *s == want || matches!(s, StreamsState::Error(_)));
        let reached = match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(s)) => Some(s.clone()),
            _ => None,
        };
        match reached {
            Some(StreamsState::Error(e)) => Err(StreamsError::TaskFailed {
                task: "-".into(),
                cause: e,
            }),
            Some(_) => Ok(()),
            None => Err(StreamsError::Config(format!(
                "not {want:?} after {timeout:?}: {:?}",
                self.state()
            ))),
        }
    }

    /// Task metrics as of the last commit.
    pub fn metrics(&self) -> TaskMetrics {
        self.shared
            .metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The tasks this instance runs now.
    pub fn tasks(&self) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = self
            .shared
            .stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        ids.sort();
        ids
    }

    /// The standby replicas this instance keeps now (`num.standby.replicas`).
    pub fn standby_tasks(&self) -> Vec<TaskId> {
        self.shared
            .standby_tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Commits, leaves the group and stops.
    pub async fn close(mut self) -> Result<()> {
        self.stop.send_replace(true);
        match self.thread.take() {
            Some(t) => t
                .await
                .map_err(|e| StreamsError::Config(format!("stream thread panicked: {e}")))?,
            None => Ok(()),
        }
    }
}
