//! Index files are derived data: deleted, truncated or junk-filled ones
//! are rebuilt at open, identical to what appends wrote.

mod common;

use std::path::Path;

use common::*;
use eddy_log::batch::{encode_batch, SimpleRecord};
use eddy_log::Log;

/// A closed log whose batches have varied, non-monotonic timestamps.
fn closed_log(dir: &Path) -> Model {
    let mut log = Log::open(dir, small_config(), 0).unwrap();
    let mut model = Model::default();
    let mut rng = Rng::new(5);
    for _ in 0..120 {
        let records: Vec<SimpleRecord> = (0..1 + rng.below(3))
            .map(|_| {
                let len = rng.below(50) as usize;
                SimpleRecord {
                    value: Some(rng.bytes(len)),
                    ..Default::default()
                }
            })
            .collect();
        let ts = 10_000 + rng.below(5_000) as i64;
        append(
            &mut log,
            &mut model,
            encode_batch(&records, ts, -1, -1, -1),
            0,
        );
    }
    log.close().unwrap();
    model
}

fn index_contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = segment_files(dir, "index");
    files.extend(segment_files(dir, "timeindex"));
    files
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_str().unwrap().to_string(),
                std::fs::read(p).unwrap(),
            )
        })
        .collect()
}

/// Reads at every offset and timestamp lookups agree with the model.
fn check_lookups(log: &Log, model: &Model) {
    for offset in 0..model.end_offset() {
        let first = model.batch_containing(offset).unwrap();
        let read = log.read(offset, 1, i64::MAX, true).unwrap();
        assert_eq!(read.records, model.batches[first], "offset {offset}");
    }
    for target in (9_990..15_010).step_by(7) {
        let expected = (0..model.batches.len())
            .map(|i| model.header(i))
            .find(|h| h.max_timestamp >= target)
            .map(|h| (h.base_offset, h.max_timestamp));
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            expected,
            "ts {target}"
        );
    }
}

fn damage_and_check(damage: impl Fn(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let model = closed_log(dir.path());
    let original = index_contents(dir.path());
    assert!(
        original.iter().any(|(_, bytes)| bytes.len() > 16),
        "indexes have entries"
    );
    for path in segment_files(dir.path(), "index")
        .into_iter()
        .chain(segment_files(dir.path(), "timeindex"))
    {
        damage(&path);
    }
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    check_lookups(&log, &model);
    log.close().unwrap();
    assert_eq!(
        index_contents(dir.path()),
        original,
        "rebuilt indexes equal the originals"
    );
}

#[test]
fn lookups_work_on_intact_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let model = closed_log(dir.path());
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    check_lookups(&log, &model);
}

#[test]
fn rebuild_deleted_indexes() {
    damage_and_check(|p| std::fs::remove_file(p).unwrap());
}

#[test]
fn rebuild_indexes_filled_with_random_junk() {
    damage_and_check(|p| {
        let len = std::fs::metadata(p).unwrap().len().max(24) as usize;
        std::fs::write(p, Rng::new(len as u64).bytes(len)).unwrap();
    });
}

#[test]
fn rebuild_indexes_filled_with_zeros() {
    damage_and_check(|p| {
        let len = std::fs::metadata(p).unwrap().len().max(24) as usize;
        std::fs::write(p, vec![0; len]).unwrap();
    });
}

#[test]
fn rebuild_indexes_with_torn_length() {
    damage_and_check(|p| {
        let bytes = std::fs::read(p).unwrap();
        std::fs::write(p, [&bytes[..], &[1, 2, 3]].concat()).unwrap();
    });
}

#[test]
fn rebuild_index_pointing_past_the_segment() {
    damage_and_check(|p| {
        if p.extension().unwrap() == "index" {
            let mut bytes = std::fs::read(p).unwrap();
            bytes.extend_from_slice(&u32::MAX.to_be_bytes());
            bytes.extend_from_slice(&u32::MAX.to_be_bytes());
            std::fs::write(p, bytes).unwrap();
        }
    });
}

#[test]
fn emptied_time_index_is_rebuilt() {
    // A zero-length time index is well formed but impossible for a segment
    // with data (the seal entry is missing): it must be rebuilt, else the
    // segment's max timestamp would be lost.
    damage_and_check(|p| {
        if p.extension().unwrap() == "timeindex" {
            std::fs::write(p, []).unwrap();
        }
    });
}
