//! Phase 3, under the partition lock: installing cleaned segments, and
//! finishing a swap a crash interrupted.
//!
//! Per group: (1) the cleaner checkpoint moves past the group, so that
//! from now on its base offset is known to possibly have offset gaps;
//! (2) `.cleaned` → `.swap` (indexes first, the log last: a `.log.swap`
//! means all three are in place); (3) the old segments' files go; (4)
//! `.swap` → final names (indexes first, the log last). Every step is a
//! rename or unlink of fsynced files followed by a directory fsync where
//! order matters, so after a crash [`finish_interrupted_swaps`] can tell
//! where it stopped.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::write::{min_some, staged_path, CleanedGroup};
use super::{CleanStats, CHECKPOINT, CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::checkpoint::{self, remove_if_present};
use crate::error::{IoContext, LogError};
use crate::partition::Log;
use crate::scan::{ChunkReader, Step, Walk, SCAN_CHUNK_BYTES};
use crate::segment::{self, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};

const SUFFIXES: [&str; 3] = [INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX];

/// The output of [`super::CleanPlan::build`]: cleaned groups waiting in
/// `.cleaned` files, installed one by one.
pub struct Cleaned {
    pub(crate) first_dirty_after: i64,
    /// Next group to install last (popped).
    pub(crate) groups: Vec<CleanedGroup>,
    pub(crate) stats: CleanStats,
    /// Earliest delete horizon among the installed groups' tombstones.
    pub(crate) tombstones_due_ms: Option<i64>,
    pub(crate) aborted: bool,
}

impl Cleaned {
    pub(crate) fn new(
        first_dirty_before: i64,
        first_dirty_after: i64,
        map_keys: usize,
        mut groups: Vec<CleanedGroup>,
    ) -> Cleaned {
        groups.reverse();
        Cleaned {
            first_dirty_after,
            groups,
            stats: CleanStats {
                first_dirty_before,
                first_dirty_after: first_dirty_before,
                map_keys,
                ..CleanStats::default()
            },
            tombstones_due_ms: None,
            aborted: false,
        }
    }

    /// The offset the pass's map reached: the new checkpoint once every
    /// group is installed.
    pub fn first_dirty_after(&self) -> i64 {
        self.first_dirty_after
    }
}

impl Log {
    /// Phase 3: swaps every cleaned group in, oldest first; see
    /// [`Log::install_next_group`]. The broker installs group by group
    /// instead, releasing the lock in between.
    pub fn install_cleaned(&mut self, mut cleaned: Cleaned) -> Result<CleanStats, LogError> {
        while self.install_next_group(&mut cleaned)? {}
        Ok(self.finish_install(cleaned))
    }

    /// Swaps the next group in (a short critical section: renames,
    /// unlinks, a checkpoint write and directory fsyncs). Returns whether
    /// groups remain. A group whose segments are no longer those it was
    /// built from (retention or truncation ran meanwhile) is discarded
    /// with every later one. A failure midway poisons the log: what is on
    /// disk is then unknown until open finishes the swap.
    pub fn install_next_group(&mut self, cleaned: &mut Cleaned) -> Result<bool, LogError> {
        let Some(group) = cleaned.groups.pop() else {
            return Ok(false);
        };
        let Some(index) = self.matching_segments(&group) else {
            tracing::info!(dir = %self.dir.display(), base = group.base_offset, "log changed during cleaning; dropping the rest of the pass");
            discard(&self.dir, &[group]);
            discard(&self.dir, &std::mem::take(&mut cleaned.groups));
            cleaned.aborted = true;
            return Ok(false);
        };
        let checkpoint = self
            .first_dirty_offset
            .max(group.end_offset.min(cleaned.first_dirty_after));
        let swapped = self.swap_group(index, &group, checkpoint);
        if swapped.is_err() {
            discard(&self.dir, &std::mem::take(&mut cleaned.groups));
            cleaned.aborted = true;
        }
        self.poison_on_error(swapped)?;
        cleaned.stats.add(&group.stats);
        cleaned.tombstones_due_ms = min_some(cleaned.tombstones_due_ms, group.tombstones_due_ms);
        cleaned.stats.first_dirty_after = self.first_dirty_offset;
        Ok(!cleaned.groups.is_empty())
    }

    /// Ends a pass: remembers when kept tombstones come due; the stats.
    pub fn finish_install(&mut self, cleaned: Cleaned) -> CleanStats {
        let due = if cleaned.aborted {
            // Groups not installed keep the horizons of the previous pass.
            min_some(self.cleaner.tombstones_due_ms, cleaned.tombstones_due_ms)
        } else {
            cleaned.tombstones_due_ms
        };
        self.cleaner.tombstones_due_ms = due;
        tracing::info!(dir = %self.dir.display(), stats = ?cleaned.stats, "cleaned log");
        cleaned.stats
    }

    /// Index of the group's first segment if the log still holds exactly
    /// the segments the group was built from, none of them active.
    fn matching_segments(&self, group: &CleanedGroup) -> Option<usize> {
        let index = self
            .segments
            .iter()
            .position(|s| s.base_offset() == group.base_offset)?;
        let count = group.replaces.len();
        if index + count >= self.segments.len() {
            return None;
        }
        let same = self.segments[index..index + count]
            .iter()
            .zip(&group.replaces)
            .all(|(s, v)| Arc::ptr_eq(s.log_file(), &v.file) && s.size_bytes() == v.size_bytes);
        same.then_some(index)
    }

    fn swap_group(
        &mut self,
        index: usize,
        group: &CleanedGroup,
        checkpoint: i64,
    ) -> Result<(), LogError> {
        let dir = self.dir.clone();
        let base = group.base_offset;
        checkpoint::write(&dir, CHECKPOINT, checkpoint)?;
        self.first_dirty_offset = checkpoint;
        for suffix in SUFFIXES {
            let (from, to) = (
                staged_path(&dir, base, suffix, CLEANED_SUFFIX),
                staged_path(&dir, base, suffix, SWAP_SUFFIX),
            );
            fs::rename(&from, &to).context("rename", &from)?;
        }
        checkpoint::sync_dir(&dir)?;
        // The old segments stay in memory until the new one is open: if a
        // step fails, reads go on through their open files (unlinked files
        // stay readable) and the log, poisoned, is finished at open.
        let count = group.replaces.len();
        for old in &self.segments[index..index + count] {
            old.delete_files()?;
        }
        for suffix in SUFFIXES {
            let (from, to) = (
                staged_path(&dir, base, suffix, SWAP_SUFFIX),
                segment::file_path(&dir, base, suffix),
            );
            fs::rename(&from, &to).context("rename", &from)?;
        }
        checkpoint::sync_dir(&dir)?;
        let next_base = self.segments[index + count].base_offset();
        assert_eq!(
            next_base, group.end_offset,
            "groups end where the next segment begins"
        );
        let interval = self.config.index_interval_bytes;
        let segment = Segment::open_trusted(&dir, base, Some(next_base), interval, true)?
            .expect("a segment with a successor is always opened");
        drop(self.segments.splice(index..index + count, [segment]));
        Ok(())
    }
}

/// Removes the `.cleaned` files of groups that will not be installed.
pub(crate) fn discard(dir: &Path, groups: &[CleanedGroup]) {
    for g in groups {
        discard_base(dir, g.base_offset);
    }
}

pub(crate) fn discard_base(dir: &Path, base_offset: i64) {
    for suffix in SUFFIXES {
        let _ = remove_if_present(&staged_path(dir, base_offset, suffix, CLEANED_SUFFIX));
    }
}

/// At open, before the segments are listed: deletes `.cleaned` files (a
/// pass that had not started its swap) and completes every swap that had
/// (a `.log.swap` exists): the old segments it covers are deleted and the
/// `.swap` files take their final names. The checkpoint was moved before
/// the first rename, so the swapped segment opens as compacted.
pub(crate) fn finish_interrupted_swaps(dir: &Path) -> Result<(), LogError> {
    let mut swaps = Vec::new();
    let mut logs = Vec::new();
    let mut changed = false;
    for entry in fs::read_dir(dir).context("list", dir)? {
        let entry = entry.context("list", dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(&format!(".{CLEANED_SUFFIX}")) {
            remove_if_present(&entry.path())?;
            changed = true;
        } else if let Some(stem) = name.strip_suffix(&format!(".{SWAP_SUFFIX}")) {
            if let Some(base) = segment::parse_file_name(stem, LOG_SUFFIX) {
                swaps.push(base);
            }
        } else if let Some(base) = segment::parse_file_name(name, LOG_SUFFIX) {
            logs.push(base);
        }
    }
    for &base in &swaps {
        finish_swap(dir, base, &logs)?;
        changed = true;
    }
    changed |= remove_orphan_swaps(dir)?;
    if changed {
        checkpoint::sync_dir(dir)?;
    }
    Ok(())
}

/// Replaces the old segments a `.log.swap` at `base` covers: those whose
/// base lies in `[base, end of its last batch)` (Kafka's rule). Old
/// segments past that held only records the cleaner removed; keeping
/// them keeps older values of keys that have newer ones, nothing worse.
fn finish_swap(dir: &Path, base: i64, logs: &[i64]) -> Result<(), LogError> {
    let swap = staged_path(dir, base, LOG_SUFFIX, SWAP_SUFFIX);
    let end = swap_end(&swap, base)?.max(base + 1);
    tracing::warn!(swap = %swap.display(), end, "finishing an interrupted log cleaner swap");
    for &old in logs.iter().filter(|&&b| b >= base && b < end) {
        remove_if_present(&segment::file_path(dir, old, LOG_SUFFIX))?;
        if old != base {
            remove_if_present(&segment::file_path(dir, old, INDEX_SUFFIX))?;
            remove_if_present(&segment::file_path(dir, old, TIME_INDEX_SUFFIX))?;
        }
    }
    for suffix in SUFFIXES {
        let from = staged_path(dir, base, suffix, SWAP_SUFFIX);
        let to = segment::file_path(dir, base, suffix);
        if from.exists() {
            fs::rename(&from, &to).context("rename", &from)?;
        } else if suffix != LOG_SUFFIX {
            // Already renamed, or lost: a stale index would be wrong for the
            // new log, and a missing one is rebuilt at open.
            let _ = to;
        }
    }
    Ok(())
}

/// Offset after the last whole batch of a swap file.
fn swap_end(path: &Path, base: i64) -> Result<i64, LogError> {
    let file = fs::File::open(path).context("open", path)?;
    let size = file.metadata().context("stat", path)?.len();
    let reader = ChunkReader::new(&file, path, size, SCAN_CHUNK_BYTES);
    let mut walk = Walk::new(reader, 0, base, base, true).allow_gaps(true);
    let mut end = base;
    while let Step::Batch { header, .. } = walk.step()? {
        end = header.next_offset();
    }
    Ok(end)
}

/// `.index.swap` / `.timeindex.swap` left without their `.log.swap`.
fn remove_orphan_swaps(dir: &Path) -> Result<bool, LogError> {
    let mut removed = false;
    for entry in fs::read_dir(dir).context("list", dir)? {
        let entry = entry.context("list", dir)?;
        if entry
            .file_name()
            .to_string_lossy()
            .ends_with(&format!(".{SWAP_SUFFIX}"))
        {
            removed |= remove_if_present(&entry.path())?;
        }
    }
    Ok(removed)
}
