//! Reading a sealed segment batch by batch, in large chunks, every batch
//! CRC-checked: the cleaner never rewrites data it cannot vouch for.

use std::os::unix::fs::FileExt;

use super::plan::SegmentView;
use crate::batch::{self, BatchHeader, HEADER_BYTES};
use crate::error::{IoContext, LogError};

/// Bytes read per `pread` (more when one batch is larger).
const CHUNK_BYTES: usize = 1 << 20;

/// Position, header and bytes of one stored batch.
pub(crate) type StoredBatch<'b> = (u64, BatchHeader, &'b [u8]);

pub(crate) struct BatchReader<'a> {
    segment: &'a SegmentView,
    buf: Vec<u8>,
    /// File position of `buf[0]`.
    buf_position: u64,
    position: u64,
    expected_offset: i64,
}

impl<'a> BatchReader<'a> {
    pub(crate) fn new(segment: &'a SegmentView) -> BatchReader<'a> {
        BatchReader {
            segment,
            buf: Vec::new(),
            buf_position: 0,
            position: 0,
            expected_offset: segment.base_offset,
        }
    }

    /// The next batch: its position, header and bytes; `None` at the end.
    pub(crate) fn next_batch(&mut self) -> Result<Option<StoredBatch<'_>>, LogError> {
        let position = self.position;
        if position >= self.segment.size_bytes {
            return Ok(None);
        }
        self.fill(position, HEADER_BYTES)?;
        let at = (position - self.buf_position) as usize;
        let header = BatchHeader::parse(&self.buf[at..]).map_err(|e| self.bad(e.to_string()))?;
        let total = header.total_bytes();
        let in_sequence = header.base_offset == self.expected_offset
            || (self.segment.compacted && header.base_offset > self.expected_offset);
        if !in_sequence || header.next_offset() > self.segment.next_offset {
            return Err(self.bad(format!(
                "batch at offset {} out of sequence (expected {})",
                header.base_offset, self.expected_offset
            )));
        }
        self.fill(position, total)?;
        let at = (position - self.buf_position) as usize;
        let bytes = &self.buf[at..at + total];
        let header = batch::validate_stored(bytes).map_err(|e| LogError::Corrupt {
            segment: self.segment.path.clone(),
            position,
            reason: e.to_string(),
        })?;
        self.position += total as u64;
        self.expected_offset = header.next_offset();
        Ok(Some((position, header, bytes)))
    }

    /// Makes `[position, position + len)` available in `buf`.
    fn fill(&mut self, position: u64, len: usize) -> Result<(), LogError> {
        let end = self.segment.size_bytes;
        if position + len as u64 > end {
            return Err(self.bad("batch runs past the segment end".into()));
        }
        let buf_end = self.buf_position + self.buf.len() as u64;
        if position >= self.buf_position && position + len as u64 <= buf_end {
            return Ok(());
        }
        let read_bytes = (end - position).min(len.max(CHUNK_BYTES) as u64) as usize;
        self.buf.resize(read_bytes, 0);
        self.segment
            .file
            .read_exact_at(&mut self.buf, position)
            .context("read", &self.segment.path)?;
        self.buf_position = position;
        Ok(())
    }

    fn bad(&self, reason: String) -> LogError {
        LogError::Corrupt {
            segment: self.segment.path.clone(),
            position: self.position,
            reason,
        }
    }
}
