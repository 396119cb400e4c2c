//! Shared by the compaction tests: a keyed workload with tombstones,
//! compressed batches and an idempotent producer, a reference of what it
//! wrote, and a whole-log reader that decodes every record with its offset
//! (independently of the cleaner's own record parser).
#![allow(dead_code)]

use std::collections::BTreeMap;

use eddy_log::batch::{self, encode_batch, SimpleRecord};
use eddy_log::compression;
use eddy_log::{DirtyRatio, Log, LogConfig};

#[path = "../common/mod.rs"]
mod common;
pub use common::Rng;

pub const DELETE_RETENTION_MS: i64 = 10_000;
pub const T0_MS: i64 = 1_700_000_000_000;

/// One record as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

pub fn compact_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        retention_ms: -1,
        cleanup_delete: false,
        cleanup_compact: true,
        delete_retention_ms: DELETE_RETENTION_MS,
        min_cleanable_dirty_ratio: DirtyRatio::new(0.01).unwrap(),
        ..LogConfig::default()
    }
}

/// Everything appended, by offset.
#[derive(Default)]
pub struct Written {
    pub records: Vec<Rec>,
    /// (base offset, last sequence) of each batch of producer id 7.
    pub producer_batches: Vec<(i64, i32)>,
    /// Producer id 7's next sequence.
    sequence: i32,
}

impl Written {
    pub fn at(&self, offset: i64) -> &Rec {
        let i = self
            .records
            .binary_search_by_key(&offset, |r| r.offset)
            .unwrap();
        &self.records[i]
    }
}

/// Appends `batches` random batches of 1-5 records with keys from
/// `key_count` keys; `tombstone_percent` of them are tombstones. About a
/// third of the batches are compressed (each codec in turn) and a fifth
/// come from an idempotent producer.
pub fn append_workload(
    log: &mut Log,
    written: &mut Written,
    rng: &mut Rng,
    batches: usize,
    key_count: u64,
    tombstone_percent: u64,
    now_ms: i64,
) {
    let codecs = [
        compression::GZIP,
        compression::SNAPPY,
        compression::LZ4,
        compression::ZSTD,
    ];
    for i in 0..batches {
        let count = 1 + rng.below(5) as usize;
        let records: Vec<SimpleRecord> = (0..count)
            .map(|_| {
                let key = format!("key-{}", rng.below(key_count)).into_bytes();
                let tombstone = rng.below(100) < tombstone_percent;
                let len = 1 + rng.below(40) as usize;
                SimpleRecord {
                    timestamp_delta_ms: rng.below(5) as i64,
                    key: Some(key),
                    value: (!tombstone).then(|| rng.bytes(len)),
                    headers: vec![("h".into(), Some(vec![i as u8]))],
                }
            })
            .collect();
        let idempotent = rng.below(5) == 0;
        let (pid, epoch, seq) = if idempotent {
            (7, 0, written.sequence)
        } else {
            (-1, -1, -1)
        };
        let mut bytes = encode_batch(&records, now_ms, pid, epoch, seq);
        if idempotent {
            written.sequence += count as i32;
        }
        if rng.below(3) == 0 {
            let codec = codecs[rng.below(4) as usize];
            bytes = batch::recompress(&bytes, codec, 1 << 20).unwrap();
        }
        let info = log.append(&mut bytes, 0, now_ms).unwrap();
        if idempotent {
            written
                .producer_batches
                .push((info.base_offset, written.sequence - 1));
        }
        for (j, r) in records.into_iter().enumerate() {
            written.records.push(Rec {
                offset: info.base_offset + j as i64,
                key: r.key,
                value: r.value,
            });
        }
    }
}

/// What should survive a cleaning whose map ended at `end` (all offsets
/// below it lie in rewritten segments): below `end`, the latest record of
/// each key, tombstones only if `keep_tombstone(offset)`; from `end` on,
/// everything.
pub fn expected(written: &Written, end: i64, keep_tombstone: impl Fn(i64) -> bool) -> Vec<Rec> {
    let mut latest: BTreeMap<&[u8], i64> = BTreeMap::new();
    for r in written.records.iter().filter(|r| r.offset < end) {
        latest.insert(r.key.as_deref().unwrap(), r.offset);
    }
    written
        .records
        .iter()
        .filter(|r| {
            r.offset >= end
                || (latest[r.key.as_deref().unwrap()] == r.offset
                    && (r.value.is_some() || keep_tombstone(r.offset)))
        })
        .cloned()
        .collect()
}

/// Every record of the log from its start, each batch CRC-checked, by
/// chained reads of `max_bytes`. Checks that offsets strictly increase
/// and lie within their batch.
pub fn read_records(log: &Log, max_bytes: usize) -> Vec<Rec> {
    let mut out: Vec<Rec> = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, max_bytes, i64::MAX, true).unwrap();
        if read.records.is_empty() {
            break;
        }
        for one in batch::split(&read.records) {
            let one = one.unwrap();
            let header = batch::validate_stored(one).unwrap();
            for r in decode_with_offsets(one) {
                assert!(r.offset >= header.base_offset && r.offset <= header.last_offset());
                if r.offset >= offset {
                    assert!(
                        out.last().is_none_or(|l| l.offset < r.offset),
                        "offsets increase"
                    );
                    out.push(r);
                }
            }
            offset = offset.max(header.next_offset());
        }
    }
    out
}

/// The records of one stored batch with their offsets.
pub fn decode_with_offsets(one: &[u8]) -> Vec<Rec> {
    let (header, section) = batch::records_bytes(one, 64 << 20).unwrap();
    let mut bytes = &section[..];
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = varint(&mut bytes) as usize;
        let (mut rec, rest) = bytes.split_at(len);
        bytes = rest;
        rec = &rec[1..];
        varint(&mut rec);
        let delta = varint(&mut rec);
        let key = nullable(&mut rec);
        let value = nullable(&mut rec);
        out.push(Rec {
            offset: header.base_offset + delta,
            key,
            value,
        });
    }
    assert_eq!(out.len(), header.records_count as usize);
    out
}

fn varint(bytes: &mut &[u8]) -> i64 {
    let mut raw = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[0];
        *bytes = &bytes[1..];
        raw |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return ((raw >> 1) as i64) ^ -((raw & 1) as i64);
        }
        shift += 7;
    }
}

fn nullable(bytes: &mut &[u8]) -> Option<Vec<u8>> {
    let n = varint(bytes);
    if n < 0 {
        return None;
    }
    let (v, rest) = bytes.split_at(n as usize);
    *bytes = rest;
    Some(v.to_vec())
}
