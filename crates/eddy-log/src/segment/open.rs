//! Opening a segment: creating it, trusting it below the recovery point
//! (indexes loaded or rebuilt), or recovering it by scanning every batch.

use super::*;

impl Segment {
    /// Creates an empty segment, replacing any stray files of that name.
    pub(crate) fn create(dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        let path = file_path(dir, base_offset, LOG_SUFFIX);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .context("create segment", &path)?;
        let offsets = IndexFile::create(&file_path(dir, base_offset, INDEX_SUFFIX))?;
        let times = IndexFile::create(&file_path(dir, base_offset, TIME_INDEX_SUFFIX))?;
        Ok(Segment::assemble(base_offset, path, log, offsets, times))
    }

    pub(super) fn assemble(
        base_offset: i64,
        path: PathBuf,
        log: File,
        offsets: IndexFile<OffsetEntry>,
        times: IndexFile<TimeEntry>,
    ) -> Segment {
        Segment {
            base_offset,
            path,
            log: Arc::new(log),
            size_bytes: 0,
            next_offset: base_offset,
            offsets,
            times,
            max_timestamp: None,
            bytes_since_index: 0,
            rolling_ms: None,
            indexes_dirty: true,
            fenced_position: AtomicU64::new(NOT_FENCED),
            compacted: false,
        }
    }

    /// Opens a segment whose data is trusted (below the recovery point, or
    /// after a clean shutdown) without reading its data: loads and checks
    /// its indexes (rebuilding them by a header walk if missing or
    /// implausible), then walks the headers after the last index entry to
    /// learn the end offset and newest timestamps.
    ///
    /// `next_base` is the next segment's base offset, `None` for the last
    /// segment. A sealed segment whose headers turn out inconsistent is
    /// opened fenced at that point (reads there fail; nothing is deleted);
    /// for the last segment `Ok(None)` asks the caller to recover it instead.
    /// `compacted` says the cleaner may have rewritten it ([`Segment::compacted`]).
    pub(crate) fn open_trusted(
        dir: &Path,
        base_offset: i64,
        next_base: Option<i64>,
        index_interval_bytes: u64,
        compacted: bool,
    ) -> Result<Option<Segment>, LogError> {
        let path = file_path(dir, base_offset, LOG_SUFFIX);
        let log = open_log(&path)?;
        let file_bytes = log.metadata().context("stat", &path)?.len();
        let index_path = file_path(dir, base_offset, INDEX_SUFFIX);
        let time_path = file_path(dir, base_offset, TIME_INDEX_SUFFIX);
        // Each entry names a distinct batch, so there cannot be more entries than headers fit.
        let max_entries = file_bytes / HEADER_BYTES as u64 + 1;
        let offset_limit =
            next_base.map_or(u32::MAX as u64 + 1, |n| (n - base_offset).max(0) as u64);
        let loaded_offsets = IndexFile::<OffsetEntry>::read_entries(&index_path, max_entries)?
            .filter(|e| index::offsets_valid(e, file_bytes, offset_limit));
        let loaded_times = IndexFile::<TimeEntry>::read_entries(&time_path, max_entries)?
            .filter(|e| index::times_valid(e, offset_limit))
            // Sealed segments end with a time entry (see `seal`): none
            // with data present means the file lost entries.
            .filter(|e| !e.is_empty() || file_bytes == 0);
        let (Some(offset_entries), Some(time_entries)) = (loaded_offsets, loaded_times) else {
            tracing::warn!(segment = %path.display(), "index missing or invalid; rebuilding");
            return Segment::rebuild_trusted(
                dir,
                base_offset,
                next_base,
                log,
                (file_bytes, index_interval_bytes),
                compacted,
            );
        };
        let offsets = IndexFile::open(&index_path, offset_entries)?;
        let times = IndexFile::open(&time_path, time_entries)?;
        let mut segment = Segment::assemble(base_offset, path, log, offsets, times);
        segment.size_bytes = file_bytes;
        segment.indexes_dirty = false;
        segment.compacted = compacted;
        if let Some(last) = segment.times.last() {
            let offset = base_offset + last.relative_offset as i64;
            segment.max_timestamp = Some((last.timestamp_ms, offset));
        }
        if let Some((position, reason)) = segment.walk_tail(index_interval_bytes)? {
            if next_base.is_none() {
                return Ok(None);
            }
            segment.fence(position, &reason);
        }
        Ok(segment.check_next_base(next_base))
    }

    /// A trusted segment ends where the next begins; if not, say so and
    /// believe the next segment's name (reads of missing offsets fail).
    pub(super) fn check_next_base(mut self, next_base: Option<i64>) -> Option<Segment> {
        if let Some(next_base) = next_base {
            if self.compacted && self.next_offset <= next_base {
                self.extend_to(next_base);
            } else if self.next_offset != next_base {
                let found = self.next_offset;
                tracing::error!(segment = %self.path.display(), found, next_base, "sealed segment does not end where the next begins");
                self.next_offset = next_base;
            }
        }
        Some(self)
    }

    /// Rewrites a trusted segment's indexes from a header walk; never
    /// truncates (the data is trusted, so a bad header fences instead).
    pub(super) fn rebuild_trusted(
        dir: &Path,
        base_offset: i64,
        next_base: Option<i64>,
        log: File,
        (file_bytes, index_interval_bytes): (u64, u64),
        compacted: bool,
    ) -> Result<Option<Segment>, LogError> {
        let path = file_path(dir, base_offset, LOG_SUFFIX);
        let (tracker, bad) = scan(
            &log,
            &path,
            base_offset,
            file_bytes,
            index_interval_bytes,
            false,
            compacted,
        )?;
        if bad.is_some() && next_base.is_none() {
            return Ok(None);
        }
        let mut segment = Segment::from_scan(dir, base_offset, path, log, tracker, true)?;
        segment.compacted = compacted;
        if let Some((position, reason)) = bad {
            segment.size_bytes = file_bytes;
            segment.fence(position, &reason);
        }
        Ok(segment.check_next_base(next_base))
    }

    /// Builds a segment from a finished scan, rewriting both index files.
    /// A trusted segment's indexes are replaced `durable`ly (it will not be
    /// scanned again); a recovered segment's are written plainly and left
    /// dirty, for the next flush job to sync before the recovery point
    /// passes it (until then every open scans it anyway).
    pub(super) fn from_scan(
        dir: &Path,
        base_offset: i64,
        path: PathBuf,
        log: File,
        mut tracker: Tracker,
        durable: bool,
    ) -> Result<Segment, LogError> {
        tracker.seal();
        let index_path = file_path(dir, base_offset, INDEX_SUFFIX);
        let time_path = file_path(dir, base_offset, TIME_INDEX_SUFFIX);
        let (offsets, times) = if durable {
            let offsets = IndexFile::rebuild(&index_path, tracker.offsets)?;
            (offsets, IndexFile::rebuild(&time_path, tracker.times)?)
        } else {
            let mut offsets = IndexFile::create(&index_path)?;
            let mut times = IndexFile::create(&time_path)?;
            tracker.offsets.into_iter().for_each(|e| offsets.push(e));
            tracker.times.into_iter().for_each(|e| times.push(e));
            offsets.write_pending()?;
            times.write_pending()?;
            (offsets, times)
        };
        let mut segment = Segment::assemble(base_offset, path, log, offsets, times);
        segment.size_bytes = tracker.size_bytes;
        segment.next_offset = tracker.next_offset;
        segment.max_timestamp = tracker.max_timestamp;
        segment.bytes_since_index = tracker.bytes_since_index;
        segment.indexes_dirty = !durable;
        Ok(segment)
    }

    /// Walks headers from the last offset index entry to the end of the
    /// file, taking over the end offset and newest timestamps; returns the
    /// first inconsistency, if any.
    pub(super) fn walk_tail(
        &mut self,
        index_interval_bytes: u64,
    ) -> Result<Option<(u64, String)>, LogError> {
        let start = self.offsets.last().copied().unwrap_or(OffsetEntry {
            relative_offset: 0,
            position: 0,
        });
        let expected = self.base_offset + start.relative_offset as i64;
        let reader = ChunkReader::new(&self.log, &self.path, self.size_bytes, LOOKUP_CHUNK_BYTES);
        let mut walk = Walk::new(
            reader,
            start.position as u64,
            expected,
            self.base_offset,
            false,
        )
        .allow_gaps(self.compacted);
        let mut tracker = Tracker::from_entry(self, start);
        let bad = loop {
            match walk.step()? {
                Step::Batch { position, header } => {
                    tracker.note(position, &header, index_interval_bytes)
                }
                Step::End => break None,
                Step::Bad { position, reason } => {
                    tracing::warn!(segment = %self.path.display(), position, %reason, "trusted segment tail is inconsistent");
                    break Some((position, reason));
                }
            }
        };
        // Entries the walk would add are already in the index or were not
        // due yet; only the offsets and timestamps are taken over.
        self.next_offset = tracker.next_offset;
        self.max_timestamp = tracker.max_timestamp;
        self.bytes_since_index = tracker.bytes_since_index;
        Ok(bad)
    }

    /// Opens a segment by walking and CRC-checking every batch, truncating
    /// the file at the first batch that is torn, garbage, corrupt or out of
    /// sequence, and rewriting both indexes from the walk. Returns the
    /// segment and whether it ended cleanly (nothing was cut).
    pub(crate) fn open_recovered(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        compacted: bool,
    ) -> Result<(Segment, bool), LogError> {
        let path = file_path(dir, base_offset, LOG_SUFFIX);
        let log = open_log(&path)?;
        let file_bytes = log.metadata().context("stat", &path)?.len();
        let (tracker, bad) = scan(
            &log,
            &path,
            base_offset,
            file_bytes,
            index_interval_bytes,
            true,
            compacted,
        )?;
        if let Some((position, reason)) = &bad {
            tracing::warn!(segment = %path.display(), position, %reason, file_bytes, "truncating segment at first invalid batch");
            log.set_len(tracker.size_bytes).context("truncate", &path)?;
            log.sync_all().context("fsync", &path)?;
        }
        let mut segment = Segment::from_scan(dir, base_offset, path, log, tracker, false)?;
        segment.compacted = compacted;
        Ok((segment, bad.is_none()))
    }
}
