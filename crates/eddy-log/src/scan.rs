//! Walking a segment file batch by batch without holding it in memory.
//!
//! [`ChunkReader`] reads a file forward in fixed-size chunks, so walking
//! the 61-byte headers of many small batches costs one `pread` per chunk,
//! not one per batch. [`Walk`] steps from header to header (seeking over
//! bodies), checking each header against the offsets expected from the
//! previous one; with `verify_crc` it also streams each body through
//! CRC-32C, which is the recovery scan.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::batch::{self, BatchHeader, HEADER_BYTES};
use crate::error::{IoContext, LogError};

/// Chunk size for walks that read headers only (lookups). A lookup starts
/// at an index entry, at most `index.interval.bytes` (4 KiB by default)
/// plus one batch before its target, so one chunk usually covers it.
pub(crate) const LOOKUP_CHUNK_BYTES: usize = 16 * 1024;
/// Chunk size for walks that read everything (recovery, index rebuild).
pub(crate) const SCAN_CHUNK_BYTES: usize = 512 * 1024;

pub(crate) struct ChunkReader<'a> {
    file: &'a File,
    path: &'a Path,
    /// Nothing at or past this position is read (the segment's valid size).
    end: u64,
    buf: Vec<u8>,
    /// File position of `buf[0]`.
    buf_position: u64,
    chunk_bytes: usize,
}

impl<'a> ChunkReader<'a> {
    pub(crate) fn new(file: &'a File, path: &'a Path, end: u64, chunk_bytes: usize) -> Self {
        assert!(chunk_bytes >= HEADER_BYTES);
        ChunkReader {
            file,
            path,
            end,
            buf: Vec::new(),
            buf_position: 0,
            chunk_bytes,
        }
    }

    /// Bytes `[position, position + len)`, or `None` if that runs past `end`.
    pub(crate) fn bytes_at(
        &mut self,
        position: u64,
        len: usize,
    ) -> Result<Option<&[u8]>, LogError> {
        assert!(len <= self.chunk_bytes);
        let want_end = position.checked_add(len as u64);
        if want_end.is_none_or(|e| e > self.end) {
            return Ok(None);
        }
        let buf_end = self.buf_position + self.buf.len() as u64;
        if position < self.buf_position || position + len as u64 > buf_end {
            let read_bytes = (self.end - position).min(self.chunk_bytes as u64) as usize;
            self.buf.resize(read_bytes, 0);
            self.file
                .read_exact_at(&mut self.buf, position)
                .context("read", self.path)?;
            self.buf_position = position;
        }
        let at = (position - self.buf_position) as usize;
        Ok(Some(&self.buf[at..at + len]))
    }
}

/// What one step of a [`Walk`] found.
#[derive(Debug)]
pub(crate) enum Step {
    Batch {
        position: u64,
        header: BatchHeader,
    },
    /// Clean end: the walk reached `end` exactly at a batch boundary.
    End,
    /// The bytes at `position` are not the next batch: torn, garbage,
    /// failing its CRC, or out of offset sequence.
    Bad {
        position: u64,
        reason: String,
    },
}

pub(crate) struct Walk<'a> {
    reader: ChunkReader<'a>,
    position: u64,
    /// Base offset the next batch must have.
    expected_offset: i64,
    /// Relative offsets must fit the u32 index entries.
    segment_base_offset: i64,
    verify_crc: bool,
    /// The cleaner compacted this segment: batches may skip offsets (base
    /// offset `>=`, not `==`, the expected one) and hold fewer records than
    /// their offset range.
    gaps: bool,
    done: bool,
}

impl<'a> Walk<'a> {
    pub(crate) fn new(
        reader: ChunkReader<'a>,
        position: u64,
        expected_offset: i64,
        segment_base_offset: i64,
        verify_crc: bool,
    ) -> Self {
        Walk {
            reader,
            position,
            expected_offset,
            segment_base_offset,
            verify_crc,
            gaps: false,
            done: false,
        }
    }

    /// Accepts the offset gaps a compacted segment has.
    pub(crate) fn allow_gaps(mut self, gaps: bool) -> Self {
        self.gaps = gaps;
        self
    }

    pub(crate) fn step(&mut self) -> Result<Step, LogError> {
        if self.done {
            return Ok(Step::End);
        }
        let position = self.position;
        if position == self.reader.end {
            self.done = true;
            return Ok(Step::End);
        }
        let outcome = self.check_next(position)?;
        match outcome {
            Ok(header) => {
                self.position += header.total_bytes() as u64;
                self.expected_offset = header.next_offset();
                Ok(Step::Batch { position, header })
            }
            Err(reason) => {
                self.done = true;
                Ok(Step::Bad { position, reason })
            }
        }
    }

    /// Checks the batch at `position`; `Ok(Err(reason))` if it is bad.
    fn check_next(&mut self, position: u64) -> Result<Result<BatchHeader, String>, LogError> {
        let Some(bytes) = self.reader.bytes_at(position, HEADER_BYTES)? else {
            return Ok(Err("incomplete batch header".into()));
        };
        let check = if self.gaps {
            batch::check_stored_header
        } else {
            batch::check_header
        };
        let header = match BatchHeader::parse(bytes).and_then(|h| check(&h).map(|_| h)) {
            Ok(h) => h,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if position + header.total_bytes() as u64 > self.reader.end {
            return Ok(Err(format!(
                "batch of {} bytes runs past the end",
                header.total_bytes()
            )));
        }
        let in_sequence = if self.gaps {
            header.base_offset >= self.expected_offset
        } else {
            header.base_offset == self.expected_offset
        };
        if !in_sequence {
            let expected = self.expected_offset;
            return Ok(Err(format!(
                "batch base offset {} but expected {expected}",
                header.base_offset
            )));
        }
        let relative_last = header.last_offset() - self.segment_base_offset;
        if relative_last > u32::MAX as i64 || position > u32::MAX as u64 {
            return Ok(Err("batch does not fit the segment's u32 index".into()));
        }
        if self.verify_crc {
            let computed = self.body_crc(position, header.total_bytes())?;
            if computed != header.crc {
                let reason = batch::BatchError::CrcMismatch {
                    stored: header.crc,
                    computed,
                };
                return Ok(Err(reason.to_string()));
            }
        }
        Ok(Ok(header))
    }

    fn body_crc(&mut self, position: u64, total_bytes: usize) -> Result<u32, LogError> {
        let mut crc = 0;
        let mut at = position + batch::crc_start() as u64;
        let end = position + total_bytes as u64;
        while at < end {
            let len = (end - at).min(self.reader.chunk_bytes as u64) as usize;
            let Some(chunk) = self.reader.bytes_at(at, len)? else {
                unreachable!("batch end was checked against the reader's end");
            };
            crc = crc32c::crc32c_append(crc, chunk);
            at += len as u64;
        }
        Ok(crc)
    }
}
