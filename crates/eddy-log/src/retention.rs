//! Removing data: time and size retention, DeleteRecords, truncation.
//!
//! Whenever old segments go, the new log start offset is made durable
//! *before* their files are deleted: a crash in between leaves segments
//! that open deletes again, never records that reappear.

use crate::checkpoint::{self, LOG_START_OFFSET, RECOVERY_POINT};
use crate::error::{IoContext, LogError};
use crate::flush::lock_gate;
use crate::partition::Log;
use crate::segment::Segment;

impl Log {
    /// Rolls the active segment if `segment.ms` expired, then deletes the
    /// oldest segments past `retention.ms` (by their newest timestamp) or
    /// beyond `retention.bytes`. As in Kafka, when the active segment
    /// itself is due it is rolled first, so the log keeps an empty active
    /// segment at the end. Returns the number of segments deleted.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        self.check_writable()?;
        if self.roll_due(now_ms) {
            let rolled = self.roll();
            self.poison_on_error(rolled)?;
        }
        let by_time = self.count_expired(now_ms);
        let by_size = self.count_over_size();
        let count = by_time.max(by_size);
        if count == 0 {
            return Ok(0);
        }
        if count == self.segments.len() {
            let rolled = self.roll();
            self.poison_on_error(rolled)?;
        }
        let new_start = self.segments[count]
            .base_offset()
            .max(self.log_start_offset);
        self.persist_log_start(new_start)?;
        self.delete_oldest(count)?;
        tracing::info!(dir = %self.dir.display(), deleted = count, log_start = new_start, "retention deleted segments");
        Ok(count)
    }

    /// Leading segments whose newest timestamp is older than `retention.ms`.
    fn count_expired(&self, now_ms: i64) -> usize {
        let retention_ms = self.config.retention_ms;
        // `cleanup.policy=compact` alone keeps data forever (the cleaner prunes it).
        if retention_ms < 0 || !self.config.cleanup_delete {
            return 0;
        }
        let last = self.segments.len() - 1;
        self.segments
            .iter()
            .enumerate()
            .take_while(|(i, s)| {
                let newest_ms = s.max_timestamp().map(|(ts, _)| ts);
                // A sealed segment the cleaner emptied holds nothing to keep.
                (s.is_empty() && *i < last)
                    || (!s.is_empty()
                        && newest_ms.is_some_and(|ts| now_ms.saturating_sub(ts) > retention_ms))
            })
            .count()
    }

    /// Leading segments that can go while the log stays at or above
    /// `retention.bytes` (Kafka's rule: only whole segments, oldest first).
    fn count_over_size(&self) -> usize {
        let retention_bytes = self.config.retention_bytes;
        if retention_bytes < 0 || !self.config.cleanup_delete {
            return 0;
        }
        let mut excess = self.size_bytes() as i64 - retention_bytes;
        self.segments
            .iter()
            .take_while(|s| {
                let fits = !s.is_empty() && excess - s.size_bytes() as i64 >= 0;
                excess -= s.size_bytes() as i64;
                fits
            })
            .count()
    }

    /// DeleteRecords: moves the log start up to `offset` and deletes the
    /// sealed segments wholly below it. Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        self.check_writable()?;
        let log_end = self.log_end_offset();
        if offset < 0 || offset > log_end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        self.persist_log_start(offset)?;
        let last = self.segments.len() - 1;
        let count = self.segments[..last]
            .iter()
            .take_while(|s| s.next_offset() <= offset)
            .count();
        self.delete_oldest(count)?;
        Ok(offset)
    }

    fn persist_log_start(&mut self, offset: i64) -> Result<(), LogError> {
        checkpoint::write(&self.dir, LOG_START_OFFSET, offset)?;
        self.log_start_offset = offset;
        Ok(())
    }

    /// Deletes the `count` oldest segments (never the active one).
    pub(crate) fn delete_oldest(&mut self, count: usize) -> Result<(), LogError> {
        assert!(
            count < self.segments.len(),
            "the active segment is never deleted"
        );
        assert!(count == 0 || self.segments[count].base_offset() <= self.log_start_offset);
        for segment in self.segments.drain(..count) {
            segment.delete_files()?;
        }
        Ok(())
    }

    /// Drops everything at and after `offset`. If `offset` is inside a
    /// batch the whole batch goes, so the log end may end up below
    /// `offset`. Below the log start the log is emptied and restarted at
    /// `offset`, as Kafka does. Made durable before returning.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        self.check_writable()?;
        if offset < 0 {
            let (log_start, log_end) = (self.log_start_offset, self.log_end_offset());
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start,
                log_end,
            });
        }
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        let truncated = if offset < self.log_start_offset || offset < self.segments[0].base_offset()
        {
            self.truncate_fully_at(offset)
        } else {
            self.truncate_within(offset)
        };
        self.poison_on_error(truncated)?;
        tracing::info!(dir = %self.dir.display(), offset, log_end = self.log_end_offset(), "truncated log");
        Ok(())
    }

    fn truncate_within(&mut self, offset: i64) -> Result<(), LogError> {
        while self.segments.len() > 1 && self.active().base_offset() > offset {
            let segment = self.segments.pop().expect("more than one segment");
            segment.delete_files()?;
        }
        let interval = self.config.index_interval_bytes;
        self.active_mut().truncate_to(offset, interval)?;
        let active = self.active();
        active
            .log_file()
            .sync_all()
            .context("fsync", active.path())?;
        if self.log_end_offset() < self.log_start_offset {
            self.persist_log_start(self.log_end_offset())?;
        }
        self.after_truncation()
    }

    /// Deletes every segment and starts an empty log at `offset`.
    pub(crate) fn truncate_fully_at(&mut self, offset: i64) -> Result<(), LogError> {
        let fresh = Segment::create(&self.dir, offset)?;
        for segment in self.segments.drain(..).rev() {
            if segment.base_offset() != offset {
                segment.delete_files()?;
            }
        }
        self.segments.push(fresh);
        self.persist_log_start(offset)?;
        self.after_truncation()
    }

    /// Data below the old flushed offset may be gone, and flush jobs taken
    /// before now name offsets that mean other data: lower the flushed
    /// offset and recovery point, and retire those jobs' epoch.
    fn after_truncation(&mut self) -> Result<(), LogError> {
        checkpoint::sync_dir(&self.dir)?;
        self.flushed_offset = self.flushed_offset.min(self.log_end_offset());
        let recovery_point = self.recovery_point.min(self.active().base_offset());
        let mut gate = lock_gate(&self.gate);
        gate.epoch += 1;
        self.flush_epoch = gate.epoch;
        checkpoint::write(&self.dir, RECOVERY_POINT, recovery_point)?;
        self.recovery_point = recovery_point;
        Ok(())
    }
}
