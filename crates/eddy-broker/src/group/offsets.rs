//! Committed offsets of a group.
//!
//! The model follows `__consumer_offsets`: a key (group, topic, partition)
//! and a value (offset, leader epoch, metadata, commit timestamp), so a
//! log-backed store can write each commit as one record and rebuild this
//! map by replaying them (see [`super::records`]).

use std::collections::BTreeMap;

/// Kafka's `offset.metadata.max.bytes` default.
pub const METADATA_BYTES_MAX: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// Offsets by (topic, partition).
#[derive(Debug, Default)]
pub struct Offsets {
    by_partition: BTreeMap<(String, i32), CommittedOffset>,
}

impl Offsets {
    pub fn commit(&mut self, topic: &str, partition: i32, committed: CommittedOffset) {
        self.by_partition
            .insert((topic.to_string(), partition), committed);
    }

    pub fn remove(&mut self, topic: &str, partition: i32) -> Option<CommittedOffset> {
        self.by_partition.remove(&(topic.to_string(), partition))
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.by_partition.get(&(topic.to_string(), partition))
    }

    /// Every committed offset, ordered by topic then partition.
    pub fn all(&self) -> impl Iterator<Item = (&str, i32, &CommittedOffset)> {
        self.by_partition
            .iter()
            .map(|((t, p), c)| (t.as_str(), *p, c))
    }

    pub fn is_empty(&self) -> bool {
        self.by_partition.is_empty()
    }
}
