//! Truncation drops everything from an offset on, durably, and appends
//! carry on from the new end.

mod common;

use common::*;
use eddy_log::Log;

fn filled(dir: &std::path::Path) -> (Log, Model) {
    let mut log = Log::open(dir, small_config(), 0).unwrap();
    let mut model = Model::default();
    for i in 0..60 {
        append(&mut log, &mut model, batch(3, 40, i), 0);
    }
    flush(&mut log);
    (log, model)
}

#[test]
fn truncate_to_every_batch_boundary_and_inside_batches() {
    let template_dir = tempfile::tempdir().unwrap();
    let (log, model) = filled(template_dir.path());
    log.close().unwrap();
    for i in (0..60).step_by(7).chain([59]) {
        for delta in [0, 1, 2] {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(template_dir.path(), dir.path());
            let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
            let offset = model.header(i).base_offset + delta;
            log.truncate_to(offset).unwrap();
            // Inside a batch, the whole batch goes.
            let mut expected = Model {
                batches: model.batches[..i].to_vec(),
            };
            assert_eq!(log.log_end_offset(), expected.end_offset());
            assert_eq!(read_all(&log), expected.concat(0));
            assert!(log.flushed_offset() <= log.log_end_offset());
            append(&mut log, &mut expected, batch(1, 9, 1000), 0);
            flush(&mut log);
            assert_eq!(read_all(&log), expected.concat(0));
            drop(log);
            let log = Log::open(dir.path(), small_config(), 0).unwrap();
            assert_eq!(
                read_all(&log),
                expected.concat(0),
                "truncate to {offset}, reopened"
            );
            assert_eq!(
                log.offset_for_timestamp(1000).unwrap().map(|(o, _)| o),
                Some(expected.header(i).base_offset)
            );
        }
    }
}

#[test]
fn truncate_below_log_start_restarts_there() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, model) = filled(dir.path());
    let start = model.header(20).base_offset;
    log.delete_records_before(start).unwrap();
    log.truncate_to(start - 10).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (start - 10, start - 10)
    );
    assert_eq!(log.segment_count(), 1);
    let info = log.append(&mut batch(1, 1, 1), 0, 0).unwrap();
    assert_eq!(info.base_offset, start - 10);
    drop(log);
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (start - 10, start - 9)
    );
}

#[test]
fn stale_flush_job_after_truncation_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut log, mut model) = filled(dir);
    let tail = model.end_offset();
    for i in 0..20 {
        append(&mut log, &mut model, batch(3, 40, i), 0);
    }
    let job = log.flush_job().unwrap();
    assert_eq!(job.offset(), model.end_offset());
    log.truncate_to(tail).unwrap();
    model.batches.truncate(60);
    for i in 0..5 {
        append(&mut log, &mut model, batch(1, 1, i), 0);
    }
    let done = job.complete();
    log.mark_flushed(done).unwrap();
    // The job covered offsets that now name other (unsynced) data.
    assert_eq!(log.flushed_offset(), tail);
    flush(&mut log);
    drop(log);
    let log = Log::open(dir, small_config(), 0).unwrap();
    assert_eq!(read_all(&log), model.concat(0));
}
