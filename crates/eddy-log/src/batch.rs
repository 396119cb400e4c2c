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

use crate::compression;

mod control;
mod records;
pub use control::*;
pub use records::*;

/// Size of the fixed v2 batch header.
pub const HEADER_BYTES: usize = 61;
/// Bytes before `batch_length` counts: base_offset + batch_length.
pub const LOG_OVERHEAD_BYTES: usize = 12;
const CRC_START: usize = 21;
/// Smallest possible encoded record: length, attributes, timestamp delta,
/// offset delta, key length, value length, header count, one byte each.
const RECORD_MIN_BYTES: i64 = 7;

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
    #[error("malformed record in batch: {0}")]
    Malformed(&'static str),
    #[error("unknown compression codec {0} (Kafka has 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)")]
    UnknownCodec(i16),
    #[error("{codec} records do not decompress: {reason}")]
    Decompress { codec: &'static str, reason: String },
    #[error("{codec} records decompress to more than {limit_bytes} bytes")]
    DecompressedTooLarge {
        codec: &'static str,
        limit_bytes: usize,
    },
    #[error("{codec} compression failed: {reason}")]
    Compress { codec: &'static str, reason: String },
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
            return Err(BatchError::Truncated {
                needed: HEADER_BYTES,
                available: bytes.len(),
            });
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
    check_header(&header)?;
    let computed = crc32c::crc32c(&bytes[CRC_START..]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// The checks of [`validate`] that need only the parsed header: magic and
/// the record count against the offset delta. The log's recovery scan uses
/// it with [`crc_start`]/[`crc32c::crc32c_append`] to check a batch in
/// chunks instead of holding all of it in memory.
pub fn check_header(header: &BatchHeader) -> Result<(), BatchError> {
    if header.magic != 2 {
        return Err(BatchError::UnsupportedMagic(header.magic));
    }
    let count_mismatch = BatchError::CountMismatch {
        count: header.records_count,
        delta: header.last_offset_delta,
    };
    if header.records_count < 0
        || header.last_offset_delta < 0
        || (!header.is_control()
            && i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1)
    {
        return Err(count_mismatch);
    }
    // An uncompressed record takes at least 7 bytes (seven 1-byte fields), so
    // a header claiming more records than fit is lying; without this a 61-byte
    // batch could claim 2^31 offsets.
    let body_bytes = header.batch_length as i64 - (HEADER_BYTES - LOG_OVERHEAD_BYTES) as i64;
    if header.compression() == 0 && header.records_count as i64 * RECORD_MIN_BYTES > body_bytes {
        return Err(count_mismatch);
    }
    Ok(())
}

/// [`validate`] for a batch read back from the log rather than sent by a
/// producer: the log cleaner removes records but keeps the batch's offset
/// range (as Kafka's cleaner does, so a producer's last sequence survives),
/// so a stored batch may hold fewer records than its offset delta covers,
/// none at all included. Everything else, the CRC first, is checked alike.
pub fn validate_stored(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(bytes)?;
    if header.total_bytes() != bytes.len() {
        return Err(BatchError::InvalidLength(header.batch_length));
    }
    check_stored_header(&header)?;
    let computed = crc32c::crc32c(&bytes[CRC_START..]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// [`check_header`] for stored batches: at most (not exactly) one record
/// per offset of the batch's range; see [`validate_stored`].
pub fn check_stored_header(header: &BatchHeader) -> Result<(), BatchError> {
    if header.magic != 2 {
        return Err(BatchError::UnsupportedMagic(header.magic));
    }
    let count_mismatch = BatchError::CountMismatch {
        count: header.records_count,
        delta: header.last_offset_delta,
    };
    if header.records_count < 0
        || header.last_offset_delta < 0
        || header.records_count as i64 > header.last_offset_delta as i64 + 1
    {
        return Err(count_mismatch);
    }
    let body_bytes = header.batch_length as i64 - (HEADER_BYTES - LOG_OVERHEAD_BYTES) as i64;
    if header.compression() == 0 && header.records_count as i64 * RECORD_MIN_BYTES > body_bytes {
        return Err(count_mismatch);
    }
    Ok(())
}

/// Offset of the first byte covered by the CRC-32C; the CRC covers
/// `[crc_start(), total_bytes)`.
pub const fn crc_start() -> usize {
    CRC_START
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
            return Some(Err(BatchError::Truncated {
                needed: total,
                available,
            }));
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

/// Stamps a batch with the broker's clock for a `LogAppendTime` topic, as
/// Kafka does: the timestamp-type attribute is set, `max_timestamp` becomes
/// `now_ms` (consumers read it as every record's timestamp) and the CRC is
/// recomputed, since both fields are covered by it.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    assert!(batch.len() >= HEADER_BYTES);
    let attributes = i16::from_be_bytes([batch[21], batch[22]]) | 0x08;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::records::{put_varint, Cursor};
    use super::*;
    use proptest::prelude::*;

    fn record(value: &[u8]) -> SimpleRecord {
        SimpleRecord {
            value: Some(value.to_vec()),
            ..Default::default()
        }
    }

    #[test]
    fn varints_match_kafka_zigzag() {
        let cases: [(i64, &[u8]); 7] = [
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (300, &[0xd8, 0x04]),
        ];
        for (value, encoded) in cases {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out, encoded, "{value}");
            assert_eq!(Cursor { bytes: encoded }.varint().unwrap(), value);
        }
        for value in [i64::MIN, i64::MAX, i32::MIN as i64, i32::MAX as i64] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(Cursor { bytes: &out }.varint().unwrap(), value);
        }
    }

    #[test]
    fn encoded_header_fields() {
        let records = [
            record(b"a"),
            SimpleRecord {
                timestamp_delta_ms: 7,
                ..record(b"b")
            },
        ];
        let bytes = encode_batch(&records, 1000, 42, 3, 17);
        let header = validate(&bytes).unwrap();
        assert_eq!(header.base_offset, 0);
        assert_eq!(header.partition_leader_epoch, -1);
        assert_eq!(header.records_count, 2);
        assert_eq!(header.last_offset_delta, 1);
        assert_eq!(header.base_timestamp, 1000);
        assert_eq!(header.max_timestamp, 1007);
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (42, 3, 17)
        );
        assert_eq!(header.last_sequence(), 18);
        assert_eq!(header.total_bytes(), bytes.len());
    }

    #[test]
    fn every_bit_flip_after_the_leader_epoch_is_detected() {
        let bytes = encode_batch(&[record(b"hello world")], 5, 1, 0, 0);
        // [0, 16) is base_offset, batch_length, leader epoch: not covered by the
        // CRC (the log checks offsets and lengths separately).
        for bit in 16 * 8..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(validate(&flipped).is_err(), "bit {bit} flip undetected");
        }
    }

    #[test]
    fn assign_offset_keeps_the_crc_valid() {
        let mut bytes = encode_batch(&[record(b"x"), record(b"y")], 5, -1, -1, -1);
        assign_offset(&mut bytes, 1_000_000, 9);
        let header = validate(&bytes).unwrap();
        assert_eq!(
            (header.base_offset, header.partition_leader_epoch),
            (1_000_000, 9)
        );
        assert_eq!(header.next_offset(), 1_000_002);
    }

    #[test]
    fn lying_record_count_is_rejected() {
        let mut bytes = encode_batch(&[record(b"x")], 5, -1, -1, -1);
        // Claim 2^31-1 records in a 70-byte batch; fix the CRC so only the count check can catch it.
        bytes[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        bytes[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[CRC_START..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate(&bytes),
            Err(BatchError::CountMismatch { .. })
        ));
    }

    #[test]
    fn split_stops_at_a_torn_batch() {
        let one = encode_batch(&[record(b"one")], 5, -1, -1, -1);
        let mut two = one.clone();
        two.extend_from_slice(&one[..one.len() - 1]);
        let parts: Vec<_> = split(&two).collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], Ok(&one[..]));
        assert!(matches!(parts[1], Err(BatchError::Truncated { .. })));
    }

    fn arb_bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))
    }

    fn arb_record() -> impl Strategy<Value = SimpleRecord> {
        let header = ("[a-z]{0,8}", arb_bytes());
        (
            any::<i32>(),
            arb_bytes(),
            arb_bytes(),
            proptest::collection::vec(header, 0..4),
        )
            .prop_map(|(delta, key, value, headers)| SimpleRecord {
                timestamp_delta_ms: delta as i64,
                key,
                value,
                headers,
            })
    }

    proptest! {
        #[test]
        fn encode_validate_decode_round_trip(
            records in proptest::collection::vec(arb_record(), 1..20),
            base_ms in 0i64..4_000_000_000_000,
            producer_id in -1i64..1000,
            epoch in -1i16..10,
            sequence in -1i32..1000,
        ) {
            let bytes = encode_batch(&records, base_ms, producer_id, epoch, sequence);
            let header = validate(&bytes).unwrap();
            prop_assert_eq!(header.records_count as usize, records.len());
            let max_delta = records.iter().map(|r| r.timestamp_delta_ms).max().unwrap();
            prop_assert_eq!(header.max_timestamp, base_ms + max_delta);
            prop_assert_eq!(header.producer_id, producer_id);
            prop_assert_eq!(decode_records(&bytes).unwrap(), records);
            let mut two = bytes.clone();
            two.extend_from_slice(&bytes);
            prop_assert_eq!(split(&two).filter(|b| b.is_ok()).count(), 2);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = validate(&bytes);
            let _ = decode_records(&bytes);
            for one in split(&bytes) {
                let _ = one.map(validate);
            }
        }

        #[test]
        fn mutated_batches_never_panic(
            records in proptest::collection::vec(arb_record(), 1..5),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = encode_batch(&records, 0, -1, -1, -1);
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            // Re-seal the CRC so decode_records reaches the record parser.
            let crc = crc32c::crc32c(&bytes[CRC_START..]);
            bytes[17..21].copy_from_slice(&crc.to_be_bytes());
            let _ = decode_records(&bytes);
        }
    }
}
