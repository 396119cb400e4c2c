//! Windows: tumbling and hopping time windows, session windows, the `Windowed<K>` key of
//! windowed tables, and its serdes.
//!
//! Lateness is judged as Kafka Streams judges it: each windowed aggregation tracks the
//! highest timestamp it has seen (its stream time); a window is closed once stream time
//! reaches its end plus the grace period, and a record for a closed window is dropped
//! (counted in `dropped-records`).

use std::sync::Arc;

use bytes::Bytes;

use crate::serdes::{Serde, SerdeError, SerdeRef};
use crate::value::Data;

/// A window: `[start_ms, end_ms)` for time windows, `[start_ms, end_ms]` for sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A key of a windowed table: the record key and its window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Windowed<K> {
    pub key: K,
    pub window: Window,
}

/// Fixed-size windows every `advance_ms` (tumbling when the advance is the size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    pub size_ms: i64,
    pub advance_ms: i64,
    pub grace_ms: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size_ms` accepting records up to `grace_ms` late.
    pub fn of_size_and_grace(size_ms: i64, grace_ms: i64) -> TimeWindows {
        assert!(
            size_ms > 0 && grace_ms >= 0,
            "window size must be positive, grace not negative"
        );
        TimeWindows {
            size_ms,
            advance_ms: size_ms,
            grace_ms,
        }
    }

    pub fn of_size_without_grace(size_ms: i64) -> TimeWindows {
        TimeWindows::of_size_and_grace(size_ms, 0)
    }

    /// Hopping windows: a new window every `advance_ms` (0 < advance <= size).
    pub fn advance_by(mut self, advance_ms: i64) -> TimeWindows {
        assert!(
            advance_ms > 0 && advance_ms <= self.size_ms,
            "advance must be in (0, size]"
        );
        self.advance_ms = advance_ms;
        self
    }

    /// Start times of the windows holding `ts`, oldest first (Kafka's `windowsFor`).
    pub fn starts_for(&self, ts: i64) -> Vec<i64> {
        let first = (ts - self.size_ms + self.advance_ms).max(0);
        let mut start = first - first % self.advance_ms;
        let mut out = Vec::new();
        while start <= ts {
            out.push(start);
            start += self.advance_ms;
        }
        out
    }
}

/// Sliding windows (KIP-450): windows defined by the records. Each record at `t` has its
/// window `[t - time_difference, t]`, and a window `[t + 1, t + 1 + time_difference]`
/// when a later record falls in it; both ends included. A window holds the records whose
/// timestamps differ by at most the time difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    pub time_difference_ms: i64,
    pub grace_ms: i64,
}

impl SlidingWindows {
    pub fn of_time_difference_and_grace(time_difference_ms: i64, grace_ms: i64) -> Self {
        assert!(
            time_difference_ms >= 0 && grace_ms >= 0,
            "time difference and grace must not be negative"
        );
        SlidingWindows {
            time_difference_ms,
            grace_ms,
        }
    }

    pub fn of_time_difference_without_grace(time_difference_ms: i64) -> Self {
        SlidingWindows::of_time_difference_and_grace(time_difference_ms, 0)
    }
}

/// Sessions: a key's records no more than `gap_ms` apart belong to one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    pub gap_ms: i64,
    pub grace_ms: i64,
}

impl SessionWindows {
    pub fn of_inactivity_gap_and_grace(gap_ms: i64, grace_ms: i64) -> SessionWindows {
        assert!(
            gap_ms > 0 && grace_ms >= 0,
            "gap must be positive, grace not negative"
        );
        SessionWindows { gap_ms, grace_ms }
    }

    pub fn of_inactivity_gap_without_grace(gap_ms: i64) -> SessionWindows {
        SessionWindows::of_inactivity_gap_and_grace(gap_ms, 0)
    }
}

/// When a windowed aggregation emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmitStrategy {
    /// Every update, as it happens (Kafka's default).
    #[default]
    OnWindowUpdate,
    /// Once per window, its final value, when the window closes (KIP-825's
    /// `onWindowClose`, ksqlDB's `EMIT FINAL`).
    OnWindowClose,
}

/// Kafka's TimeWindowedSerde: the key's bytes, then the window start (8 bytes, big-endian);
/// the end is start + `size_ms`.
pub fn time_windowed_serde<K: Data>(inner: SerdeRef<K>, size_ms: i64) -> SerdeRef<Windowed<K>> {
    Arc::new(TimeWindowedSerde { inner, size_ms })
}

/// Kafka's SessionWindowedSerde: the key's bytes, then the session end and start (8 bytes
/// each, big-endian).
pub fn session_windowed_serde<K: Data>(inner: SerdeRef<K>) -> SerdeRef<Windowed<K>> {
    Arc::new(SessionWindowedSerde { inner })
}

struct TimeWindowedSerde<K> {
    inner: SerdeRef<K>,
    size_ms: i64,
}

fn windowed_error(topic: &str, detail: &str) -> SerdeError {
    SerdeError {
        serde: "windowed",
        topic: topic.to_owned(),
        detail: detail.to_owned(),
    }
}

fn take_tail_i64(b: &[u8]) -> Option<(&[u8], i64)> {
    let at = b.len().checked_sub(8)?;
    let (head, tail) = b.split_at(at);
    Some((head, i64::from_be_bytes(tail.try_into().ok()?)))
}

impl<K: Data> Serde<Windowed<K>> for TimeWindowedSerde<K> {
    fn serialize(&self, topic: &str, v: &Windowed<K>) -> Result<Option<Bytes>, SerdeError> {
        let mut out = self
            .inner
            .serialize(topic, &v.key)?
            .map(|b| b.to_vec())
            .unwrap_or_default();
        out.extend_from_slice(&v.window.start_ms.to_be_bytes());
        Ok(Some(Bytes::from(out)))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Windowed<K>, SerdeError> {
        let b = data.ok_or_else(|| windowed_error(topic, "null windowed key"))?;
        let (key, start) =
            take_tail_i64(b).ok_or_else(|| windowed_error(topic, "shorter than a window start"))?;
        Ok(Windowed {
            key: self.inner.deserialize(topic, Some(key))?,
            window: Window {
                start_ms: start,
                end_ms: start.saturating_add(self.size_ms),
            },
        })
    }
}

struct SessionWindowedSerde<K> {
    inner: SerdeRef<K>,
}

impl<K: Data> Serde<Windowed<K>> for SessionWindowedSerde<K> {
    fn serialize(&self, topic: &str, v: &Windowed<K>) -> Result<Option<Bytes>, SerdeError> {
        let mut out = self
            .inner
            .serialize(topic, &v.key)?
            .map(|b| b.to_vec())
            .unwrap_or_default();
        out.extend_from_slice(&v.window.end_ms.to_be_bytes());
        out.extend_from_slice(&v.window.start_ms.to_be_bytes());
        Ok(Some(Bytes::from(out)))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Windowed<K>, SerdeError> {
        let b = data.ok_or_else(|| windowed_error(topic, "null windowed key"))?;
        let short = || windowed_error(topic, "shorter than a session's end and start");
        let (rest, start) = take_tail_i64(b).ok_or_else(short)?;
        let (key, end) = take_tail_i64(rest).ok_or_else(short)?;
        Ok(Windowed {
            key: self.inner.deserialize(topic, Some(key))?,
            window: Window {
                start_ms: start,
                end_ms: end,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serdes::Serdes;

    #[test]
    fn hopping_windows_for_a_timestamp() {
        let w = TimeWindows::of_size_without_grace(10).advance_by(5);
        assert_eq!(w.starts_for(12), vec![5, 10]);
        assert_eq!(w.starts_for(3), vec![0]);
        assert_eq!(
            TimeWindows::of_size_without_grace(10).starts_for(19),
            vec![10]
        );
    }

    #[test]
    fn windowed_serdes_round_trip_and_refuse_short_input() {
        let s = time_windowed_serde(Serdes::string(), 10);
        let w = Windowed {
            key: "k".to_string(),
            window: Window {
                start_ms: 20,
                end_ms: 30,
            },
        };
        let b = s.serialize("t", &w).unwrap();
        assert_eq!(s.deserialize("t", b.as_deref()).unwrap(), w);
        assert!(s.deserialize("t", Some(b"abc")).is_err());
        let s = session_windowed_serde(Serdes::string());
        let w = Windowed {
            key: "k".to_string(),
            window: Window {
                start_ms: 20,
                end_ms: 25,
            },
        };
        let b = s.serialize("t", &w).unwrap();
        assert_eq!(s.deserialize("t", b.as_deref()).unwrap(), w);
    }
}
