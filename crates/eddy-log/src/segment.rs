//! One segment: a `.log` file of back-to-back batches named after its base
//! offset, with its `.index` and `.timeindex`.
//!
//! The in-memory state (`size_bytes`, `next_offset`, max timestamp, index
//! entries) is the source of truth while the log is open; the files are
//! brought in line with it by appends and by recovery at open.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::batch::{BatchHeader, HEADER_BYTES};
use crate::checkpoint::remove_if_present;
use crate::error::{IoContext, LogError};
use crate::index::{self, IndexFile, OffsetEntry, TimeEntry};
use crate::partition::ReadLimits;
use crate::scan::{ChunkReader, Step, Walk, LOOKUP_CHUNK_BYTES, SCAN_CHUNK_BYTES};

pub(crate) const LOG_SUFFIX: &str = "log";
pub(crate) const INDEX_SUFFIX: &str = "index";
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";
mod open;

const NOT_FENCED: u64 = u64::MAX;

/// `00000000000000000042.log` style names, as Kafka.
pub(crate) fn file_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{suffix}"))
}

/// The base offset encoded in a segment file name, if it is one.
pub(crate) fn parse_file_name(name: &str, suffix: &str) -> Option<i64> {
    let stem = name.strip_suffix(suffix)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub(crate) struct Segment {
    base_offset: i64,
    path: PathBuf,
    log: Arc<File>,
    /// Bytes of whole, accepted batches; the file is never longer while open.
    size_bytes: u64,
    /// Offset after the last batch; `base_offset` while empty.
    next_offset: i64,
    offsets: IndexFile<OffsetEntry>,
    times: IndexFile<TimeEntry>,
    /// (largest batch max timestamp, base offset of the first batch carrying it).
    max_timestamp: Option<(i64, i64)>,
    bytes_since_index: u64,
    /// When this segment received its first batch: the `segment.ms` clock.
    rolling_ms: Option<i64>,
    /// Index files written since they were last fsynced.
    pub(crate) indexes_dirty: bool,
    /// Position of the first batch found corrupt by a read; reads at or
    /// past it fail. `read(&self)` sets it, hence the atomic.
    fenced_position: AtomicU64,
    /// Rewritten by the log cleaner (it lies below the cleaner checkpoint):
    /// batches may skip offsets and hold fewer records than their range,
    /// and `next_offset` is where the next segment begins, which may lie
    /// past the last batch. Elsewhere the offsets are checked to be
    /// contiguous, which is what guards the base offset (outside the CRC).
    pub(crate) compacted: bool,
}

impl Segment {
    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
    pub(crate) fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.max_timestamp
    }
    pub(crate) fn rolling_ms(&self) -> Option<i64> {
        self.rolling_ms
    }
    pub(crate) fn set_rolling_ms(&mut self, rolling_ms: Option<i64>) {
        self.rolling_ms = rolling_ms;
    }
    pub(crate) fn log_file(&self) -> &Arc<File> {
        &self.log
    }
    pub(crate) fn index_files(&self) -> [&Arc<File>; 2] {
        [self.offsets.file(), self.times.file()]
    }
    /// A compacted segment covers offsets up to where the next begins,
    /// even past its last batch (the cleaner removed the batches there).
    pub(crate) fn extend_to(&mut self, next_base: i64) {
        assert!(self.compacted && next_base >= self.next_offset);
        self.next_offset = next_base;
    }

    pub(crate) fn is_fenced(&self) -> bool {
        self.fenced_position.load(Ordering::Relaxed) != NOT_FENCED
    }

    /// Refuses reads at or past `position` from now on.
    pub(crate) fn fence(&self, position: u64, reason: &str) -> LogError {
        self.fenced_position.fetch_min(position, Ordering::Relaxed);
        tracing::error!(segment = %self.path.display(), position, %reason, "corrupt batch; fencing segment");
        self.corrupt(position, reason.to_string())
    }

    pub(crate) fn corrupt(&self, position: u64, reason: String) -> LogError {
        LogError::Corrupt {
            segment: self.path.clone(),
            position,
            reason,
        }
    }

    /// End of the readable region: the size, or the fence if lower.
    pub(crate) fn readable_bytes(&self) -> u64 {
        self.size_bytes
            .min(self.fenced_position.load(Ordering::Relaxed))
    }

    /// Reads the first batch's header (for the `segment.ms` clock at open).
    pub(crate) fn first_header(&self) -> Option<BatchHeader> {
        let mut bytes = [0u8; HEADER_BYTES];
        if self.size_bytes < HEADER_BYTES as u64 || self.log.read_exact_at(&mut bytes, 0).is_err() {
            return None;
        }
        BatchHeader::parse(&bytes).ok()
    }

    /// Writes already validated batches (offsets assigned, starting at
    /// `next_offset`) with one positional write, then updates the indexes.
    pub(crate) fn append(
        &mut self,
        records: &[u8],
        headers: &[BatchHeader],
        index_interval_bytes: u64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        assert!(!headers.is_empty());
        assert_eq!(
            headers[0].base_offset, self.next_offset,
            "offsets must be contiguous"
        );
        assert!(self.size_bytes + records.len() as u64 <= u32::MAX as u64 + 1);
        self.log
            .write_all_at(records, self.size_bytes)
            .context("append to", &self.path)?;
        #[cfg(debug_assertions)]
        self.debug_check_written(records);
        let mut tracker = Tracker::at_end(self);
        let mut position = self.size_bytes;
        for header in headers {
            tracker.note(position, header, index_interval_bytes);
            position += header.total_bytes() as u64;
        }
        assert_eq!(position, self.size_bytes + records.len() as u64);
        self.take_tracker(tracker)?;
        self.rolling_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Reads back what was just written: the pair of the checks made before
    /// writing. Debug builds only, as it doubles the I/O.
    #[cfg(debug_assertions)]
    fn debug_check_written(&self, records: &[u8]) {
        let mut back = vec![0u8; records.len()];
        if self.log.read_exact_at(&mut back, self.size_bytes).is_ok() {
            assert!(
                back == records,
                "segment {} did not read back what was written",
                self.path.display()
            );
            for batch in crate::batch::split(&back) {
                assert!(batch.is_ok_and(|b| crate::batch::validate(b).is_ok()));
            }
        }
    }

    /// Adopts a tracker's state, writing the index entries it added.
    fn take_tracker(&mut self, tracker: Tracker) -> Result<(), LogError> {
        let (new_offsets, new_times) = (tracker.offsets, tracker.times);
        self.size_bytes = tracker.size_bytes;
        self.next_offset = tracker.next_offset;
        self.max_timestamp = tracker.max_timestamp;
        self.bytes_since_index = tracker.bytes_since_index;
        if !new_offsets.is_empty() || !new_times.is_empty() {
            new_offsets.into_iter().for_each(|e| self.offsets.push(e));
            new_times.into_iter().for_each(|e| self.times.push(e));
            self.indexes_dirty = true;
            self.offsets.write_pending()?;
            self.times.write_pending()?;
        }
        Ok(())
    }

    /// Called when the segment stops being the active one: records the
    /// final max timestamp in the time index so that, once trusted, its
    /// last entry gives the segment's max timestamp without a scan.
    pub(crate) fn seal(&mut self) -> Result<(), LogError> {
        if let Some((ts, offset)) = self.max_timestamp {
            if self.times.last().is_none_or(|last| last.timestamp_ms < ts) {
                let relative_offset = (offset - self.base_offset) as u32;
                self.times.push(TimeEntry {
                    timestamp_ms: ts,
                    relative_offset,
                });
                self.indexes_dirty = true;
                self.times.write_pending()?;
            }
        }
        Ok(())
    }

    /// Position and header of the batch containing `offset`, which must be
    /// in `[base_offset, next_offset)`.
    pub(crate) fn locate(&self, offset: i64) -> Result<(u64, BatchHeader), LogError> {
        match self.seek(offset)? {
            Some(found) => Ok(found),
            None => {
                Err(self.corrupt_at_fence("offset not found before the end of the readable data"))
            }
        }
    }

    /// Position and header of the first batch that ends past `offset`
    /// (`base_offset <= offset < next_offset`). In a compacted segment that
    /// batch may start after `offset`, or there may be none (`Ok(None)`):
    /// the cleaner removed the records there, and the read goes on with the
    /// next surviving batch.
    pub(crate) fn seek(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        assert!(offset >= self.base_offset && offset < self.next_offset);
        let relative = (offset - self.base_offset) as u32;
        let start = index::floor_offset(self.offsets.entries(), relative).unwrap_or(OffsetEntry {
            relative_offset: 0,
            position: 0,
        });
        let mut walk = self.walk_from(
            start.position as u64,
            self.base_offset + start.relative_offset as i64,
        );
        loop {
            match walk.step()? {
                Step::Batch { position, header } if header.next_offset() > offset => {
                    return Ok(Some((position, header)))
                }
                Step::Batch { .. } => {}
                Step::End if self.compacted && self.readable_bytes() == self.size_bytes => {
                    return Ok(None)
                }
                Step::End => {
                    return Err(self
                        .corrupt_at_fence("offset not found before the end of the readable data"))
                }
                Step::Bad { position, reason } => return Err(self.fence(position, &reason)),
            }
        }
    }

    /// A header walk over the readable region from a known batch start.
    pub(crate) fn walk_from(&self, position: u64, expected_offset: i64) -> Walk<'_> {
        let reader = ChunkReader::new(
            &self.log,
            &self.path,
            self.readable_bytes(),
            LOOKUP_CHUNK_BYTES,
        );
        Walk::new(reader, position, expected_offset, self.base_offset, false)
            .allow_gaps(self.compacted)
    }

    /// Walks headers from a known batch start to the end of the segment,
    /// calling `visit` until it returns false. Reaching a fence is an error.
    pub(crate) fn walk_headers(
        &self,
        position: u64,
        expected_offset: i64,
        mut visit: impl FnMut(BatchHeader) -> bool,
    ) -> Result<(), LogError> {
        let mut walk = self.walk_from(position, expected_offset);
        loop {
            match walk.step()? {
                Step::Batch { header, .. } => {
                    if !visit(header) {
                        return Ok(());
                    }
                }
                Step::End if self.readable_bytes() < self.size_bytes => {
                    return Err(
                        self.corrupt_at_fence("segment fenced after an earlier corrupt read")
                    );
                }
                Step::End => return Ok(()),
                Step::Bad { position, reason } => return Err(self.fence(position, &reason)),
            }
        }
    }

    /// Appends whole, CRC-checked batches starting at `position` (the start
    /// of the batch with base offset `expected_offset`) to `out`, within
    /// `limits`. Returns true if it stopped at the end of this segment with
    /// budget left, so the caller may go on with the next segment.
    ///
    /// A batch failing its checks fences the segment at that batch: if
    /// `out` already holds good batches they are returned, else the
    /// corruption is the error.
    pub(crate) fn read_into(
        &self,
        position: u64,
        expected_offset: i64,
        limits: &ReadLimits,
        out: &mut Vec<u8>,
    ) -> Result<bool, LogError> {
        let end = self.read_end(limits.max_offset);
        if position >= end {
            return self.stop_at(position, out);
        }
        let budget = limits.max_bytes.saturating_sub(out.len());
        let want = (end - position).min(budget as u64) as usize;
        let start = out.len();
        out.resize(start + want, 0);
        self.log
            .read_exact_at(&mut out[start..], position)
            .context("read", &self.path)?;
        let mut cursor = 0;
        let mut expected = expected_offset;
        while want - cursor >= HEADER_BYTES {
            let bytes = &out[start + cursor..start + want];
            let segment_left = self.readable_bytes() - (position + cursor as u64);
            match check_stored(
                bytes,
                segment_left,
                expected,
                limits.max_offset,
                self.compacted,
            ) {
                Stored::Batch(header) => {
                    cursor += header.total_bytes();
                    expected = header.next_offset();
                }
                Stored::PastMaxOffset => {
                    out.truncate(start + cursor);
                    return Ok(false);
                }
                Stored::Incomplete => break,
                Stored::Bad(reason) => {
                    out.truncate(start + cursor);
                    return self.bad_read(position + cursor as u64, &reason, out);
                }
            }
        }
        out.truncate(start + cursor);
        if cursor == 0 && start == 0 && limits.min_one_batch {
            return self
                .read_one_oversized(position, expected, limits.max_offset, out)
                .map(|()| false);
        }
        Ok(position + cursor as u64 == self.size_bytes && self.readable_bytes() == self.size_bytes)
    }

    /// The end of what a read may touch: the readable size, or the start of
    /// the first indexed batch at or past `max_offset` (no need to read further).
    fn read_end(&self, max_offset: i64) -> u64 {
        let end = self.readable_bytes();
        if max_offset >= self.next_offset {
            return end;
        }
        let relative = (max_offset - self.base_offset).clamp(0, u32::MAX as i64) as u32;
        let entries = self.offsets.entries();
        let after = entries.partition_point(|e| e.relative_offset < relative);
        entries
            .get(after)
            .map_or(end, |e| end.min(e.position as u64))
    }

    /// A read that could not take a batch at `position` without having
    /// hit a bad batch: fenced (error if nothing was read) or just done.
    fn stop_at(&self, position: u64, out: &[u8]) -> Result<bool, LogError> {
        if position >= self.readable_bytes()
            && self.readable_bytes() < self.size_bytes
            && out.is_empty()
        {
            return Err(self.corrupt_at_fence("segment fenced after an earlier corrupt read"));
        }
        Ok(position >= self.size_bytes)
    }

    fn bad_read(&self, position: u64, reason: &str, out: &[u8]) -> Result<bool, LogError> {
        let error = self.fence(position, reason);
        if out.is_empty() {
            return Err(error);
        }
        Ok(false)
    }

    /// KIP-74: the first batch of a fetch is returned whole even when it
    /// is larger than the fetch's byte limit.
    fn read_one_oversized(
        &self,
        position: u64,
        expected: i64,
        max_offset: i64,
        out: &mut Vec<u8>,
    ) -> Result<(), LogError> {
        let end = self.readable_bytes();
        let mut header_bytes = [0u8; HEADER_BYTES];
        if end - position < HEADER_BYTES as u64 {
            return self
                .bad_read(position, "incomplete batch header", out)
                .map(drop);
        }
        self.log
            .read_exact_at(&mut header_bytes, position)
            .context("read", &self.path)?;
        let total = match BatchHeader::parse(&header_bytes) {
            Ok(h) if h.base_offset >= max_offset => return Ok(()),
            Ok(h)
                if (h.base_offset == expected || (self.compacted && h.base_offset > expected))
                    && position + h.total_bytes() as u64 <= end =>
            {
                h.total_bytes()
            }
            Ok(_) => {
                return self
                    .bad_read(position, "batch header out of sequence or too long", out)
                    .map(drop)
            }
            Err(e) => return self.bad_read(position, &e.to_string(), out).map(drop),
        };
        out.resize(total, 0);
        self.log
            .read_exact_at(out, position)
            .context("read", &self.path)?;
        if let Err(e) = crate::batch::validate_stored(out) {
            out.clear();
            return self.bad_read(position, &e.to_string(), out).map(drop);
        }
        Ok(())
    }

    fn corrupt_at_fence(&self, reason: &str) -> LogError {
        self.corrupt(self.readable_bytes(), reason.to_string())
    }

    /// Where to start walking for the first batch with max timestamp
    /// `>= target_ms`: just after the last time entry below the target.
    pub(crate) fn time_lookup_start(&self, target_ms: i64) -> (u64, i64) {
        let Some(below) = index::floor_time_below(self.times.entries(), target_ms) else {
            return (0, self.base_offset);
        };
        let start = index::floor_offset(self.offsets.entries(), below.relative_offset).unwrap_or(
            OffsetEntry {
                relative_offset: 0,
                position: 0,
            },
        );
        (
            start.position as u64,
            self.base_offset + start.relative_offset as i64,
        )
    }

    /// Drops every batch from the one containing `offset` on. Index entries
    /// past the cut are dropped; the last kept offset entry is walked from
    /// to restore the end offset and timestamps.
    pub(crate) fn truncate_to(
        &mut self,
        offset: i64,
        index_interval_bytes: u64,
    ) -> Result<(), LogError> {
        if offset >= self.next_offset {
            return Ok(());
        }
        let (cut, cut_relative) = if offset <= self.base_offset {
            (0, 0)
        } else {
            let (position, header) = self.locate(offset)?;
            (position, (header.base_offset - self.base_offset) as u32)
        };
        self.log.set_len(cut).context("truncate", &self.path)?;
        let keep_offsets = self
            .offsets
            .entries()
            .partition_point(|e| (e.position as u64) < cut);
        let keep_times = self
            .times
            .entries()
            .partition_point(|e| e.relative_offset < cut_relative);
        self.offsets.truncate(keep_offsets)?;
        self.times.truncate(keep_times)?;
        self.indexes_dirty = true;
        if self.fenced_position.load(Ordering::Relaxed) >= cut {
            self.fenced_position.store(NOT_FENCED, Ordering::Relaxed);
        }
        self.size_bytes = cut;
        self.max_timestamp = self
            .times
            .last()
            .map(|e| (e.timestamp_ms, self.base_offset + e.relative_offset as i64));
        if let Some((position, reason)) = self.walk_tail(index_interval_bytes)? {
            return Err(self.fence(position, &reason));
        }
        if self.is_empty() {
            self.rolling_ms = None;
        }
        Ok(())
    }

    /// Removes the segment's files; the log file first, so a crash midway
    /// leaves orphan index files (ignored at open), not a log without them.
    pub(crate) fn delete_files(&self) -> Result<(), LogError> {
        remove_if_present(&self.path)?;
        remove_if_present(self.offsets.path())?;
        remove_if_present(self.times.path())?;
        Ok(())
    }
}

/// What a stored batch at the front of a read buffer turned out to be.
enum Stored {
    Batch(BatchHeader),
    PastMaxOffset,
    /// Runs past the buffer: budget exhausted (not an error).
    Incomplete,
    Bad(String),
}

/// Checks the batch at the front of `bytes` (of `segment_left` readable
/// bytes from there): in sequence, whole, CRC valid.
fn check_stored(
    bytes: &[u8],
    segment_left: u64,
    expected: i64,
    max_offset: i64,
    gaps: bool,
) -> Stored {
    let header = match BatchHeader::parse(bytes) {
        Ok(h) => h,
        Err(e) => return Stored::Bad(e.to_string()),
    };
    let in_sequence = header.base_offset == expected || (gaps && header.base_offset > expected);
    if !in_sequence {
        return Stored::Bad(format!(
            "batch base offset {} but expected {expected}",
            header.base_offset
        ));
    }
    if header.base_offset >= max_offset {
        return Stored::PastMaxOffset;
    }
    if header.total_bytes() as u64 > segment_left {
        return Stored::Bad(format!(
            "batch of {} bytes runs past the segment end",
            header.total_bytes()
        ));
    }
    if header.total_bytes() > bytes.len() {
        return Stored::Incomplete;
    }
    let checked = if gaps {
        crate::batch::validate_stored(&bytes[..header.total_bytes()])
    } else {
        crate::batch::validate(&bytes[..header.total_bytes()])
    };
    match checked {
        Ok(header) => Stored::Batch(header),
        Err(e) => Stored::Bad(e.to_string()),
    }
}

/// Walks a whole segment file, feeding a fresh tracker; stops at the
/// first bad batch and returns where and why.
#[allow(clippy::type_complexity)]
fn scan(
    log: &File,
    path: &Path,
    base_offset: i64,
    file_bytes: u64,
    index_interval_bytes: u64,
    verify_crc: bool,
    gaps: bool,
) -> Result<(Tracker, Option<(u64, String)>), LogError> {
    let mut tracker = Tracker::new(base_offset);
    tracker.gaps = gaps;
    let reader = ChunkReader::new(log, path, file_bytes, SCAN_CHUNK_BYTES);
    let mut walk = Walk::new(reader, 0, base_offset, base_offset, verify_crc).allow_gaps(gaps);
    loop {
        match walk.step()? {
            Step::Batch { position, header } => {
                tracker.note(position, &header, index_interval_bytes)
            }
            Step::End => return Ok((tracker, None)),
            Step::Bad { position, reason } => return Ok((tracker, Some((position, reason)))),
        }
    }
}

fn open_log(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .context("open segment", path)
}

/// Index entries for a segment file written outside the log (the
/// cleaner's `.cleaned` output), by the same rules as appends and scans.
pub(crate) struct IndexBuilder(Tracker);

impl IndexBuilder {
    pub(crate) fn new(base_offset: i64) -> IndexBuilder {
        let mut tracker = Tracker::new(base_offset);
        tracker.gaps = true;
        IndexBuilder(tracker)
    }

    /// The next batch, written at `position` right after the previous one.
    pub(crate) fn note(&mut self, position: u64, header: &BatchHeader, index_interval_bytes: u64) {
        self.0.note(position, header, index_interval_bytes);
    }

    /// The offset and time index entries of the finished (sealed) segment.
    pub(crate) fn finish(mut self) -> (Vec<OffsetEntry>, Vec<TimeEntry>) {
        self.0.seal();
        (self.0.offsets, self.0.times)
    }
}

/// Per-batch bookkeeping shared by append, the recovery scan and the tail
/// walk, so all three produce the same index entries (Kafka's rules: an
/// offset entry once more than `index.interval.bytes` were written since
/// the last one, a time entry at the same point if the max grew).
pub(crate) struct Tracker {
    base_offset: i64,
    /// Offsets may skip (a compacted segment); see [`Segment::compacted`].
    pub(crate) gaps: bool,
    size_bytes: u64,
    next_offset: i64,
    max_timestamp: Option<(i64, i64)>,
    bytes_since_index: u64,
    last_time_ms: Option<i64>,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
}

impl Tracker {
    fn new(base_offset: i64) -> Tracker {
        Tracker {
            base_offset,
            gaps: false,
            size_bytes: 0,
            next_offset: base_offset,
            max_timestamp: None,
            bytes_since_index: 0,
            last_time_ms: None,
            offsets: vec![],
            times: vec![],
        }
    }

    /// Continues appending at the segment's end.
    fn at_end(segment: &Segment) -> Tracker {
        Tracker {
            size_bytes: segment.size_bytes,
            next_offset: segment.next_offset,
            bytes_since_index: segment.bytes_since_index,
            gaps: false,
            ..Tracker::from_entry(
                segment,
                OffsetEntry {
                    relative_offset: 0,
                    position: 0,
                },
            )
        }
    }

    /// Walks on from the batch an offset index entry points at, keeping
    /// the max timestamp and time entries the segment already has.
    fn from_entry(segment: &Segment, start: OffsetEntry) -> Tracker {
        Tracker {
            size_bytes: start.position as u64,
            next_offset: segment.base_offset + start.relative_offset as i64,
            max_timestamp: segment.max_timestamp,
            last_time_ms: segment.times.last().map(|e| e.timestamp_ms),
            gaps: segment.compacted,
            ..Tracker::new(segment.base_offset)
        }
    }

    fn note(&mut self, position: u64, header: &BatchHeader, index_interval_bytes: u64) {
        assert_eq!(position, self.size_bytes, "batches are back to back");
        if self.gaps {
            assert!(header.base_offset >= self.next_offset, "offsets increase");
        } else {
            assert_eq!(
                header.base_offset, self.next_offset,
                "offsets are contiguous"
            );
        }
        if self
            .max_timestamp
            .is_none_or(|(ts, _)| header.max_timestamp > ts)
        {
            self.max_timestamp = Some((header.max_timestamp, header.base_offset));
        }
        if self.bytes_since_index > index_interval_bytes {
            let relative_offset = (header.base_offset - self.base_offset) as u32;
            self.offsets.push(OffsetEntry {
                relative_offset,
                position: position as u32,
            });
            self.push_time_if_grown();
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += header.total_bytes() as u64;
        self.size_bytes += header.total_bytes() as u64;
        self.next_offset = header.next_offset();
    }

    fn push_time_if_grown(&mut self) {
        if let Some((ts, offset)) = self.max_timestamp {
            if self.last_time_ms.is_none_or(|last| last < ts) {
                let relative_offset = (offset - self.base_offset) as u32;
                self.times.push(TimeEntry {
                    timestamp_ms: ts,
                    relative_offset,
                });
                self.last_time_ms = Some(ts);
            }
        }
    }

    /// The final time entry, as [`Segment::seal`] adds it.
    fn seal(&mut self) {
        self.push_time_if_grown();
    }
}
