//! [`InMemoryKeyValueStore`]: a `BTreeMap`, as Kafka Streams'
//! `InMemoryKeyValueStore` is a `TreeMap`. Nothing survives a restart: a
//! task with in-memory stores restores them from their changelogs' start.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::Result;
use crate::kv::{bounds, check_key, KeyValueIter, KeyValueStore};

#[derive(Debug, Default, Clone)]
pub struct InMemoryKeyValueStore {
    name: String,
    // Bytes, not Vec<u8>: get and range hand out clones, which are a
    // reference-count increment instead of a copy.
    entries: BTreeMap<Bytes, Bytes>,
}

impl InMemoryKeyValueStore {
    pub fn new(name: impl Into<String>) -> Self {
        InMemoryKeyValueStore {
            name: name.into(),
            entries: BTreeMap::new(),
        }
    }
}

impl KeyValueStore for InMemoryKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.entries.get(key).cloned())
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key(&self.name, key)?;
        self.entries
            .insert(Bytes::copy_from_slice(key), Bytes::copy_from_slice(value));
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.entries.remove(key);
        Ok(())
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<KeyValueIter<'_>> {
        let Some(bounds) = bounds(from, to) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let iter = self.entries.range::<[u8], _>(bounds);
        Ok(Box::new(iter.map(|(k, v)| Ok((k.clone(), v.clone())))))
    }

    fn range_rev(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<KeyValueIter<'_>> {
        let Some(bounds) = bounds(from, to) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let iter = self.entries.range::<[u8], _>(bounds).rev();
        Ok(Box::new(iter.map(|(k, v)| Ok((k.clone(), v.clone())))))
    }

    fn approximate_num_entries(&self) -> u64 {
        self.entries.len() as u64
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        false
    }
}
