//! Helpers shared by the scenario tests: batch builders, a tiny seeded
//! PRNG (no `rand` dependency), and whole-log readers.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use eddy_log::batch::{self, encode_batch, BatchHeader, SimpleRecord};
use eddy_log::{Log, LogConfig, LogError};

/// xorshift64*: deterministic, seedable, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// A batch of `count` records with `value_bytes`-long values, keys and a
/// header, all timestamps at `timestamp_ms`.
pub fn batch(count: usize, value_bytes: usize, timestamp_ms: i64) -> Vec<u8> {
    let records: Vec<SimpleRecord> = (0..count)
        .map(|i| SimpleRecord {
            timestamp_delta_ms: 0,
            key: Some(format!("key-{i}").into_bytes()),
            value: Some(vec![b'a' + (i % 26) as u8; value_bytes]),
            headers: vec![("h".to_string(), Some(vec![i as u8]))],
        })
        .collect();
    encode_batch(&records, timestamp_ms, -1, -1, -1)
}

/// Small segments and a dense index so a few KiB exercise rolls and lookups.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// What the log should hold: each batch as stored (offsets assigned).
#[derive(Default, Clone)]
pub struct Model {
    pub batches: Vec<Vec<u8>>,
}

impl Model {
    pub fn header(&self, i: usize) -> BatchHeader {
        batch::validate(&self.batches[i]).unwrap()
    }
    pub fn end_offset(&self) -> i64 {
        self.batches
            .last()
            .map_or(0, |b| batch::validate(b).unwrap().next_offset())
    }
    /// Index of the batch containing `offset`.
    pub fn batch_containing(&self, offset: i64) -> Option<usize> {
        (0..self.batches.len()).find(|&i| {
            let h = self.header(i);
            h.base_offset <= offset && offset < h.next_offset()
        })
    }
    pub fn concat(&self, from: usize) -> Vec<u8> {
        self.batches[from..].concat()
    }
}

/// Appends `bytes` and records the stored form in `model`.
pub fn append(log: &mut Log, model: &mut Model, mut bytes: Vec<u8>, now_ms: i64) {
    let info = log.append(&mut bytes, 7, now_ms).unwrap();
    assert_eq!(info.base_offset, model.end_offset());
    model.batches.push(bytes);
}

/// Every batch from `from_offset` to the end, by chained reads.
pub fn read_all_from(log: &Log, from_offset: i64) -> Result<Vec<u8>, LogError> {
    let mut out = Vec::new();
    let mut offset = from_offset;
    while offset < log.log_end_offset() {
        let read = log.read(offset, 700, i64::MAX, true)?;
        assert!(!read.records.is_empty(), "no progress at offset {offset}");
        for one in batch::split(&read.records) {
            offset = batch::validate(one.unwrap()).unwrap().next_offset();
        }
        out.extend_from_slice(&read.records);
    }
    Ok(out)
}

pub fn read_all(log: &Log) -> Vec<u8> {
    read_all_from(log, log.log_start_offset()).unwrap()
}

/// Runs a flush job to completion, as the broker's flusher does.
pub fn flush(log: &mut Log) {
    if let Some(job) = log.flush_job() {
        let done = job.complete();
        log.mark_flushed(done).unwrap();
    }
    assert_eq!(log.flushed_offset(), log.log_end_offset());
}

pub fn segment_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == suffix))
        .collect();
    files.sort();
    files
}

/// Copies a partition directory (to reopen the same crash state many times).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Flips one bit of a file in place.
pub fn flip_bit(path: &Path, byte: u64, bit: u8) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    file.read_exact_at(&mut b, byte).unwrap();
    b[0] ^= 1 << bit;
    file.write_all_at(&b, byte).unwrap();
}
