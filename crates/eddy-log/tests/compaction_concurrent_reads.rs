//! Reading while the cleaner runs: a reader thread fetches from random
//! offsets with random sizes, taking the log's lock per read as the broker
//! does, while the main thread appends and runs cleaning passes whose
//! expensive phase (`CleanPlan::build`) holds no lock. Every read must
//! decode, pass its CRC, and return each record exactly as it was written
//! at that offset: old segments or new, never a torn file.

mod compaction_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use compaction_support::*;
use eddy_log::batch;
use eddy_log::cleaner::CleanerLimits;
use eddy_log::Log;

struct Shared {
    log: Log,
    by_offset: BTreeMap<i64, Rec>,
}

/// One read, checked against what was written; returns records seen.
fn checked_read(shared: &Shared, rng: &mut Rng) -> usize {
    let (start, end) = (shared.log.log_start_offset(), shared.log.log_end_offset());
    let offset = start + rng.below((end - start).max(1) as u64) as i64;
    let max_bytes = 1 + rng.below(64 * 1024) as usize;
    let read = shared.log.read(offset, max_bytes, i64::MAX, true).unwrap();
    let mut previous = i64::MIN;
    let mut seen = 0;
    for (i, one) in batch::split(&read.records).enumerate() {
        let one = one.unwrap();
        let header = batch::validate_stored(one).unwrap();
        assert!(header.base_offset > previous, "batches in offset order");
        if i == 0 {
            // The batch holding `offset`, or the next surviving one.
            assert!(
                header.next_offset() > offset,
                "first batch ends past {offset}"
            );
        }
        for r in decode_with_offsets(one) {
            assert!(r.offset > previous, "offsets increase");
            assert_eq!(&r, &shared.by_offset[&r.offset], "record at {}", r.offset);
            previous = r.offset;
            seen += 1;
        }
        previous = previous.max(header.last_offset());
    }
    seen
}

fn append_more(shared: &Mutex<Shared>, rng: &mut Rng, written: &mut Written, batches: usize) {
    let mut guard = shared.lock().unwrap();
    let before = written.records.len();
    append_workload(&mut guard.log, written, rng, batches, 60, 10, T0_MS);
    for r in &written.records[before..] {
        guard.by_offset.insert(r.offset, r.clone());
    }
}

#[test]
fn reads_stay_consistent_while_the_cleaner_runs() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), compact_config(16 * 1024), T0_MS).unwrap();
    let shared = Arc::new(Mutex::new(Shared {
        log,
        by_offset: BTreeMap::new(),
    }));
    let mut rng = Rng::new(2024);
    let mut written = Written::default();
    append_more(&shared, &mut rng, &mut written, 3000);

    let stop = Arc::new(AtomicBool::new(false));
    let building = Arc::new(AtomicBool::new(false));
    let reads_during_build = Arc::new(AtomicU64::new(0));
    let reader = {
        let (shared, stop) = (shared.clone(), stop.clone());
        let (building, during) = (building.clone(), reads_during_build.clone());
        std::thread::spawn(move || {
            let mut rng = Rng::new(99);
            let (mut reads, mut records) = (0u64, 0usize);
            while !stop.load(Ordering::Acquire) {
                let was_building = building.load(Ordering::Acquire);
                records += checked_read(&shared.lock().unwrap(), &mut rng);
                if was_building && building.load(Ordering::Acquire) {
                    during.fetch_add(1, Ordering::Relaxed);
                }
                reads += 1;
            }
            (reads, records)
        })
    };

    let mut end = 0;
    for pass in 0..6 {
        let plan = shared.lock().unwrap().log.plan_cleaning(T0_MS + 1).unwrap();
        let plan = plan.expect("due: fresh dirty data every pass");
        building.store(true, Ordering::Release);
        let cleaned = plan.build(&CleanerLimits::default()).unwrap();
        building.store(false, Ordering::Release);
        // One lock per swapped group, as the broker does.
        let mut cleaned = cleaned;
        while shared
            .lock()
            .unwrap()
            .log
            .install_next_group(&mut cleaned)
            .unwrap()
        {}
        let stats = shared.lock().unwrap().log.finish_install(cleaned);
        assert!(stats.first_dirty_after > end, "pass {pass}: {stats:?}");
        end = stats.first_dirty_after;
        append_more(&shared, &mut rng, &mut written, 500);
    }
    stop.store(true, Ordering::Release);
    let (reads, records) = reader.join().unwrap();
    let during = reads_during_build.load(Ordering::Relaxed);
    eprintln!("{reads} reads ({records} records), {during} while a pass was building");
    assert!(during > 0, "no read overlapped a cleaning pass");

    let guard = shared.lock().unwrap();
    assert_eq!(
        read_records(&guard.log, 8192),
        expected(&written, end, |_| true)
    );
}
