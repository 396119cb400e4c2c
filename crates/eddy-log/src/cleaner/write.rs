//! Phase 2, per group: the segments of one group rewritten into one
//! `<base>.log.cleaned` with its two indexes, fsynced, no lock held.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::filter::{filter_batch, FilterContext, Verdict};
use super::plan::SegmentView;
use super::read::BatchReader;
use super::{CleanStats, CLEANED_SUFFIX};
use crate::batch;
use crate::config::SEGMENT_BYTES_MAX;
use crate::error::{IoContext, LogError};
use crate::index::{IndexFile, OffsetEntry, TimeEntry};
use crate::segment::{self, IndexBuilder, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};

/// Output is written in pieces of about this size.
const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// One group's output, ready to swap in.
pub(crate) struct CleanedGroup {
    pub(crate) base_offset: i64,
    /// The segments it replaces, as the plan saw them.
    pub(crate) replaces: Vec<SegmentView>,
    /// Where the next segment begins (the group's logical end).
    pub(crate) end_offset: i64,
    pub(crate) stats: CleanStats,
    /// Earliest delete horizon among the tombstones it keeps.
    pub(crate) tombstones_due_ms: Option<i64>,
}

/// `<base>.<suffix>.cleaned` (or `.swap`).
pub(crate) fn staged_path(dir: &Path, base_offset: i64, suffix: &str, stage: &str) -> PathBuf {
    let mut name = segment::file_path(dir, base_offset, suffix).into_os_string();
    name.push(".");
    name.push(stage);
    PathBuf::from(name)
}

/// Splits the segments to clean into groups whose total size fits
/// `segment.bytes` and whose offsets fit a segment's u32 relative offsets.
pub(crate) fn groups(segments: &[SegmentView], segment_bytes: u64) -> Vec<&[SegmentView]> {
    let limit_bytes = segment_bytes.min(SEGMENT_BYTES_MAX);
    let mut out = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let base = segments[start].base_offset;
        let mut size = segments[start].size_bytes;
        let mut end = start + 1;
        while let Some(next) = segments.get(end) {
            let fits_bytes = size + next.size_bytes <= limit_bytes;
            let fits_offsets = next.next_offset - base - 1 <= u32::MAX as i64;
            if !(fits_bytes && fits_offsets) {
                break;
            }
            size += next.size_bytes;
            end += 1;
        }
        out.push(&segments[start..end]);
        start = end;
    }
    out
}

/// Writes one group's surviving batches to `.cleaned` files.
/// `last_of_producer` holds the base offset of each producer id's last
/// batch in the cleaned range: that batch is kept, empty if need be.
pub(crate) fn write_group(
    dir: &Path,
    group: &[SegmentView],
    index_interval_bytes: u64,
    last_of_producer: &HashMap<i64, i64>,
    ctx: &FilterContext<'_>,
) -> Result<CleanedGroup, LogError> {
    let base_offset = group[0].base_offset;
    let path = staged_path(dir, base_offset, LOG_SUFFIX, CLEANED_SUFFIX);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .context("create", &path)?;
    let mut out = Output::new(file, path, base_offset);
    let mut stats = CleanStats::default();
    let mut tombstones_due_ms: Option<i64> = None;
    for segment in group {
        stats.segments_read += 1;
        stats.bytes_read += segment.size_bytes;
        let mut reader = BatchReader::new(segment);
        while let Some((_, header, bytes)) = reader.next_batch()? {
            stats.records_read += header.records_count.max(0) as u64;
            let keep_header = header.has_producer_id()
                && last_of_producer.get(&header.producer_id) == Some(&header.base_offset);
            // Records that do not parse are kept as they came (see offset_map).
            let (verdict, removed) =
                filter_batch(bytes, &header, keep_header, ctx).unwrap_or((Verdict::Keep, 0));
            stats.records_removed += removed;
            let written = match &verdict {
                Verdict::Keep => Some(bytes),
                Verdict::Rewrite(rebuilt) => Some(&rebuilt[..]),
                Verdict::Drop => None,
            };
            if let Some(written) = written {
                let horizon = horizon_of(written);
                tombstones_due_ms = min_some(tombstones_due_ms, horizon);
                out.push(written, index_interval_bytes)?;
            }
        }
    }
    stats.bytes_written = out.finish(dir)?;
    stats.segments_written = 1;
    Ok(CleanedGroup {
        base_offset,
        replaces: group.to_vec(),
        end_offset: group[group.len() - 1].next_offset,
        stats,
        tombstones_due_ms,
    })
}

/// The delete horizon a written batch carries, if any.
fn horizon_of(bytes: &[u8]) -> Option<i64> {
    let header = batch::BatchHeader::parse(bytes).ok()?;
    (header.attributes & super::filter::DELETE_HORIZON_FLAG != 0).then_some(header.base_timestamp)
}

pub(crate) fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The `.cleaned` log file being written, and its index entries.
struct Output {
    file: File,
    path: PathBuf,
    base_offset: i64,
    pending: Vec<u8>,
    written_bytes: u64,
    indexes: IndexBuilder,
}

impl Output {
    fn new(file: File, path: PathBuf, base_offset: i64) -> Output {
        Output {
            file,
            path,
            base_offset,
            pending: Vec::new(),
            written_bytes: 0,
            indexes: IndexBuilder::new(base_offset),
        }
    }

    fn push(&mut self, batch_bytes: &[u8], index_interval_bytes: u64) -> Result<(), LogError> {
        let position = self.written_bytes + self.pending.len() as u64;
        if position + batch_bytes.len() as u64 > SEGMENT_BYTES_MAX {
            return Err(LogError::Corrupt {
                segment: self.path.clone(),
                position,
                reason: "cleaned segment would outgrow u32 positions".into(),
            });
        }
        let header = batch::validate_stored(batch_bytes)?;
        self.indexes.note(position, &header, index_interval_bytes);
        self.pending.extend_from_slice(batch_bytes);
        if self.pending.len() >= WRITE_CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.file
            .write_all_at(&self.pending, self.written_bytes)
            .context("write", &self.path)?;
        self.written_bytes += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Writes the rest, fsyncs, and writes both indexes (each fsynced).
    fn finish(mut self, dir: &Path) -> Result<u64, LogError> {
        self.flush()?;
        self.file.sync_all().context("fsync", &self.path)?;
        let (offsets, times) = self.indexes.finish();
        let index = staged_path(dir, self.base_offset, INDEX_SUFFIX, CLEANED_SUFFIX);
        IndexFile::<OffsetEntry>::rebuild(&index, offsets)?;
        let time_index = staged_path(dir, self.base_offset, TIME_INDEX_SUFFIX, CLEANED_SUFFIX);
        IndexFile::<TimeEntry>::rebuild(&time_index, times)?;
        Ok(self.written_bytes)
    }
}
