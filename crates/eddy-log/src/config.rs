//! Per-partition log settings, named after Kafka's topic configs.

use crate::error::LogError;

/// Settings of one partition's log. Field names follow Kafka's topic
/// configs (`segment.bytes` → `segment_bytes`), with the unit last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll the active segment before it grows past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll the active segment once its first append is older.
    pub segment_ms: i64,
    /// `index.interval.bytes`: log bytes between two sparse index entries.
    pub index_interval_bytes: u64,
    /// `retention.ms`: delete segments whose newest timestamp is older; -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest segments while the log is larger; -1 keeps all.
    pub retention_bytes: i64,
    /// `max.message.bytes`: largest batch accepted by `append`.
    pub max_message_bytes: usize,
    /// `cleanup.policy` contains `delete`: time and size retention apply.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`: the log cleaner keeps the last
    /// record per key (see `cleaner.rs`).
    pub cleanup_compact: bool,
    /// `delete.retention.ms`: how long a tombstone survives once a cleaning
    /// pass has seen it (its batch's delete horizon, KIP-534).
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record older than this makes the log
    /// due for cleaning whatever its dirty ratio; also caps `segment.ms`.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: clean once dirty bytes / cleanable bytes
    /// reach it.
    pub min_cleanable_dirty_ratio: DirtyRatio,
}

/// A ratio in `[0, 1]` (`min.cleanable.dirty.ratio`). Never NaN, hence `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct DirtyRatio(f64);

impl Eq for DirtyRatio {}

impl DirtyRatio {
    /// `None` unless `0 <= ratio <= 1`.
    pub fn new(ratio: f64) -> Option<DirtyRatio> {
        (0.0..=1.0).contains(&ratio).then_some(DirtyRatio(ratio))
    }
    pub fn get(self) -> f64 {
        self.0
    }
}

/// Smallest `segment.bytes` Kafka accepts (`LegacyRecord.RECORD_OVERHEAD_V0`).
pub const SEGMENT_BYTES_MIN: u64 = 14;
/// Positions inside a segment are stored as u32 in the offset index.
pub const SEGMENT_BYTES_MAX: u64 = u32::MAX as u64;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * DAY_MS,
            index_interval_bytes: 4096,
            retention_ms: 7 * DAY_MS,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            cleanup_delete: true,
            cleanup_compact: false,
            delete_retention_ms: DAY_MS,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: DirtyRatio(0.5),
        }
    }
}

impl LogConfig {
    /// Checks the ranges Kafka enforces, so AlterConfigs can reject a bad
    /// value with INVALID_CONFIG before it reaches a log.
    pub fn validate(&self) -> Result<(), LogError> {
        let fail = |what: String| Err(LogError::InvalidConfig(what));
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return fail(format!(
                "segment.bytes {} is outside [{SEGMENT_BYTES_MIN}, {SEGMENT_BYTES_MAX}]",
                self.segment_bytes
            ));
        }
        if self.segment_ms < 1 {
            return fail(format!("segment.ms {} must be at least 1", self.segment_ms));
        }
        if self.index_interval_bytes > SEGMENT_BYTES_MAX {
            return fail(format!(
                "index.interval.bytes {} is too large",
                self.index_interval_bytes
            ));
        }
        if self.retention_ms < -1 {
            return fail(format!(
                "retention.ms {} must be -1 or more",
                self.retention_ms
            ));
        }
        if self.retention_bytes < -1 {
            return fail(format!(
                "retention.bytes {} must be -1 or more",
                self.retention_bytes
            ));
        }
        if self.max_message_bytes < crate::batch::HEADER_BYTES
            || self.max_message_bytes > i32::MAX as usize
        {
            return fail(format!(
                "max.message.bytes {} is out of range",
                self.max_message_bytes
            ));
        }
        if self.delete_retention_ms < 0 || self.min_compaction_lag_ms < 0 {
            return fail(format!(
                "delete.retention.ms {} and min.compaction.lag.ms {} must be 0 or more",
                self.delete_retention_ms, self.min_compaction_lag_ms
            ));
        }
        if self.max_compaction_lag_ms < 1 {
            return fail(format!(
                "max.compaction.lag.ms {} must be at least 1",
                self.max_compaction_lag_ms
            ));
        }
        Ok(())
    }

    /// The `segment.ms` the active segment rolls at: for a compacted log
    /// also `max.compaction.lag.ms`, as in Kafka, since the cleaner never
    /// touches the active segment.
    pub fn roll_ms(&self) -> i64 {
        if self.cleanup_compact {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafka_defaults_and_valid() {
        let config = LogConfig::default();
        assert_eq!(config.segment_bytes, 1_073_741_824);
        assert_eq!(config.segment_ms, 604_800_000);
        assert_eq!(config.retention_ms, 604_800_000);
        assert_eq!(config.max_message_bytes, 1_048_588);
        config.validate().unwrap();
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let bad = [
            LogConfig {
                segment_bytes: 1,
                ..Default::default()
            },
            LogConfig {
                segment_bytes: 1 << 33,
                ..Default::default()
            },
            LogConfig {
                segment_ms: 0,
                ..Default::default()
            },
            LogConfig {
                retention_ms: -2,
                ..Default::default()
            },
            LogConfig {
                retention_bytes: -5,
                ..Default::default()
            },
            LogConfig {
                max_message_bytes: 10,
                ..Default::default()
            },
        ];
        for config in bad {
            assert!(
                matches!(config.validate(), Err(LogError::InvalidConfig(_))),
                "{config:?}"
            );
        }
    }
}
