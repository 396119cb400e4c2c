//! A task: one instance of a sub-topology for one partition of its input topics. It turns
//! consumed records into processor calls and collects what the topology produces (sink
//! records and changelog entries) for the runtime to send.
//!
//! The task is plain synchronous code; the runtime (or the test driver) feeds it.

use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use bytes::Bytes;
use eddy_client::Header;

use crate::config::ErrorHandling;
use crate::error::{Result, StreamsError};
use crate::processor::{Context, Env, Node, PunctuationType};
use crate::record::{OutRecord, Record, RecordMeta};
use crate::state::{StoreHandle, StoreInstance};
use crate::topology::{NodeKind, StoreSpec, Topology};

/// `<sub-topology>_<partition>`, as Kafka Streams names tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    pub subtopology: usize,
    pub partition: i32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

impl std::str::FromStr for TaskId {
    type Err = String;
    fn from_str(s: &str) -> Result<TaskId, String> {
        let (a, b) = s
            .split_once('_')
            .ok_or_else(|| format!("bad task id {s:?}"))?;
        Ok(TaskId {
            subtopology: a.parse().map_err(|_| format!("bad task id {s:?}"))?,
            partition: b.parse().map_err(|_| format!("bad task id {s:?}"))?,
        })
    }
}

/// Makes the engine of a store for a task.
pub type StoreFactory<'a> =
    &'a dyn Fn(&StoreSpec, TaskId) -> Result<Box<dyn eddy_store::KeyValueStore>>;

/// One consumed record, before decoding.
#[derive(Debug, Clone)]
pub struct InputRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// Counters a task keeps (Kafka Streams' task-level metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskMetrics {
    pub processed: u64,
    /// Records skipped by a handler (bad bytes or a failed processor) or dropped by an
    /// operator (late, null key).
    pub dropped_records: u64,
    pub deserialization_errors: u64,
    pub processing_errors: u64,
    pub dead_lettered: u64,
}

pub struct Task {
    pub id: TaskId,
    topology: Arc<Topology>,
    nodes: Vec<Option<Box<dyn Node>>>,
    env: Env,
    /// Resolved source topic → source node.
    sources: HashMap<String, usize>,
    errors: ErrorHandling,
    metrics: TaskMetrics,
}

impl Task {
    pub fn new(
        topology: Arc<Topology>,
        id: TaskId,
        application_id: &str,
        stores: StoreFactory<'_>,
        globals: &HashMap<String, StoreHandle>,
        errors: ErrorHandling,
        wall_clock_ms: i64,
    ) -> Result<Task> {
        let sub = topology
            .subtopologies
            .get(id.subtopology)
            .ok_or_else(|| StreamsError::Config(format!("task {id}: no such sub-topology")))?;
        let mut nodes: Vec<Option<Box<dyn Node>>> = topology.nodes.iter().map(|_| None).collect();
        let mut sources = HashMap::new();
        for &i in &sub.nodes {
            let spec = &topology.nodes[i];
            nodes[i] = Some(match &spec.kind {
                NodeKind::Source(src) => {
                    for t in &src.topics {
                        sources.insert(t.resolve(application_id), i);
                    }
                    Box::new(crate::ops::source::SourceNode)
                }
                NodeKind::Processor(factory) => factory(),
                NodeKind::Sink(sink) => Box::new(crate::ops::sink::SinkNode::new(
                    sink.topic.resolve(application_id),
                    sink.encode.clone(),
                )),
            });
        }
        let mut handles = HashMap::new();
        for name in &sub.stores {
            let spec = &topology.stores[name];
            let engine = stores(spec, id)?;
            let changelog = spec
                .logged
                .then(|| (spec.changelog().resolve(application_id), id.partition));
            handles.insert(
                name.clone(),
                StoreHandle::new(StoreInstance {
                    name: name.clone(),
                    engine: crate::state::Layout::new(spec.kind, engine),
                    changelog,
                    pending: Vec::new(),
                    serdes: spec.serdes.clone(),
                    kind: spec.kind,
                    restored_time_ms: i64::MIN,
                    written_time_ms: i64::MIN,
                }),
            );
        }
        // Global stores are shared by every task of the instance.
        for (name, handle) in globals {
            handles.insert(name.clone(), handle.clone());
        }
        let env = Env {
            application_id: application_id.to_owned(),
            task: id,
            children: topology.children.clone(),
            node_names: Arc::new(topology.nodes.iter().map(|n| n.name.clone()).collect()),
            node_stores: Arc::new(
                topology
                    .nodes
                    .iter()
                    .map(|n| n.stores.iter().chain(&n.global_stores).cloned().collect())
                    .collect(),
            ),
            meta: RecordMeta::default(),
            stream_time_ms: i64::MIN,
            wall_clock_ms,
            stores: handles,
            out: Vec::new(),
            schedules: Vec::new(),
            next_schedule_id: 0,
            dropped_records: 0,
        };
        let mut task = Task {
            id,
            topology,
            nodes,
            env,
            sources,
            errors,
            metrics: TaskMetrics::default(),
        };
        for i in sub_nodes(&task.topology, id) {
            task.with_node(i, |node, ctx| node.init(ctx))?;
        }
        Ok(task)
    }

    fn with_node<T>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Box<dyn Node>, &mut Context<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut node = self.nodes[i].take().expect("node of this task");
        let mut ctx = Context {
            node: i,
            nodes: &mut self.nodes,
            env: &mut self.env,
        };
        let out = f(&mut node, &mut ctx);
        self.nodes[i] = Some(node);
        out
    }

    /// The stores of this task, by name.
    pub fn stores(&self) -> &HashMap<String, StoreHandle> {
        &self.env.stores
    }

    pub fn metrics(&self) -> TaskMetrics {
        let mut m = self.metrics.clone();
        m.dropped_records += self.env.dropped_records;
        m
    }

    pub fn stream_time_ms(&self) -> i64 {
        self.env.stream_time_ms
    }

    /// Runs one consumed record through the topology. Bad bytes and failing processors
    /// go to the configured handlers; an `Err` means the task must stop.
    pub fn process(&mut self, input: InputRecord) -> Result<()> {
        let Some(&source) = self.sources.get(&input.topic) else {
            return Err(StreamsError::Config(format!(
                "task {} does not read topic {:?}",
                self.id, input.topic
            )));
        };
        self.env.meta = RecordMeta {
            topic: input.topic.clone(),
            partition: input.partition,
            offset: input.offset,
            timestamp_ms: input.timestamp_ms,
        };
        let record = match self.decode(source, &input) {
            Ok(r) => r,
            Err(e) => {
                self.metrics.deserialization_errors += 1;
                return self.handle_error(
                    &input,
                    "deserialization",
                    &e.to_string(),
                    self.errors.deserialization.clone(),
                );
            }
        };
        if record.timestamp_ms < 0 {
            self.metrics.deserialization_errors += 1;
            let why = format!("invalid (negative) timestamp {}", record.timestamp_ms);
            return self.handle_error(
                &input,
                "timestamp",
                &why,
                self.errors.deserialization.clone(),
            );
        }
        self.env.meta.timestamp_ms = record.timestamp_ms;
        self.env.stream_time_ms = self.env.stream_time_ms.max(record.timestamp_ms);
        let timestamp_ms = record.timestamp_ms;
        let result = self.run_guarded(source, |node, ctx| node.process(ctx, record));
        self.drain_changelogs(timestamp_ms);
        match result {
            Ok(()) => self.metrics.processed += 1,
            Err(e) => {
                self.metrics.processing_errors += 1;
                self.handle_error(
                    &input,
                    "processing",
                    &e.to_string(),
                    self.errors.processing.clone(),
                )?;
            }
        }
        self.punctuate_stream_time()
    }

    fn decode(&self, source: usize, input: &InputRecord) -> Result<Record> {
        let NodeKind::Source(spec) = &self.topology.nodes[source].kind else {
            unreachable!("sources map only to source nodes");
        };
        let key = (spec.key)(&input.topic, input.key.as_deref())?;
        let value = (spec.value)(&input.topic, input.value.as_deref())?;
        let timestamp_ms = match &spec.timestamp {
            Some(extract) => extract(input.timestamp_ms, &key, &value),
            None => input.timestamp_ms,
        };
        Ok(Record {
            key,
            value,
            timestamp_ms,
            headers: input.headers.clone(),
        })
    }

    /// Runs `f` on node `i`, turning a panic into a processing error.
    fn run_guarded(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Box<dyn Node>, &mut Context<'_>) -> Result<()>,
    ) -> Result<()> {
        let name = self.topology.nodes[i].name.clone();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.with_node(i, f)));
        match outcome {
            Ok(r) => r,
            Err(panic) => {
                // The node was taken out of the table when the panic unwound past it.
                self.restore_nodes_after_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".to_owned());
                Err(StreamsError::Processing {
                    node: name,
                    message: format!("panicked: {message}"),
                })
            }
        }
    }

    /// After a panic inside a processor, the nodes that were running are missing from the
    /// table; a task in that state cannot go on, so re-create them.
    fn restore_nodes_after_panic(&mut self) {
        let topology = self.topology.clone();
        for &i in &topology.subtopologies[self.id.subtopology].nodes {
            if self.nodes[i].is_none() {
                let spec = &topology.nodes[i];
                self.nodes[i] = Some(match &spec.kind {
                    NodeKind::Source(_) => Box::new(crate::ops::source::SourceNode),
                    NodeKind::Processor(factory) => factory(),
                    NodeKind::Sink(sink) => Box::new(crate::ops::sink::SinkNode::new(
                        sink.topic.resolve(&self.env.application_id),
                        sink.encode.clone(),
                    )),
                });
                let _ = self.with_node(i, |node, ctx| node.init(ctx));
            }
        }
    }

    fn handle_error(
        &mut self,
        input: &InputRecord,
        kind: &str,
        message: &str,
        handler: crate::config::ErrorHandler,
    ) -> Result<()> {
        use crate::config::ErrorHandler;
        match handler {
            ErrorHandler::LogAndFail => Err(StreamsError::TaskFailed {
                task: self.id.to_string(),
                cause: format!(
                    "{kind} error on {}-{} offset {}: {message}",
                    input.topic, input.partition, input.offset
                ),
            }),
            ErrorHandler::LogAndContinue => {
                tracing::warn!(task = %self.id, topic = %input.topic, partition = input.partition, offset = input.offset, error = message, "{kind} error; record skipped");
                self.metrics.dropped_records += 1;
                Ok(())
            }
            ErrorHandler::DeadLetterQueue(topic) => {
                tracing::warn!(task = %self.id, topic = %input.topic, partition = input.partition, offset = input.offset, error = message, dead_letter_topic = %topic, "{kind} error; record sent to the dead-letter topic");
                self.metrics.dropped_records += 1;
                self.metrics.dead_lettered += 1;
                self.env.out.push(dead_letter(&topic, input, kind, message));
                Ok(())
            }
        }
    }

    fn drain_changelogs(&mut self, timestamp_ms: i64) {
        for handle in self.env.stores.values() {
            let mut s = handle.lock();
            if s.pending.is_empty() {
                continue;
            }
            let Some((topic, partition)) = s.changelog.clone() else {
                s.pending.clear();
                continue;
            };
            s.written_time_ms = s.written_time_ms.max(timestamp_ms);
            for (key, value) in s.pending.drain(..) {
                self.env.out.push(OutRecord {
                    topic: topic.clone(),
                    partition: Some(partition),
                    key: Some(key),
                    value,
                    timestamp_ms,
                    headers: Vec::new(),
                });
            }
        }
    }

    fn punctuate_stream_time(&mut self) -> Result<()> {
        self.punctuate(PunctuationType::StreamTime, self.env.stream_time_ms)
    }

    /// Fires wall-clock punctuations due at `now_ms`.
    pub fn punctuate_wall_clock(&mut self, now_ms: i64) -> Result<()> {
        self.env.wall_clock_ms = now_ms;
        self.punctuate(PunctuationType::WallClockTime, now_ms)
    }

    fn punctuate(&mut self, kind: PunctuationType, now_ms: i64) -> Result<()> {
        if now_ms == i64::MIN {
            return Ok(());
        }
        loop {
            let due = self
                .env
                .schedules
                .iter_mut()
                .find(|s| s.kind == kind && s.next_ms.is_none_or(|n| n <= now_ms));
            let Some(s) = due else { return Ok(()) };
            // Stream-time schedules start with the first record; like Kafka, the first
            // punctuation is one interval after it.
            let fire_at = match s.next_ms {
                None => {
                    s.next_ms = Some(now_ms + s.interval_ms);
                    continue;
                }
                Some(n) => n,
            };
            // Skip missed intervals: one call per due time, as Kafka does for stream time.
            let missed = (now_ms - fire_at) / s.interval_ms;
            s.next_ms = Some(fire_at + (missed + 1) * s.interval_ms);
            let (node, id) = (s.node, s.id);
            self.env.meta = RecordMeta {
                offset: -1,
                partition: -1,
                timestamp_ms: now_ms,
                ..RecordMeta::default()
            };
            let result = self.run_guarded(node, |n, ctx| n.punctuate(ctx, id, now_ms));
            self.drain_changelogs(now_ms);
            if let Err(e) = result {
                return Err(StreamsError::TaskFailed {
                    task: self.id.to_string(),
                    cause: format!("punctuation failed: {e}"),
                });
            }
        }
    }

    /// Changelogs of this task's logged stores: (store, topic, partition).
    pub fn changelogs(&self) -> Vec<(String, String, i32)> {
        let mut out: Vec<_> = self
            .env
            .stores
            .iter()
            .filter_map(|(name, h)| {
                let (topic, partition) = h.lock().changelog.clone()?;
                Some((name.clone(), topic, partition))
            })
            .collect();
        out.sort();
        out
    }

    /// Applies one changelog record to `store` (restoration, before processing resumes).
    pub fn restore(
        &mut self,
        store: &str,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp_ms: i64,
    ) -> Result<()> {
        let handle = self.env.stores.get(store).ok_or_else(|| {
            StreamsError::Config(format!("task {} has no store {store:?}", self.id))
        })?;
        handle.lock().restore(key, value, timestamp_ms)
    }

    /// Whether `store` keeps its data on disk (restored from its checkpoint on).
    pub fn store_is_persistent(&self, store: &str) -> bool {
        self.topology
            .stores
            .get(store)
            .is_some_and(|s| s.persistent)
    }

    /// Stream time each store has seen (restored or written), for a checkpoint.
    pub fn store_times(&self) -> Vec<(String, i64)> {
        let mut out: Vec<_> = self
            .env
            .stores
            .iter()
            .map(|(name, h)| (name.clone(), h.lock().observed_time_ms()))
            .filter(|(_, t)| *t > i64::MIN)
            .collect();
        out.sort();
        out
    }

    /// Before a restore from a checkpoint: the stream time the store had seen when the
    /// checkpoint was written (the records before it are not replayed).
    pub fn set_restored_time(&mut self, store: &str, timestamp_ms: i64) {
        if let Some(h) = self.env.stores.get(store) {
            let mut s = h.lock();
            s.restored_time_ms = s.restored_time_ms.max(timestamp_ms);
        }
    }

    /// Re-runs every node's `init`, after a restore: operators that derive state from
    /// their stores (stream time of windowed aggregations) read it again.
    pub fn reinit(&mut self) -> Result<()> {
        for h in self.env.stores.values() {
            h.lock().finish_restore()?;
        }
        for i in sub_nodes(&self.topology, self.id) {
            self.with_node(i, |node, ctx| node.init(ctx))?;
        }
        Ok(())
    }

    /// Takes what the topology produced since the last call, in order.
    pub fn take_output(&mut self) -> Vec<OutRecord> {
        std::mem::take(&mut self.env.out)
    }

    /// Flushes every store (at commit).
    pub fn flush_stores(&mut self) -> Result<()> {
        for (name, h) in &self.env.stores {
            h.lock()
                .engine
                .flush()
                .map_err(|e| StreamsError::store(name, e))?;
        }
        Ok(())
    }

    pub fn close(mut self) {
        for n in self.nodes.iter_mut().flatten() {
            n.close();
        }
    }
}

fn sub_nodes(topology: &Topology, id: TaskId) -> Vec<usize> {
    topology.subtopologies[id.subtopology].nodes.clone()
}

/// KIP-1034's dead-letter record: the input bytes as they came, the error in headers.
fn dead_letter(topic: &str, input: &InputRecord, kind: &str, message: &str) -> OutRecord {
    let h = |k: &str, v: String| Header {
        key: k.to_owned(),
        value: Some(Bytes::from(v)),
    };
    let mut headers = input.headers.clone();
    headers.extend([
        h("__streams.errors.exception", format!("{kind} error")),
        h("__streams.errors.message", message.to_owned()),
        h("__streams.errors.topic", input.topic.clone()),
        h("__streams.errors.partition", input.partition.to_string()),
        h("__streams.errors.offset", input.offset.to_string()),
    ]);
    OutRecord {
        topic: topic.to_owned(),
        partition: None,
        key: input.key.clone(),
        value: input.value.clone(),
        timestamp_ms: input.timestamp_ms,
        headers,
    }
}
