//! The Processor API: what every node of a topology is, and the context it runs in.
//!
//! Forwarding is synchronous and depth-first, as in Kafka Streams: `ctx.forward(record)`
//! runs each child (and its descendants) before returning. A node being run is taken out of
//! the task's node table for the duration, which is sound because a topology is acyclic: a
//! node is never its own descendant.
//!
//! Applications write processors against the typed [`Processor`] trait; the DSL's
//! operators implement the erased [`Node`] directly.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use eddy_client::Header;

use crate::error::{Result, StreamsError};
use crate::record::{OutRecord, Record, RecordMeta};
use crate::state::{KeyValueStore, SessionStore, StoreHandle, WindowStore};
use crate::task::TaskId;
use crate::value::{Data, Value};

/// A node of a topology, over erased records.
pub trait Node: Send {
    fn init(&mut self, _ctx: &mut Context<'_>) -> Result<()> {
        Ok(())
    }
    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()>;
    /// A punctuation this node scheduled (`id` from [`Context::schedule`]) is due.
    fn punctuate(&mut self, _ctx: &mut Context<'_>, _id: u64, _timestamp_ms: i64) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) {}
}

/// Which clock drives a punctuation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunctuationType {
    /// Stream time: advances only with record timestamps.
    StreamTime,
    /// System time.
    WallClockTime,
}

#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub id: u64,
    pub node: usize,
    pub kind: PunctuationType,
    pub interval_ms: i64,
    /// Next due time; `None` for stream time until the first record is seen.
    pub next_ms: Option<i64>,
}

/// Everything of a task that processors reach through their context.
pub(crate) struct Env {
    pub application_id: String,
    pub task: TaskId,
    pub children: Arc<Vec<Vec<usize>>>,
    pub node_names: Arc<Vec<String>>,
    /// Stores each node is connected to.
    pub node_stores: Arc<Vec<Vec<String>>>,
    pub meta: RecordMeta,
    pub stream_time_ms: i64,
    pub wall_clock_ms: i64,
    pub stores: HashMap<String, StoreHandle>,
    pub out: Vec<OutRecord>,
    pub schedules: Vec<Schedule>,
    pub next_schedule_id: u64,
    /// Records dropped by operators (late, null keys): Kafka's `dropped-records` metric.
    pub dropped_records: u64,
}

/// What a node sees while it runs.
pub struct Context<'a> {
    pub(crate) node: usize,
    pub(crate) nodes: &'a mut [Option<Box<dyn Node>>],
    pub(crate) env: &'a mut Env,
}

impl<'a> Context<'a> {
    /// Sends `record` to every child of this node, depth-first.
    pub fn forward(&mut self, record: Record) -> Result<()> {
        let children = Arc::clone(&self.env.children);
        let kids = &children[self.node];
        let Some((&last, rest)) = kids.split_last() else {
            return Ok(());
        };
        for &c in rest {
            self.run_child(c, record.clone())?;
        }
        self.run_child(last, record)
    }

    /// Sends `record` to the child named `child` only (`split`/`branch`).
    pub fn forward_to(&mut self, child: &str, record: Record) -> Result<()> {
        let children = Arc::clone(&self.env.children);
        let names = Arc::clone(&self.env.node_names);
        match children[self.node].iter().find(|&&c| names[c] == child) {
            Some(&c) => self.run_child(c, record),
            None => Err(StreamsError::Config(format!(
                "processor {:?} has no child {child:?}",
                names[self.node]
            ))),
        }
    }

    pub(crate) fn run_child(&mut self, child: usize, record: Record) -> Result<()> {
        let mut node = self.nodes[child]
            .take()
            .expect("a topology is acyclic: a running node is never its own descendant");
        let mut ctx = Context {
            node: child,
            nodes: &mut *self.nodes,
            env: &mut *self.env,
        };
        let result = node.process(&mut ctx, record);
        self.nodes[child] = Some(node);
        result
    }

    /// Topic, partition, offset and timestamp of the input record being processed.
    pub fn record_meta(&self) -> &RecordMeta {
        &self.env.meta
    }

    /// Highest record timestamp the task has seen.
    pub fn stream_time_ms(&self) -> i64 {
        self.env.stream_time_ms
    }

    pub fn wall_clock_ms(&self) -> i64 {
        self.env.wall_clock_ms
    }

    pub fn task_id(&self) -> TaskId {
        self.env.task
    }

    pub fn application_id(&self) -> &str {
        &self.env.application_id
    }

    pub fn node_name(&self) -> &str {
        &self.env.node_names[self.node]
    }

    /// Calls this node's `punctuate` every `interval_ms` of the given clock; returns the id
    /// the calls carry.
    pub fn schedule(&mut self, interval_ms: i64, kind: PunctuationType) -> u64 {
        assert!(interval_ms > 0, "punctuation interval must be positive");
        let id = self.env.next_schedule_id;
        self.env.next_schedule_id += 1;
        let next_ms = match kind {
            PunctuationType::WallClockTime => Some(self.env.wall_clock_ms + interval_ms),
            PunctuationType::StreamTime => {
                (self.env.stream_time_ms > i64::MIN).then(|| self.env.stream_time_ms + interval_ms)
            }
        };
        self.env.schedules.push(Schedule {
            id,
            node: self.node,
            kind,
            interval_ms,
            next_ms,
        });
        id
    }

    pub fn cancel(&mut self, id: u64) {
        self.env.schedules.retain(|s| s.id != id);
    }

    /// A state store connected to this node.
    pub fn store_handle(&self, name: &str) -> Result<StoreHandle> {
        let connected = self.env.node_stores[self.node].iter().any(|s| s == name);
        match self.env.stores.get(name) {
            Some(h) if connected => Ok(h.clone()),
            _ => Err(StreamsError::UnknownStore {
                store: name.to_owned(),
                node: self.node_name().to_owned(),
            }),
        }
    }

    /// A key-value store connected to this node, typed by the serdes it was built with.
    pub fn key_value_store<K: Data, V: Data>(&self, name: &str) -> Result<KeyValueStore<K, V>> {
        KeyValueStore::from_handle(self.store_handle(name)?)
    }

    /// A window store connected to this node.
    pub fn window_store<K: Data, V: Data>(&self, name: &str) -> Result<WindowStore<K, V>> {
        WindowStore::from_handle(self.store_handle(name)?)
    }

    /// A session store connected to this node.
    pub fn session_store<K: Data, V: Data>(&self, name: &str) -> Result<SessionStore<K, V>> {
        SessionStore::from_handle(self.store_handle(name)?)
    }

    /// Counts a record an operator dropped on purpose (late, or a null key where one is
    /// required).
    pub fn record_dropped(&mut self) {
        self.env.dropped_records += 1;
    }

    pub(crate) fn emit(&mut self, out: OutRecord) {
        self.env.out.push(out);
    }
}

/// A record as a typed processor sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedRecord<K, V> {
    pub key: K,
    pub value: V,
    pub timestamp_ms: i64,
    pub headers: Vec<Header>,
}

impl<K: Data, V: Data> TypedRecord<K, V> {
    pub fn new(key: K, value: V, timestamp_ms: i64) -> Self {
        TypedRecord {
            key,
            value,
            timestamp_ms,
            headers: Vec::new(),
        }
    }

    pub(crate) fn from_record(r: Record) -> Self {
        TypedRecord {
            key: r.key.take(),
            value: r.value.take(),
            timestamp_ms: r.timestamp_ms,
            headers: r.headers,
        }
    }

    pub(crate) fn into_record(self) -> Record {
        Record {
            key: Value::new(self.key),
            value: Value::new(self.value),
            timestamp_ms: self.timestamp_ms,
            headers: self.headers,
        }
    }
}

/// A context whose forwards are typed `KO`, `VO`: what the next operator takes.
pub struct ProcessorContext<'c, 'a, KO, VO> {
    inner: &'c mut Context<'a>,
    _out: PhantomData<fn(KO, VO)>,
}

impl<'c, 'a, KO: Data, VO: Data> ProcessorContext<'c, 'a, KO, VO> {
    pub fn forward(&mut self, record: TypedRecord<KO, VO>) -> Result<()> {
        self.inner.forward(record.into_record())
    }
    pub fn forward_to(&mut self, child: &str, record: TypedRecord<KO, VO>) -> Result<()> {
        self.inner.forward_to(child, record.into_record())
    }
    pub fn record_meta(&self) -> &RecordMeta {
        self.inner.record_meta()
    }
    pub fn stream_time_ms(&self) -> i64 {
        self.inner.stream_time_ms()
    }
    pub fn wall_clock_ms(&self) -> i64 {
        self.inner.wall_clock_ms()
    }
    pub fn task_id(&self) -> TaskId {
        self.inner.task_id()
    }
    pub fn schedule(&mut self, interval_ms: i64, kind: PunctuationType) -> u64 {
        self.inner.schedule(interval_ms, kind)
    }
    pub fn cancel(&mut self, id: u64) {
        self.inner.cancel(id)
    }
    pub fn key_value_store<K: Data, V: Data>(&self, name: &str) -> Result<KeyValueStore<K, V>> {
        self.inner.key_value_store(name)
    }
    pub fn window_store<K: Data, V: Data>(&self, name: &str) -> Result<WindowStore<K, V>> {
        self.inner.window_store(name)
    }
}

/// A custom processor: takes `(K, V)` records and forwards `(KO, VO)` ones.
pub trait Processor<K, V, KO, VO>: Send {
    fn init(&mut self, _ctx: &mut ProcessorContext<'_, '_, KO, VO>) -> Result<()> {
        Ok(())
    }
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, KO, VO>,
        record: TypedRecord<K, V>,
    ) -> Result<()>;
    fn punctuate(
        &mut self,
        _ctx: &mut ProcessorContext<'_, '_, KO, VO>,
        _id: u64,
        _timestamp_ms: i64,
    ) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) {}
}

/// A typed [`Processor`] as a [`Node`].
pub(crate) struct TypedNode<P, K, V, KO, VO> {
    pub processor: P,
    pub _types: PhantomData<fn(K, V, KO, VO)>,
}

impl<P, K, V, KO, VO> Node for TypedNode<P, K, V, KO, VO>
where
    P: Processor<K, V, KO, VO>,
    K: Data,
    V: Data,
    KO: Data,
    VO: Data,
{
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let mut typed = ProcessorContext {
            inner: ctx,
            _out: PhantomData,
        };
        self.processor.init(&mut typed)
    }
    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let mut typed = ProcessorContext {
            inner: ctx,
            _out: PhantomData,
        };
        self.processor
            .process(&mut typed, TypedRecord::from_record(record))
    }
    fn punctuate(&mut self, ctx: &mut Context<'_>, id: u64, timestamp_ms: i64) -> Result<()> {
        let mut typed = ProcessorContext {
            inner: ctx,
            _out: PhantomData,
        };
        self.processor.punctuate(&mut typed, id, timestamp_ms)
    }
    fn close(&mut self) {
        self.processor.close()
    }
}
