//! A flipped bit in stored data is never served: the batch fails its CRC
//! (or offset) check on read, the segment is fenced from that batch on, and
//! the good batches before it stay readable.

mod common;

use std::path::Path;

use common::*;
use eddy_log::{batch, Log, LogError};

/// A flushed log over several segments; returns it with its model.
fn flushed_log(dir: &Path) -> (Log, Model) {
    let mut log = Log::open(dir, small_config(), 0).unwrap();
    let mut model = Model::default();
    for i in 0..40 {
        append(&mut log, &mut model, batch(2, 40, i), 0);
    }
    flush(&mut log);
    (log, model)
}

/// File path and position of batch `i` in its segment.
fn locate(dir: &Path, model: &Model, i: usize) -> (std::path::PathBuf, u64) {
    let base = model.header(i).base_offset;
    let logs = segment_files(dir, "log");
    let bases: Vec<i64> = logs
        .iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
        .collect();
    let seg = bases.iter().rposition(|&b| b <= base).unwrap();
    let position = (0..i)
        .filter(|&j| model.header(j).base_offset >= bases[seg])
        .map(|j| model.batches[j].len() as u64)
        .sum();
    (logs[seg].clone(), position)
}

fn is_corrupt<T: std::fmt::Debug>(r: Result<T, LogError>) -> bool {
    matches!(r, Err(LogError::Corrupt { .. }))
}

/// Batch `bad` is corrupt: it is never returned, earlier ones are.
fn check_fenced(log: &Log, model: &Model, bad: usize) {
    let bad_offset = model.header(bad).base_offset;
    assert!(is_corrupt(log.read(bad_offset, 1 << 20, i64::MAX, true)));
    assert!(is_corrupt(log.read(
        bad_offset + 1,
        1 << 20,
        i64::MAX,
        true
    )));
    // A read from the start returns the good prefix and stops before the bad batch.
    let mut offset = 0;
    let mut got = Vec::new();
    loop {
        match log.read(offset, 1000, i64::MAX, true) {
            Ok(read) => {
                assert!(!read.records.is_empty());
                for one in batch::split(&read.records) {
                    offset = batch::validate(one.unwrap()).unwrap().next_offset();
                }
                got.extend_from_slice(&read.records);
            }
            Err(LogError::Corrupt { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, model.batches[..bad].concat());
    assert!(is_corrupt(log.headers_from(0)));
    // Later segments are unaffected.
    let (bad_file, _) = locate(log.dir(), model, bad);
    if let Some(later) =
        (bad..model.batches.len()).find(|&j| locate(log.dir(), model, j).0 != bad_file)
    {
        let read = log
            .read(model.header(later).base_offset, 1 << 20, i64::MAX, true)
            .unwrap();
        assert!(read.records.starts_with(&model.batches[later]));
    }
}

#[test]
fn bit_flip_in_sealed_segment_below_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let (log, model) = flushed_log(dir.path());
    drop(log); // unclean, but these segments are below the recovery point: trusted, not scanned
               // The third batch of the second segment; flip a bit in its value.
    let logs = segment_files(dir.path(), "log");
    let second_base: i64 = logs[1]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bad = (0..model.batches.len())
        .find(|&i| model.header(i).base_offset == second_base)
        .unwrap()
        + 2;
    let (file, position) = locate(dir.path(), &model, bad);
    flip_bit(&file, position + model.batches[bad].len() as u64 - 5, 3);

    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(
        log.log_end_offset(),
        model.end_offset(),
        "a trusted segment is not cut"
    );
    check_fenced(&log, &model, bad);
    check_fenced(&log, &model, bad); // and stays fenced
}

#[test]
fn bit_flip_in_active_segment_of_an_open_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, mut model) = flushed_log(dir.path());
    let bad = model.batches.len() - 2;
    let (file, position) = locate(dir.path(), &model, bad);
    assert_eq!(&file, segment_files(dir.path(), "log").last().unwrap());
    flip_bit(&file, position + 30, 0); // inside the CRC-covered header fields
    check_fenced(&log, &model, bad);
    // New appends go to a fresh segment and are served.
    let segments = log.segment_count();
    append(&mut log, &mut model, batch(1, 5, 100), 0);
    assert_eq!(log.segment_count(), segments + 1);
    let last = model.batches.len() - 1;
    let read = log
        .read(model.header(last).base_offset, 1 << 20, i64::MAX, true)
        .unwrap();
    assert_eq!(read.records, model.batches[last]);
}

#[test]
fn bit_flip_in_offset_field_is_caught_by_the_sequence_check() {
    // base_offset lies outside the CRC; the offset sequence check guards it.
    let dir = tempfile::tempdir().unwrap();
    let (log, model) = flushed_log(dir.path());
    let bad = 5;
    let (file, position) = locate(dir.path(), &model, bad);
    flip_bit(&file, position + 7, 1);
    check_fenced(&log, &model, bad);
}

#[test]
fn bit_flip_above_recovery_point_is_cut_by_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let (log, model) = flushed_log(dir.path());
    drop(log);
    // The active segment is above the recovery point: it is scanned, and
    // the log ends before the corrupt batch.
    let bad = model.batches.len() - 2;
    let (file, position) = locate(dir.path(), &model, bad);
    flip_bit(&file, position + 70, 6);
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(log.log_end_offset(), model.header(bad).base_offset);
    assert_eq!(read_all(&log), model.batches[..bad].concat());
}
