//! Flush jobs: fsyncs outside the partition lock, the flushed offset, the
//! recovery point, poisoning on failure, and clean shutdown.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use eddy_log::{FlushDone, FlushJob, Log, LogError};

fn read_checkpoint(dir: &std::path::Path, name: &str) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    text.lines().nth(1)?.parse().ok()
}

#[test]
fn flush_jobs_run_on_another_thread_while_appends_continue() {
    fn assert_send<T: Send>() {}
    assert_send::<FlushJob>();
    assert_send::<FlushDone>();
    assert_send::<Log>();

    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(
        Log::open(dir.path(), small_config(), 0).unwrap(),
    ));
    assert!(
        log.lock().unwrap().flush_job().is_none(),
        "nothing to flush in a new log"
    );
    let flusher = {
        let log = log.clone();
        std::thread::spawn(move || {
            for _ in 0..50 {
                let job = log.lock().unwrap().flush_job();
                if let Some(job) = job {
                    let covered = job.offset();
                    let done = job.complete(); // no lock held
                    let mut log = log.lock().unwrap();
                    log.mark_flushed(done).unwrap();
                    assert!(log.flushed_offset() >= covered);
                }
                std::thread::yield_now();
            }
        })
    };
    let mut model = Model::default();
    for i in 0..200 {
        let mut log = log.lock().unwrap();
        append(&mut log, &mut model, batch(1, 30, i), 0);
        assert!(log.flushed_offset() <= log.log_end_offset());
    }
    flusher.join().unwrap();
    let mut log = Arc::try_unwrap(log).ok().unwrap().into_inner().unwrap();
    flush(&mut log);
    assert!(log.flush_job().is_none());
    let active_base = segment_files(dir.path(), "log")
        .last()
        .unwrap()
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    assert_eq!(
        read_checkpoint(dir.path(), "recovery-point"),
        Some(active_base)
    );
}

#[test]
fn failed_fsync_poisons_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    let mut model = Model::default();
    append(&mut log, &mut model, batch(1, 30, 0), 0);
    let job = log.flush_job().unwrap();
    let failure = std::io::Error::from_raw_os_error(5); // EIO
    assert!(matches!(
        log.mark_flushed(FlushDone::new(job, Err(failure))),
        Err(LogError::Io { .. })
    ));
    assert!(log.is_poisoned());
    assert_eq!(log.flushed_offset(), 0);
    assert!(matches!(
        log.append(&mut batch(1, 1, 0), 0, 0),
        Err(LogError::Poisoned)
    ));
    assert!(matches!(
        log.delete_records_before(1),
        Err(LogError::Poisoned)
    ));
    assert!(matches!(log.enforce_retention(0), Err(LogError::Poisoned)));
    assert!(
        log.flush_job().is_none(),
        "a poisoned log never claims durability"
    );
    assert!(log.read(0, 100, i64::MAX, true).is_ok());
    assert!(matches!(log.close(), Err(LogError::Poisoned)));
    assert!(
        !dir.path().join("clean-shutdown").exists(),
        "a poisoned log is not closed cleanly"
    );
    // Reopening recovers from disk.
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(read_all(&log), model.concat(0));
}

#[test]
fn clean_shutdown_is_trusted_and_unclean_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    let mut model = Model::default();
    for i in 0..20 {
        append(&mut log, &mut model, batch(2, 30, i), 0);
    }
    log.close().unwrap();
    assert!(dir.path().join("clean-shutdown").exists());
    assert_eq!(
        read_checkpoint(dir.path(), "recovery-point"),
        Some(model.end_offset())
    );
    // After a clean close the active segment is trusted, not scanned: a
    // corrupted batch in it is found by reads, not cut by open.
    let active = segment_files(dir.path(), "log").pop().unwrap();
    flip_bit(&active, 40, 0);
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    assert!(
        !dir.path().join("clean-shutdown").exists(),
        "open removes the marker"
    );
    assert_eq!(log.log_end_offset(), model.end_offset());
    assert_eq!(log.flushed_offset(), model.end_offset());
    let active_first = model
        .batch_containing(
            active
                .file_stem()
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap(),
        )
        .unwrap();
    assert!(matches!(
        log.read(model.header(active_first).base_offset, 100, i64::MAX, true),
        Err(LogError::Corrupt { .. })
    ));
    drop(log);
    // Unclean this time: the active segment is scanned and cut at the bad batch.
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(log.log_end_offset(), model.header(active_first).base_offset);
    assert_eq!(log.flushed_offset(), model.header(active_first).base_offset);
}

#[test]
fn delete_removes_the_directory_and_late_jobs_do_not_recreate_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topic-0");
    let mut log = Log::open(&path, small_config(), 0).unwrap();
    let mut model = Model::default();
    for i in 0..20 {
        append(&mut log, &mut model, batch(2, 30, i), 0);
    }
    let job = log.flush_job().unwrap();
    log.delete().unwrap();
    assert!(!path.exists());
    let _ = job.run(); // fails or does nothing; must not write a checkpoint
    assert!(!path.exists());
}
