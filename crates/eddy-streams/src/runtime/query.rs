//! Interactive queries: reading a running application's stores (Kafka Streams'
//! `KafkaStreams#store` with `ReadOnlyKeyValueStore` / `ReadOnlyWindowStore` /
//! `ReadOnlySessionStore`), and which instance holds a key (`queryMetadataForKey`,
//! `metadataForAllStreamsClients`, `streamsMetadataForStore`).
//!
//! Local queries read the stores of the tasks this instance runs now; a key that lives
//! elsewhere is simply absent here, and [`QueryHandle::metadata_for_key`] says where it is
//! (from the host map the group leader's assignor sent with the last assignment).
//!
//! While a rebalance is under way queries still answer, from what is there: the tasks this
//! instance holds at that moment (none between giving its tasks back and receiving the new
//! ones), and key metadata from the previous assignment. Kafka Streams refuses queries of
//! a store that is not yet queryable instead; here a caller who needs a settled answer
//! waits for [`StreamsState::Running`](super::StreamsState) first.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{HostMap, KafkaStreams, Shared};
use crate::error::{Result, StreamsError};
use crate::serdes::SerdeRef;
use crate::state::{KeyValueStore, SessionStore, StoreHandle, WindowStore};
use crate::task::TaskId;
use crate::topology::{StoreKind, Topology};
use crate::value::Data;
use crate::windows::{Window, Windowed};

/// Where a key lives: the instance running its task, and those keeping standby copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyQueryMetadata {
    /// `application.server` of the instance running the key's task (None if the instance
    /// running it gives no `application.server`). For a global store: this instance.
    pub active_host: Option<String>,
    pub standby_hosts: Vec<String>,
    /// The input partition (and task partition) the key maps to; -1 for a global store,
    /// which every instance holds whole (as Kafka).
    pub partition: i32,
}

/// One instance of the application, as the last assignment described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamsMetadata {
    pub host: String,
    /// Stores of the tasks it runs, and the global stores (every instance has those).
    pub stores: Vec<String>,
    pub tasks: Vec<TaskId>,
    /// Stores of the tasks it keeps standby replicas of.
    pub standby_stores: Vec<String>,
    pub standby_tasks: Vec<TaskId>,
}

/// Reads the stores of a running [`KafkaStreams`]; cheap to clone, usable from any thread
/// (an HTTP server's handlers, say) and after the `KafkaStreams` has been moved or closed
/// (then it finds no stores).
#[derive(Clone)]
pub struct QueryHandle {
    pub(super) topology: Arc<Topology>,
    pub(super) shared: Arc<Shared>,
    pub(super) host: Option<String>,
}

impl QueryHandle {
    /// This instance's `application.server`.
    pub fn this_host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The kind of store `store` is, or an error naming the stores there are.
    pub fn store_kind(&self, store: &str) -> Result<StoreKind> {
        let global = self.topology.global_stores().get(store).map(|g| &g.spec);
        match self.topology.stores.get(store).or(global) {
            Some(spec) => Ok(spec.kind),
            None => Err(StreamsError::InvalidStateStore(format!(
                "the application has no state store {store:?}; its stores are {:?}",
                self.store_names()
            ))),
        }
    }

    /// Whether `store` is a global table's store (whole on every instance).
    pub fn is_global_store(&self, store: &str) -> bool {
        self.topology.global_stores().contains_key(store)
    }

    /// Every store of the topology, global ones included, by name.
    pub fn store_names(&self) -> Vec<String> {
        let global = self.topology.global_stores().keys();
        let names: BTreeSet<&String> = self.topology.stores.keys().chain(global).collect();
        names.into_iter().cloned().collect()
    }

    /// The local instances of `store` (none when no task of it runs here), each once: a
    /// global store is in every task's map, and must not be read once per task.
    fn handles(&self, store: &str) -> Result<Vec<StoreHandle>> {
        self.store_kind(store)?;
        let stores = self.shared.stores.lock().unwrap_or_else(|p| p.into_inner());
        let mut tasks: Vec<_> = stores.iter().collect();
        tasks.sort_by_key(|(id, _)| **id);
        let mut out: Vec<StoreHandle> = Vec::new();
        for h in tasks.into_iter().filter_map(|(_, m)| m.get(store)) {
            if !out.iter().any(|o| Arc::ptr_eq(&o.0, &h.0)) {
                out.push(h.clone());
            }
        }
        Ok(out)
    }

    fn expect_kind(&self, store: &str, want: &str, ok: fn(&StoreKind) -> bool) -> Result<()> {
        let kind = self.store_kind(store)?;
        if ok(&kind) {
            Ok(())
        } else {
            Err(StreamsError::InvalidStateStore(format!(
                "state store {store:?} is a {} store, not a {want} store",
                kind_name(&kind)
            )))
        }
    }

    /// The value of `key` in key-value store `store`, if a local task has it.
    pub fn get<K: Data, V: Data>(&self, store: &str, key: &K) -> Result<Option<V>> {
        self.expect_kind(store, "key-value", |k| matches!(k, StoreKind::KeyValue))?;
        for h in self.handles(store)? {
            if let Some(v) = KeyValueStore::<K, V>::from_handle(h)?.get(key)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Entries with `from <= key <= to` (either bound open when None), by serialized key,
    /// across the local tasks (Kafka's `range`; `from` above `to`: nothing).
    pub fn range<K: Data, V: Data>(
        &self,
        store: &str,
        from: Option<&K>,
        to: Option<&K>,
    ) -> Result<Vec<(K, V)>> {
        self.expect_kind(store, "key-value", |k| matches!(k, StoreKind::KeyValue))?;
        let mut out = Vec::new();
        for h in self.handles(store)? {
            let typed = KeyValueStore::<K, V>::from_handle(h)?;
            out.extend(typed.range_inclusive(from, to)?);
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out.into_iter().map(|(_, k, v)| (k, v)).collect())
    }

    /// Every local entry of key-value store `store`, by serialized key.
    pub fn all<K: Data, V: Data>(&self, store: &str) -> Result<Vec<(K, V)>> {
        self.range(store, None, None)
    }

    /// Entries in the local instances of `store` (an estimate for persistent stores).
    pub fn approximate_num_entries(&self, store: &str) -> Result<u64> {
        self.expect_kind(store, "key-value", |k| matches!(k, StoreKind::KeyValue))?;
        Ok(self
            .handles(store)?
            .iter()
            .map(|h| h.lock().kv().map_or(0, |e| e.approximate_num_entries()))
            .sum())
    }

    /// `key`'s windows starting in `[time_from_ms, time_to_ms]`: (window start, value), in
    /// time order (Kafka's `fetch(key, timeFrom, timeTo)`).
    pub fn fetch<K: Data, V: Data>(
        &self,
        store: &str,
        key: &K,
        time_from_ms: i64,
        time_to_ms: i64,
    ) -> Result<Vec<(i64, V)>> {
        self.window_size_ms(store)?;
        let mut out = Vec::new();
        for h in self.handles(store)? {
            out.extend(WindowStore::<K, V>::from_handle(h)?.fetch_range(
                key,
                time_from_ms,
                time_to_ms,
            )?);
        }
        out.sort_by_key(|(start, _)| *start);
        Ok(out)
    }

    /// Every key's windows starting in `[time_from_ms, time_to_ms]` (Kafka's `fetchAll`), by
    /// window; within one window by task, then by key.
    pub fn fetch_all<K: Data, V: Data>(
        &self,
        store: &str,
        time_from_ms: i64,
        time_to_ms: i64,
    ) -> Result<Vec<(Windowed<K>, V)>> {
        let size = self.window_size_ms(store)?;
        let mut out = Vec::new();
        for h in self.handles(store)? {
            for (key, start, v) in
                WindowStore::<K, V>::from_handle(h)?.fetch_all(time_from_ms, time_to_ms)?
            {
                let window = Window {
                    start_ms: start,
                    end_ms: start.saturating_add(size),
                };
                out.push((Windowed { key, window }, v));
            }
        }
        out.sort_by_key(|(w, _)| w.window);
        Ok(out)
    }

    /// The window size of window store `store`, or the error of a store of another kind.
    pub fn window_size_ms(&self, store: &str) -> Result<i64> {
        match self.store_kind(store)? {
            StoreKind::Window { size_ms, .. } => Ok(size_ms),
            other => Err(StreamsError::InvalidStateStore(format!(
                "state store {store:?} is a {} store, not a window store",
                kind_name(&other)
            ))),
        }
    }

    /// `key`'s sessions (Kafka's `fetch(key)` of a session store), by end.
    pub fn fetch_sessions<K: Data, V: Data>(
        &self,
        store: &str,
        key: &K,
    ) -> Result<Vec<(Windowed<K>, V)>> {
        self.expect_kind(store, "session", |k| matches!(k, StoreKind::Session { .. }))?;
        let mut out = Vec::new();
        for h in self.handles(store)? {
            for (start, end, v) in
                SessionStore::<K, V>::from_handle(h)?.find_sessions(key, i64::MIN, i64::MAX)?
            {
                let window = Window {
                    start_ms: start,
                    end_ms: end,
                };
                out.push((
                    Windowed {
                        key: key.clone(),
                        window,
                    },
                    v,
                ));
            }
        }
        out.sort_by_key(|(w, _)| (w.window.end_ms, w.window.start_ms));
        Ok(out)
    }

    fn hosts(&self) -> HostMap {
        self.shared
            .hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Which instance holds `key` of `store` (Kafka's `queryMetadataForKey`): the key is
    /// serialized with `key_serde` and partitioned as Kafka's default partitioner does
    /// (murmur2, positive, modulo the store's sub-topology's partition count).
    pub fn metadata_for_key<K: Data>(
        &self,
        store: &str,
        key: &K,
        key_serde: &SerdeRef<K>,
    ) -> Result<KeyQueryMetadata> {
        self.store_kind(store)?;
        if self.is_global_store(store) {
            return Ok(KeyQueryMetadata {
                active_host: self.host.clone(),
                standby_hosts: Vec::new(),
                partition: -1,
            });
        }
        let sub = self
            .topology
            .subtopologies()
            .iter()
            .find(|s| s.stores.iter().any(|n| n == store))
            .map(|s| s.id)
            .ok_or_else(|| {
                StreamsError::InvalidStateStore(format!(
                    "state store {store:?} belongs to no task of this topology"
                ))
            })?;
        let hosts = self.hosts();
        let task_of = |t: &String| t.parse::<TaskId>().ok().filter(|t| t.subtopology == sub);
        let partitions = match hosts.partitions_by_subtopology.get(&sub.to_string()) {
            Some(n) => *n,
            // An assignment from a leader that did not send the counts: every task is
            // assigned, so the highest one among the hosts' gives the count (short when
            // a member gives no application.server).
            None => hosts
                .tasks_by_host
                .values()
                .flatten()
                .filter_map(task_of)
                .map(|t| t.partition + 1)
                .max()
                .unwrap_or(0),
        };
        if partitions <= 0 {
            return Err(StreamsError::InvalidStateStore(format!(
                "store {store:?} is not queryable yet: the group has not assigned its tasks \
                 (wait for the application to be running)"
            )));
        }
        let bytes = key_serde.serialize(store, key)?.unwrap_or_default();
        let partition = eddy_client::partition_for_key(&bytes, partitions as usize);
        let task = TaskId {
            subtopology: sub,
            partition,
        };
        let holds = |list: &Vec<String>| list.iter().filter_map(task_of).any(|t| t == task);
        let active_host = hosts
            .tasks_by_host
            .iter()
            .find(|(_, l)| holds(l))
            .map(|(h, _)| h.clone());
        let standby_hosts = hosts
            .standby_by_host
            .iter()
            .filter(|(_, l)| holds(l))
            .map(|(h, _)| h.clone())
            .collect();
        Ok(KeyQueryMetadata {
            active_host,
            standby_hosts,
            partition,
        })
    }

    /// Every instance with an `application.server`, as the last assignment described them
    /// (Kafka's `metadataForAllStreamsClients`), by host.
    pub fn all_metadata(&self) -> Vec<StreamsMetadata> {
        let hosts = self.hosts();
        let parse = |l: Option<&Vec<String>>| -> Vec<TaskId> {
            l.map(|l| l.iter().filter_map(|t| t.parse().ok()).collect())
                .unwrap_or_default()
        };
        let stores_of = |tasks: &[TaskId], global: bool| -> Vec<String> {
            let names: BTreeSet<String> = tasks
                .iter()
                .filter_map(|t| self.topology.subtopologies().get(t.subtopology))
                .flat_map(|s| s.stores.iter().cloned())
                .chain(
                    global
                        .then(|| self.topology.global_stores().keys().cloned())
                        .into_iter()
                        .flatten(),
                )
                .collect();
            names.into_iter().collect()
        };
        let names: BTreeSet<&String> = hosts
            .tasks_by_host
            .keys()
            .chain(hosts.standby_by_host.keys())
            .collect();
        names
            .into_iter()
            .map(|host| {
                let tasks = parse(hosts.tasks_by_host.get(host));
                let standby_tasks = parse(hosts.standby_by_host.get(host));
                StreamsMetadata {
                    host: host.clone(),
                    stores: stores_of(&tasks, true),
                    tasks,
                    standby_stores: stores_of(&standby_tasks, false),
                    standby_tasks,
                }
            })
            .collect()
    }

    /// The instances that run a task with `store` (Kafka's `streamsMetadataForStore`):
    /// every instance for a global store.
    pub fn streams_metadata_for_store(&self, store: &str) -> Result<Vec<StreamsMetadata>> {
        self.store_kind(store)?;
        Ok(self
            .all_metadata()
            .into_iter()
            .filter(|m| m.stores.iter().any(|s| s == store))
            .collect())
    }
}

fn kind_name(kind: &StoreKind) -> &'static str {
    match kind {
        StoreKind::KeyValue => "key-value",
        StoreKind::Window { .. } => "window",
        StoreKind::Session { .. } => "session",
    }
}

/// The queries of [`QueryHandle`], on the application itself (Kafka Streams'
/// `KafkaStreams#store(...)` reads and `KafkaStreams#queryMetadataForKey`).
impl KafkaStreams {
    /// Interactive queries of this instance's stores, and where keys live; the handle
    /// outlives borrows of `self` (give it to an HTTP server: `runtime::http::router`).
    pub fn query(&self) -> QueryHandle {
        QueryHandle {
            topology: self.topology.clone(),
            shared: self.shared.clone(),
            host: self.config.application_server.clone(),
        }
    }

    /// The value of `key` in key-value store `store`, looked up in every local task that
    /// has the store (the key lives in one of them).
    pub fn get<K: Data, V: Data>(&self, store: &str, key: &K) -> Result<Option<V>> {
        self.query().get(store, key)
    }

    /// This instance's entries with `from <= key <= to` (None: open), by serialized key.
    pub fn range<K: Data, V: Data>(
        &self,
        store: &str,
        from: Option<&K>,
        to: Option<&K>,
    ) -> Result<Vec<(K, V)>> {
        self.query().range(store, from, to)
    }

    /// Every entry of key-value store `store` on this instance, by serialized key.
    pub fn all<K: Data, V: Data>(&self, store: &str) -> Result<Vec<(K, V)>> {
        self.query().all(store)
    }

    /// Entries of `store` on this instance (an estimate for persistent stores).
    pub fn approximate_num_entries(&self, store: &str) -> Result<u64> {
        self.query().approximate_num_entries(store)
    }

    /// `key`'s windows starting in `[time_from_ms, time_to_ms]`: (window start, value).
    pub fn fetch<K: Data, V: Data>(
        &self,
        store: &str,
        key: &K,
        time_from_ms: i64,
        time_to_ms: i64,
    ) -> Result<Vec<(i64, V)>> {
        self.query().fetch(store, key, time_from_ms, time_to_ms)
    }

    /// This instance's windows starting in `[time_from_ms, time_to_ms]`, every key.
    pub fn fetch_all<K: Data, V: Data>(
        &self,
        store: &str,
        time_from_ms: i64,
        time_to_ms: i64,
    ) -> Result<Vec<(Windowed<K>, V)>> {
        self.query().fetch_all(store, time_from_ms, time_to_ms)
    }

    /// `key`'s sessions in session store `store`.
    pub fn fetch_sessions<K: Data, V: Data>(
        &self,
        store: &str,
        key: &K,
    ) -> Result<Vec<(Windowed<K>, V)>> {
        self.query().fetch_sessions(store, key)
    }

    /// Which instance holds `key` of `store` (see [`QueryHandle::metadata_for_key`]).
    pub fn metadata_for_key<K: Data>(
        &self,
        store: &str,
        key: &K,
        key_serde: &SerdeRef<K>,
    ) -> Result<KeyQueryMetadata> {
        self.query().metadata_for_key(store, key, key_serde)
    }

    /// Every instance with an `application.server`, its stores and tasks.
    pub fn all_metadata(&self) -> Vec<StreamsMetadata> {
        self.query().all_metadata()
    }

    /// The instances that run `store`.
    pub fn streams_metadata_for_store(&self, store: &str) -> Result<Vec<StreamsMetadata>> {
        self.query().streams_metadata_for_store(store)
    }
}
