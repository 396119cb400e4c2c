//! Idempotent-producer state of one partition: per producer id, its epoch
//! and the metadata of its last five batches, so that a retried batch is
//! answered with its original offsets instead of being written twice.
//!
//! Rebuilt at start from the batch headers in the log, which carry the
//! producer id, epoch and sequence numbers.

use std::collections::{HashMap, VecDeque};

use eddy_log::batch::BatchHeader;
use eddy_protocol::codes;

/// Kafka keeps the last five batches per producer (the client's
/// `max.in.flight.requests.per.connection` cap with idempotence).
pub const BATCHES_PER_PRODUCER_MAX: usize = 5;
/// Bound on producers tracked per partition; the least recently written
/// is forgotten first (Kafka expires them by `producer.id.expiration.ms`).
pub const PRODUCERS_PER_PARTITION_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub timestamp_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    pub last_write_ms: i64,
}

/// Outcome of checking one incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Append,
    /// A retry of a batch already in the log: answer with its offsets.
    Duplicate(BatchMeta),
    Reject(i16),
}

#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerStates {
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&i64, &ProducerEntry)> {
        self.producers.iter()
    }

    /// Kafka's sequence rules for a batch from an idempotent producer.
    pub fn check(&self, h: &BatchHeader) -> Check {
        if !h.has_producer_id() {
            return Check::Append;
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // Unknown producer: only the first sequence may start it.
            return if h.base_sequence == 0 {
                Check::Append
            } else {
                Check::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        };
        if h.producer_epoch < entry.epoch {
            return Check::Reject(codes::INVALID_PRODUCER_EPOCH);
        }
        if h.producer_epoch > entry.epoch {
            return if h.base_sequence == 0 {
                Check::Append
            } else {
                Check::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        }
        let last_seq = h.last_sequence();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
        {
            return Check::Duplicate(*dup);
        }
        match entry.batches.back() {
            Some(last) if next_seq(last.last_seq) == h.base_sequence => Check::Append,
            // No batch remembered (all were removed by retention): accept.
            None => Check::Append,
            Some(_) => Check::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER),
        }
    }

    /// Records a batch that was appended (its header has offsets assigned).
    pub fn update(&mut self, h: &BatchHeader, now_ms: i64) {
        if !h.has_producer_id() {
            return;
        }
        if !self.producers.contains_key(&h.producer_id)
            && self.producers.len() >= PRODUCERS_PER_PARTITION_MAX
        {
            self.evict_oldest();
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        if h.base_sequence >= 0 {
            entry.batches.push_back(BatchMeta {
                first_seq: h.base_sequence,
                last_seq: h.last_sequence(),
                base_offset: h.base_offset,
                last_offset: h.last_offset(),
                timestamp_ms: h.max_timestamp,
            });
            while entry.batches.len() > BATCHES_PER_PRODUCER_MAX {
                entry.batches.pop_front();
            }
        }
        entry.last_write_ms = now_ms;
    }

    fn evict_oldest(&mut self) {
        if let Some((&pid, _)) = self.producers.iter().min_by_key(|(_, e)| e.last_write_ms) {
            self.producers.remove(&pid);
        }
    }

    /// Forgets producers idle for longer than `expiration_ms`.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers
            .retain(|_, e| now_ms - e.last_write_ms <= expiration_ms);
    }

    /// Rebuilds the state from the batch headers of a log.
    pub fn rebuild(headers: &[BatchHeader]) -> ProducerStates {
        let mut states = ProducerStates::default();
        for h in headers {
            if h.is_control() {
                continue;
            }
            states.update(h, h.max_timestamp);
        }
        states
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, base: i64) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn sequence_rules() {
        let mut s = ProducerStates::default();
        assert_eq!(
            s.check(&header(7, 0, 3, 1, 0)),
            Check::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        let first = header(7, 0, 0, 5, 0);
        assert_eq!(s.check(&first), Check::Append);
        s.update(&first, 1);
        // A retry of the same batch is a duplicate carrying the original offsets.
        match s.check(&header(7, 0, 0, 5, 99)) {
            Check::Duplicate(m) => assert_eq!((m.base_offset, m.last_offset), (0, 4)),
            other => panic!("expected duplicate, got {other:?}"),
        }
        assert_eq!(
            s.check(&header(7, 0, 6, 1, 5)),
            Check::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(s.check(&header(7, 0, 5, 1, 5)), Check::Append);
        // Older epochs are fenced; a newer epoch must restart at 0.
        assert_eq!(
            s.check(&header(7, -1, 5, 1, 5)),
            Check::Reject(codes::INVALID_PRODUCER_EPOCH)
        );
        assert_eq!(
            s.check(&header(7, 1, 5, 1, 5)),
            Check::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(s.check(&header(7, 1, 0, 1, 5)), Check::Append);
    }

    #[test]
    fn keeps_five_batches_and_rebuilds() {
        let mut headers = Vec::new();
        for i in 0..8 {
            headers.push(header(1, 0, i * 2, 2, (i * 2) as i64));
        }
        let s = ProducerStates::rebuild(&headers);
        let e = s.get(1).unwrap();
        assert_eq!(e.batches.len(), BATCHES_PER_PRODUCER_MAX);
        assert_eq!(
            s.check(&header(1, 0, 14, 2, 0)),
            Check::Duplicate(e.batches[4])
        );
        assert_eq!(
            s.check(&header(1, 0, 0, 2, 0)),
            Check::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(s.check(&header(1, 0, 16, 2, 0)), Check::Append);
    }
}
