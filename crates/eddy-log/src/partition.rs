//! [`Log`]: one partition's segments, and the append and read paths.
//! Opening and recovery live in `recovery.rs`, deletion of old data in
//! `retention.rs`, both as further `impl Log` blocks.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::batch::{self, BatchHeader};
use crate::checkpoint;
use crate::config::LogConfig;
use crate::error::{IoContext, LogError};
use crate::flush::{lock_gate, FlushDone, FlushJob, SharedGate};
use crate::segment::Segment;

/// One partition's log. Not internally synchronized: the broker holds it
/// in a `Mutex` and keeps fsyncs out of that lock with [`FlushJob`]s.
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    /// Sorted by base offset, contiguous, never empty; the last is active.
    pub(crate) segments: Vec<Segment>,
    pub(crate) log_start_offset: i64,
    /// Everything below is durable.
    pub(crate) flushed_offset: i64,
    pub(crate) poisoned: bool,
    /// Bumped when a segment file is created; the directory needs an fsync
    /// until a flush job has synced this generation.
    pub(crate) dir_generation: u64,
    pub(crate) dir_synced_generation: u64,
    /// The recovery point last written (or read at open).
    pub(crate) recovery_point: i64,
    /// Bumped by truncation; flush jobs from an older epoch are ignored.
    pub(crate) flush_epoch: u64,
    /// The cleaner checkpoint: segments starting below it may have been
    /// compacted; records from it on have not been cleaned yet.
    pub(crate) first_dirty_offset: i64,
    /// What the cleaner keeps between passes (in memory only).
    pub(crate) cleaner: crate::cleaner::CleanerState,
    pub(crate) gate: SharedGate,
}

/// What [`Log::append`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    /// Base offset of the first batch carrying `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// Headers as stored: offsets and leader epoch assigned.
    pub batches: Vec<BatchHeader>,
}

/// What [`Log::read`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole, CRC-checked batches back to back.
    pub records: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// Limits of one read, shared by the segments it spans.
pub(crate) struct ReadLimits {
    pub(crate) max_bytes: usize,
    pub(crate) max_offset: i64,
    pub(crate) min_one_batch: bool,
}

impl Log {
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// For AlterConfigs. Check the value with [`LogConfig::validate`]
    /// first; an invalid config is refused here (logged, not applied).
    pub fn set_config(&mut self, config: LogConfig) {
        match config.validate() {
            Ok(()) => self.config = config,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "ignoring invalid log config")
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The next offset to be assigned.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    pub fn flushed_offset(&self) -> i64 {
        self.flushed_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::size_bytes).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    pub(crate) fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a log always has an active segment")
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has an active segment")
    }

    pub(crate) fn check_writable(&self) -> Result<(), LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned);
        }
        Ok(())
    }

    /// Runs a step that changes files; if it fails, what is on disk no
    /// longer matches memory, so the log is poisoned.
    pub(crate) fn poison_on_error<T>(
        &mut self,
        result: Result<T, LogError>,
    ) -> Result<T, LogError> {
        if result.is_err() {
            tracing::error!(dir = %self.dir.display(), "write failed; log poisoned");
            self.poisoned = true;
        }
        result
    }

    /// Appends back-to-back v2 batches. All are validated before anything
    /// is written; offsets and `leader_epoch` are assigned in place; one
    /// write syscall stores them all.
    pub fn append(
        &mut self,
        records: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.check_writable()?;
        let mut batches = self.check_batches(records)?;
        let offset_span: i64 = batches
            .iter()
            .map(|(_, h)| h.last_offset_delta as i64 + 1)
            .sum();
        if offset_span > u32::MAX as i64 {
            let count = offset_span.min(i32::MAX as i64) as i32;
            return Err(LogError::InvalidBatch(batch::BatchError::CountMismatch {
                count,
                delta: -1,
            }));
        }
        let rolled = self.maybe_roll(records.len() as u64, offset_span, now_ms);
        self.poison_on_error(rolled)?;
        let base_offset = self.log_end_offset();
        let mut next_offset = base_offset;
        let mut info = AppendInfo {
            base_offset,
            last_offset: base_offset + offset_span - 1,
            max_timestamp: i64::MIN,
            offset_of_max_timestamp: base_offset,
            batches: Vec::with_capacity(batches.len()),
        };
        for (position, header) in &mut batches {
            batch::assign_offset(&mut records[*position..], next_offset, leader_epoch);
            header.base_offset = next_offset;
            header.partition_leader_epoch = leader_epoch;
            if header.max_timestamp > info.max_timestamp {
                info.max_timestamp = header.max_timestamp;
                info.offset_of_max_timestamp = next_offset;
            }
            next_offset = header.next_offset();
            info.batches.push(*header);
        }
        assert_eq!(next_offset, info.last_offset + 1);
        let interval = self.config.index_interval_bytes;
        let written = self
            .active_mut()
            .append(records, &info.batches, interval, now_ms);
        self.poison_on_error(written)?;
        assert_eq!(self.log_end_offset(), next_offset);
        Ok(info)
    }

    /// Validates every batch (CRC included) and its size; returns each
    /// batch's position in `records` and its header.
    fn check_batches(&self, records: &[u8]) -> Result<Vec<(usize, BatchHeader)>, LogError> {
        let max = self.config.max_message_bytes;
        if records.is_empty() {
            let e = batch::BatchError::Truncated {
                needed: batch::HEADER_BYTES,
                available: 0,
            };
            return Err(LogError::InvalidBatch(e));
        }
        if records.len() as u64 > crate::config::SEGMENT_BYTES_MAX {
            return Err(LogError::BatchTooLarge {
                size: records.len(),
                max,
            });
        }
        let mut batches = Vec::new();
        let mut position = 0;
        for one in batch::split(records) {
            let one = one?;
            if one.len() > max {
                return Err(LogError::BatchTooLarge {
                    size: one.len(),
                    max,
                });
            }
            batches.push((position, batch::validate(one)?));
            position += one.len();
        }
        assert_eq!(position, records.len());
        Ok(batches)
    }

    /// Starts a new segment if the active one cannot take `append_bytes`
    /// more, its relative offsets would overflow, it is older than
    /// `segment.ms`, or a read found it corrupt.
    fn maybe_roll(
        &mut self,
        append_bytes: u64,
        offset_span: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let active = self.active();
        if active.is_empty() {
            return Ok(());
        }
        let size_after = active.size_bytes() + append_bytes;
        let last_relative = active.next_offset() + offset_span - 1 - active.base_offset();
        let full =
            size_after > self.config.segment_bytes || size_after > crate::config::SEGMENT_BYTES_MAX;
        if full || last_relative > u32::MAX as i64 || self.roll_due(now_ms) || active.is_fenced() {
            self.roll()?;
        }
        Ok(())
    }

    pub(crate) fn roll_due(&self, now_ms: i64) -> bool {
        let active = self.active();
        !active.is_empty()
            && active
                .rolling_ms()
                .is_some_and(|t| now_ms.saturating_sub(t) > self.config.roll_ms())
    }

    /// Seals the active segment and starts a new one at the log end.
    pub(crate) fn roll(&mut self) -> Result<(), LogError> {
        let base_offset = self.log_end_offset();
        assert!(!self.active().is_empty(), "rolling an empty segment");
        assert!(self.segments.iter().all(|s| s.base_offset() < base_offset));
        self.active_mut().seal()?;
        let segment = Segment::create(&self.dir, base_offset)?;
        self.segments.push(segment);
        self.dir_generation += 1;
        tracing::debug!(dir = %self.dir.display(), base_offset, "rolled segment");
        Ok(())
    }

    /// Index of the segment holding `offset` (`log_start <= offset < log_end`).
    pub(crate) fn segment_index(&self, offset: i64) -> usize {
        let after = self.segments.partition_point(|s| s.base_offset() <= offset);
        assert!(after > 0, "offset {offset} below the first segment");
        let mut index = after - 1;
        // Only a trailing segment can be empty, so this moves at most past empty ones.
        while self.segments[index].next_offset() <= offset && index + 1 < self.segments.len() {
            index += 1;
        }
        index
    }

    /// Segment index, position and header of the first batch that ends
    /// past `offset` (`log_start <= offset < log_end`): the batch holding
    /// it, or, where the cleaner removed it, the next surviving one; `None`
    /// if no batch survives from there on.
    pub(crate) fn find_batch(
        &self,
        offset: i64,
    ) -> Result<Option<(usize, u64, BatchHeader)>, LogError> {
        let mut index = self.segment_index(offset);
        let mut at = offset;
        loop {
            let segment = &self.segments[index];
            if at < segment.next_offset() {
                if let Some((position, header)) = segment.seek(at)? {
                    return Ok(Some((index, position, header)));
                }
            }
            index += 1;
            if index == self.segments.len() {
                return Ok(None);
            }
            at = self.segments[index].base_offset();
        }
    }

    pub(crate) fn check_range(&self, offset: i64) -> Result<(), LogError> {
        let (log_start, log_end) = (self.log_start_offset, self.log_end_offset());
        if offset < log_start || offset > log_end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start,
                log_end,
            });
        }
        Ok(())
    }

    /// Reads whole batches back to back, starting with the batch that
    /// contains `offset`, up to `max_bytes` in total, stopping before any
    /// batch whose base offset is `>= max_offset` (the high watermark or
    /// last stable offset). With `min_one_batch` the first batch is returned
    /// even if larger than `max_bytes` (KIP-74). The read may span segments.
    ///
    /// Every batch is checked (CRC-32C and offset sequence) before it is
    /// returned. A batch that fails fences its segment from that batch on:
    /// the good batches before it are still returned, and any read that
    /// would start at or past it returns [`LogError::Corrupt`].
    ///
    /// `offset == log_end_offset` gives an empty result; an offset outside
    /// `[log_start_offset, log_end_offset]` is [`LogError::OffsetOutOfRange`].
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadResult, LogError> {
        self.check_range(offset)?;
        let mut out = Vec::new();
        if offset < self.log_end_offset() {
            let limits = ReadLimits {
                max_bytes,
                max_offset,
                min_one_batch,
            };
            if let Some((mut index, mut position, first)) = self.find_batch(offset)? {
                let mut expected = first.base_offset;
                while self.segments[index].read_into(position, expected, &limits, &mut out)? {
                    index += 1;
                    if index == self.segments.len() || out.len() >= max_bytes {
                        break;
                    }
                    (position, expected) = (0, self.segments[index].base_offset());
                }
            }
        }
        Ok(ReadResult {
            records: Bytes::from(out),
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset(),
        })
    }

    /// Headers of every batch from the one containing `from_offset` to the
    /// end, reading only headers.
    pub fn headers_from(&self, from_offset: i64) -> Result<Vec<BatchHeader>, LogError> {
        self.check_range(from_offset)?;
        let mut headers = Vec::new();
        if from_offset == self.log_end_offset() {
            return Ok(headers);
        }
        let Some((first, mut position, header)) = self.find_batch(from_offset)? else {
            return Ok(headers);
        };
        let mut expected = header.base_offset;
        for segment in &self.segments[first..] {
            segment.walk_headers(position, expected, |header| {
                headers.push(header);
                true
            })?;
            position = 0;
            expected = segment.next_offset();
        }
        Ok(headers)
    }

    /// The fsyncs needed to make everything below the log end durable, or
    /// `None` if there are none (or the log is poisoned).
    pub fn flush_job(&self) -> Option<FlushJob> {
        if self.poisoned {
            return None;
        }
        let mut files = Vec::new();
        let mut sealed_indexes = Vec::new();
        let last = self.segments.len() - 1;
        // Unflushed data and unsynced sealed indexes only ever sit at the
        // tail: older segments were covered by earlier successful jobs.
        for (i, segment) in self.segments.iter().enumerate().rev() {
            let unflushed = segment.next_offset() > self.flushed_offset && !segment.is_empty();
            let dirty_sealed = i < last && segment.indexes_dirty;
            if !unflushed && !dirty_sealed && i < last {
                break;
            }
            if unflushed {
                files.push(segment.log_file().clone());
            }
            if dirty_sealed {
                files.extend(segment.index_files().into_iter().cloned());
                sealed_indexes.push(segment.base_offset());
            }
        }
        let sync_dir = (self.dir_generation > self.dir_synced_generation).then(|| self.dir.clone());
        let active_base = self.active().base_offset();
        let recovery_point = (active_base > self.recovery_point).then_some(active_base);
        if files.is_empty() && sync_dir.is_none() && recovery_point.is_none() {
            return None;
        }
        Some(FlushJob {
            files,
            sync_dir,
            offset: self.log_end_offset(),
            sealed_indexes,
            dir_generation: self.dir_generation,
            epoch: self.flush_epoch,
            recovery_point,
            gate: self.gate.clone(),
        })
    }

    /// Records a finished flush job. A failed one poisons the log: the
    /// kernel may have dropped the dirty pages it failed to write, so
    /// retrying the fsync could "succeed" over lost data.
    pub fn mark_flushed(&mut self, done: FlushDone) -> Result<(), LogError> {
        let FlushDone { job, result } = done;
        if let Err(source) = result {
            self.poisoned = true;
            tracing::error!(dir = %self.dir.display(), error = %source, "fsync failed; log poisoned");
            return Err(LogError::io("fsync", self.dir.clone(), source));
        }
        if job.epoch != self.flush_epoch {
            return Ok(()); // The log was truncated since: its offsets now name other data.
        }
        self.flushed_offset = self
            .flushed_offset
            .max(job.offset.min(self.log_end_offset()));
        for base_offset in job.sealed_indexes {
            let index = self
                .segments
                .partition_point(|s| s.base_offset() < base_offset);
            if let Some(segment) = self
                .segments
                .get_mut(index)
                .filter(|s| s.base_offset() == base_offset)
            {
                segment.indexes_dirty = false;
            }
        }
        self.dir_synced_generation = self.dir_synced_generation.max(job.dir_generation);
        if let Some(recovery_point) = job.recovery_point {
            self.recovery_point = self.recovery_point.max(recovery_point);
        }
        Ok(())
    }

    /// Clean shutdown: seals the active segment's time index, fsyncs every
    /// file with unsynced data, writes the recovery point and the
    /// clean-shutdown marker, so the next open trusts everything.
    pub fn close(mut self) -> Result<(), LogError> {
        self.check_writable()?;
        let sealed = self.active_mut().seal();
        self.poison_on_error(sealed)?;
        for segment in &self.segments {
            if segment.next_offset() > self.flushed_offset || segment.indexes_dirty {
                segment
                    .log_file()
                    .sync_data()
                    .context("fsync", segment.path())?;
                for file in segment.index_files() {
                    file.sync_data().context("fsync index of", segment.path())?;
                }
            }
        }
        let mut gate = lock_gate(&self.gate);
        gate.retired = true;
        checkpoint::write(&self.dir, checkpoint::RECOVERY_POINT, self.log_end_offset())?;
        checkpoint::write_marker(&self.dir, checkpoint::CLEAN_SHUTDOWN)
    }

    /// Deletes the partition directory (DeleteTopics).
    pub fn delete(self) -> Result<(), LogError> {
        lock_gate(&self.gate).retired = true;
        std::fs::remove_dir_all(&self.dir).context("delete log directory", &self.dir)
    }
}
