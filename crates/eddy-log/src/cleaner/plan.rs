//! Phase 1, under the partition lock: is the log due, and what to clean.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::LogConfig;
use crate::error::LogError;
use crate::partition::Log;
use crate::segment::Segment;

/// A sealed segment as the plan saw it. The open file is shared, so the
/// data can be read without the lock: sealed segments are never written
/// again, and one deleted meanwhile is still readable through it.
#[derive(Clone)]
pub(crate) struct SegmentView {
    pub(crate) base_offset: i64,
    /// Where the next segment begins.
    pub(crate) next_offset: i64,
    pub(crate) size_bytes: u64,
    pub(crate) file: Arc<File>,
    pub(crate) path: PathBuf,
    pub(crate) compacted: bool,
}

impl SegmentView {
    fn of(segment: &Segment) -> SegmentView {
        SegmentView {
            base_offset: segment.base_offset(),
            next_offset: segment.next_offset(),
            size_bytes: segment.size_bytes(),
            file: segment.log_file().clone(),
            path: segment.path().to_path_buf(),
            compacted: segment.compacted,
        }
    }
}

/// What one pass will clean; made by [`Log::plan_cleaning`], run by
/// [`CleanPlan::build`] without the lock.
pub struct CleanPlan {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    pub(crate) now_ms: i64,
    /// Start of the dirty section (the checkpoint, at least the log start).
    pub(crate) first_dirty: i64,
    /// First uncleanable offset: a segment boundary.
    pub(crate) dirty_end: i64,
    /// Sealed segments from the first up to `dirty_end`.
    pub(crate) segments: Vec<SegmentView>,
}

impl CleanPlan {
    /// Bytes of the dirty section, for metrics.
    pub fn dirty_bytes(&self) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.next_offset > self.first_dirty)
            .map(|s| s.size_bytes)
            .sum()
    }
}

impl Log {
    /// Decides whether this log is due for cleaning and snapshots what the
    /// pass needs. Rolls the active segment first if `segment.ms` (capped
    /// by `max.compaction.lag.ms`) has passed, since the cleaner never
    /// touches it. Cheap: no data is read but one batch header.
    pub fn plan_cleaning(&mut self, now_ms: i64) -> Result<Option<CleanPlan>, LogError> {
        if !self.config.cleanup_compact {
            return Ok(None);
        }
        self.check_writable()?;
        if self.roll_due(now_ms) {
            let rolled = self.roll();
            self.poison_on_error(rolled)?;
        }
        let active_base = self.active().base_offset();
        let start = self.log_start_offset.max(self.segments[0].base_offset());
        if start >= active_base {
            return Ok(None); // Only the active segment holds data.
        }
        let first_dirty = self.first_dirty_offset.clamp(start, active_base);
        let dirty_end = self.first_uncleanable(first_dirty, now_ms);
        let sealed = &self.segments[..self.segments.len() - 1];
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        for s in sealed.iter().filter(|s| s.base_offset() < dirty_end) {
            if s.next_offset() <= first_dirty {
                clean_bytes += s.size_bytes();
            } else {
                dirty_bytes += s.size_bytes();
            }
        }
        let total_bytes = (clean_bytes + dirty_bytes).max(1);
        let ratio = dirty_bytes as f64 / total_bytes as f64;
        let ratio_due = dirty_bytes > 0 && ratio >= self.config.min_cleanable_dirty_ratio.get();
        let lag_due = dirty_bytes > 0 && self.dirty_too_old(first_dirty, dirty_end, now_ms);
        let tombstones_due = clean_bytes > 0
            && self
                .cleaner
                .tombstones_due_ms
                .is_some_and(|due| now_ms >= due);
        if !(ratio_due || lag_due || tombstones_due) {
            return Ok(None);
        }
        let segments = sealed
            .iter()
            .take_while(|s| s.base_offset() < dirty_end)
            .map(SegmentView::of)
            .collect();
        Ok(Some(CleanPlan {
            dir: self.dir.clone(),
            config: self.config.clone(),
            now_ms,
            first_dirty,
            dirty_end,
            segments,
        }))
    }

    /// The first offset the cleaner may not touch: the active segment's
    /// base, or that of the first dirty segment holding a record younger
    /// than `min.compaction.lag.ms` (Kafka's rule, by the segment's newest
    /// timestamp). Never below `first_dirty`.
    fn first_uncleanable(&self, first_dirty: i64, now_ms: i64) -> i64 {
        let active_base = self.active().base_offset();
        let lag_ms = self.config.min_compaction_lag_ms;
        if lag_ms <= 0 {
            return active_base;
        }
        let sealed = &self.segments[..self.segments.len() - 1];
        let young = sealed.iter().find(|s| {
            s.next_offset() > first_dirty
                && s.max_timestamp()
                    .is_some_and(|(ts, _)| now_ms.saturating_sub(ts) < lag_ms)
        });
        young.map_or(active_base, |s| s.base_offset().max(first_dirty))
    }

    /// `max.compaction.lag.ms`: has the first dirty segment's first batch
    /// waited longer than that? (Kafka also judges by the first batch.)
    fn dirty_too_old(&self, first_dirty: i64, dirty_end: i64, now_ms: i64) -> bool {
        let lag_ms = self.config.max_compaction_lag_ms;
        if lag_ms == i64::MAX {
            return false;
        }
        let first = self
            .segments
            .iter()
            .find(|s| s.next_offset() > first_dirty && s.base_offset() < dirty_end);
        first
            .and_then(Segment::first_header)
            .is_some_and(|h| now_ms.saturating_sub(h.max_timestamp) > lag_ms)
    }
}
