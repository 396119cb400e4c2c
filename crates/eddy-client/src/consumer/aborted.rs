//! Which batches a read_committed consumer drops, sans-io: Kafka's Fetcher rule.
//!
//! A read_committed Fetch answers records up to the last stable offset together with the
//! aborted transactions overlapping them, each as (producer id, first offset). Walking the
//! batches in offset order, a producer is inside an aborted transaction from that first
//! offset until its ABORT marker (a control batch); its transactional batches in between are
//! dropped. One answer may hold several aborted transactions of the same producer, one after
//! another, so the list is taken in offset order and each marker closes one range.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

/// The aborted transactions of one partition's fetch answer, consumed as batches go by.
#[derive(Debug, Default)]
pub(crate) struct AbortedFilter {
    /// Aborted transactions not reached yet: (first offset, producer id), lowest first.
    upcoming: BinaryHeap<Reverse<(i64, i64)>>,
    /// Producers inside an aborted transaction at the current batch.
    aborting: HashSet<i64>,
}

impl AbortedFilter {
    /// From the answer's list of (producer id, first offset).
    pub fn new(aborted: impl IntoIterator<Item = (i64, i64)>) -> AbortedFilter {
        AbortedFilter {
            upcoming: aborted
                .into_iter()
                .map(|(producer_id, first_offset)| Reverse((first_offset, producer_id)))
                .collect(),
            aborting: HashSet::new(),
        }
    }

    /// Whether the batch ending at `last_offset` is dropped; called for every batch in
    /// offset order (markers before the fetch position included). `abort_marker`: the batch
    /// is a control batch holding an ABORT marker.
    pub fn drops(
        &mut self,
        producer_id: i64,
        last_offset: i64,
        transactional: bool,
        abort_marker: bool,
    ) -> bool {
        if producer_id < 0 {
            return false; // neither idempotent nor transactional
        }
        while let Some(&Reverse((first_offset, aborted_id))) = self.upcoming.peek() {
            if first_offset > last_offset {
                break;
            }
            self.upcoming.pop();
            self.aborting.insert(aborted_id);
        }
        if abort_marker {
            // The marker itself yields nothing; it ends this producer's aborted range.
            self.aborting.remove(&producer_id);
            return false;
        }
        transactional && self.aborting.contains(&producer_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_runs_from_its_first_offset_to_the_marker() {
        let mut f = AbortedFilter::new([(5, 10)]);
        assert!(!f.drops(5, 9, true, false), "before the first offset");
        assert!(f.drops(5, 12, true, false));
        assert!(!f.drops(6, 13, true, false), "another producer");
        assert!(
            !f.drops(5, 14, false, false),
            "not transactional (idempotent only)"
        );
        assert!(!f.drops(-1, 15, false, false));
        assert!(!f.drops(5, 16, true, true), "the marker");
        assert!(!f.drops(5, 17, true, false), "after the marker");
    }

    #[test]
    fn a_batch_straddling_the_first_offset_is_dropped() {
        // The aborted transaction starts inside the batch's range: the batch is its.
        let mut f = AbortedFilter::new([(5, 10)]);
        assert!(f.drops(5, 11, true, false));
    }

    #[test]
    fn ranges_of_one_producer_follow_each_other() {
        let mut f = AbortedFilter::new([(5, 20), (5, 0), (9, 3)]);
        assert!(f.drops(5, 1, true, false));
        assert!(f.drops(9, 4, true, false));
        assert!(!f.drops(5, 6, true, true)); // 5's first marker
        assert!(f.drops(9, 7, true, false), "9 still aborting");
        assert!(
            !f.drops(5, 8, true, false),
            "5 between its aborted transactions"
        );
        assert!(!f.drops(9, 9, true, true));
        assert!(
            f.drops(5, 21, true, false),
            "5's second aborted transaction"
        );
        assert!(!f.drops(5, 22, true, true));
        assert!(!f.drops(5, 23, true, false));
    }

    #[test]
    fn an_empty_list_drops_nothing() {
        let mut f = AbortedFilter::new([]);
        assert!(!f.drops(1, 0, true, false));
        assert!(!f.drops(1, 1, true, true));
    }
}
