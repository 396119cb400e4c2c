//! Phase 2, per batch: which records survive, and the batch rewritten
//! around them in its own codec.

use std::borrow::Cow;

use super::offset_map::OffsetMap;
use crate::batch::{self, BatchError, BatchHeader, HEADER_BYTES, LOG_OVERHEAD_BYTES};
use crate::compression;

/// KIP-534: the batch's base timestamp is a delete horizon.
pub(crate) const DELETE_HORIZON_FLAG: i16 = 0x40;

/// What happens to one batch.
pub(crate) enum Verdict {
    /// Written as it is.
    Keep,
    /// Replaced by these bytes (same base offset and offset range).
    Rewrite(Vec<u8>),
    Drop,
}

/// What the filter needs to know besides the batch.
pub(crate) struct FilterContext<'a> {
    pub(crate) map: &'a OffsetMap,
    pub(crate) now_ms: i64,
    pub(crate) delete_retention_ms: i64,
    pub(crate) decompressed_bytes_max: usize,
}

/// One record of a records section, borrowed.
pub(crate) struct RawRecord<'a> {
    pub(crate) attributes: u8,
    pub(crate) timestamp_delta_ms: i64,
    pub(crate) offset_delta: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) is_tombstone: bool,
    /// The key, value and headers as encoded: copied as they are.
    pub(crate) tail: &'a [u8],
}

/// The batch's verdict and how many of its records were removed.
pub(crate) fn filter_batch(
    bytes: &[u8],
    header: &BatchHeader,
    keep_header: bool,
    ctx: &FilterContext<'_>,
) -> Result<(Verdict, u64), BatchError> {
    if header.is_control() || header.is_transactional() {
        return Ok((Verdict::Keep, 0));
    }
    let (_, section) = batch::records_bytes(bytes, ctx.decompressed_bytes_max)?;
    let records = parse_records(&section, header)?;
    let horizon = (header.attributes & DELETE_HORIZON_FLAG != 0).then_some(header.base_timestamp);
    let kept: Vec<&RawRecord<'_>> = records
        .iter()
        .filter(|r| retain(r, header, horizon, ctx))
        .collect();
    let removed = (records.len() - kept.len()) as u64;
    let any_tombstone = kept.iter().any(|r| r.is_tombstone);
    let new_horizon = match (any_tombstone, horizon) {
        (false, _) => None,
        (true, Some(h)) => Some(h),
        (true, None) => Some(ctx.now_ms.saturating_add(ctx.delete_retention_ms)),
    };
    if removed == 0 && new_horizon == horizon {
        return Ok((Verdict::Keep, 0));
    }
    if kept.is_empty() {
        if keep_header {
            return Ok((Verdict::Rewrite(empty_batch(header)), removed));
        }
        return Ok((Verdict::Drop, removed));
    }
    let rebuilt = rebuild(header, &kept, new_horizon)?;
    Ok((Verdict::Rewrite(rebuilt), removed))
}

/// Kafka's rules: no key, or a later record for the key → gone; a
/// tombstone past its batch's delete horizon → gone.
fn retain(
    record: &RawRecord<'_>,
    header: &BatchHeader,
    horizon: Option<i64>,
    ctx: &FilterContext<'_>,
) -> bool {
    let Some(key) = record.key else {
        return false;
    };
    let offset = header.base_offset + record.offset_delta;
    if ctx.map.get(key).is_some_and(|latest| latest > offset) {
        return false;
    }
    !(record.is_tombstone && horizon.is_some_and(|h| ctx.now_ms >= h))
}

/// Parses a (decompressed) records section; the count must match the
/// header and offset deltas must increase within the batch's range.
pub(crate) fn parse_records<'a>(
    mut bytes: &'a [u8],
    header: &BatchHeader,
) -> Result<Vec<RawRecord<'a>>, BatchError> {
    let count = header.records_count.max(0) as usize;
    // Every record takes at least 7 bytes: no allocation beyond the input.
    let mut records = Vec::with_capacity(count.min(bytes.len() / 7 + 1));
    let mut previous_delta = -1i64;
    while !bytes.is_empty() {
        let length = varint(&mut bytes)?;
        let mut record = take(&mut bytes, length)?;
        let attributes = take(&mut record, 1)?[0];
        let timestamp_delta_ms = varint_raw(&mut record)?;
        let offset_delta = varint_raw(&mut record)?;
        if offset_delta <= previous_delta || offset_delta > header.last_offset_delta as i64 {
            return Err(BatchError::Malformed("record offset delta out of sequence"));
        }
        previous_delta = offset_delta;
        let tail = record;
        let key_length = varint_raw(&mut record)?;
        let key = match key_length {
            -1 => None,
            n if n >= 0 => Some(take(&mut record, n as usize)?),
            _ => return Err(BatchError::Malformed("negative key length")),
        };
        let is_tombstone = varint_raw(&mut record)? == -1;
        records.push(RawRecord {
            attributes,
            timestamp_delta_ms,
            offset_delta,
            key,
            is_tombstone,
            tail,
        });
    }
    if records.len() != count {
        return Err(BatchError::Malformed(
            "record count does not match the header",
        ));
    }
    Ok(records)
}

/// The batch with only `kept`, same offsets, producer fields and codec.
/// As Kafka's builder: the base timestamp is the first record's (or the
/// delete horizon), the max timestamp is recomputed (LogAppendTime keeps
/// the batch's).
fn rebuild(
    header: &BatchHeader,
    kept: &[&RawRecord<'_>],
    horizon: Option<i64>,
) -> Result<Vec<u8>, BatchError> {
    let absolute = |r: &RawRecord<'_>| header.base_timestamp.saturating_add(r.timestamp_delta_ms);
    let base_timestamp = horizon.unwrap_or_else(|| absolute(kept[0]));
    let max_timestamp = if header.is_log_append_time() {
        header.max_timestamp
    } else {
        kept.iter()
            .map(|r| absolute(r))
            .max()
            .unwrap_or(base_timestamp)
    };
    let mut section = Vec::new();
    let mut body = Vec::new();
    for r in kept {
        body.clear();
        body.push(r.attributes);
        put_varint(&mut body, absolute(r).saturating_sub(base_timestamp));
        put_varint(&mut body, r.offset_delta);
        body.extend_from_slice(r.tail);
        put_varint(&mut section, body.len() as i64);
        section.extend_from_slice(&body);
    }
    let section = match header.compression() {
        compression::NONE => Cow::Owned(section),
        codec => Cow::Owned(compression::compress(codec, &section)?),
    };
    let mut attributes = header.attributes & !DELETE_HORIZON_FLAG;
    if horizon.is_some() {
        attributes |= DELETE_HORIZON_FLAG;
    }
    let fields = HeaderFields {
        attributes,
        base_timestamp,
        max_timestamp,
        records_count: kept.len() as i32,
    };
    let out = write_batch(header, &fields, &section)?;
    batch::validate_stored(&out)?;
    Ok(out)
}

/// A batch holding no record: kept for its producer's last sequence, as
/// Kafka's cleaner does (both timestamps are the batch's max).
fn empty_batch(header: &BatchHeader) -> Vec<u8> {
    let fields = HeaderFields {
        attributes: header.attributes & !(DELETE_HORIZON_FLAG | 0x07),
        base_timestamp: header.max_timestamp,
        max_timestamp: header.max_timestamp,
        records_count: 0,
    };
    write_batch(header, &fields, &[]).expect("an empty batch fits")
}

struct HeaderFields {
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    records_count: i32,
}

fn write_batch(
    header: &BatchHeader,
    fields: &HeaderFields,
    section: &[u8],
) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::with_capacity(HEADER_BYTES + section.len());
    let batch_length = i32::try_from(HEADER_BYTES - LOG_OVERHEAD_BYTES + section.len())
        .map_err(|_| BatchError::InvalidLength(i32::MAX))?;
    out.extend_from_slice(&header.base_offset.to_be_bytes());
    out.extend_from_slice(&batch_length.to_be_bytes());
    out.extend_from_slice(&header.partition_leader_epoch.to_be_bytes());
    out.push(2);
    out.extend_from_slice(&[0; 4]); // CRC, below
    out.extend_from_slice(&fields.attributes.to_be_bytes());
    out.extend_from_slice(&header.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&fields.base_timestamp.to_be_bytes());
    out.extend_from_slice(&fields.max_timestamp.to_be_bytes());
    out.extend_from_slice(&header.producer_id.to_be_bytes());
    out.extend_from_slice(&header.producer_epoch.to_be_bytes());
    out.extend_from_slice(&header.base_sequence.to_be_bytes());
    out.extend_from_slice(&fields.records_count.to_be_bytes());
    assert_eq!(out.len(), HEADER_BYTES);
    out.extend_from_slice(section);
    let crc = crc32c::crc32c(&out[batch::crc_start()..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], BatchError> {
    if n > bytes.len() {
        return Err(BatchError::Malformed("record field runs past the batch"));
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

/// Kafka's zig-zag varlong.
fn varint_raw(bytes: &mut &[u8]) -> Result<i64, BatchError> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let byte = take(bytes, 1)?[0];
        raw |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err(BatchError::Malformed("varint longer than 10 bytes"))
}

/// A length: non-negative and within what is left.
fn varint(bytes: &mut &[u8]) -> Result<usize, BatchError> {
    let n = varint_raw(bytes)?;
    if n < 0 || n as u64 > bytes.len() as u64 {
        return Err(BatchError::Malformed("length out of range"));
    }
    Ok(n as usize)
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
