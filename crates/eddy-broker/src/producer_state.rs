//! Idempotent-producer state of one partition: per producer id, its epoch
//! and the metadata of its last five batches, so that a retried batch is
//! answered with its original offsets instead of being written twice.
//!
//! Transactions: per producer, the first offset of its ongoing transaction
//! on this partition; the partition's ongoing transactions ordered by first
//! offset, whose minimum bounds the last stable offset (LSO); and the
//! aborted-transaction index that `read_committed` fetches consult.
//!
//! Rebuilt at start from the batch headers in the log, which carry the
//! producer id, epoch and sequence numbers, plus the bodies of the control
//! batches (a marker's commit/abort type is in its record key). The scan
//! covers the whole log, like the idempotence rebuild before it; Kafka
//! bounds it with producer-state snapshots, Eddy does not snapshot yet.

use std::collections::{BTreeMap, HashMap, VecDeque};

use eddy_log::batch::{BatchHeader, EndTxnMarker};
use eddy_log::txn_index::{AbortedTxn, TxnIndex};
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
    /// Timestamp of the producer's last batch (DescribeProducers).
    pub last_timestamp_ms: i64,
    /// Coordinator epoch of the last marker written for this producer.
    pub coordinator_epoch: i32,
    /// First offset of the producer's ongoing transaction here, if any.
    pub txn_first_offset: Option<i64>,
    /// The epoch was bumped (a Transactions V2 marker, or a new epoch's first batch) and
    /// no data batch of it is here yet: its first batch must start at sequence 0.
    pub epoch_started: bool,
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
    /// Ongoing transactions: first offset -> producer id.
    ongoing: BTreeMap<i64, i64>,
    /// Ended transactions whose marker may not be visible yet: first
    /// offset -> marker offset. Until the high watermark passes the marker
    /// they still hold the LSO, as in Kafka, so a read_committed consumer
    /// never reads a transaction's data before its marker is durable.
    completing: BTreeMap<i64, i64>,
    aborted: TxnIndex,
}

/// What ending a transaction did to this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnEnded {
    /// The transaction's first offset here (`None`: nothing was written).
    pub first_offset: Option<i64>,
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
            // A new epoch's first batch starts its sequences at 0, as in Kafka.
            None if entry.epoch_started && h.base_sequence != 0 => {
                Check::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
            }
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
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert(ProducerEntry {
                coordinator_epoch: -1,
                ..ProducerEntry::default()
            });
        if h.is_transactional() && !h.is_control() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(h.base_offset);
            self.ongoing.insert(h.base_offset, h.producer_id);
        }
        entry.last_timestamp_ms = h.max_timestamp;
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
            entry.epoch_started = true;
        }
        if h.base_sequence >= 0 {
            entry.epoch_started = false;
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

    /// A producer in a transaction is never evicted: its first offset
    /// holds the LSO back until the coordinator ends it.
    fn evict_oldest(&mut self) {
        if let Some((&pid, _)) = self
            .producers
            .iter()
            .filter(|(_, e)| e.txn_first_offset.is_none())
            .min_by_key(|(_, e)| e.last_write_ms)
        {
            self.producers.remove(&pid);
        }
    }

    /// Forgets producers idle for longer than `expiration_ms` (never one
    /// with an ongoing transaction).
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers.retain(|_, e| {
            e.txn_first_offset.is_some() || now_ms - e.last_write_ms <= expiration_ms
        });
    }

    /// Checks a transaction marker before it is appended: one from an
    /// older epoch than the producer's current is a zombie's.
    pub fn check_marker(&self, producer_id: i64, producer_epoch: i16) -> Result<(), i16> {
        match self.producers.get(&producer_id) {
            Some(e) if producer_epoch < e.epoch => Err(codes::INVALID_PRODUCER_EPOCH),
            _ => Ok(()),
        }
    }

    /// Records an appended marker (its header has its offset): the
    /// producer's transaction ends; an abort goes into the aborted index.
    /// `high_watermark` is the partition's, for the index entry's LSO.
    pub fn end_txn(
        &mut self,
        h: &BatchHeader,
        marker: &EndTxnMarker,
        high_watermark: i64,
        now_ms: i64,
    ) -> TxnEnded {
        debug_assert!(h.is_control());
        self.update(h, now_ms);
        let entry = self
            .producers
            .get_mut(&marker.producer_id)
            .expect("update() inserted the producer");
        entry.coordinator_epoch = marker.coordinator_epoch;
        let first_offset = entry.txn_first_offset.take();
        self.completing
            .retain(|_, marker_offset| *marker_offset >= high_watermark);
        if let Some(first) = first_offset {
            self.ongoing.remove(&first);
            self.completing.insert(first, h.base_offset);
            if !marker.commit {
                let lso = self
                    .first_unstable_offset(high_watermark)
                    .unwrap_or(i64::MAX);
                self.aborted.push(AbortedTxn {
                    producer_id: marker.producer_id,
                    first_offset: first,
                    last_offset: h.base_offset,
                    last_stable_offset: lso.min(high_watermark.max(h.next_offset())),
                });
            }
        }
        TxnEnded { first_offset }
    }

    /// First offset of the oldest transaction that is ongoing, or ended
    /// by a marker at or past `high_watermark`: the LSO can not pass it.
    pub fn first_unstable_offset(&self, high_watermark: i64) -> Option<i64> {
        let ongoing = self.ongoing.keys().next().copied();
        let completing = self
            .completing
            .iter()
            .find(|(_, &marker)| marker >= high_watermark)
            .map(|(&first, _)| first);
        match (ongoing, completing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Ongoing transactions: (producer id, first offset), oldest first.
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        self.ongoing.iter().map(|(&o, &p)| (p, o)).collect()
    }

    pub fn aborted(&self) -> &TxnIndex {
        &self.aborted
    }

    /// Retention moved the log start: forget aborted transactions below it.
    pub fn truncate_below(&mut self, log_start_offset: i64) {
        self.aborted.truncate_below(log_start_offset);
    }

    /// Rebuilds the state from the batch headers of a log; `marker` reads
    /// the body of a control batch (its commit/abort type is not in the
    /// header). A control batch that cannot be read is skipped.
    pub fn rebuild(
        headers: &[BatchHeader],
        mut marker: impl FnMut(&BatchHeader) -> Option<EndTxnMarker>,
    ) -> ProducerStates {
        let mut states = ProducerStates::default();
        for h in headers {
            if h.is_control() {
                if let Some(m) = marker(h) {
                    states.end_txn(h, &m, h.next_offset(), h.max_timestamp);
                }
                continue;
            }
            states.update(h, h.max_timestamp);
        }
        states
    }

    /// [`rebuild`](Self::rebuild) over an open log.
    pub fn rebuild_from_log(log: &eddy_log::Log, headers: &[BatchHeader]) -> ProducerStates {
        ProducerStates::rebuild(headers, |h| {
            let read = log.read(h.base_offset, 4096, i64::MAX, true).ok()?;
            let first = eddy_log::batch::split(&read.records).next()?.ok()?;
            eddy_log::batch::decode_end_txn_marker(first).ok().flatten()
        })
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
    fn after_a_marker_bumps_the_epoch_sequences_restart_at_zero() {
        let mut s = ProducerStates::default();
        let first = header(9, 0, 0, 3, 0);
        s.update(&first, 1);
        // A Transactions V2 marker carries the bumped epoch and no sequence.
        let mut marker = header(9, 1, -1, 1, 3);
        marker.attributes = 0x30; // transactional control batch
        s.update(&marker, 2);
        assert_eq!(
            s.check(&header(9, 1, 3, 1, 4)),
            Check::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER),
            "a client that kept counting after the bump is refused, as Kafka refuses it"
        );
        let next = header(9, 1, 0, 2, 4);
        assert_eq!(s.check(&next), Check::Append);
        s.update(&next, 3);
        assert_eq!(s.check(&header(9, 1, 2, 1, 6)), Check::Append);
    }

    #[test]
    fn keeps_five_batches_and_rebuilds() {
        let mut headers = Vec::new();
        for i in 0..8 {
            headers.push(header(1, 0, i * 2, 2, (i * 2) as i64));
        }
        let s = ProducerStates::rebuild(&headers, |_| None);
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

#[cfg(test)]
mod txn_tests {
    use super::*;
    use eddy_log::batch::{ATTR_CONTROL, ATTR_TRANSACTIONAL};

    fn txn_batch(pid: i64, epoch: i16, seq: i32, count: i32, base: i64) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: ATTR_TRANSACTIONAL,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: base,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    fn marker_at(pid: i64, epoch: i16, base: i64) -> BatchHeader {
        BatchHeader {
            attributes: ATTR_TRANSACTIONAL | ATTR_CONTROL,
            base_sequence: -1,
            ..txn_batch(pid, epoch, -1, 1, base)
        }
    }

    fn end(pid: i64, epoch: i16, commit: bool) -> EndTxnMarker {
        EndTxnMarker {
            producer_id: pid,
            producer_epoch: epoch,
            coordinator_epoch: 3,
            commit,
        }
    }

    /// Offsets 0-1 pid 1, 2-3 pid 2, 4 marker(2, abort), 5 marker(1, commit).
    fn two_txns() -> ProducerStates {
        let mut s = ProducerStates::default();
        s.update(&txn_batch(1, 0, 0, 2, 0), 0);
        s.update(&txn_batch(2, 0, 0, 2, 2), 0);
        assert_eq!(s.first_unstable_offset(4), Some(0));
        // The later transaction ends first: the LSO stays on the older one.
        s.end_txn(&marker_at(2, 0, 4), &end(2, 0, false), 4, 0);
        assert_eq!(s.first_unstable_offset(5), Some(0));
        s.end_txn(&marker_at(1, 0, 5), &end(1, 0, true), 5, 0);
        s
    }

    #[test]
    fn lso_moves_exactly_when_the_first_ongoing_txn_ends() {
        let s = two_txns();
        // Markers at 4 and 5: until the high watermark passes a marker its
        // transaction still holds the LSO.
        assert_eq!(s.first_unstable_offset(5), Some(0));
        assert_eq!(s.first_unstable_offset(6), None);
        assert_eq!(s.ongoing_transactions(), vec![]);
        assert_eq!(s.aborted().aborted_transactions(0, 6), vec![(2, 2)]);
        assert_eq!(s.get(1).unwrap().coordinator_epoch, 3);
    }

    #[test]
    fn rebuild_from_headers_and_markers() {
        let headers = vec![
            txn_batch(1, 0, 0, 2, 0),
            txn_batch(2, 0, 0, 2, 2),
            marker_at(2, 0, 4),
            marker_at(1, 0, 5),
            txn_batch(1, 0, 2, 1, 6),
        ];
        let s = ProducerStates::rebuild(&headers, |h| {
            Some(end(h.producer_id, h.producer_epoch, h.producer_id == 1))
        });
        assert_eq!(s.aborted().aborted_transactions(0, 7), vec![(2, 2)]);
        assert_eq!(s.ongoing_transactions(), vec![(1, 6)]);
        assert_eq!(s.first_unstable_offset(7), Some(6));
    }

    #[test]
    fn zombie_markers_and_epoch_bump_per_txn() {
        let mut s = ProducerStates::default();
        s.update(&txn_batch(1, 4, 0, 2, 0), 0);
        assert_eq!(s.check_marker(1, 3), Err(codes::INVALID_PRODUCER_EPOCH));
        // Transactions V2: the marker carries the bumped epoch...
        assert_eq!(s.check_marker(1, 5), Ok(()));
        s.end_txn(&marker_at(1, 5, 2), &end(1, 5, true), 3, 0);
        // ...and the next transaction starts at sequence 0 of that epoch;
        // the old epoch is fenced.
        assert_eq!(s.check(&txn_batch(1, 5, 0, 1, 3)), Check::Append);
        assert_eq!(
            s.check(&txn_batch(1, 4, 2, 1, 3)),
            Check::Reject(codes::INVALID_PRODUCER_EPOCH)
        );
    }

    #[test]
    fn producers_in_a_transaction_never_expire() {
        let mut s = ProducerStates::default();
        s.update(&txn_batch(1, 0, 0, 1, 0), 0);
        s.update(&header_plain(2), 0);
        s.expire(1_000_000, 10);
        assert!(s.get(1).is_some() && s.get(2).is_none());
    }

    fn header_plain(pid: i64) -> BatchHeader {
        BatchHeader {
            attributes: 0,
            ..txn_batch(pid, 0, 0, 1, 1)
        }
    }
}
