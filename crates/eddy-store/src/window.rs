//! [`WindowStore`]: values per (key, window start), as a layout over a
//! [`KeyValueStore`] — Kafka Streams' `WindowStore` with
//! `retainDuplicates = false` (a put on the same key and window replaces).
//!
//! # Layout
//!
//! One key space, two kinds of entry told apart by a tag byte
//! ([`crate::encoding`] for the escaped key and the time):
//!
//! ```text
//! 0x01 escaped key, time(window start)  -> value     the windows, by key then time
//! 0x02 time(window start), escaped key  -> (empty)   the same windows, by time
//! ```
//!
//! The first makes [`WindowStore::fetch_range`] one contiguous scan. The
//! second is Kafka's segments in another form: expiry and time-bounded
//! scans over all keys read only the windows in their time range, instead
//! of every window of every key. It costs a second write per put.
//!
//! A put writes the time entry first and a removal deletes it last, so a
//! crash between the two writes leaves at most a time entry without its
//! window: reads skip it and [`WindowStore::remove_expired`] clears it.
//! Never a window that expiry cannot find.
//!
//! Changelogging belongs one level up, at this store's API (a window is
//! logged once, as Kafka's window changelogs are), not at the inner store's.

use bytes::Bytes;

use crate::encoding::{put_escaped, put_time, take_escaped, take_time};
use crate::error::{Result, StoreError};
use crate::kv::{prefix_end, KeyValueStore};

const WINDOW: u8 = 0x01;
const BY_TIME: u8 = 0x02;
/// Entries read per pass of [`WindowStore::remove_expired`] before they are
/// deleted, which bounds its memory.
pub(crate) const EXPIRE_CHUNK_ENTRIES: usize = 1024;

/// A window of a key: (key, window start in ms, value).
pub type WindowEntry = (Bytes, i64, Bytes);

/// Results of a window store scan, in the order each method states.
pub type WindowIter<'a, T> = Box<dyn Iterator<Item = Result<T>> + 'a>;

#[derive(Debug)]
pub struct WindowStore<S> {
    inner: S,
    /// No window starts before this (expiry removed them, and no put since went below):
    /// expiry scans from here, not over the tombstones an LSM engine keeps of the windows
    /// it already removed, which made each pass cost as much as all of them together.
    expired_before_ms: i64,
}

impl<S: KeyValueStore> WindowStore<S> {
    /// Lays a window store over `inner`, which it then owns entirely (any
    /// entry in it must have been written by a `WindowStore`).
    pub fn new(inner: S) -> Self {
        WindowStore {
            inner,
            expired_before_ms: i64::MIN,
        }
    }

    pub fn name(&self) -> &str {
        self.inner.name()
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Sets the value of `key`'s window starting at `window_start_ms`.
    pub fn put(&mut self, key: &[u8], window_start_ms: i64, value: &[u8]) -> Result<()> {
        self.expired_before_ms = self.expired_before_ms.min(window_start_ms);
        self.inner.put(&time_key(window_start_ms, key), &[])?;
        self.inner.put(&window_key(key, window_start_ms), value)
    }

    /// Removes `key`'s window starting at `window_start_ms`, if present (a
    /// put of a null value in Kafka Streams).
    pub fn remove(&mut self, key: &[u8], window_start_ms: i64) -> Result<()> {
        self.inner.delete(&window_key(key, window_start_ms))?;
        self.inner.delete(&time_key(window_start_ms, key))
    }

    pub fn fetch(&self, key: &[u8], window_start_ms: i64) -> Result<Option<Bytes>> {
        self.inner.get(&window_key(key, window_start_ms))
    }

    /// `key`'s windows with `time_from_ms <= start <= time_to_ms` (both
    /// ends inclusive, as Kafka's `fetch(key, timeFrom, timeTo)`), as
    /// (window start, value) in time order.
    pub fn fetch_range(
        &self,
        key: &[u8],
        time_from_ms: i64,
        time_to_ms: i64,
    ) -> Result<WindowIter<'_, (i64, Bytes)>> {
        if time_from_ms > time_to_ms {
            return Ok(Box::new(std::iter::empty()));
        }
        let from = window_key(key, time_from_ms);
        let to = match time_to_ms.checked_add(1) {
            Some(after) => window_key(key, after),
            None => prefix_end(&window_key_prefix(key)).expect("an escaped key ends in 0x00"),
        };
        let store = self.inner.name();
        let iter = self.inner.range(Some(&from), Some(&to))?;
        Ok(Box::new(iter.map(move |entry| {
            let (k, value) = entry?;
            let (_, start) = decode_window_key(store, &k)?;
            Ok((start, value))
        })))
    }

    /// Every key's windows with `time_from_ms <= start <= time_to_ms`, in
    /// window start order, then key order.
    pub fn fetch_all(
        &self,
        time_from_ms: i64,
        time_to_ms: i64,
    ) -> Result<WindowIter<'_, WindowEntry>> {
        let store = self.inner.name();
        let entries = self.by_time(time_from_ms, time_to_ms)?;
        let windows = entries.filter_map(move |entry| {
            let (start, key) = match entry {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            // A time entry whose window is gone (a crash between the two
            // writes) is skipped: see the module docs.
            match self.inner.get(&window_key(&key, start)) {
                Ok(Some(value)) => Some(Ok((Bytes::from(key), start, value))),
                Ok(None) => {
                    tracing::debug!(store, start, "window store: time entry without its window");
                    None
                }
                Err(e) => Some(Err(e)),
            }
        });
        Ok(Box::new(windows))
    }

    /// Every window, in key order, then window start order.
    pub fn all(&self) -> Result<WindowIter<'_, WindowEntry>> {
        let store = self.inner.name();
        let iter = self.inner.range(Some(&[WINDOW]), Some(&[BY_TIME]))?;
        Ok(Box::new(iter.map(move |entry| {
            let (k, value) = entry?;
            let (key, start) = decode_window_key(store, &k)?;
            Ok((Bytes::from(key), start, value))
        })))
    }

    /// Drops every window that starts before `before_ms` (the caller passes
    /// stream time minus the retention, which is window size plus grace).
    /// Returns how many windows went.
    pub fn remove_expired(&mut self, before_ms: i64) -> Result<u64> {
        let Some(last_ms) = before_ms.checked_sub(1) else {
            return Ok(0);
        };
        if before_ms <= self.expired_before_ms {
            return Ok(0);
        }
        let mut removed = 0;
        loop {
            let chunk: Vec<(i64, Vec<u8>)> = self
                .by_time(self.expired_before_ms, last_ms)?
                .take(EXPIRE_CHUNK_ENTRIES)
                .collect::<Result<_>>()?;
            for (start, key) in &chunk {
                self.remove(key, *start)?;
            }
            removed += chunk.len() as u64;
            if chunk.len() < EXPIRE_CHUNK_ENTRIES {
                self.expired_before_ms = before_ms;
                return Ok(removed);
            }
            if let Some((start, _)) = chunk.last() {
                self.expired_before_ms = *start;
            }
        }
    }

    /// [`KeyValueStore::flush`] of the inner store.
    pub fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }

    /// (window start, key) of the time entries with start in `[from, to]`.
    fn by_time(&self, from_ms: i64, to_ms: i64) -> Result<WindowIter<'_, (i64, Vec<u8>)>> {
        if from_ms > to_ms {
            return Ok(Box::new(std::iter::empty()));
        }
        let mut from = vec![BY_TIME];
        put_time(&mut from, from_ms);
        let to = match to_ms.checked_add(1) {
            Some(after) => {
                let mut to = vec![BY_TIME];
                put_time(&mut to, after);
                to
            }
            None => vec![BY_TIME + 1],
        };
        let store = self.inner.name();
        let iter = self.inner.range(Some(&from), Some(&to))?;
        Ok(Box::new(iter.map(move |entry| {
            let (k, _) = entry?;
            decode_time_key(store, &k)
        })))
    }
}

fn window_key_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 11);
    out.push(WINDOW);
    put_escaped(&mut out, key);
    out
}

fn window_key(key: &[u8], start_ms: i64) -> Vec<u8> {
    let mut out = window_key_prefix(key);
    put_time(&mut out, start_ms);
    out
}

fn time_key(start_ms: i64, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 11);
    out.push(BY_TIME);
    put_time(&mut out, start_ms);
    put_escaped(&mut out, key);
    out
}

fn corrupt(store: &str, key: &[u8], detail: &'static str) -> StoreError {
    StoreError::CorruptKey {
        store: store.to_string(),
        layout: "window",
        key: key.to_vec(),
        detail,
    }
}

fn decode_window_key(store: &str, bytes: &[u8]) -> Result<(Vec<u8>, i64)> {
    let rest = match bytes.split_first() {
        Some((&WINDOW, rest)) => rest,
        _ => return Err(corrupt(store, bytes, "expected tag 0x01 (window)")),
    };
    let (key, rest) = take_escaped(rest).ok_or_else(|| corrupt(store, bytes, "bad escaped key"))?;
    match take_time(rest) {
        Some((start, [])) => Ok((key, start)),
        _ => Err(corrupt(
            store,
            bytes,
            "expected 8 bytes of window start after the key",
        )),
    }
}

fn decode_time_key(store: &str, bytes: &[u8]) -> Result<(i64, Vec<u8>)> {
    let rest = match bytes.split_first() {
        Some((&BY_TIME, rest)) => rest,
        _ => return Err(corrupt(store, bytes, "expected tag 0x02 (time entry)")),
    };
    let (start, rest) =
        take_time(rest).ok_or_else(|| corrupt(store, bytes, "short window start"))?;
    match take_escaped(rest) {
        Some((key, [])) => Ok((start, key)),
        _ => Err(corrupt(
            store,
            bytes,
            "bad escaped key after the window start",
        )),
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
