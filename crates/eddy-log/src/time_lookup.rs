//! ListOffsets by timestamp and MAX_TIMESTAMP, answered to the record as
//! Kafka does. The time index and batch headers find the batch; that one
//! batch is then read, decompressed (bounded) and its records walked for
//! the exact offset.

use crate::batch::{self, BatchError, BatchHeader};
use crate::error::LogError;
use crate::partition::Log;
use crate::segment::Segment;

/// Floor of the decompression bound for lookups; the bound is at least
/// four times `max.message.bytes`, since a batch at that size may have
/// been compressed several times over.
const LOOKUP_DECOMPRESSED_BYTES_MIN: usize = 16 << 20;

impl Log {
    /// The first record at or after the log start whose timestamp is
    /// `>= ts_ms`: `(its offset, its timestamp)`. A batch whose records
    /// cannot be read (compressed garbage a producer sent) answers at batch
    /// granularity: `(max(base offset, log start), its max timestamp)`.
    pub fn offset_for_timestamp(&self, ts_ms: i64) -> Result<Option<(i64, i64)>, LogError> {
        let log_start = self.log_start_offset;
        for segment in &self.segments {
            let reaches = segment.max_timestamp().is_some_and(|(max, _)| max >= ts_ms);
            if segment.next_offset() <= log_start || !reaches {
                continue;
            }
            let (mut position, mut expected) = segment.time_lookup_start(ts_ms);
            if segment.base_offset() < log_start && expected < log_start {
                // In a compacted segment nothing may survive past the start.
                let Some((at, header)) = segment.seek(log_start)? else {
                    continue;
                };
                if at > position {
                    (position, expected) = (at, header.base_offset);
                }
            }
            let mut found = Ok(None);
            segment.walk_headers(position, expected, |header| {
                if header.next_offset() > log_start && header.max_timestamp >= ts_ms {
                    // As Kafka: a batch whose records all fall short (its
                    // max timestamp lied) does not end the search.
                    found = self.first_record_in(&header, |offset, timestamp_ms| {
                        offset >= log_start && timestamp_ms >= ts_ms
                    });
                }
                matches!(found, Ok(None))
            })?;
            if let Some(hit) = found? {
                return Ok(Some(hit));
            }
        }
        Ok(None)
    }

    /// `(max timestamp, offset of the first record carrying it)` over the
    /// segments holding offsets at or above the log start (a segment partly
    /// below the start still counts whole). The segments know the batch;
    /// the record is found by reading that one batch. If that read fails,
    /// or the batch lies below the log start, the answer is the batch's
    /// base offset.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let mut best: Option<(i64, i64)> = None;
        let live = self
            .segments
            .iter()
            .filter(|s| s.next_offset() > self.log_start_offset);
        for (ts, offset) in live.filter_map(Segment::max_timestamp) {
            if best.is_none_or(|(best_ts, _)| ts > best_ts) {
                best = Some((ts, offset));
            }
        }
        let (max_ms, batch_offset) = best?;
        if batch_offset < self.log_start_offset {
            return best;
        }
        let header = match self.read_batch_header(batch_offset) {
            Ok(header) => header,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "MAX_TIMESTAMP answered at batch granularity");
                return best;
            }
        };
        match self.first_record_in(&header, |_, timestamp_ms| timestamp_ms == max_ms) {
            Ok(Some((offset, _))) => Some((max_ms, offset)),
            Ok(None) => best,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "MAX_TIMESTAMP answered at batch granularity");
                best
            }
        }
    }

    /// `(offset, timestamp)` of the first record of the batch `header`
    /// for which `wanted` holds. Records that cannot be read (bad
    /// compression, a malformed record) give the batch-granularity answer
    /// `(max(base offset, log start), max timestamp)` with a warning: the
    /// CRC shows the producer sent them so, and an error here would make
    /// every lookup reaching this batch fail for good.
    fn first_record_in(
        &self,
        header: &BatchHeader,
        wanted: impl Fn(i64, i64) -> bool,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let bytes = self.read_batch_bytes(header.base_offset.max(self.log_start_offset))?;
        let scanned = batch::records_bytes(&bytes, self.lookup_limit_bytes()).and_then(
            |(stored, records)| {
                assert_eq!(
                    stored.base_offset, header.base_offset,
                    "read the wrong batch"
                );
                first_record(&stored, &records, wanted)
            },
        );
        scanned.or_else(|e| {
            tracing::warn!(
                dir = %self.dir.display(),
                base_offset = header.base_offset,
                error = %e,
                "records unreadable; timestamp lookup answered at batch granularity"
            );
            let fallback = (
                header.base_offset.max(self.log_start_offset),
                header.max_timestamp,
            );
            Ok(Some(fallback))
        })
    }

    /// The whole batch containing `offset` (which must be in the log), CRC
    /// checked: KIP-74's "at least one batch" with a 1-byte budget gives
    /// exactly one.
    fn read_batch_bytes(&self, offset: i64) -> Result<bytes::Bytes, LogError> {
        Ok(self.read(offset, 1, i64::MAX, true)?.records)
    }

    fn read_batch_header(&self, offset: i64) -> Result<BatchHeader, LogError> {
        let bytes = self.read_batch_bytes(offset)?;
        Ok(batch::validate(&bytes)?)
    }

    fn lookup_limit_bytes(&self) -> usize {
        self.config
            .max_message_bytes
            .saturating_mul(4)
            .max(LOOKUP_DECOMPRESSED_BYTES_MIN)
    }
}

fn first_record(
    header: &BatchHeader,
    records: &[u8],
    wanted: impl Fn(i64, i64) -> bool,
) -> Result<Option<(i64, i64)>, BatchError> {
    for record in batch::record_times(header, records) {
        let (offset, timestamp_ms) = record?;
        if wanted(offset, timestamp_ms) {
            return Ok(Some((offset, timestamp_ms)));
        }
    }
    Ok(None)
}
