//! State stores as a task holds them: an engine from eddy-store, the changelog entries not
//! yet handed to the producer, and typed handles over both.
//!
//! A store is shared (`Arc<Mutex<..>>`) between the task that writes it and interactive
//! queries that read it from other threads; the task's own accesses are uncontended.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::error::{Result, StreamsError};
use crate::serdes::SerdeRef;
use crate::topology::StoreKind;
use crate::value::Data;

type Engine = Box<dyn eddy_store::KeyValueStore>;

/// A store's engine with the layout its kind needs.
pub(crate) enum Layout {
    KeyValue(Engine),
    Window(eddy_store::WindowStore<Engine>),
    Session(eddy_store::SessionStore<Engine>),
}

impl Layout {
    pub(crate) fn new(kind: StoreKind, engine: Engine) -> Layout {
        match kind {
            StoreKind::KeyValue => Layout::KeyValue(engine),
            StoreKind::Window { .. } => Layout::Window(eddy_store::WindowStore::new(engine)),
            StoreKind::Session { .. } => Layout::Session(eddy_store::SessionStore::new(engine)),
        }
    }

    pub(crate) fn flush(&mut self) -> eddy_store::Result<()> {
        match self {
            Layout::KeyValue(e) => e.flush(),
            Layout::Window(w) => w.flush(),
            Layout::Session(s) => s.flush(),
        }
    }
}

/// Changelog keys of windows and sessions, as Kafka Streams lays them out: the key bytes,
/// then the window start (windows) or the session end and start (sessions), big-endian.
pub(crate) fn window_changelog_key(key: &[u8], start_ms: i64) -> Bytes {
    let mut k = Vec::with_capacity(key.len() + 8);
    k.extend_from_slice(key);
    k.extend_from_slice(&start_ms.to_be_bytes());
    Bytes::from(k)
}

pub(crate) fn session_changelog_key(key: &[u8], start_ms: i64, end_ms: i64) -> Bytes {
    let mut k = Vec::with_capacity(key.len() + 16);
    k.extend_from_slice(key);
    k.extend_from_slice(&end_ms.to_be_bytes());
    k.extend_from_slice(&start_ms.to_be_bytes());
    Bytes::from(k)
}

fn split_time(bytes: &[u8]) -> Option<(&[u8], i64)> {
    let at = bytes.len().checked_sub(8)?;
    let (k, t) = bytes.split_at(at);
    Some((k, i64::from_be_bytes(t.try_into().ok()?)))
}

/// One store of one task.
pub struct StoreInstance {
    pub(crate) name: String,
    pub(crate) engine: Layout,
    /// (changelog topic, partition) when the store is logged.
    pub(crate) changelog: Option<(String, i32)>,
    /// Writes since the task last drained them: key, value (None: a delete).
    pub(crate) pending: Vec<(Bytes, Option<Bytes>)>,
    /// `(SerdeRef<K>, SerdeRef<V>)` the store was declared with.
    pub(crate) serdes: Arc<dyn Any + Send + Sync>,
    pub(crate) kind: StoreKind,
    /// Highest timestamp among the changelog records restored: the stream time the
    /// store's operator had seen (every record it accepted wrote the store).
    pub(crate) restored_time_ms: i64,
    /// Highest timestamp among the changelog records written since: with
    /// `restored_time_ms`, what a checkpoint keeps so that a store restored only from its
    /// checkpoint on knows its stream time again.
    pub(crate) written_time_ms: i64,
}

/// A shared store.
#[derive(Clone)]
pub struct StoreHandle(pub(crate) Arc<Mutex<StoreInstance>>);

impl StoreHandle {
    pub(crate) fn new(instance: StoreInstance) -> StoreHandle {
        StoreHandle(Arc::new(Mutex::new(instance)))
    }

    /// The stores of a topology's global tables, empty, in memory.
    pub(crate) fn globals(topology: &crate::topology::Topology) -> HashMap<String, StoreHandle> {
        topology
            .global_stores()
            .iter()
            .map(|(name, g)| {
                let engine = Box::new(eddy_store::InMemoryKeyValueStore::new(name.clone()));
                let handle = StoreHandle::new(StoreInstance {
                    name: name.clone(),
                    engine: Layout::new(g.spec.kind, engine),
                    changelog: None,
                    pending: Vec::new(),
                    serdes: g.spec.serdes.clone(),
                    kind: g.spec.kind,
                    restored_time_ms: i64::MIN,
                    written_time_ms: i64::MIN,
                });
                (name.clone(), handle)
            })
            .collect()
    }

    /// Applies a record of a global table's topic: a put, or with no value a delete.
    pub(crate) fn apply_global(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp_ms: i64,
    ) -> Result<()> {
        self.lock().restore(key, value, timestamp_ms)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, StoreInstance> {
        // A panic while holding the lock is caught around processors and fails the task;
        // the store is then closed and rebuilt from its changelog, so the poison carries
        // no information worth stopping for here.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn name(&self) -> String {
        self.lock().name.clone()
    }
}

impl StoreInstance {
    fn wrong_kind(&self, wanted: &str) -> StreamsError {
        StreamsError::Config(format!(
            "state store {:?} is not a {wanted} store",
            self.name
        ))
    }

    fn log(&mut self, key: Bytes, value: Option<&[u8]>) {
        if self.changelog.is_some() {
            self.pending.push((key, value.map(Bytes::copy_from_slice)));
        }
    }

    pub(crate) fn kv(&self) -> Result<&Engine> {
        match &self.engine {
            Layout::KeyValue(e) => Ok(e),
            _ => Err(self.wrong_kind("key-value")),
        }
    }

    pub(crate) fn window(&self) -> Result<&eddy_store::WindowStore<Engine>> {
        match &self.engine {
            Layout::Window(w) => Ok(w),
            _ => Err(self.wrong_kind("window")),
        }
    }

    pub(crate) fn session(&self) -> Result<&eddy_store::SessionStore<Engine>> {
        match &self.engine {
            Layout::Session(s) => Ok(s),
            _ => Err(self.wrong_kind("session")),
        }
    }

    pub(crate) fn put_raw(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let Layout::KeyValue(e) = &mut self.engine else {
            return Err(self.wrong_kind("key-value"));
        };
        let result = match value {
            Some(v) => e.put(key, v),
            None => e.delete(key),
        };
        result.map_err(|e| StreamsError::store(&self.name, e))?;
        self.log(Bytes::copy_from_slice(key), value);
        Ok(())
    }

    pub(crate) fn get_raw(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.kv()?
            .get(key)
            .map_err(|e| StreamsError::store(&self.name, e))
    }

    /// Sets (or with `None` removes) `key`'s window starting at `start_ms`.
    pub(crate) fn window_put(
        &mut self,
        key: &[u8],
        start_ms: i64,
        value: Option<&[u8]>,
    ) -> Result<()> {
        let Layout::Window(w) = &mut self.engine else {
            return Err(self.wrong_kind("window"));
        };
        let result = match value {
            Some(v) => w.put(key, start_ms, v),
            None => w.remove(key, start_ms),
        };
        result.map_err(|e| StreamsError::store(&self.name, e))?;
        self.log(window_changelog_key(key, start_ms), value);
        Ok(())
    }

    /// Sets (or with `None` removes) `key`'s session `[start_ms, end_ms]`.
    pub(crate) fn session_put(
        &mut self,
        key: &[u8],
        start_ms: i64,
        end_ms: i64,
        value: Option<&[u8]>,
    ) -> Result<()> {
        let Layout::Session(s) = &mut self.engine else {
            return Err(self.wrong_kind("session"));
        };
        let result = match value {
            Some(v) => s.put(key, start_ms, end_ms, v),
            None => s.remove(key, start_ms, end_ms),
        };
        result.map_err(|e| StreamsError::store(&self.name, e))?;
        self.log(session_changelog_key(key, start_ms, end_ms), value);
        Ok(())
    }

    /// Drops windows or sessions that ended before `before_ms` (retention). Not logged:
    /// the changelog is compacted and deleted by its own retention, as Kafka's are.
    pub(crate) fn expire(&mut self, before_ms: i64) -> Result<()> {
        let result = match &mut self.engine {
            Layout::KeyValue(_) => Ok(0),
            Layout::Window(w) => w.remove_expired(before_ms),
            Layout::Session(s) => s.remove_expired(before_ms),
        };
        result
            .map(|_| ())
            .map_err(|e| StreamsError::store(&self.name, e))
    }

    /// Ends a restore: windows and sessions past retention at the restored stream time
    /// go, as they went before the restart.
    /// The stream time this store has seen: restored and written.
    pub(crate) fn observed_time_ms(&self) -> i64 {
        self.restored_time_ms.max(self.written_time_ms)
    }

    pub(crate) fn finish_restore(&mut self) -> Result<()> {
        match self.kind.expiry_cutoff(self.restored_time_ms) {
            Some(cutoff) if self.restored_time_ms > i64::MIN => self.expire(cutoff),
            _ => Ok(()),
        }
    }

    /// Applies one changelog record (restoration): no new changelog entry.
    pub(crate) fn restore(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp_ms: i64,
    ) -> Result<()> {
        self.restored_time_ms = self.restored_time_ms.max(timestamp_ms);
        let bad = || {
            StreamsError::Config(format!(
                "changelog of store {:?} holds a malformed key",
                self.name
            ))
        };
        let result = match &mut self.engine {
            Layout::KeyValue(e) => match value {
                Some(v) => e.put(key, v),
                None => e.delete(key),
            },
            Layout::Window(w) => {
                let (k, start) = split_time(key).ok_or_else(bad)?;
                match value {
                    Some(v) => w.put(k, start, v),
                    None => w.remove(k, start),
                }
            }
            Layout::Session(s) => {
                let (rest, start) = split_time(key).ok_or_else(bad)?;
                let (k, end) = split_time(rest).ok_or_else(bad)?;
                match value {
                    Some(v) => s.put(k, start, end, v),
                    None => s.remove(k, start, end),
                }
            }
        };
        result.map_err(|e| StreamsError::store(&self.name, e))
    }
}

/// A key-value store, typed by the serdes it was declared with.
pub struct KeyValueStore<K, V> {
    handle: StoreHandle,
    key: SerdeRef<K>,
    value: SerdeRef<V>,
    /// What serdes are told the topic is: the store's name.
    topic: String,
}

impl<K, V> Clone for KeyValueStore<K, V> {
    fn clone(&self) -> Self {
        KeyValueStore {
            handle: self.handle.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            topic: self.topic.clone(),
        }
    }
}

impl<K: Data, V: Data> KeyValueStore<K, V> {
    pub(crate) fn from_handle(handle: StoreHandle) -> Result<Self> {
        let (serdes, topic) = {
            let s = handle.lock();
            (s.serdes.clone(), s.name.clone())
        };
        let Some((key, value)) = serdes.downcast_ref::<(SerdeRef<K>, SerdeRef<V>)>() else {
            return Err(StreamsError::Config(format!(
                "state store {topic:?} does not hold {} keys and {} values",
                std::any::type_name::<K>(),
                std::any::type_name::<V>()
            )));
        };
        Ok(KeyValueStore {
            key: key.clone(),
            value: value.clone(),
            handle,
            topic,
        })
    }

    fn key_bytes(&self, key: &K) -> Result<Bytes> {
        Ok(self.key.serialize(&self.topic, key)?.unwrap_or_default())
    }

    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let k = self.key_bytes(key)?;
        let raw = self.handle.lock().get_raw(&k)?;
        raw.map(|b| self.value.deserialize(&self.topic, Some(&b)))
            .transpose()
            .map_err(Into::into)
    }

    pub fn put(&self, key: &K, value: &V) -> Result<()> {
        let k = self.key_bytes(key)?;
        let v = self.value.serialize(&self.topic, value)?;
        self.handle
            .lock()
            .put_raw(&k, Some(v.as_deref().unwrap_or_default()))
    }

    pub fn delete(&self, key: &K) -> Result<()> {
        let k = self.key_bytes(key)?;
        self.handle.lock().put_raw(&k, None)
    }

    /// Entries with `from <= key < to` by key bytes (`None`: unbounded), in that order.
    pub fn range(&self, from: Option<&K>, to: Option<&K>) -> Result<Vec<(K, V)>> {
        let from = from.map(|k| self.key_bytes(k)).transpose()?;
        let to = to.map(|k| self.key_bytes(k)).transpose()?;
        let s = self.handle.lock();
        let iter = s
            .kv()?
            .range(from.as_deref(), to.as_deref())
            .map_err(|e| StreamsError::store(&s.name, e))?;
        let mut out = Vec::new();
        for entry in iter {
            let (k, v) = entry.map_err(|e| StreamsError::store(&s.name, e))?;
            out.push((
                self.key.deserialize(&self.topic, Some(&k))?,
                self.value.deserialize(&self.topic, Some(&v))?,
            ));
        }
        Ok(out)
    }

    pub fn all(&self) -> Result<Vec<(K, V)>> {
        self.range(None, None)
    }

    /// Entries with `from <= key <= to` by serialized key (Kafka's `range`, both ends
    /// inclusive), with the serialized key for merging several stores' results.
    pub(crate) fn range_inclusive(
        &self,
        from: Option<&K>,
        to: Option<&K>,
    ) -> Result<Vec<(Bytes, K, V)>> {
        let from = from.map(|k| self.key_bytes(k)).transpose()?;
        // The least key above `to`: `to` followed by a zero byte.
        let to = to
            .map(|k| self.key_bytes(k))
            .transpose()?
            .map(|b| [&b[..], &[0u8]].concat());
        let s = self.handle.lock();
        let iter = s
            .kv()?
            .range(from.as_deref(), to.as_deref())
            .map_err(|e| StreamsError::store(&s.name, e))?;
        let mut out = Vec::new();
        for entry in iter {
            let (k, v) = entry.map_err(|e| StreamsError::store(&s.name, e))?;
            let key = self.key.deserialize(&self.topic, Some(&k))?;
            out.push((k, key, self.value.deserialize(&self.topic, Some(&v))?));
        }
        Ok(out)
    }

    pub fn approximate_num_entries(&self) -> u64 {
        self.handle
            .lock()
            .kv()
            .map_or(0, |e| e.approximate_num_entries())
    }
}

fn typed_serdes<K: Data, V: Data>(
    handle: &StoreHandle,
) -> Result<(SerdeRef<K>, SerdeRef<V>, String)> {
    let s = handle.lock();
    match s.serdes.downcast_ref::<(SerdeRef<K>, SerdeRef<V>)>() {
        Some((k, v)) => Ok((k.clone(), v.clone(), s.name.clone())),
        None => Err(StreamsError::Config(format!(
            "state store {:?} does not hold {} keys and {} values",
            s.name,
            std::any::type_name::<K>(),
            std::any::type_name::<V>()
        ))),
    }
}

/// A window store: values per (key, window start), typed.
pub struct WindowStore<K, V> {
    handle: StoreHandle,
    key: SerdeRef<K>,
    value: SerdeRef<V>,
    topic: String,
}

impl<K, V> Clone for WindowStore<K, V> {
    fn clone(&self) -> Self {
        WindowStore {
            handle: self.handle.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            topic: self.topic.clone(),
        }
    }
}

impl<K: Data, V: Data> WindowStore<K, V> {
    pub(crate) fn from_handle(handle: StoreHandle) -> Result<Self> {
        let (key, value, topic) = typed_serdes(&handle)?;
        Ok(WindowStore {
            handle,
            key,
            value,
            topic,
        })
    }

    fn key_bytes(&self, key: &K) -> Result<Bytes> {
        Ok(self.key.serialize(&self.topic, key)?.unwrap_or_default())
    }

    fn decode(&self, b: &[u8]) -> Result<V> {
        Ok(self.value.deserialize(&self.topic, Some(b))?)
    }

    pub fn fetch(&self, key: &K, window_start_ms: i64) -> Result<Option<V>> {
        let k = self.key_bytes(key)?;
        let s = self.handle.lock();
        let raw = s
            .window()?
            .fetch(&k, window_start_ms)
            .map_err(|e| StreamsError::store(&s.name, e))?;
        raw.map(|b| self.decode(&b)).transpose()
    }

    /// Sets (`Some`) or removes (`None`) the window.
    pub fn put(&self, key: &K, window_start_ms: i64, value: Option<&V>) -> Result<()> {
        let k = self.key_bytes(key)?;
        let v = value
            .map(|v| self.value.serialize(&self.topic, v))
            .transpose()?
            .map(|b| b.unwrap_or_default());
        self.handle
            .lock()
            .window_put(&k, window_start_ms, v.as_deref())
    }

    /// `key`'s windows starting in `[from_ms, to_ms]`, in time order.
    pub fn fetch_range(&self, key: &K, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, V)>> {
        let k = self.key_bytes(key)?;
        let s = self.handle.lock();
        let mut out = Vec::new();
        let iter = s
            .window()?
            .fetch_range(&k, from_ms, to_ms)
            .map_err(|e| StreamsError::store(&s.name, e))?;
        for entry in iter {
            let (start, v) = entry.map_err(|e| StreamsError::store(&s.name, e))?;
            out.push((start, self.decode(&v)?));
        }
        Ok(out)
    }

    /// Every key's windows starting in `[from_ms, to_ms]`, in time order.
    pub fn fetch_all(&self, from_ms: i64, to_ms: i64) -> Result<Vec<(K, i64, V)>> {
        let s = self.handle.lock();
        let iter = s
            .window()?
            .fetch_all(from_ms, to_ms)
            .map_err(|e| StreamsError::store(&s.name, e))?;
        self.collect(&s.name, iter)
    }

    /// Every window, by key then start.
    pub fn all(&self) -> Result<Vec<(K, i64, V)>> {
        let s = self.handle.lock();
        let iter = s
            .window()?
            .all()
            .map_err(|e| StreamsError::store(&s.name, e))?;
        self.collect(&s.name, iter)
    }

    fn collect(
        &self,
        store: &str,
        iter: eddy_store::WindowIter<'_, eddy_store::WindowEntry>,
    ) -> Result<Vec<(K, i64, V)>> {
        let mut out = Vec::new();
        for entry in iter {
            let (k, start, v) = entry.map_err(|e| StreamsError::store(store, e))?;
            out.push((
                self.key.deserialize(&self.topic, Some(&k))?,
                start,
                self.decode(&v)?,
            ));
        }
        Ok(out)
    }

    /// Drops windows that started before `before_ms`.
    pub(crate) fn expire(&self, before_ms: i64) -> Result<()> {
        self.handle.lock().expire(before_ms)
    }

    /// Stream time the store was restored to (`i64::MIN`: nothing restored).
    pub(crate) fn restored_time_ms(&self) -> i64 {
        self.handle.lock().restored_time_ms
    }
}

/// A session store: values per (key, session start and end), typed.
pub struct SessionStore<K, V> {
    handle: StoreHandle,
    key: SerdeRef<K>,
    value: SerdeRef<V>,
    topic: String,
}

impl<K, V> Clone for SessionStore<K, V> {
    fn clone(&self) -> Self {
        SessionStore {
            handle: self.handle.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            topic: self.topic.clone(),
        }
    }
}

impl<K: Data, V: Data> SessionStore<K, V> {
    pub(crate) fn from_handle(handle: StoreHandle) -> Result<Self> {
        let (key, value, topic) = typed_serdes(&handle)?;
        Ok(SessionStore {
            handle,
            key,
            value,
            topic,
        })
    }

    fn key_bytes(&self, key: &K) -> Result<Bytes> {
        Ok(self.key.serialize(&self.topic, key)?.unwrap_or_default())
    }

    pub fn put(&self, key: &K, start_ms: i64, end_ms: i64, value: Option<&V>) -> Result<()> {
        let k = self.key_bytes(key)?;
        let v = value
            .map(|v| self.value.serialize(&self.topic, v))
            .transpose()?
            .map(|b| b.unwrap_or_default());
        self.handle
            .lock()
            .session_put(&k, start_ms, end_ms, v.as_deref())
    }

    /// `key`'s sessions ending at or after `earliest_end_ms` and starting at or before
    /// `latest_start_ms`: (start, end, value).
    pub fn find_sessions(
        &self,
        key: &K,
        earliest_end_ms: i64,
        latest_start_ms: i64,
    ) -> Result<Vec<(i64, i64, V)>> {
        let k = self.key_bytes(key)?;
        let s = self.handle.lock();
        let iter = s
            .session()?
            .find_sessions(&k, earliest_end_ms, latest_start_ms)
            .map_err(|e| StreamsError::store(&s.name, e))?;
        let mut out = Vec::new();
        for entry in iter {
            let session = entry.map_err(|e| StreamsError::store(&s.name, e))?;
            out.push((
                session.start_ms,
                session.end_ms,
                self.value.deserialize(&self.topic, Some(&session.value))?,
            ));
        }
        Ok(out)
    }

    /// Every session: (key, start, end, value), by key then end.
    pub fn all(&self) -> Result<Vec<(K, i64, i64, V)>> {
        let s = self.handle.lock();
        let iter = s
            .session()?
            .fetch_all()
            .map_err(|e| StreamsError::store(&s.name, e))?;
        let mut out = Vec::new();
        for entry in iter {
            let session = entry.map_err(|e| StreamsError::store(&s.name, e))?;
            out.push((
                self.key.deserialize(&self.topic, Some(&session.key))?,
                session.start_ms,
                session.end_ms,
                self.value.deserialize(&self.topic, Some(&session.value))?,
            ));
        }
        Ok(out)
    }

    pub(crate) fn expire(&self, before_ms: i64) -> Result<()> {
        self.handle.lock().expire(before_ms)
    }

    pub(crate) fn restored_time_ms(&self) -> i64 {
        self.handle.lock().restored_time_ms
    }
}
