//! `TopologyTestDriver`: runs a topology without a broker, as Kafka Streams' test driver
//! does: records piped into input topics are processed at once, records written to
//! repartition topics are read back by the sub-topology that consumes them, and output
//! topics can be read. Stores are in memory. Good for testing operator semantics
//! deterministically; the runtime tests run the same topologies against a real broker.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use eddy_client::partition_for_key;

use crate::config::ErrorHandling;
use crate::error::{Result, StreamsError};
use crate::record::OutRecord;
use crate::serdes::SerdeRef;
use crate::state::{KeyValueStore, StoreHandle};
use crate::task::{InputRecord, Task, TaskId, TaskMetrics};
use crate::topology::Topology;
use crate::value::Data;

/// A typed view of a topic for piping records in or reading them out.
pub struct TestTopic<K, V> {
    pub name: String,
    pub key: SerdeRef<K>,
    pub value: SerdeRef<V>,
}

impl<K: Data, V: Data> TestTopic<K, V> {
    pub fn new(name: &str, key: SerdeRef<K>, value: SerdeRef<V>) -> Self {
        TestTopic {
            name: name.to_owned(),
            key,
            value,
        }
    }
}

/// One output record, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRecord<K, V> {
    pub key: K,
    pub value: V,
    pub timestamp_ms: i64,
}

pub struct TopologyTestDriver {
    topology: Arc<Topology>,
    application_id: String,
    partitions: i32,
    errors: ErrorHandling,
    tasks: BTreeMap<TaskId, Task>,
    /// Every record written to a topic (outputs, repartition topics, changelogs).
    written: BTreeMap<String, VecDeque<OutRecord>>,
    next_offset: BTreeMap<(String, i32), i64>,
    wall_clock_ms: i64,
    round_robin: i32,
    /// Global tables' stores: a record piped into a global table's topic updates them at once.
    globals: HashMap<String, StoreHandle>,
}

impl TopologyTestDriver {
    /// A driver where every topic has one partition.
    pub fn new(topology: Topology) -> TopologyTestDriver {
        TopologyTestDriver::with_partitions(topology, 1)
    }

    /// A driver where every topic has `partitions` partitions; records go to partitions by
    /// murmur2 of their key bytes, as the producer sends them.
    pub fn with_partitions(topology: Topology, partitions: i32) -> TopologyTestDriver {
        assert!(partitions > 0);
        let globals = StoreHandle::globals(&topology);
        TopologyTestDriver {
            globals,
            topology: Arc::new(topology),
            application_id: "test-driver".to_owned(),
            partitions,
            errors: ErrorHandling::default(),
            tasks: BTreeMap::new(),
            written: BTreeMap::new(),
            next_offset: BTreeMap::new(),
            wall_clock_ms: 0,
            round_robin: 0,
        }
    }

    pub fn with_error_handling(mut self, errors: ErrorHandling) -> Self {
        self.errors = errors;
        self
    }

    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    /// Pipes one record into `topic` and processes everything it leads to.
    pub fn pipe<K: Data, V: Data>(
        &mut self,
        topic: &TestTopic<K, V>,
        key: K,
        value: V,
        timestamp_ms: i64,
    ) -> Result<()> {
        let k = topic.key.serialize(&topic.name, &key)?;
        let v = topic.value.serialize(&topic.name, &value)?;
        self.pipe_raw(&topic.name, k, v, timestamp_ms)
    }

    /// Pipes raw bytes (for testing bad input).
    pub fn pipe_raw(
        &mut self,
        topic: &str,
        key: Option<Bytes>,
        value: Option<Bytes>,
        timestamp_ms: i64,
    ) -> Result<()> {
        let mut global = false;
        for (name, g) in self.topology.global_stores() {
            if g.topic == topic {
                global = true;
                self.globals[name].apply_global(
                    key.as_deref().unwrap_or_default(),
                    value.as_deref(),
                    timestamp_ms,
                )?;
            }
        }
        if global
            && self
                .topology
                .subtopology_reading(&self.application_id, topic)
                .is_none()
        {
            return Ok(());
        }
        let mut queue = VecDeque::from([OutRecord {
            topic: topic.to_owned(),
            partition: None,
            key,
            value,
            timestamp_ms,
            headers: Vec::new(),
        }]);
        while let Some(r) = queue.pop_front() {
            let Some(sub) = self
                .topology
                .subtopology_reading(&self.application_id, &r.topic)
            else {
                if r.topic == topic {
                    return Err(StreamsError::Config(format!(
                        "no source reads topic {topic:?}"
                    )));
                }
                continue;
            };
            let partition = r
                .partition
                .unwrap_or_else(|| self.partition_of(r.key.as_deref()));
            let offset = self.next_offset(&r.topic, partition);
            let id = TaskId {
                subtopology: sub,
                partition,
            };
            let task = self.task(id)?;
            task.process(InputRecord {
                topic: r.topic.clone(),
                partition,
                offset,
                timestamp_ms: r.timestamp_ms,
                key: r.key,
                value: r.value,
                headers: r.headers,
            })?;
            let out = task.take_output();
            self.collect(out, &mut queue);
        }
        Ok(())
    }

    fn collect(&mut self, out: Vec<OutRecord>, queue: &mut VecDeque<OutRecord>) {
        for o in out {
            if self
                .topology
                .subtopology_reading(&self.application_id, &o.topic)
                .is_some()
            {
                queue.push_back(o.clone());
            }
            self.written
                .entry(o.topic.clone())
                .or_default()
                .push_back(o);
        }
    }

    fn partition_of(&mut self, key: Option<&[u8]>) -> i32 {
        match key {
            Some(k) => partition_for_key(k, self.partitions as usize),
            None => {
                self.round_robin = (self.round_robin + 1) % self.partitions;
                self.round_robin
            }
        }
    }

    fn next_offset(&mut self, topic: &str, partition: i32) -> i64 {
        let o = self
            .next_offset
            .entry((topic.to_owned(), partition))
            .or_default();
        *o += 1;
        *o - 1
    }

    fn task(&mut self, id: TaskId) -> Result<&mut Task> {
        if !self.tasks.contains_key(&id) {
            let stores = |spec: &crate::topology::StoreSpec,
                          _: TaskId|
             -> Result<Box<dyn eddy_store::KeyValueStore>> {
                Ok(Box::new(eddy_store::InMemoryKeyValueStore::new(
                    spec.name.clone(),
                )))
            };
            let task = Task::new(
                self.topology.clone(),
                id,
                &self.application_id,
                &stores,
                &self.globals,
                self.errors.clone(),
                self.wall_clock_ms,
            )?;
            self.tasks.insert(id, task);
        }
        Ok(self.tasks.get_mut(&id).expect("inserted above"))
    }

    /// Simulates a restart: every task is dropped with its stores, and new tasks restore
    /// their stores from what was written to the changelogs, as the runtime restores them.
    pub fn restart(&mut self) -> Result<()> {
        let ids: Vec<TaskId> = std::mem::take(&mut self.tasks).into_keys().collect();
        for id in ids {
            let task = self.task(id)?;
            for (store, topic, partition) in task.changelogs() {
                let log: Vec<OutRecord> = self
                    .written
                    .get(&topic)
                    .map(|q| q.iter().cloned().collect())
                    .unwrap_or_default();
                let task = self.tasks.get_mut(&id).expect("created above");
                for r in log.iter().filter(|r| r.partition == Some(partition)) {
                    task.restore(
                        &store,
                        r.key.as_deref().unwrap_or_default(),
                        r.value.as_deref(),
                        r.timestamp_ms,
                    )?;
                }
            }
            self.tasks.get_mut(&id).expect("created above").reinit()?;
        }
        Ok(())
    }

    /// Moves the wall clock on, firing wall-clock punctuations.
    pub fn advance_wall_clock(&mut self, by_ms: i64) -> Result<()> {
        self.wall_clock_ms += by_ms;
        let mut queue = VecDeque::new();
        let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        for id in ids {
            let now = self.wall_clock_ms;
            let task = self.tasks.get_mut(&id).expect("listed");
            task.punctuate_wall_clock(now)?;
            let out = task.take_output();
            self.collect(out, &mut queue);
        }
        // Records punctuators wrote to repartition topics are processed too.
        while let Some(r) = queue.pop_front() {
            self.pipe_raw(&r.topic, r.key, r.value, r.timestamp_ms)?;
        }
        Ok(())
    }

    /// Takes the records written to `topic` so far, decoded.
    pub fn read<K: Data, V: Data>(
        &mut self,
        topic: &TestTopic<K, V>,
    ) -> Result<Vec<TestRecord<K, V>>> {
        let records = self.written.remove(&topic.name).unwrap_or_default();
        records
            .into_iter()
            .map(|r| {
                Ok(TestRecord {
                    key: topic.key.deserialize(&topic.name, r.key.as_deref())?,
                    value: topic.value.deserialize(&topic.name, r.value.as_deref())?,
                    timestamp_ms: r.timestamp_ms,
                })
            })
            .collect()
    }

    /// Records written to `topic` (resolved name), raw, without taking them.
    pub fn written(&self, topic: &str) -> Vec<OutRecord> {
        self.written
            .get(topic)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every entry of store `name` over all tasks, in key order per task.
    pub fn key_value_store<K: Data, V: Data>(&self, name: &str) -> Result<Vec<(K, V)>> {
        if let Some(h) = self.globals.get(name) {
            return KeyValueStore::<K, V>::from_handle(h.clone())?.all();
        }
        let mut out = Vec::new();
        for task in self.tasks.values() {
            if let Some(h) = task.stores().get(name) {
                out.extend(KeyValueStore::<K, V>::from_handle(h.clone())?.all()?);
            }
        }
        Ok(out)
    }

    /// Every window of store `name` over all tasks: (key, window start, value).
    pub fn window_store<K: Data, V: Data>(&self, name: &str) -> Result<Vec<(K, i64, V)>> {
        let mut out = Vec::new();
        for task in self.tasks.values() {
            if let Some(h) = task.stores().get(name) {
                out.extend(crate::state::WindowStore::<K, V>::from_handle(h.clone())?.all()?);
            }
        }
        Ok(out)
    }

    /// Every session of store `name` over all tasks: (key, start, end, value).
    pub fn session_store<K: Data, V: Data>(&self, name: &str) -> Result<Vec<(K, i64, i64, V)>> {
        let mut out = Vec::new();
        for task in self.tasks.values() {
            if let Some(h) = task.stores().get(name) {
                out.extend(crate::state::SessionStore::<K, V>::from_handle(h.clone())?.all()?);
            }
        }
        Ok(out)
    }

    /// Task metrics summed over tasks.
    pub fn metrics(&self) -> TaskMetrics {
        let mut m = TaskMetrics::default();
        for t in self.tasks.values() {
            let x = t.metrics();
            m.processed += x.processed;
            m.dropped_records += x.dropped_records;
            m.deserialization_errors += x.deserialization_errors;
            m.processing_errors += x.processing_errors;
            m.dead_lettered += x.dead_lettered;
        }
        m
    }
}
