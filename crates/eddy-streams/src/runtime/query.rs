//! Interactive queries: reading a running application's stores (Kafka Streams'
//! `KafkaStreams#store` with `ReadOnlyKeyValueStore` / `ReadOnlyWindowStore` /
//! `ReadOnlySessionStore`), and which instance holds a key (`queryMetadataForKey`,
//! `metadataForAllStreamsClients`).
//!
//! Local queries read the stores of the tasks this instance runs now; a key that lives
//! elsewhere is simply absent here, and [`QueryHandle::metadata_for_key`] says where it is
//! (from the host map the group leader's assignor sent with the last assignment). While a
//! rebalance is under way, queries answer from the tasks this instance holds at that moment.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::Shared;
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
    /// `application.server` of the instance running the key's task (None if no instance
    /// with an `application.server` runs it, or the group has not assigned it yet).
    pub active_host: Option<String>,
    pub standby_hosts: Vec<String>,
    /// The input partition (and task partition) the key maps to.
    pub partition: i32,
}

/// One instance of the application, as the last assignment described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamsMetadata {
    pub host: String,
    /// Stores of the tasks it runs.
    pub stores: Vec<String>,
    pub tasks: Vec<TaskId>,
    pub standby_tasks: Vec<TaskId>,
}

/// Reads the stores of a running [`super::KafkaStreams`]; cheap to clone, usable from
/// any thread (an HTTP server's handlers, say).
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
                self.topology.stores.keys().collect::<Vec<_>>()
            ))),
        }
    }

    /// The local instances of `store` (none when no task of it runs here).
    fn handles(&self, store: &str) -> Result<Vec<StoreHandle>> {
        self.store_kind(store)?;
        let stores = self.shared.stores.lock().unwrap_or_else(|p| p.into_inner());
        let mut tasks: Vec<_> = stores.iter().collect();
        tasks.sort_by_key(|(id, _)| **id);
        Ok(tasks
            .into_iter()
            .filter_map(|(_, m)| m.get(store).cloned())
            .collect())
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
    /// across the local tasks (Kafka's `range`).
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
        self.expect_kind(store, "window", |k| matches!(k, StoreKind::Window { .. }))?;
        let mut out = Vec::new();
        for h in self.handles(store)? {
            out.extend(WindowStore::<K, V>::from_handle(h)?.fetch_range(
                key,
                time_from_ms,
                time_to_ms,
            )?);
        }
        Ok(out)
    }

    /// Every key's windows starting in `[time_from_ms, time_to_ms]` (Kafka's `fetchAll`).
    pub fn fetch_all<K: Data, V: Data>(
        &self,
        store: &str,
        time_from_ms: i64,
        time_to_ms: i64,
    ) -> Result<Vec<(Windowed<K>, V)>> {
        let size = match self.store_kind(store)? {
            StoreKind::Window { size_ms, .. } => size_ms,
            other => {
                return Err(StreamsError::InvalidStateStore(format!(
                    "state store {store:?} is a {} store, not a window store",
                    kind_name(&other)
                )))
            }
        };
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
        Ok(out)
    }

    /// Which instance holds `key` of `store` (Kafka's `queryMetadataForKey`): the key is
    /// serialized with `key_serde` and partitioned as Kafka's default partitioner does
    /// (murmur2), over the store's sub-topology's task count.
    pub fn metadata_for_key<K: Data>(
        &self,
        store: &str,
        key: &K,
        key_serde: &SerdeRef<K>,
    ) -> Result<KeyQueryMetadata> {
        self.store_kind(store)?;
        let sub = self
            .topology
            .subtopologies()
            .iter()
            .find(|s| s.stores.iter().any(|n| n == store))
            .map(|s| s.id)
            .ok_or_else(|| {
                StreamsError::InvalidStateStore(format!(
                    "state store {store:?} belongs to no task (a global store?)"
                ))
            })?;
        let hosts = self
            .shared
            .hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let task_of = |t: &String| t.parse::<TaskId>().ok().filter(|t| t.subtopology == sub);
        let tasks: BTreeSet<TaskId> = hosts
            .tasks_by_host
            .values()
            .flatten()
            .filter_map(task_of)
            .collect();
        if tasks.is_empty() {
            return Err(StreamsError::InvalidStateStore(format!(
                "no instance runs store {store:?} yet (the group is still assigning its \
                 tasks, or no instance sets application.server)"
            )));
        }
        // Every task of the sub-topology is assigned: their count is its partition count.
        let partitions = tasks.iter().map(|t| t.partition).max().unwrap_or(0) + 1;
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
    /// (Kafka's `metadataForAllStreamsClients`).
    pub fn all_metadata(&self) -> Vec<StreamsMetadata> {
        let hosts = self
            .shared
            .hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let parse = |l: Option<&Vec<String>>| -> Vec<TaskId> {
            l.map(|l| l.iter().filter_map(|t| t.parse().ok()).collect())
                .unwrap_or_default()
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
                let stores: BTreeSet<String> = tasks
                    .iter()
                    .filter_map(|t| self.topology.subtopologies().get(t.subtopology))
                    .flat_map(|s| s.stores.iter().cloned())
                    .collect();
                StreamsMetadata {
                    host: host.clone(),
                    stores: stores.into_iter().collect(),
                    tasks,
                    standby_tasks: parse(hosts.standby_by_host.get(host)),
                }
            })
            .collect()
    }
}

fn kind_name(kind: &StoreKind) -> &'static str {
    match kind {
        StoreKind::KeyValue => "key-value",
        StoreKind::Window { .. } => "window",
        StoreKind::Session { .. } => "session",
    }
}
