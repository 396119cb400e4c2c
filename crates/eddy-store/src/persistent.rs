//! [`PersistentKeyValueStore`]: a key-value store on disk, on the fjall LSM
//! engine (chosen over redb and RocksDB in
//! `docs/decisions/state-store-engine.md`), where Kafka Streams uses RocksDB.
//!
//! One fjall database per store, in its own directory (Kafka Streams: one
//! RocksDB per store under `<task dir>/rocksdb/<store>`; here
//! [`crate::TaskDirectory::store_dir`]). Writes go to fjall's journal buffer
//! and memtable; [`KeyValueStore::flush`] fsyncs the journal, which is what
//! makes them durable. Between flushes a crash may keep some of the newest
//! writes and lose others: that is why a checkpoint is written only after a
//! flush, and why under exactly-once a store without a checkpoint is wiped.
//!
//! Keys are stored behind a tag byte ([`stored_key`]); a key read back
//! without it is reported as corrupt, never trusted.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::error::{Result, StoreError};
use crate::kv::{bounds, check_key, KeyValueIter, KeyValueStore, KEY_BYTES_MAX};

/// fjall's own lower limit for its journal size.
const JOURNAL_BYTES_MIN: u64 = 64 * 1024 * 1024;
/// The name of the one keyspace (fjall's column family) a store uses.
const KEYSPACE: &str = "kv";
/// The first byte of every stored key ([`stored_key`]).
const KEY_TAG: u8 = 0x00;

/// Memory and thread limits of one persistent store. A task may hold
/// several stores and an instance many tasks, so the defaults are smaller
/// than fjall's (which assume one database per process).
#[derive(Debug, Clone)]
pub struct PersistentStoreConfig {
    /// Block cache for reads (fjall's default; Kafka Streams gives RocksDB
    /// 50 MiB). Reads and scans slow down sharply once the working set
    /// outgrows it.
    pub block_cache_bytes: u64,
    /// Memtable size at which it is written out as a table file.
    pub memtable_bytes_max: u64,
    /// Journal size at which memtables are written out so journals can be
    /// dropped (at least 64 MiB, fjall's minimum).
    pub journal_bytes_max: u64,
    /// Background threads writing memtables out and compacting.
    pub worker_threads: usize,
}

impl Default for PersistentStoreConfig {
    fn default() -> Self {
        PersistentStoreConfig {
            block_cache_bytes: 32 * 1024 * 1024,
            memtable_bytes_max: 16 * 1024 * 1024,
            journal_bytes_max: JOURNAL_BYTES_MIN,
            worker_threads: 1,
        }
    }
}

pub struct PersistentKeyValueStore {
    name: String,
    path: PathBuf,
    db: Database,
    data: Keyspace,
}

impl std::fmt::Debug for PersistentKeyValueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentKeyValueStore")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PersistentKeyValueStore {
    /// Opens (creating if needed) the store in directory `path`, with the
    /// default [`PersistentStoreConfig`]. Fails if another handle, in this
    /// process or another, has it open.
    pub fn open(name: impl Into<String>, path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(name, path, &PersistentStoreConfig::default())
    }

    pub fn open_with(
        name: impl Into<String>,
        path: impl AsRef<Path>,
        config: &PersistentStoreConfig,
    ) -> Result<Self> {
        let name = name.into();
        let path = path.as_ref().to_path_buf();
        if config.journal_bytes_max < JOURNAL_BYTES_MIN || config.worker_threads == 0 {
            return Err(StoreError::Invalid {
                what: "persistent store config",
                detail: format!(
                    "{config:?}: journal_bytes_max must be at least {JOURNAL_BYTES_MIN} \
                     and worker_threads at least 1"
                ),
            });
        }
        let engine = |source| StoreError::Engine {
            store: name.clone(),
            path: path.clone(),
            source,
        };
        // Journal persistence is manual: flush() fsyncs once per commit
        // instead of a write syscall per put (fjall's default).
        let db = Database::builder(&path)
            .manual_journal_persist(true)
            .cache_size(config.block_cache_bytes)
            .max_journaling_size(config.journal_bytes_max)
            .worker_threads(config.worker_threads)
            .open()
            .map_err(engine)?;
        let memtable_bytes_max = config.memtable_bytes_max;
        let data = db
            .keyspace(KEYSPACE, || {
                KeyspaceCreateOptions::default()
                    .manual_journal_persist(true)
                    .max_memtable_size(memtable_bytes_max)
            })
            .map_err(engine)?;
        Ok(PersistentKeyValueStore {
            name,
            path,
            db,
            data,
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn engine_error(&self, source: fjall::Error) -> StoreError {
        StoreError::Engine {
            store: self.name.clone(),
            path: self.path.clone(),
            source,
        }
    }

    fn scan(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        reverse: bool,
    ) -> Result<KeyValueIter<'_>> {
        if bounds(from, to).is_none() {
            return Ok(Box::new(std::iter::empty()));
        }
        let from = stored_key(from.unwrap_or_default());
        let to = to.map_or(Bound::Unbounded, |to| Bound::Excluded(stored_key(to)));
        let iter = self.data.range((Bound::Included(from), to));
        let to_entry = move |guard: fjall::Guard| {
            let (key, value) = guard.into_inner().map_err(|e| self.engine_error(e))?;
            match key.split_first() {
                Some((&KEY_TAG, key)) => {
                    Ok((Bytes::copy_from_slice(key), Bytes::copy_from_slice(&value)))
                }
                _ => Err(StoreError::CorruptKey {
                    store: self.name.clone(),
                    layout: "key-value",
                    key: key.to_vec(),
                    detail: "expected tag 0x00",
                }),
            }
        };
        if reverse {
            Ok(Box::new(iter.rev().map(to_entry)))
        } else {
            Ok(Box::new(iter.map(to_entry)))
        }
    }
}

/// A key as stored: behind a tag byte, because fjall refuses empty keys
/// and Kafka Streams' stores take them (an empty string key).
fn stored_key(key: &[u8]) -> Vec<u8> {
    let mut stored = Vec::with_capacity(key.len() + 1);
    stored.push(KEY_TAG);
    stored.extend_from_slice(key);
    stored
}

impl KeyValueStore for PersistentKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        if key.len() > KEY_BYTES_MAX {
            return Ok(None); // never stored
        }
        let value = self
            .data
            .get(stored_key(key))
            .map_err(|e| self.engine_error(e))?;
        Ok(value.map(|v| Bytes::copy_from_slice(&v)))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key(&self.name, key)?;
        self.data
            .insert(stored_key(key), value)
            .map_err(|e| self.engine_error(e))
    }

    fn delete(&mut self, key: &[u8]) -> Result<()> {
        if key.len() > KEY_BYTES_MAX {
            return Ok(()); // never stored
        }
        self.data
            .remove(stored_key(key))
            .map_err(|e| self.engine_error(e))
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<KeyValueIter<'_>> {
        self.scan(from, to, false)
    }

    fn range_rev(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<KeyValueIter<'_>> {
        self.scan(from, to, true)
    }

    fn approximate_num_entries(&self) -> u64 {
        self.data.approximate_len() as u64
    }

    fn flush(&mut self) -> Result<()> {
        // A failed fsync poisons the database (fjall refuses later writes)
        // rather than being retried and trusted.
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(|e| self.engine_error(e))
    }

    fn is_persistent(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn contents(store: &PersistentKeyValueStore) -> BTreeMap<Vec<u8>, Vec<u8>> {
        store
            .all()
            .unwrap()
            .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_>>()
            .unwrap()
    }

    #[test]
    fn reopen_after_flush_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counts");
        let mut model = BTreeMap::new();
        let mut store = PersistentKeyValueStore::open("counts", &path).unwrap();
        for i in 0u32..5_000 {
            let (key, value) = (i.to_be_bytes(), (i * 7).to_le_bytes());
            store.put(&key, &value).unwrap();
            model.insert(key.to_vec(), value.to_vec());
            if i % 3 == 0 {
                store.delete(&(i / 2).to_be_bytes()).unwrap();
                model.remove(&(i / 2).to_be_bytes()[..]);
            }
            if i % 1_000 == 999 {
                store.flush().unwrap();
            }
        }
        store.flush().unwrap();
        assert_eq!(contents(&store), model);
        drop(store);

        let mut store = PersistentKeyValueStore::open("counts", &path).unwrap();
        assert_eq!(contents(&store), model);
        assert!(store.approximate_num_entries() >= model.len() as u64);
        assert_eq!(
            store.get(&4_999u32.to_be_bytes()).unwrap().unwrap(),
            &(4_999u32 * 7).to_le_bytes()[..]
        );
        // And it goes on taking writes.
        store.put(b"after", b"reopen").unwrap();
        store.flush().unwrap();
        drop(store);
        let store = PersistentKeyValueStore::open("counts", &path).unwrap();
        assert_eq!(store.get(b"after").unwrap().unwrap(), &b"reopen"[..]);
    }

    #[test]
    fn a_store_open_elsewhere_is_refused_with_its_name_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let _first = PersistentKeyValueStore::open("s", &path).unwrap();
        let err = PersistentKeyValueStore::open("s", &path).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, StoreError::Engine { .. }), "{message}");
        assert!(
            message.contains("persistent store \"s\"")
                && message.contains(&*path.to_string_lossy()),
            "{message}"
        );
    }

    #[test]
    fn an_untagged_key_on_disk_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = PersistentKeyValueStore::open("s", dir.path()).unwrap();
        store
            .data
            .insert(b"\x01written by something else", b"v")
            .unwrap();
        let err = store.all().unwrap().next().unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::CorruptKey {
                    layout: "key-value",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn configs_below_the_engine_minimums_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for config in [
            PersistentStoreConfig {
                journal_bytes_max: 1024,
                ..Default::default()
            },
            PersistentStoreConfig {
                worker_threads: 0,
                ..Default::default()
            },
        ] {
            let err = PersistentKeyValueStore::open_with("s", dir.path(), &config).unwrap_err();
            assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
        }
    }
}
