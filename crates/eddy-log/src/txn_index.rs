//! The aborted-transaction index: per aborted transaction, the producer id
//! and the offsets it spans, so that a `read_committed` fetch can tell the
//! consumer which producers' batches to drop in the range it returns.
//!
//! Kafka keeps this in `.txnindex` files beside each segment. Eddy keeps it
//! in memory and rebuilds it at open from the batch headers and markers in
//! the log, the same scan that rebuilds producer state (decision 12): no
//! second file can disagree with the log after a crash, and a torn tail cut
//! by recovery takes its markers, and so its entries, with it. The entry
//! layout is Kafka's, and [`AbortedTxn::encode`] writes it byte for byte,
//! for the day it is persisted.
//!
//! Entries are appended in marker order, so `last_offset` only grows.

/// One aborted transaction on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// Offset of the transaction's first batch on this partition.
    pub first_offset: i64,
    /// Offset of the abort marker.
    pub last_offset: i64,
    /// The partition's last stable offset once the marker was written.
    pub last_stable_offset: i64,
}

/// Bytes of one entry in Kafka's `.txnindex` layout: version i16 (0),
/// producer id i64, first offset i64, last offset i64, last stable offset i64.
pub const ABORTED_TXN_BYTES: usize = 34;

impl AbortedTxn {
    pub fn encode(&self) -> [u8; ABORTED_TXN_BYTES] {
        let mut out = [0u8; ABORTED_TXN_BYTES];
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// `None` for a short entry or an unknown version (a torn tail).
    pub fn decode(bytes: &[u8]) -> Option<AbortedTxn> {
        if bytes.len() < ABORTED_TXN_BYTES || bytes[0..2] != [0, 0] {
            return None;
        }
        let at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[i..i + 8]);
            i64::from_be_bytes(a)
        };
        Some(AbortedTxn {
            producer_id: at(2),
            first_offset: at(10),
            last_offset: at(18),
            last_stable_offset: at(26),
        })
    }
}

/// The aborted transactions of one partition, in marker order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxnIndex {
    entries: Vec<AbortedTxn>,
}

impl TxnIndex {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Adds the entry of an abort marker.
    ///
    /// # Panics
    /// If markers arrive out of offset order (a bug in the caller).
    pub fn push(&mut self, entry: AbortedTxn) {
        assert!(entry.first_offset <= entry.last_offset);
        if let Some(last) = self.entries.last() {
            assert!(
                last.last_offset < entry.last_offset,
                "abort markers out of order"
            );
        }
        self.entries.push(entry);
    }

    /// Aborted transactions whose range overlaps `[from_offset,
    /// upper_bound_offset)`, as Kafka's fetch answers them: (producer id,
    /// first offset), oldest first.
    pub fn aborted_transactions(
        &self,
        from_offset: i64,
        upper_bound_offset: i64,
    ) -> Vec<(i64, i64)> {
        let start = self
            .entries
            .partition_point(|e| e.last_offset < from_offset);
        self.entries[start..]
            .iter()
            .filter(|e| e.first_offset < upper_bound_offset)
            .map(|e| (e.producer_id, e.first_offset))
            .collect()
    }

    /// Forgets transactions wholly below the log start (retention deleted
    /// their segments, markers included).
    pub fn truncate_below(&mut self, log_start_offset: i64) {
        let gone = self
            .entries
            .partition_point(|e| e.last_offset < log_start_offset);
        self.entries.drain(..gone);
    }

    /// Forgets markers at or past `offset` (the log was cut there).
    pub fn truncate_from(&mut self, offset: i64) {
        let keep = self.entries.partition_point(|e| e.last_offset < offset);
        self.entries.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn overlap_queries() {
        let mut index = TxnIndex::default();
        index.push(entry(1, 0, 10));
        index.push(entry(2, 5, 20));
        index.push(entry(3, 30, 40));
        assert_eq!(index.aborted_transactions(0, 5), vec![(1, 0)]);
        assert_eq!(index.aborted_transactions(11, 30), vec![(2, 5)]);
        assert_eq!(
            index.aborted_transactions(0, 100),
            vec![(1, 0), (2, 5), (3, 30)]
        );
        assert_eq!(index.aborted_transactions(41, 100), vec![]);
        index.truncate_below(11);
        assert_eq!(index.len(), 2);
        index.truncate_from(40);
        assert_eq!(index.entries(), &[entry(2, 5, 20)]);
    }

    #[test]
    fn kafka_entry_layout_round_trips() {
        let e = entry(7, 100, 200);
        let bytes = e.encode();
        assert_eq!(AbortedTxn::decode(&bytes), Some(e));
        assert_eq!(AbortedTxn::decode(&bytes[..33]), None);
        let mut other_version = bytes;
        other_version[1] = 1;
        assert_eq!(AbortedTxn::decode(&other_version), None);
    }
}
