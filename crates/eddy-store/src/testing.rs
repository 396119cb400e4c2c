//! Test support: every test body that takes a store runs against every
//! engine (tansu's habit), so the engines cannot drift apart.

use tempfile::TempDir;

use crate::kv::KeyValueStore;
use crate::memory::InMemoryKeyValueStore;

/// A store of each engine, with the directory that must outlive it.
pub(crate) fn backends(name: &str) -> Vec<(Box<dyn KeyValueStore>, Option<TempDir>)> {
    #[cfg_attr(not(feature = "persistent"), allow(unused_mut))]
    let mut stores: Vec<(Box<dyn KeyValueStore>, Option<TempDir>)> =
        vec![(Box::new(InMemoryKeyValueStore::new(name)), None)];
    #[cfg(feature = "persistent")]
    {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::PersistentKeyValueStore::open(name, dir.path().join(name)).unwrap();
        stores.push((Box::new(store), Some(dir)));
    }
    stores
}
