//! ListOffsets by timestamp and MAX_TIMESTAMP, across segments, after
//! DeleteRecords and after reopening.

mod common;

use common::*;
use eddy_log::Log;

/// Brute force over the model: first batch at or after `log_start` whose
/// max timestamp reaches `target`.
fn expected(model: &Model, log_start: i64, target: i64) -> Option<(i64, i64)> {
    (0..model.batches.len())
        .map(|i| model.header(i))
        .filter(|h| h.next_offset() > log_start)
        .find(|h| h.max_timestamp >= target)
        .map(|h| (h.base_offset.max(log_start), h.max_timestamp))
}

fn check_all(log: &Log, model: &Model) {
    for target in -5..1_300 {
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            expected(model, log.log_start_offset(), target),
            "ts {target}"
        );
    }
}

#[test]
fn offset_for_timestamp_matches_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    let mut model = Model::default();
    let mut rng = Rng::new(9);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
    assert_eq!(log.max_timestamp(), None);
    for i in 0..150 {
        // Mostly rising timestamps with jitter, some going back in time.
        let ts = i * 8 + rng.below(40) as i64 - 20;
        append(
            &mut log,
            &mut model,
            batch(1 + rng.below(3) as usize, 20, ts),
            0,
        );
    }
    assert!(log.segment_count() > 5);
    check_all(&log, &model);
    let max = (0..model.batches.len())
        .map(|i| model.header(i))
        .max_by_key(|h| (h.max_timestamp, -h.base_offset))
        .unwrap();
    assert_eq!(
        log.max_timestamp(),
        Some((max.max_timestamp, max.base_offset))
    );

    // Inside the first segment and inside a batch: the answer never precedes the start.
    let start = model.header(3).base_offset + 1;
    log.delete_records_before(start).unwrap();
    check_all(&log, &model);
    log.delete_records_before(model.header(60).base_offset)
        .unwrap();
    check_all(&log, &model);

    log.close().unwrap();
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    check_all(&log, &model);
    assert_eq!(
        log.max_timestamp(),
        Some((max.max_timestamp, max.base_offset))
    );
    drop(log);
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    check_all(&log, &model);
}
