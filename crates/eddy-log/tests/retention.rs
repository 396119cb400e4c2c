//! Time and size retention, and rolling by `segment.ms`.

mod common;

use common::*;
use eddy_log::{Log, LogConfig};

const HOUR_MS: i64 = 3_600_000;

#[test]
fn retention_by_time_deletes_whole_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 10 * HOUR_MS,
        ..small_config()
    };
    let mut log = Log::open(dir.path(), config.clone(), 0).unwrap();
    let mut model = Model::default();
    // Batch i is stamped at hour i; ~5 batches per segment.
    for i in 0..40 {
        append(
            &mut log,
            &mut model,
            batch(1, 120, i * HOUR_MS),
            i * HOUR_MS,
        );
    }
    let segments = log.segment_count();
    let now = 45 * HOUR_MS;
    // Kept: segments whose newest batch is at most 10 hours old (hour >= 35).
    let deleted = log.enforce_retention(now).unwrap();
    assert!(deleted > 0);
    assert_eq!(log.segment_count(), segments - deleted);
    let start = log.log_start_offset();
    let first_kept = model.batch_containing(start).unwrap();
    assert_eq!(
        model.header(first_kept).base_offset,
        start,
        "start is a segment base"
    );
    assert!(first_kept > 0);
    // The segment before the first kept one was expired; the kept one holds a batch newer than the cutoff.
    assert!(model.header(first_kept - 1).max_timestamp < now - 10 * HOUR_MS);
    let newest_in_first_kept = (first_kept..model.batches.len())
        .take_while(|&i| model.header(i).base_offset < start + 100)
        .map(|i| model.header(i).max_timestamp)
        .max()
        .unwrap();
    assert!(newest_in_first_kept >= now - 10 * HOUR_MS);
    assert_eq!(read_all(&log), model.concat(first_kept));
    assert!(matches!(
        log.read(start - 1, 100, i64::MAX, true),
        Err(eddy_log::LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.enforce_retention(now).unwrap(), 0, "idempotent");

    drop(log); // unclean: the start offset was persisted
    let log = Log::open(dir.path(), config, now).unwrap();
    assert_eq!(log.log_start_offset(), start);
    assert_eq!(read_all(&log), model.concat(first_kept));
}

#[test]
fn retention_by_time_rolls_and_deletes_an_expired_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: HOUR_MS,
        segment_bytes: 1 << 20,
        ..small_config()
    };
    let mut log = Log::open(dir.path(), config, 0).unwrap();
    let mut model = Model::default();
    for i in 0..5 {
        append(&mut log, &mut model, batch(1, 10, i), 0);
    }
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.enforce_retention(2 * HOUR_MS).unwrap(), 1);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.size_bytes()
        ),
        (5, 5, 0)
    );
    append(&mut log, &mut model, batch(1, 10, 2 * HOUR_MS), 2 * HOUR_MS);
    assert_eq!(
        log.read(5, 1000, i64::MAX, true).unwrap().records,
        model.batches[5]
    );
}

#[test]
fn infinite_retention_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: -1,
        retention_bytes: -1,
        ..small_config()
    };
    let mut log = Log::open(dir.path(), config, 0).unwrap();
    let mut model = Model::default();
    for i in 0..30 {
        append(&mut log, &mut model, batch(1, 100, i), 0);
    }
    assert_eq!(log.enforce_retention(i64::MAX / 2).unwrap(), 0);
    assert_eq!(read_all(&log), model.concat(0));
}

#[test]
fn retention_by_size_keeps_at_least_retention_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 3000,
        ..small_config()
    };
    let mut log = Log::open(dir.path(), config, 0).unwrap();
    let mut model = Model::default();
    for i in 0..60 {
        append(&mut log, &mut model, batch(1, 100, i), 0);
    }
    let before = log.size_bytes();
    assert!(before > 6000);
    let deleted = log.enforce_retention(0).unwrap();
    assert!(deleted > 0);
    let after = log.size_bytes();
    assert!(after >= 3000, "size {after} dropped below retention.bytes");
    assert!(
        after < 3000 + 1024,
        "size {after}: one more segment could have gone"
    );
    let first = model.batch_containing(log.log_start_offset()).unwrap();
    assert_eq!(read_all(&log), model.concat(first));
    assert_eq!(log.enforce_retention(0).unwrap(), 0);
}

#[test]
fn segment_roll_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: HOUR_MS,
        segment_bytes: 1 << 20,
        ..small_config()
    };
    let mut log = Log::open(dir.path(), config.clone(), 0).unwrap();
    let mut model = Model::default();
    let t0 = 1_000 * HOUR_MS;
    append(&mut log, &mut model, batch(1, 10, t0), t0);
    append(&mut log, &mut model, batch(1, 10, t0), t0 + HOUR_MS);
    assert_eq!(log.segment_count(), 1, "not older than segment.ms yet");
    append(&mut log, &mut model, batch(1, 10, t0), t0 + HOUR_MS + 1);
    assert_eq!(log.segment_count(), 2, "rolled once older than segment.ms");

    // enforce_retention rolls an expired active segment without an append.
    assert_eq!(log.enforce_retention(t0 + 2 * HOUR_MS + 1).unwrap(), 0);
    assert_eq!(
        log.segment_count(),
        2,
        "the clock starts at the segment's first append"
    );
    assert_eq!(log.enforce_retention(t0 + 2 * HOUR_MS + 2).unwrap(), 0);
    assert_eq!(log.segment_count(), 3);
    // An empty active segment never rolls.
    assert_eq!(log.enforce_retention(t0 + 100 * HOUR_MS).unwrap(), 0);
    assert_eq!(log.segment_count(), 3);

    // After a restart the clock of a non-empty active segment is its first batch's timestamp.
    let t1 = t0 + 200 * HOUR_MS;
    append(&mut log, &mut model, batch(1, 10, t1), t1);
    log.close().unwrap();
    let mut log = Log::open(dir.path(), config, t1 + HOUR_MS / 2).unwrap();
    append(&mut log, &mut model, batch(1, 10, t1), t1 + HOUR_MS);
    assert_eq!(
        log.segment_count(),
        3,
        "the empty active segment took the batch at t1"
    );
    append(&mut log, &mut model, batch(1, 10, t1), t1 + HOUR_MS + 1);
    assert_eq!(
        log.segment_count(),
        4,
        "rolled by the first batch's timestamp, not the reopen time"
    );
    assert_eq!(read_all(&log), model.concat(0));
}
