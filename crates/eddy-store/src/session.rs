//! [`SessionStore`]: values per (key, session start, session end), as a
//! layout over a [`KeyValueStore`] — Kafka Streams' `SessionStore`.
//!
//! # Layout
//!
//! One key space, two kinds of entry told apart by a tag byte
//! ([`crate::encoding`] for the escaped key and the times):
//!
//! ```text
//! 0x01 escaped key, time(end), time(start)  -> value     by key, then end, then start
//! 0x02 time(end), escaped key, time(start)  -> (empty)   the same sessions, by end
//! ```
//!
//! The first is Kafka's session key schema (key, end, start):
//! [`SessionStore::find_sessions`] scans one key from the earliest end it
//! asks for. The second lets expiry, which goes by session end as Kafka's
//! session segments do, read only the expired sessions. Writes are ordered
//! as in [`crate::WindowStore`] so that a crash leaves at most a harmless
//! time entry without its session.

use bytes::Bytes;

use crate::encoding::{put_escaped, put_time, take_escaped, take_time};
use crate::error::{Result, StoreError};
use crate::kv::{prefix_end, KeyValueStore};
use crate::window::{WindowIter, EXPIRE_CHUNK_ENTRIES};

const SESSION: u8 = 0x01;
const BY_END: u8 = 0x02;

/// A session of a key and its value (Kafka's `Windowed<K>` with a
/// `SessionWindow`, and the aggregate). Both ends are inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub key: Bytes,
    pub start_ms: i64,
    pub end_ms: i64,
    pub value: Bytes,
}

#[derive(Debug)]
pub struct SessionStore<S> {
    inner: S,
    /// No session ends before this: expiry scans from here (see `WindowStore`).
    expired_before_ms: i64,
}

impl<S: KeyValueStore> SessionStore<S> {
    /// Lays a session store over `inner`, which it then owns entirely.
    pub fn new(inner: S) -> Self {
        SessionStore {
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

    /// Sets the value of `key`'s session `[start_ms, end_ms]`.
    pub fn put(&mut self, key: &[u8], start_ms: i64, end_ms: i64, value: &[u8]) -> Result<()> {
        if start_ms > end_ms {
            return Err(StoreError::Invalid {
                what: "session",
                detail: format!(
                    "store {:?}: session starts at {start_ms} ms, after its end at {end_ms} ms",
                    self.name()
                ),
            });
        }
        self.expired_before_ms = self.expired_before_ms.min(end_ms);
        self.inner.put(&end_key(key, start_ms, end_ms), &[])?;
        self.inner.put(&session_key(key, start_ms, end_ms), value)
    }

    /// Removes `key`'s session `[start_ms, end_ms]`, if present (when
    /// sessions merge, the merged ones are removed).
    pub fn remove(&mut self, key: &[u8], start_ms: i64, end_ms: i64) -> Result<()> {
        self.inner.delete(&session_key(key, start_ms, end_ms))?;
        self.inner.delete(&end_key(key, start_ms, end_ms))
    }

    /// The value of exactly the session `[start_ms, end_ms]` of `key`
    /// (Kafka's `fetchSession`).
    pub fn fetch_session(&self, key: &[u8], start_ms: i64, end_ms: i64) -> Result<Option<Bytes>> {
        self.inner.get(&session_key(key, start_ms, end_ms))
    }

    /// `key`'s sessions with `end >= earliest_session_end_ms` and
    /// `start <= latest_session_start_ms` — those that overlap or touch
    /// `[earliest end, latest start]`, as Kafka's `findSessions`. In end
    /// order, then start order.
    pub fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end_ms: i64,
        latest_session_start_ms: i64,
    ) -> Result<WindowIter<'_, Session>> {
        let prefix = session_key_prefix(key);
        let mut from = prefix.clone();
        put_time(&mut from, earliest_session_end_ms);
        let to = prefix_end(&prefix).expect("an escaped key ends in 0x00");
        let iter = self.sessions(Some(&from), Some(&to))?;
        // Sessions are ordered by end, not start: a later one may still
        // start early enough, so the scan runs to the key's last session.
        Ok(Box::new(iter.filter(move |session| match session {
            Ok(s) => s.start_ms <= latest_session_start_ms,
            Err(_) => true,
        })))
    }

    /// Every session of `key`, in end order, then start order.
    pub fn fetch(&self, key: &[u8]) -> Result<WindowIter<'_, Session>> {
        let prefix = session_key_prefix(key);
        let to = prefix_end(&prefix).expect("an escaped key ends in 0x00");
        self.sessions(Some(&prefix), Some(&to))
    }

    /// Every session, in key order, then end order, then start order.
    pub fn fetch_all(&self) -> Result<WindowIter<'_, Session>> {
        self.sessions(Some(&[SESSION]), Some(&[BY_END]))
    }

    /// Drops every session that ended before `before_ms` (the caller passes
    /// stream time minus the retention: inactivity gap plus grace, or
    /// longer). Returns how many sessions went.
    pub fn remove_expired(&mut self, before_ms: i64) -> Result<u64> {
        let Some(last_ms) = before_ms.checked_sub(1) else {
            return Ok(0);
        };
        if before_ms <= self.expired_before_ms {
            return Ok(0);
        }
        let mut to = vec![BY_END];
        put_time(&mut to, last_ms);
        let to = prefix_end(&to).expect("starts with the tag 0x02");
        let mut removed = 0;
        loop {
            let store = self.inner.name();
            let mut from = vec![BY_END];
            if self.expired_before_ms > i64::MIN {
                put_time(&mut from, self.expired_before_ms);
            }
            let chunk: Vec<(Vec<u8>, i64, i64)> = self
                .inner
                .range(Some(&from), Some(&to))?
                .take(EXPIRE_CHUNK_ENTRIES)
                .map(|entry| decode_end_key(store, &entry?.0))
                .collect::<Result<_>>()?;
            for (key, start, end) in &chunk {
                self.remove(key, *start, *end)?;
            }
            removed += chunk.len() as u64;
            if chunk.len() < EXPIRE_CHUNK_ENTRIES {
                self.expired_before_ms = before_ms;
                return Ok(removed);
            }
            if let Some((_, _, end)) = chunk.last() {
                self.expired_before_ms = *end;
            }
        }
    }

    /// [`KeyValueStore::flush`] of the inner store.
    pub fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }

    fn sessions(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<WindowIter<'_, Session>> {
        let store = self.inner.name();
        let iter = self.inner.range(from, to)?;
        Ok(Box::new(iter.map(move |entry| {
            let (k, value) = entry?;
            let (key, start_ms, end_ms) = decode_session_key(store, &k)?;
            Ok(Session {
                key: Bytes::from(key),
                start_ms,
                end_ms,
                value,
            })
        })))
    }
}

fn session_key_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 19);
    out.push(SESSION);
    put_escaped(&mut out, key);
    out
}

fn session_key(key: &[u8], start_ms: i64, end_ms: i64) -> Vec<u8> {
    let mut out = session_key_prefix(key);
    put_time(&mut out, end_ms);
    put_time(&mut out, start_ms);
    out
}

fn end_key(key: &[u8], start_ms: i64, end_ms: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 19);
    out.push(BY_END);
    put_time(&mut out, end_ms);
    put_escaped(&mut out, key);
    put_time(&mut out, start_ms);
    out
}

fn corrupt(store: &str, key: &[u8], detail: &'static str) -> StoreError {
    StoreError::CorruptKey {
        store: store.to_string(),
        layout: "session",
        key: key.to_vec(),
        detail,
    }
}

/// (key, start, end) of a session entry.
fn decode_session_key(store: &str, bytes: &[u8]) -> Result<(Vec<u8>, i64, i64)> {
    let rest = match bytes.split_first() {
        Some((&SESSION, rest)) => rest,
        _ => return Err(corrupt(store, bytes, "expected tag 0x01 (session)")),
    };
    let (key, rest) = take_escaped(rest).ok_or_else(|| corrupt(store, bytes, "bad escaped key"))?;
    let (end, rest) = take_time(rest).ok_or_else(|| corrupt(store, bytes, "short session end"))?;
    match take_time(rest) {
        Some((start, [])) if start <= end => Ok((key, start, end)),
        Some((_, [])) => Err(corrupt(store, bytes, "session starts after its end")),
        _ => Err(corrupt(
            store,
            bytes,
            "expected 8 bytes of session start after the end",
        )),
    }
}

/// (key, start, end) of a time entry.
fn decode_end_key(store: &str, bytes: &[u8]) -> Result<(Vec<u8>, i64, i64)> {
    let rest = match bytes.split_first() {
        Some((&BY_END, rest)) => rest,
        _ => return Err(corrupt(store, bytes, "expected tag 0x02 (time entry)")),
    };
    let (end, rest) = take_time(rest).ok_or_else(|| corrupt(store, bytes, "short session end"))?;
    let (key, rest) = take_escaped(rest).ok_or_else(|| corrupt(store, bytes, "bad escaped key"))?;
    match take_time(rest) {
        Some((start, [])) => Ok((key, start, end)),
        _ => Err(corrupt(
            store,
            bytes,
            "expected 8 bytes of session start after the key",
        )),
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
