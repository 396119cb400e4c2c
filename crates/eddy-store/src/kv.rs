//! The [`KeyValueStore`] trait every store engine implements, and what the
//! engines share: the key size limit and range-bound handling.
//!
//! Keys and values are bytes and keys are ordered lexicographically by
//! their bytes, as RocksDB orders them for Kafka Streams; serdes live in
//! eddy-streams. Window and session stores are layouts over this trait
//! ([`crate::WindowStore`], [`crate::SessionStore`]).

use std::ops::Bound;

use bytes::Bytes;

use crate::error::{Result, StoreError};

/// The longest key any store takes. The persistent engine refuses keys
/// above 64 KiB; half of that leaves room for the window and session
/// layouts, which escape the user key and append timestamps.
pub const KEY_BYTES_MAX: usize = 32 * 1024;

/// A key and its value.
pub type KeyValue = (Bytes, Bytes);

/// Entries in key order (or reverse key order). An iterator of the
/// persistent store reads a snapshot taken when it was created; one of the
/// in-memory store borrows the store, so neither sees writes made after.
pub type KeyValueIter<'a> = Box<dyn Iterator<Item = Result<KeyValue>> + 'a>;

/// A key-value state store: what Kafka Streams calls a `KeyValueStore<Bytes, byte[]>`.
pub trait KeyValueStore: Send {
    /// The store's name, as the topology names it (and its changelog topic).
    fn name(&self) -> &str;

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>>;

    /// Inserts or replaces. Keys longer than [`KEY_BYTES_MAX`] are refused
    /// with [`StoreError::KeyTooLarge`].
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Removes the key if present.
    fn delete(&mut self, key: &[u8]) -> Result<()>;

    /// Entries with `from <= key < to` (`None` = unbounded), in key order.
    /// `from > to` gives no entries (as Kafka Streams does), not an error.
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<KeyValueIter<'_>>;

    /// The entries of [`KeyValueStore::range`], in reverse key order.
    fn range_rev(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<KeyValueIter<'_>>;

    /// Every entry whose key starts with `prefix`, in key order.
    fn prefix_scan(&self, prefix: &[u8]) -> Result<KeyValueIter<'_>> {
        let end = prefix_end(prefix);
        self.range(Some(prefix), end.as_deref())
    }

    /// Every entry, in key order.
    fn all(&self) -> Result<KeyValueIter<'_>> {
        self.range(None, None)
    }

    /// A cheap estimate: exact for the in-memory store; the persistent one
    /// also counts overwritten and deleted entries not yet compacted away.
    fn approximate_num_entries(&self) -> u64;

    /// Makes every write so far durable (a no-op in memory). Called at each
    /// commit, before the task's checkpoint is written.
    fn flush(&mut self) -> Result<()>;

    /// Whether the store survives a restart (and so may be restored from a
    /// checkpoint instead of from the changelog's start).
    fn is_persistent(&self) -> bool;
}

/// Lets a topology hold stores as `Box<dyn KeyValueStore>` and still wrap
/// them in a [`crate::WindowStore`] or [`crate::SessionStore`].
impl<S: KeyValueStore + ?Sized> KeyValueStore for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        (**self).get(key)
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        (**self).put(key, value)
    }
    fn delete(&mut self, key: &[u8]) -> Result<()> {
        (**self).delete(key)
    }
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<KeyValueIter<'_>> {
        (**self).range(from, to)
    }
    fn range_rev(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<KeyValueIter<'_>> {
        (**self).range_rev(from, to)
    }
    fn prefix_scan(&self, prefix: &[u8]) -> Result<KeyValueIter<'_>> {
        (**self).prefix_scan(prefix)
    }
    fn approximate_num_entries(&self) -> u64 {
        (**self).approximate_num_entries()
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    fn is_persistent(&self) -> bool {
        (**self).is_persistent()
    }
}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` when there is none (an empty prefix, or one of all `0xff` bytes).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end)
}

/// A range of keys as the engines take it.
pub(crate) type KeyBounds<'k> = (Bound<&'k [u8]>, Bound<&'k [u8]>);

/// `[from, to)` as bounds, or `None` when the range holds no key (a
/// `BTreeMap` panics on a reversed range; Kafka Streams returns nothing).
pub(crate) fn bounds<'k>(from: Option<&'k [u8]>, to: Option<&'k [u8]>) -> Option<KeyBounds<'k>> {
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            return None;
        }
    }
    Some((
        from.map_or(Bound::Unbounded, Bound::Included),
        to.map_or(Bound::Unbounded, Bound::Excluded),
    ))
}

/// Refuses keys over [`KEY_BYTES_MAX`], naming the store.
pub(crate) fn check_key(store: &str, key: &[u8]) -> Result<()> {
    if key.len() > KEY_BYTES_MAX {
        return Err(StoreError::KeyTooLarge {
            store: store.to_string(),
            key_bytes: key.len(),
            key_bytes_max: KEY_BYTES_MAX,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_carries_past_0xff() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn empty_and_reversed_ranges_have_no_bounds() {
        assert!(bounds(Some(b"b"), Some(b"a")).is_none());
        assert!(bounds(Some(b"a"), Some(b"a")).is_none());
        assert!(bounds(Some(b"a"), Some(b"b")).is_some());
        assert!(bounds(None, Some(b"")).is_some());
    }
}
