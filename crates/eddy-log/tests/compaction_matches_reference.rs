//! The cleaner against a reference: a seeded keyed workload (tombstones,
//! compressed batches, an idempotent producer, many segments) is cleaned,
//! and the whole log read back must be exactly the latest record per key
//! below the cleaned offset, at the original offsets, tombstones present
//! until `delete.retention.ms` after the pass that first kept them. The
//! same must hold after a crash-style reopen, and after a crash that left
//! `.cleaned` or `.swap` files.

mod compaction_support;

use compaction_support::*;
use eddy_log::cleaner::{CleanerLimits, CHECKPOINT};
use eddy_log::Log;

const SEEDS: std::ops::RangeInclusive<u64> = 1..=6;

/// Reading from every offset starts at the first surviving record at or
/// after it (the fetch of a removed offset gets the next survivor).
fn check_reads_from_every_offset(log: &Log, expected: &[Rec]) {
    for offset in log.log_start_offset()..log.log_end_offset() {
        let read = log.read(offset, 1, i64::MAX, true).unwrap();
        let first = eddy_log::batch::split(&read.records)
            .flat_map(|b| decode_with_offsets(b.unwrap()))
            .find(|r| r.offset >= offset);
        let want = expected.iter().find(|r| r.offset >= offset);
        match (first, want) {
            (Some(got), Some(want)) => assert_eq!(&got, want, "read from {offset}"),
            // The first batch returned may end before the next survivor.
            (None, Some(want)) => {
                assert!(!read.records.is_empty() || want.offset >= log.log_end_offset())
            }
            (got, None) => assert!(got.is_none(), "read from {offset}: {got:?}"),
        }
    }
}

fn check_producer_batch_kept(log: &Log, written: &Written, end: i64) {
    let Some(&(base, last_sequence)) = written
        .producer_batches
        .iter()
        .rev()
        .find(|(b, _)| *b < end)
    else {
        return;
    };
    let headers = log.headers_from(log.log_start_offset()).unwrap();
    let kept = headers
        .iter()
        .find(|h| h.base_offset == base)
        .expect("producer's last batch kept");
    assert_eq!((kept.producer_id, kept.last_sequence()), (7, last_sequence));
}

#[test]
fn compaction_matches_reference() {
    for seed in SEEDS {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng::new(seed);
        let mut written = Written::default();
        let mut log = Log::open(dir.path(), compact_config(2048), T0_MS).unwrap();
        append_workload(&mut log, &mut written, &mut rng, 300, 25, 15, T0_MS);
        let bytes_before = log.size_bytes();

        // Pass 1: tombstones are kept and get a delete horizon.
        let now1 = T0_MS + 1_000;
        let stats = log
            .clean(now1, &CleanerLimits::default())
            .unwrap()
            .expect("due");
        let end1 = stats.first_dirty_after;
        assert_eq!(end1, log.first_dirty_offset());
        assert!(end1 > 0 && stats.records_removed > 0, "{stats:?}");
        let expected1 = expected(&written, end1, |_| true);
        let tombstones = |recs: &[Rec]| recs.iter().filter(|r| r.value.is_none()).count();
        assert!(expected1.len() < written.records.len() / 2);
        assert!(
            tombstones(&expected1) > 0,
            "the workload keeps some tombstones"
        );
        assert_eq!(read_records(&log, 3000), expected1, "seed {seed}");
        assert_eq!(
            read_records(&log, 1),
            expected1,
            "seed {seed}, one batch per read"
        );
        check_reads_from_every_offset(&log, &expected1);
        check_producer_batch_kept(&log, &written, end1);
        assert!(log.size_bytes() < bytes_before);

        // Crash-style reopen (nothing flushed: every segment is scanned).
        drop(log);
        let mut log = Log::open(dir.path(), compact_config(2048), now1).unwrap();
        assert_eq!(
            read_records(&log, 3000),
            expected1,
            "seed {seed} after reopen"
        );

        // Pass 2, past the first horizon: pass-1 tombstones go, new ones stay.
        append_workload(&mut log, &mut written, &mut rng, 100, 25, 15, T0_MS + 2_000);
        let now2 = now1 + DELETE_RETENTION_MS;
        let stats = log
            .clean(now2, &CleanerLimits::default())
            .unwrap()
            .expect("due");
        let end2 = stats.first_dirty_after;
        assert!(end2 > end1);
        let expected2 = expected(&written, end2, |offset| offset >= end1);
        assert_eq!(read_records(&log, 3000), expected2, "seed {seed} pass 2");
        check_reads_from_every_offset(&log, &expected2);

        // Pass 3, no new data: due because kept tombstones reached their horizon.
        let now3 = now2 + DELETE_RETENTION_MS;
        assert!(log
            .clean(now3 - 1, &CleanerLimits::default())
            .unwrap()
            .is_none());
        let stats = log
            .clean(now3, &CleanerLimits::default())
            .unwrap()
            .expect("tombstones due");
        assert_eq!(stats.first_dirty_after, end2);
        let expected3 = expected(&written, end2, |_| false);
        assert!(tombstones(&expected2) > 0);
        let cleaned3: Vec<Rec> = expected3
            .iter()
            .filter(|r| r.offset < end2)
            .cloned()
            .collect();
        assert_eq!(tombstones(&cleaned3), 0);
        assert_eq!(read_records(&log, 3000), expected3, "seed {seed} pass 3");
        check_producer_batch_kept(&log, &written, end2);

        // Flushed this time: the trusted (index-loading) open path.
        if let Some(job) = log.flush_job() {
            log.mark_flushed(job.complete()).unwrap();
        }
        drop(log);
        let log = Log::open(dir.path(), compact_config(2048), now3).unwrap();
        assert_eq!(
            read_records(&log, 3000),
            expected3,
            "seed {seed} trusted reopen"
        );
        check_reads_from_every_offset(&log, &expected3);
        log.close().unwrap();
        let log = Log::open(dir.path(), compact_config(2048), now3).unwrap();
        assert_eq!(
            read_records(&log, 3000),
            expected3,
            "seed {seed} clean reopen"
        );
    }
}

#[test]
fn small_dedupe_buffer_cleans_a_prefix_per_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(42);
    let mut written = Written::default();
    let mut log = Log::open(dir.path(), compact_config(2048), T0_MS).unwrap();
    append_workload(&mut log, &mut written, &mut rng, 400, 300, 0, T0_MS);
    // About 20 keys' worth of map per pass.
    let limits = CleanerLimits {
        dedupe_buffer_bytes: 20 * 56,
        ..CleanerLimits::default()
    };
    let mut passes = 0;
    let mut end = 0;
    while let Some(stats) = log.clean(T0_MS + 1, &limits).unwrap() {
        assert!(stats.first_dirty_after > end, "each pass makes progress");
        assert!(stats.map_keys <= 25, "{stats:?}");
        end = stats.first_dirty_after;
        assert_eq!(read_records(&log, 4096), expected(&written, end, |_| true));
        passes += 1;
    }
    assert!(
        passes > 3,
        "the dirty section did not fit one map: {passes} passes"
    );
    drop(log);
    let log = Log::open(dir.path(), compact_config(2048), T0_MS).unwrap();
    assert_eq!(read_records(&log, 4096), expected(&written, end, |_| true));
}

fn staged_files(dir: &std::path::Path, stage: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(stage))
        .collect();
    files.sort();
    files
}

#[test]
fn leftover_cleaned_files_are_dropped_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(7);
    let mut written = Written::default();
    let mut log = Log::open(dir.path(), compact_config(2048), T0_MS).unwrap();
    append_workload(&mut log, &mut written, &mut rng, 200, 20, 10, T0_MS);
    let plan = log.plan_cleaning(T0_MS + 1).unwrap().expect("due");
    let cleaned = plan.build(&CleanerLimits::default()).unwrap();
    assert!(!staged_files(dir.path(), ".cleaned").is_empty());
    // Crash before the swap began.
    drop(cleaned);
    drop(log);
    let log = Log::open(dir.path(), compact_config(2048), T0_MS).unwrap();
    assert!(staged_files(dir.path(), ".cleaned").is_empty());
    assert_eq!(read_records(&log, 3000), written.records);
}

#[test]
fn leftover_swap_files_complete_the_swap_at_open() {
    for delete_first_old in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng::new(11);
        let mut written = Written::default();
        let mut log = Log::open(dir.path(), compact_config(2048), T0_MS).unwrap();
        append_workload(&mut log, &mut written, &mut rng, 200, 20, 10, T0_MS);
        let plan = log.plan_cleaning(T0_MS + 1).unwrap().expect("due");
        let cleaned = plan.build(&CleanerLimits::default()).unwrap();
        let end = cleaned.first_dirty_after();
        // Crash during the swap: checkpoint moved, every group renamed to
        // `.swap`, old segments still there (or the first one's log gone).
        std::fs::write(dir.path().join(CHECKPOINT), format!("1\n{end}\n")).unwrap();
        for file in staged_files(dir.path(), ".cleaned") {
            let name = file.to_string_lossy().replace(".cleaned", ".swap");
            std::fs::rename(&file, name).unwrap();
        }
        if delete_first_old {
            let first = staged_files(dir.path(), ".log.swap")[0].clone();
            std::fs::remove_file(first.to_string_lossy().trim_end_matches(".swap")).unwrap();
        }
        drop(log);
        let log = Log::open(dir.path(), compact_config(2048), T0_MS).unwrap();
        assert!(staged_files(dir.path(), ".swap").is_empty());
        assert_eq!(read_records(&log, 3000), expected(&written, end, |_| true));
        check_reads_from_every_offset(&log, &expected(&written, end, |_| true));
    }
}

#[test]
fn timestamp_lookup_and_log_start_in_a_gap_find_the_next_survivor() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(5);
    let mut written = Written::default();
    let mut log = Log::open(dir.path(), compact_config(2048), T0_MS).unwrap();
    append_workload(&mut log, &mut written, &mut rng, 200, 10, 10, T0_MS);
    let stats = log
        .clean(T0_MS + 1, &CleanerLimits::default())
        .unwrap()
        .expect("due");
    let survivors = expected(&written, stats.first_dirty_after, |_| true);
    // Record timestamps survive the rewrite (even under a delete horizon).
    let first = &survivors[0];
    let (offset, _ts) = log.offset_for_timestamp(0).unwrap().unwrap();
    assert_eq!(offset, first.offset);
    // A removed offset as the log start (DeleteRecords): reads and
    // lookups go on from the next survivor.
    let gap = (1..stats.first_dirty_after)
        .find(|o| survivors.iter().all(|r| r.offset != *o) && *o > first.offset)
        .expect("some offset was removed");
    log.delete_records_before(gap).unwrap();
    let after: Vec<Rec> = survivors
        .iter()
        .filter(|r| r.offset >= gap)
        .cloned()
        .collect();
    assert_eq!(read_records(&log, 3000), after);
    let (offset, _ts) = log.offset_for_timestamp(0).unwrap().unwrap();
    assert_eq!(offset, after[0].offset);
}
