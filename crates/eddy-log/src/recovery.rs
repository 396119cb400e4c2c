//! [`Log::open`]: finding the segments and recovering the log.
//!
//! After a clean shutdown every segment is trusted. Otherwise a segment is
//! trusted only if it lies wholly below the `recovery-point` checkpoint
//! (its data and indexes were fsynced; see `flush.rs`); from the first
//! segment that does not, every batch is CRC-checked and must continue
//! the offsets of the one before. The first batch that fails cuts the
//! file there and every later segment is deleted: after a crash, what
//! follows a torn write is not known to be the producer's data.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::checkpoint::{self, CLEAN_SHUTDOWN, LOG_START_OFFSET, RECOVERY_POINT, TMP_SUFFIX};
use crate::config::LogConfig;
use crate::error::{IoContext, LogError};
use crate::flush::CheckpointGate;
use crate::partition::Log;
use crate::segment::{self, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};

impl Log {
    /// Opens (creating if absent) the partition directory and recovers it.
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<Log, LogError> {
        config.validate()?;
        if !dir.exists() {
            fs::create_dir_all(dir).context("create log directory", dir)?;
            // The new directory's own entry must survive a crash too.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                checkpoint::sync_dir(parent)?;
            }
        }
        // A crash may have left a cleaning pass's files; see `cleaner/swap.rs`.
        crate::cleaner::finish_interrupted_swaps(dir)?;
        let bases = list_segments(dir)?;
        let clean = dir.join(CLEAN_SHUTDOWN).exists();
        let recovery_point = checkpoint::read(dir, RECOVERY_POINT)?;
        let start_checkpoint = checkpoint::read(dir, LOG_START_OFFSET)?;
        let first_dirty = crate::cleaner::read_checkpoint(dir)?;
        let (mut segments, flushed_offset) =
            load_segments(dir, &bases, clean, recovery_point, (&config, first_dirty))?;
        if segments.is_empty() {
            segments.push(Segment::create(dir, start_checkpoint.unwrap_or(0))?);
        }
        let first_base = segments[0].base_offset();
        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset: start_checkpoint.unwrap_or(first_base).max(first_base),
            flushed_offset,
            poisoned: false,
            // `open` syncs the directory before returning.
            dir_generation: 0,
            dir_synced_generation: 0,
            recovery_point: recovery_point.unwrap_or(0),
            flush_epoch: 0,
            first_dirty_offset: first_dirty,
            cleaner: Default::default(),
            gate: Arc::new(Mutex::new(CheckpointGate {
                dir: dir.to_path_buf(),
                epoch: 0,
                retired: false,
            })),
        };
        log.flushed_offset = log.flushed_offset.min(log.log_end_offset());
        if log.log_start_offset > log.log_end_offset() {
            // DeleteRecords moved the start past data that was then lost
            // unflushed: keep the start, as Kafka does, with an empty log.
            let start = log.log_start_offset;
            tracing::warn!(dir = %dir.display(), start, end = log.log_end_offset(), "log start past recovered end; starting empty");
            log.truncate_fully_at(start)?;
        }
        log.delete_segments_below_start()?;
        log.start_segment_clock(now_ms);
        // Only now: had we crashed before this, the marker would still say
        // "trust everything", which was still true. One directory fsync
        // covers the marker, index renames and segment deletions above.
        checkpoint::remove_if_present(&dir.join(CLEAN_SHUTDOWN))?;
        checkpoint::sync_dir(dir)?;
        tracing::info!(dir = %dir.display(), clean, log_start = log.log_start_offset, log_end = log.log_end_offset(), segments = log.segments.len(), "opened log");
        Ok(log)
    }

    /// The `segment.ms` clock of a reopened active segment: its first
    /// batch's timestamp if plausible, else now (Kafka uses the first
    /// batch's timestamp too, so restarts do not postpone time rolls).
    fn start_segment_clock(&mut self, now_ms: i64) {
        let active = self.active_mut();
        if !active.is_empty() {
            let first_ms = active
                .first_header()
                .map(|h| h.max_timestamp)
                .filter(|&ts| (0..=now_ms).contains(&ts));
            active.set_rolling_ms(Some(first_ms.unwrap_or(now_ms)));
        }
    }

    /// Sealed segments wholly below the log start (left by a crash between
    /// persisting a new start and deleting them) are deleted.
    fn delete_segments_below_start(&mut self) -> Result<(), LogError> {
        let last = self.segments.len() - 1;
        let count = self.segments[..last]
            .iter()
            .take_while(|s| s.next_offset() <= self.log_start_offset)
            .count();
        self.delete_oldest(count)
    }
}

/// Base offsets of the segment files in `dir`, sorted. Leftover temp files
/// and index files without a log file are removed.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    let mut index_files = Vec::new();
    for entry in fs::read_dir(dir).context("list", dir)? {
        let entry = entry.context("list", dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TMP_SUFFIX) {
            checkpoint::remove_if_present(&entry.path())?;
        } else if let Some(base) = segment::parse_file_name(name, LOG_SUFFIX) {
            bases.push(base);
        } else if let Some(base) = segment::parse_file_name(name, INDEX_SUFFIX)
            .or_else(|| segment::parse_file_name(name, TIME_INDEX_SUFFIX))
        {
            index_files.push((base, entry.path()));
        }
    }
    bases.sort_unstable();
    for (base, path) in index_files {
        if bases.binary_search(&base).is_err() {
            checkpoint::remove_if_present(&path)?;
        }
    }
    Ok(bases)
}

/// Opens every segment, trusting or recovering each as the module docs
/// say. Returns the segments and the offset below which data is durable.
fn load_segments(
    dir: &Path,
    bases: &[i64],
    clean: bool,
    recovery_point: Option<i64>,
    (config, first_dirty): (&LogConfig, i64),
) -> Result<(Vec<Segment>, i64), LogError> {
    let interval = config.index_interval_bytes;
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
    let mut flushed_offset = None;
    for (i, &base) in bases.iter().enumerate() {
        // The cleaner may have removed a compacted segment's last batches.
        if let Some(previous) = segments
            .last_mut()
            .filter(|p| p.compacted && p.next_offset() < base)
        {
            previous.extend_to(base);
        }
        if let Some(previous) = segments.last().filter(|p| p.next_offset() != base) {
            let end = previous.next_offset();
            tracing::warn!(dir = %dir.display(), end, base, "segment does not continue the log; dropping it and later ones");
            delete_from(dir, &bases[i..])?;
            break;
        }
        let next_base = bases.get(i + 1).copied();
        let below_recovery_point = next_base
            .zip(recovery_point)
            .is_some_and(|(next, rp)| next <= rp);
        let trusted = (clean || below_recovery_point) && flushed_offset.is_none();
        let compacted = base < first_dirty;
        if trusted {
            if let Some(segment) = Segment::open_trusted(dir, base, next_base, interval, compacted)?
            {
                segments.push(segment);
                continue;
            }
        }
        flushed_offset.get_or_insert(base);
        let (segment, whole) = Segment::open_recovered(dir, base, interval, compacted)?;
        segments.push(segment);
        if !whole {
            delete_from(dir, &bases[i + 1..])?;
            break;
        }
    }
    let end = segments.last().map_or(0, Segment::next_offset);
    Ok((segments, flushed_offset.unwrap_or(end)))
}

/// Deletes the files of the segments with these base offsets, newest
/// first, so that a crash midway still leaves a contiguous log.
fn delete_from(dir: &Path, bases: &[i64]) -> Result<(), LogError> {
    for &base in bases.iter().rev() {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            checkpoint::remove_if_present(&segment::file_path(dir, base, suffix))?;
        }
    }
    Ok(())
}
