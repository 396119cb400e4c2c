//! The Kafka v2 record batch ("magic 2") header: parsing and validation.
//!
//! Eddy stores batches exactly as producers sent them; only `base_offset`
//! and `partition_leader_epoch` are rewritten on append. Both sit before
//! the CRC-covered region, so the producer's CRC-32C stays valid on disk
//! and is re-checked on every read.
//!
//! ```text
//!  0  base_offset            i64   rewritten by the broker
//!  8  batch_length           i32   bytes after this field
//! 12  partition_leader_epoch i32   rewritten by the broker
//! 16  magic                  i8    must be 2
//! 17  crc                    u32   CRC-32C of bytes [21, end)
//! 21  attributes             i16   compression, timestamp type, txn, control
//! 23  last_offset_delta      i32
//! 27  base_timestamp         i64
//! 35  max_timestamp          i64
//! 43  producer_id            i64
//! 51  producer_epoch         i16
//! 53  base_sequence          i32
//! 57  records_count          i32
//! 61  records...
//! ```

use thiserror::Error;

/// Size of the fixed v2 batch header.
pub const HEADER_BYTES: usize = 61;
/// Bytes before `batch_length` counts: base_offset + batch_length.
pub const LOG_OVERHEAD_BYTES: usize = 12;
const CRC_START: usize = 21;

/// Why a batch is not acceptable.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BatchError {
    #[error("record batch truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    #[error("record batch length {0} is invalid")]
    InvalidLength(i32),
    #[error("unsupported record batch magic {0} (only v2 batches are accepted)")]
    UnsupportedMagic(i8),
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("record batch declares {count} records but last offset delta {delta}")]
    CountMismatch { count: i32, delta: i32 },
}

/// Decoded fixed header of one v2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl BatchHeader {
    /// Parses the fixed header; checks only that 61 bytes are present and
    /// that the length field is plausible. Use [`validate`] for the rest.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        if bytes.len() < HEADER_BYTES {
            return Err(BatchError::Truncated { needed: HEADER_BYTES, available: bytes.len() });
        }
        let header = BatchHeader {
            base_offset: i64_at(bytes, 0),
            batch_length: i32_at(bytes, 8),
            partition_leader_epoch: i32_at(bytes, 12),
            magic: bytes[16] as i8,
            crc: u32::from_be_bytes([bytes[17], bytes[18], bytes[19], bytes[20]]),
            attributes: i16_at(bytes, 21),
            last_offset_delta: i32_at(bytes, 23),
            base_timestamp: i64_at(bytes, 27),
            max_timestamp: i64_at(bytes, 35),
            producer_id: i64_at(bytes, 43),
            producer_epoch: i16_at(bytes, 51),
            base_sequence: i32_at(bytes, 53),
            records_count: i32_at(bytes, 57),
        };
        if (header.batch_length as i64) < (HEADER_BYTES - LOG_OVERHEAD_BYTES) as i64 {
            return Err(BatchError::InvalidLength(header.batch_length));
        }
        Ok(header)
    }

    /// Total bytes of this batch including the 12-byte log overhead.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD_BYTES + self.batch_length as usize
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
    /// Compression codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// Last sequence number of the batch, wrapping at i32::MAX as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

/// Full check of one batch that occupies exactly `bytes`: header, magic,
/// length, CRC-32C and the record count against the offset delta.
pub fn validate(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(bytes)?;
    if header.total_bytes() != bytes.len() {
        return Err(BatchError::InvalidLength(header.batch_length));
    }
    if header.magic != 2 {
        return Err(BatchError::UnsupportedMagic(header.magic));
    }
    let computed = crc32c::crc32c(&bytes[CRC_START..]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch { stored: header.crc, computed });
    }
    if header.records_count < 0
        || header.last_offset_delta < 0
        || (!header.is_control() && header.records_count != header.last_offset_delta + 1)
    {
        return Err(BatchError::CountMismatch {
            count: header.records_count,
            delta: header.last_offset_delta,
        });
    }
    Ok(header)
}

/// Splits a buffer of back-to-back batches, yielding each batch's slice.
/// Stops with an error at the first batch that is incomplete.
pub fn split(mut bytes: &[u8]) -> impl Iterator<Item = Result<&[u8], BatchError>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let header = match BatchHeader::parse(bytes) {
            Ok(h) => h,
            Err(e) => {
                bytes = &[];
                return Some(Err(e));
            }
        };
        let total = header.total_bytes();
        if total > bytes.len() {
            let available = bytes.len();
            bytes = &[];
            return Some(Err(BatchError::Truncated { needed: total, available }));
        }
        let (one, rest) = bytes.split_at(total);
        bytes = rest;
        Some(Ok(one))
    })
}

/// Rewrites the broker-assigned fields of a batch in place. These fields
/// lie outside the CRC-covered region, so the CRC stays valid.
pub fn assign_offset(batch: &mut [u8], base_offset: i64, partition_leader_epoch: i32) {
    assert!(batch.len() >= HEADER_BYTES);
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&partition_leader_epoch.to_be_bytes());
}
