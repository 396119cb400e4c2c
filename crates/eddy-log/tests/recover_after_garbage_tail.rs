//! Garbage after the last whole batch of the active segment (zeros from a
//! preallocating filesystem, random bytes, a stale batch with the wrong
//! offsets, a header claiming a huge length) is cut on recovery.

mod common;

use std::io::Write;

use common::*;
use eddy_log::{batch, Log};

fn garbage_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut rng = Rng::new(11);
    let mut huge_length = batch(1, 10, 0);
    huge_length[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    let mut stale = batch(2, 10, 0);
    batch::assign_offset(&mut stale, 3, 0); // valid CRC, wrong offsets
    let mut negative_length = batch(1, 10, 0);
    negative_length[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    vec![
        ("one zero byte", vec![0]),
        ("12 zero bytes", vec![0; 12]),
        ("a header's worth of zeros", vec![0; 61]),
        ("a page of zeros", vec![0; 4096]),
        ("random bytes", rng.bytes(333)),
        ("more random bytes", rng.bytes(5000)),
        ("stale batch with old offsets", stale),
        ("header claiming 2 GiB", huge_length),
        ("negative length", negative_length),
    ]
}

#[test]
fn recover_after_garbage_tail() {
    for (name, garbage) in garbage_cases() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
        let mut model = Model::default();
        for i in 0..25 {
            append(&mut log, &mut model, batch(2, 30, i), 0);
        }
        flush(&mut log);
        drop(log);
        let active = segment_files(dir.path(), "log").pop().unwrap();
        let valid_bytes = std::fs::metadata(&active).unwrap().len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&active)
            .unwrap()
            .write_all(&garbage)
            .unwrap();

        let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
        assert_eq!(log.log_end_offset(), model.end_offset(), "{name}");
        assert_eq!(read_all(&log), model.concat(0), "{name}");
        assert_eq!(
            std::fs::metadata(&active).unwrap().len(),
            valid_bytes,
            "{name}: garbage cut"
        );
        append(&mut log, &mut model, batch(1, 3, 100), 0);
        assert_eq!(read_all(&log), model.concat(0), "{name}");
    }
}

#[test]
fn garbage_only_segment_recovers_empty() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    drop(log);
    let active = segment_files(dir.path(), "log").pop().unwrap();
    std::fs::write(&active, Rng::new(3).bytes(1000)).unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!((log.log_end_offset(), log.size_bytes()), (0, 0));
    let mut model = Model::default();
    append(&mut log, &mut model, batch(1, 3, 1), 0);
    assert_eq!(read_all(&log), model.concat(0));
}
