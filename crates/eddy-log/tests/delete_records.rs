//! DeleteRecords moves the log start durably and drops whole segments below it.

mod common;

use common::*;
use eddy_log::{Log, LogError};

#[test]
fn delete_records_before_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    let mut model = Model::default();
    for i in 0..50 {
        append(&mut log, &mut model, batch(2, 50, i), 0);
    }
    let segments = log.segment_count();
    let end = log.log_end_offset();
    let out_of_range =
        |r: Result<i64, LogError>| matches!(r, Err(LogError::OffsetOutOfRange { .. }));
    assert!(out_of_range(log.delete_records_before(end + 1)));
    assert!(out_of_range(log.delete_records_before(-1)));

    // Inside a batch, in the middle of the log.
    let start = model.header(30).base_offset + 1;
    assert_eq!(log.delete_records_before(start).unwrap(), start);
    assert_eq!(log.log_start_offset(), start);
    assert!(
        log.segment_count() < segments,
        "segments wholly below were deleted"
    );
    assert!(out_of_range(
        log.read(start - 1, 100, i64::MAX, true).map(|_| 0)
    ));
    // The read at the start returns the batch containing it (Kafka does too).
    assert_eq!(
        log.read(start, 1, i64::MAX, true).unwrap().records,
        model.batches[30]
    );
    assert_eq!(
        log.delete_records_before(start - 5).unwrap(),
        start,
        "never moves back"
    );
    assert_eq!(read_all(&log), model.concat(30));

    drop(log); // unclean
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(log.log_start_offset(), start);
    assert_eq!(read_all(&log), model.concat(30));
    log.close().unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(log.log_start_offset(), start);

    // Up to the end: the log is empty but keeps its end offset.
    assert_eq!(log.delete_records_before(end).unwrap(), end);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (end, end));
    assert!(log
        .read(end, 100, i64::MAX, true)
        .unwrap()
        .records
        .is_empty());
    append(&mut log, &mut model, batch(1, 1, 1), 0);
    drop(log);
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(log.log_start_offset(), end);
    assert_eq!(read_all(&log), model.batches.last().unwrap().clone());
}

#[test]
fn start_past_a_lost_tail_restarts_empty_at_the_start() {
    // DeleteRecords to an offset that was never flushed, then a crash that
    // loses those batches: the log restarts empty at the persisted start.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    let mut model = Model::default();
    for i in 0..10 {
        append(&mut log, &mut model, batch(2, 50, i), 0);
    }
    log.delete_records_before(20).unwrap();
    drop(log);
    for path in segment_files(dir.path(), "log") {
        std::fs::write(path, []).unwrap();
    }
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (20, 20));
    let info = log.append(&mut batch(1, 1, 1), 0, 0).unwrap();
    assert_eq!(info.base_offset, 20);
}
