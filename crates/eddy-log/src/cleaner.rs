//! Log compaction: Kafka's log cleaner for `cleanup.policy=compact`.
//!
//! A pass keeps the latest record per key below the *first uncleanable
//! offset* (the active segment's base, or the first segment younger than
//! `min.compaction.lag.ms`) and never touches the active segment. Records
//! keep their offsets: a batch that loses records keeps its base offset and
//! last offset delta (so a producer's last sequence survives, as in Kafka),
//! and batches that lose every record disappear, leaving offset gaps that
//! readers skip.
//!
//! # Phases
//!
//! The work is split so the partition lock is held only briefly:
//!
//! 1. [`Log::plan_cleaning`] (under the lock, cheap): is the log due
//!    (`min.cleanable.dirty.ratio`, `max.compaction.lag.ms`, or tombstones
//!    whose delete horizon has passed)? If so, a [`CleanPlan`] holding the
//!    sealed segments' open files.
//! 2. [`CleanPlan::build`] (no lock, the expensive part): the offset map
//!    (key → latest offset) of the dirty section, bounded by
//!    `log.cleaner.dedupe.buffer.size` (a prefix is cleaned if it does not
//!    all fit), then every segment from the log start up to the end of the
//!    map is rewritten, in groups that fit `segment.bytes`, as
//!    `<base>.log.cleaned` (+ `.index.cleaned`, `.timeindex.cleaned`), fsynced.
//! 3. [`Log::install_next_group`] (under the lock, short, one group at a
//!    time; [`Log::install_cleaned`] does all): per group, the
//!    cleaner checkpoint moves first, then `.cleaned` → `.swap`, the old
//!    segments go, `.swap` → final names. A group whose segments changed
//!    meanwhile (retention, truncation) is dropped, not installed.
//!
//! A reader therefore sees either the old segments or the new one, never a
//! file being written. Leftovers of a crash are finished at open by
//! [`finish_interrupted_swaps`]: `.cleaned` files are deleted, a `.swap`
//! segment replaces the segments it covers.
//!
//! # Rules (see docs/decisions/log-compaction.md)
//!
//! - Tombstones (null value) follow KIP-534: the first pass that keeps a
//!   tombstone stamps its batch with a delete horizon (`now +
//!   delete.retention.ms`, in the base timestamp, attribute bit 0x40); a
//!   later pass after the horizon removes it.
//! - Records without a key are removed (Kafka does the same).
//! - Control and transactional batches are kept as they are, and their
//!   records do not enter the map: an aborted record must never hide an
//!   older committed value of its key, and markers must stay for the
//!   producer state and aborted index rebuilt from the log at open. (Kafka
//!   also drops the records of aborted transactions; Eddy keeps them.)
//! - The last batch of each producer id in the cleaned range is kept, if
//!   need be with no records, so idempotent producer state rebuilt from
//!   headers keeps its last sequence.
//!
//! # Example
//!
//! ```
//! use eddy_log::batch::{encode_batch, SimpleRecord};
//! use eddy_log::cleaner::CleanerLimits;
//! use eddy_log::{DirtyRatio, Log, LogConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let config = LogConfig {
//!     cleanup_compact: true,
//!     segment_bytes: 200,
//!     min_cleanable_dirty_ratio: DirtyRatio::new(0.01).unwrap(),
//!     ..LogConfig::default()
//! };
//! let mut log = Log::open(dir.path(), config, 0).unwrap();
//! for value in [b"a", b"b", b"c"] {
//!     let record = SimpleRecord { key: Some(b"k".to_vec()), value: Some(value.to_vec()), ..Default::default() };
//!     log.append(&mut encode_batch(&[record], 1_000, -1, -1, -1), 0, 1_000).unwrap();
//! }
//! let stats = log.clean(1_000, &CleanerLimits::default()).unwrap().unwrap();
//! assert!(stats.records_removed >= 1);
//! ```

mod filter;
mod offset_map;
mod plan;
mod read;
mod swap;
mod write;

pub use plan::CleanPlan;
pub(crate) use swap::finish_interrupted_swaps;
pub use swap::Cleaned;

use std::path::Path;

use crate::checkpoint;
use crate::error::LogError;
use crate::partition::Log;

/// Beside the segments: the first offset not yet cleaned (Kafka's
/// `cleaner-offset-checkpoint`, per partition). Segments starting below it
/// may have offset gaps.
pub const CHECKPOINT: &str = "cleaner-offset-checkpoint";
pub(crate) const CLEANED_SUFFIX: &str = "cleaned";
pub(crate) const SWAP_SUFFIX: &str = "swap";

/// Kafka's `log.cleaner.dedupe.buffer.size` default.
pub const DEDUPE_BUFFER_BYTES_DEFAULT: usize = 128 << 20;
/// Decompressed bytes of one batch the cleaner accepts (bomb guard).
pub const DECOMPRESSED_BYTES_MAX_DEFAULT: usize = 64 << 20;

/// Bounds of one cleaning pass.
#[derive(Debug, Clone)]
pub struct CleanerLimits {
    /// `log.cleaner.dedupe.buffer.size`: memory for the key → offset map.
    pub dedupe_buffer_bytes: usize,
    /// Largest decompressed records section of one batch.
    pub decompressed_bytes_max: usize,
}

impl Default for CleanerLimits {
    fn default() -> Self {
        CleanerLimits {
            dedupe_buffer_bytes: DEDUPE_BUFFER_BYTES_DEFAULT,
            decompressed_bytes_max: DECOMPRESSED_BYTES_MAX_DEFAULT,
        }
    }
}

/// What the cleaner remembers between passes, in memory.
#[derive(Debug, Default)]
pub(crate) struct CleanerState {
    /// Earliest delete horizon of a tombstone kept by the last pass: from
    /// then on a pass can remove it even with no new dirty data.
    pub(crate) tombstones_due_ms: Option<i64>,
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanStats {
    pub segments_read: usize,
    pub segments_written: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_removed: u64,
    /// Distinct keys in the offset map.
    pub map_keys: usize,
    pub first_dirty_before: i64,
    pub first_dirty_after: i64,
}

impl CleanStats {
    fn add(&mut self, other: &CleanStats) {
        self.segments_read += other.segments_read;
        self.segments_written += other.segments_written;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.records_read += other.records_read;
        self.records_removed += other.records_removed;
    }
}

impl CleanPlan {
    /// Phase 2, with no lock held: builds the offset map, then rewrites
    /// every segment from the log start to the end of the map into
    /// `.cleaned` files. The log itself is not changed; pass the result to
    /// [`Log::install_cleaned`]. Any error leaves only `.cleaned` files,
    /// which the next pass or open removes.
    pub fn build(self, limits: &CleanerLimits) -> Result<Cleaned, LogError> {
        let (map, map_end) = offset_map::build(&self, limits)?;
        let to_clean: Vec<_> = self
            .segments
            .iter()
            .take_while(|s| s.base_offset < map_end)
            .cloned()
            .collect();
        let last_of_producer = last_batch_per_producer(&to_clean)?;
        let ctx = filter::FilterContext {
            map: &map,
            now_ms: self.now_ms,
            delete_retention_ms: self.config.delete_retention_ms,
            decompressed_bytes_max: limits.decompressed_bytes_max,
        };
        let mut groups = Vec::new();
        for group in write::groups(&to_clean, self.config.segment_bytes) {
            let written = write::write_group(
                &self.dir,
                group,
                self.config.index_interval_bytes,
                &last_of_producer,
                &ctx,
            );
            match written {
                Ok(g) => groups.push(g),
                Err(e) => {
                    swap::discard(&self.dir, &groups);
                    swap::discard_base(&self.dir, group[0].base_offset);
                    return Err(e);
                }
            }
        }
        Ok(Cleaned::new(self.first_dirty, map_end, map.len(), groups))
    }
}

/// Base offset of each producer id's last batch among `segments`, from a
/// header walk.
fn last_batch_per_producer(
    segments: &[plan::SegmentView],
) -> Result<std::collections::HashMap<i64, i64>, LogError> {
    use crate::scan::{ChunkReader, Step, Walk, LOOKUP_CHUNK_BYTES};
    let mut last = std::collections::HashMap::new();
    for s in segments {
        let reader = ChunkReader::new(&s.file, &s.path, s.size_bytes, LOOKUP_CHUNK_BYTES);
        let mut walk =
            Walk::new(reader, 0, s.base_offset, s.base_offset, false).allow_gaps(s.compacted);
        loop {
            match walk.step()? {
                Step::Batch { header, .. } if header.has_producer_id() => {
                    last.insert(header.producer_id, header.base_offset);
                }
                Step::Batch { .. } => {}
                Step::End => break,
                Step::Bad { position, reason } => {
                    return Err(LogError::Corrupt {
                        segment: s.path.clone(),
                        position,
                        reason,
                    })
                }
            }
        }
    }
    Ok(last)
}

/// The checkpoint, 0 when absent (nothing cleaned yet).
pub(crate) fn read_checkpoint(dir: &Path) -> Result<i64, LogError> {
    Ok(checkpoint::read(dir, CHECKPOINT)?.unwrap_or(0))
}

impl Log {
    /// One whole pass, all three phases with `&mut self` held: for tests
    /// and single-threaded callers. `Ok(None)` when the log is not due.
    pub fn clean(
        &mut self,
        now_ms: i64,
        limits: &CleanerLimits,
    ) -> Result<Option<CleanStats>, LogError> {
        let Some(plan) = self.plan_cleaning(now_ms)? else {
            return Ok(None);
        };
        let cleaned = plan.build(limits)?;
        self.install_cleaned(cleaned).map(Some)
    }

    /// The cleaner checkpoint: offsets from here on have not been cleaned.
    pub fn first_dirty_offset(&self) -> i64 {
        self.first_dirty_offset
    }
}
