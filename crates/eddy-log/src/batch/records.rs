//! Record-level work on v2 batches: building batches from records (tests,
//! internal topics), decoding them, and walking records for timestamps and
//! keys without allocating per record.

use std::borrow::Cow;

use super::*;

/// One record for [`encode_batch`] / [`decode_records`]: what a producer
/// sends, minus the offsets the batch assigns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimpleRecord {
    /// Milliseconds after the batch's base timestamp (may be negative).
    pub timestamp_delta_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Builds one valid uncompressed v2 batch with `base_offset` 0 and
/// `partition_leader_epoch` -1 (the log assigns both), CreateTime
/// timestamps, non-transactional. `max_timestamp` is the base timestamp
/// plus the largest record delta. Producers, tests and fuzzers share it.
///
/// ```
/// use eddy_log::batch::{encode_batch, validate, SimpleRecord};
/// let record = SimpleRecord { value: Some(b"hello".to_vec()), ..Default::default() };
/// let bytes = encode_batch(&[record], 1_700_000_000_000, -1, -1, -1);
/// let header = validate(&bytes).unwrap();
/// assert_eq!(header.records_count, 1);
/// ```
///
/// # Panics
/// If `records` is empty (a v2 batch from a producer holds at least one
/// record) or holds more than `i32::MAX` records.
pub fn encode_batch(
    records: &[SimpleRecord],
    base_timestamp_ms: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Vec<u8> {
    encode_batch_with_attributes(
        records,
        base_timestamp_ms,
        producer_id,
        producer_epoch,
        base_sequence,
        0,
    )
}

/// [`encode_batch`] with explicit batch `attributes`, e.g. `0x10` for a
/// transactional batch or `0x30` for a control batch. The compression bits
/// (`0x07`) must be zero: the records are always written uncompressed.
pub fn encode_batch_with_attributes(
    records: &[SimpleRecord],
    base_timestamp_ms: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    attributes: i16,
) -> Vec<u8> {
    assert!(!records.is_empty(), "a v2 batch holds at least one record");
    assert!(records.len() <= i32::MAX as usize);
    assert_eq!(
        attributes & 0x07,
        0,
        "encode_batch writes uncompressed records only"
    );
    let mut out = vec![0u8; HEADER_BYTES];
    let mut record = Vec::new();
    for (offset_delta, r) in records.iter().enumerate() {
        record.clear();
        encode_record(&mut record, r, offset_delta as i32);
        put_varint(&mut out, record.len() as i64);
        out.extend_from_slice(&record);
    }
    let max_delta = records
        .iter()
        .map(|r| r.timestamp_delta_ms)
        .max()
        .unwrap_or(0);
    let last_offset_delta = (records.len() - 1) as i32;
    assert!(out.len() - LOG_OVERHEAD_BYTES <= i32::MAX as usize);
    out[0..8].copy_from_slice(&0i64.to_be_bytes());
    let batch_length = (out.len() - LOG_OVERHEAD_BYTES) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    out[16] = 2;
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    out[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
    out[27..35].copy_from_slice(&base_timestamp_ms.to_be_bytes());
    out[35..43].copy_from_slice(&base_timestamp_ms.wrapping_add(max_delta).to_be_bytes());
    out[43..51].copy_from_slice(&producer_id.to_be_bytes());
    out[51..53].copy_from_slice(&producer_epoch.to_be_bytes());
    out[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    out[57..61].copy_from_slice(&(records.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

fn encode_record(out: &mut Vec<u8>, r: &SimpleRecord, offset_delta: i32) {
    out.push(0); // record attributes: unused in v2
    put_varint(out, r.timestamp_delta_ms);
    put_varint(out, offset_delta as i64);
    put_nullable_bytes(out, r.key.as_deref());
    put_nullable_bytes(out, r.value.as_deref());
    put_varint(out, r.headers.len() as i64);
    for (key, value) in &r.headers {
        put_nullable_bytes(out, Some(key.as_bytes()));
        put_nullable_bytes(out, value.as_deref());
    }
}

fn put_nullable_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// Kafka's zig-zag varint (`ByteUtils.writeVarlong`); also used for the
/// 32-bit varints, which encode identically for values in i32 range.
pub(super) fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes the records of one uncompressed v2 batch (after [`validate`]ing
/// it). Returns [`BatchError::Malformed`] for compressed batches and for any
/// record that does not parse; never panics on arbitrary input.
///
/// Stored batches the cleaner compacted are accepted ([`validate_stored`]):
/// their records' offset deltas increase but may skip values.
pub fn decode_records(batch: &[u8]) -> Result<Vec<SimpleRecord>, BatchError> {
    let header = validate_stored(batch)?;
    if header.compression() != 0 {
        return Err(BatchError::Malformed("compressed batches are not decoded"));
    }
    let mut cursor = Cursor {
        bytes: &batch[HEADER_BYTES..],
    };
    // Bounded by check_header: at least 7 bytes per record are present.
    let mut records = Vec::with_capacity(header.records_count as usize);
    let mut previous_delta = -1i64;
    for _ in 0..header.records_count {
        let length = cursor.varint_len()?;
        let mut record = Cursor {
            bytes: cursor.take(length)?,
        };
        record.take(1)?; // attributes
        let timestamp_delta_ms = record.varint()?;
        let offset_delta = record.varint()?;
        if offset_delta <= previous_delta || offset_delta > header.last_offset_delta as i64 {
            return Err(BatchError::Malformed("record offset delta out of sequence"));
        }
        previous_delta = offset_delta;
        let key = record.nullable_bytes()?;
        let value = record.nullable_bytes()?;
        let header_count = record.varint_len()?;
        let mut headers = Vec::with_capacity(header_count.min(record.bytes.len()));
        for _ in 0..header_count {
            let key = record
                .nullable_bytes()?
                .ok_or(BatchError::Malformed("null header key"))?;
            let key = String::from_utf8(key)
                .map_err(|_| BatchError::Malformed("header key is not UTF-8"))?;
            headers.push((key, record.nullable_bytes()?));
        }
        if !record.bytes.is_empty() {
            return Err(BatchError::Malformed(
                "record length does not match its fields",
            ));
        }
        records.push(SimpleRecord {
            timestamp_delta_ms,
            key,
            value,
            headers,
        });
    }
    if !cursor.bytes.is_empty() {
        return Err(BatchError::Malformed("bytes after the last record"));
    }
    Ok(records)
}

/// Validates `batch` and returns its header with its records section,
/// decompressed if need be (borrowed when it is not compressed). The
/// decompressed bytes are bounded by `limit_bytes`.
pub fn records_bytes(
    batch: &[u8],
    limit_bytes: usize,
) -> Result<(BatchHeader, Cow<'_, [u8]>), BatchError> {
    // Stored (possibly compacted) batches too; the produce path has already
    // run the stricter `validate` on what producers send.
    let header = validate_stored(batch)?;
    let section = &batch[HEADER_BYTES..];
    let records = match header.compression() {
        compression::NONE => Cow::Borrowed(section),
        codec => Cow::Owned(compression::decompress(codec, section, limit_bytes)?),
    };
    Ok((header, records))
}

/// The same batch with its records section re-encoded with `codec`, for
/// topics whose `compression.type` differs from the producer's. The records
/// are not decoded, so they survive byte for byte (duplicate header keys
/// included); only the codec bits of the attributes, `batch_length` and the
/// CRC change. A batch already in `codec` is returned as it is.
///
/// ```
/// use eddy_log::batch::{encode_batch, recompress, validate, SimpleRecord};
/// use eddy_log::compression::{GZIP, NONE};
/// let record = SimpleRecord { value: Some(b"hello".to_vec()), ..Default::default() };
/// let plain = encode_batch(&[record], 1_000, -1, -1, -1);
/// let gzipped = recompress(&plain, GZIP, 1 << 20).unwrap();
/// assert_eq!(validate(&gzipped).unwrap().compression(), GZIP);
/// assert_eq!(recompress(&gzipped, NONE, 1 << 20).unwrap(), plain);
/// ```
pub fn recompress(batch: &[u8], codec: i16, limit_bytes: usize) -> Result<Vec<u8>, BatchError> {
    if !(compression::NONE..=compression::ZSTD).contains(&codec) {
        return Err(BatchError::UnknownCodec(codec));
    }
    let (header, records) = records_bytes(batch, limit_bytes)?;
    if header.compression() == codec {
        return Ok(batch.to_vec());
    }
    let packed = compression::compress(codec, &records)?;
    let mut out = Vec::with_capacity(HEADER_BYTES + packed.len());
    out.extend_from_slice(&batch[..HEADER_BYTES]);
    out.extend_from_slice(&packed);
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD_BYTES)
        .map_err(|_| BatchError::InvalidLength(i32::MAX))?;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (header.attributes & !0x07) | codec;
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    // Checked again as a whole: an uncompressed result must, for one, have
    // room for the record count the header claims.
    validate(&out)?;
    Ok(out)
}

/// `(offset, timestamp_ms)` of each record of a batch, in order, from its
/// header and (uncompressed) records section; see [`record_times`].
pub struct RecordTimes<'a> {
    cursor: Cursor<'a>,
    header: BatchHeader,
    failed: bool,
}

/// Walks the records of one batch reading only the fields before the key
/// (length, attributes, timestamp delta, offset delta), skipping the rest
/// without allocating. A `LogAppendTime` batch gives every record its
/// `max_timestamp`, as consumers see it. Yields an error, then stops, at
/// the first record that does not parse or whose offset lies outside the
/// batch.
pub fn record_times<'a>(header: &BatchHeader, records: &'a [u8]) -> RecordTimes<'a> {
    RecordTimes {
        cursor: Cursor { bytes: records },
        header: *header,
        failed: false,
    }
}

impl RecordTimes<'_> {
    fn next_record(&mut self) -> Result<(i64, i64), BatchError> {
        let length = self.cursor.varint_len()?;
        let mut record = Cursor {
            bytes: self.cursor.take(length)?,
        };
        record.take(1)?; // attributes
        let timestamp_delta_ms = record.varint()?;
        let offset_delta = record.varint()?;
        if !(0..=self.header.last_offset_delta as i64).contains(&offset_delta) {
            return Err(BatchError::Malformed(
                "record offset delta outside the batch",
            ));
        }
        let timestamp_ms = if self.header.is_log_append_time() {
            self.header.max_timestamp
        } else {
            self.header
                .base_timestamp
                .saturating_add(timestamp_delta_ms)
        };
        Ok((self.header.base_offset + offset_delta, timestamp_ms))
    }
}

impl Iterator for RecordTimes<'_> {
    type Item = Result<(i64, i64), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.cursor.bytes.is_empty() {
            return None;
        }
        let next = self.next_record();
        self.failed = next.is_err();
        Some(next)
    }
}

/// Indexes (within the batch) of the records that carry no key: a
/// compacted topic refuses them. `records` is the (decompressed) records
/// section, as [`records_bytes`] returns it. Reads only each record's
/// length and key length.
pub fn keyless_records(records: &[u8], records_max: usize) -> Result<Vec<i32>, BatchError> {
    let mut cursor = Cursor { bytes: records };
    let mut keyless = Vec::new();
    let mut index = 0usize;
    while !cursor.bytes.is_empty() {
        if index >= records_max {
            return Err(BatchError::Malformed(
                "more records than the batch declares",
            ));
        }
        let length = cursor.varint_len()?;
        let mut record = Cursor {
            bytes: cursor.take(length)?,
        };
        record.take(1)?; // attributes
        record.varint()?; // timestamp delta
        record.varint()?; // offset delta
        if record.varint()? < 0 {
            keyless.push(index as i32);
        }
        index += 1;
    }
    Ok(keyless)
}

pub(super) struct Cursor<'a> {
    pub(super) bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BatchError> {
        if n > self.bytes.len() {
            return Err(BatchError::Malformed("record field runs past the batch"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(super) fn varint(&mut self) -> Result<i64, BatchError> {
        let mut raw: u64 = 0;
        // A varlong takes at most 10 bytes.
        for i in 0..10 {
            let byte = self.take(1)?[0];
            raw |= ((byte & 0x7f) as u64) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(BatchError::Malformed("varint longer than 10 bytes"))
    }

    /// A non-negative length that must fit in what is left.
    fn varint_len(&mut self) -> Result<usize, BatchError> {
        let n = self.varint()?;
        if n < 0 || n as u64 > self.bytes.len() as u64 {
            return Err(BatchError::Malformed("length out of range"));
        }
        Ok(n as usize)
    }

    fn nullable_bytes(&mut self) -> Result<Option<Vec<u8>>, BatchError> {
        let n = self.varint()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || n as u64 > self.bytes.len() as u64 {
            return Err(BatchError::Malformed("length out of range"));
        }
        Ok(Some(self.take(n as usize)?.to_vec()))
    }
}

#[cfg(test)]
mod keyless_tests {
    use super::*;

    #[test]
    fn finds_records_without_keys() {
        let records: Vec<SimpleRecord> = (0..5)
            .map(|i| SimpleRecord {
                key: (i % 2 == 0).then(|| vec![b'k']),
                value: Some(vec![1]),
                ..Default::default()
            })
            .collect();
        let batch = encode_batch(&records, 0, -1, -1, -1);
        let (header, section) = records_bytes(&batch, 1 << 20).unwrap();
        assert_eq!(
            keyless_records(&section, header.records_count as usize).unwrap(),
            vec![1, 3]
        );
    }
}
