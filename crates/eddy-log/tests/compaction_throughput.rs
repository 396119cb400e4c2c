//! A measurement, not a check of behaviour (ignored by default): how long
//! a pass over a log of about 100 MiB takes, split into the phases that
//! hold the partition lock (plan, install) and the one that does not
//! (build). Run in release:
//! `cargo test --release -p eddy-log --test compaction_throughput -- --ignored --nocapture`

use std::time::Instant;

use eddy_log::batch::{self, encode_batch, SimpleRecord};
use eddy_log::cleaner::CleanerLimits;
use eddy_log::{compression, DirtyRatio, Log, LogConfig};

#[test]
#[ignore]
fn compaction_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 16 << 20,
        retention_ms: -1,
        cleanup_delete: false,
        cleanup_compact: true,
        min_cleanable_dirty_ratio: DirtyRatio::new(0.01).unwrap(),
        ..LogConfig::default()
    };
    let now = 1_700_000_000_000;
    let mut log = Log::open(dir.path(), config, now).unwrap();
    let (batches, per_batch, keys) = (10_000u64, 100u64, 10_000u64);
    for b in 0..batches {
        let records: Vec<SimpleRecord> = (0..per_batch)
            .map(|i| SimpleRecord {
                key: Some(format!("key-{}", (b * per_batch + i) * 7919 % keys).into_bytes()),
                value: Some(vec![b'v'; 100]),
                ..Default::default()
            })
            .collect();
        let mut bytes = encode_batch(&records, now, -1, -1, -1);
        if b % 2 == 0 {
            bytes = batch::recompress(&bytes, compression::LZ4, 1 << 20).unwrap();
        }
        log.append(&mut bytes, 0, now).unwrap();
    }
    let before = log.size_bytes();
    let started = Instant::now();
    let plan = log.plan_cleaning(now + 1).unwrap().expect("due");
    let planned = started.elapsed();
    let cleaned = plan.build(&CleanerLimits::default()).unwrap();
    let built = started.elapsed();
    let stats = log.install_cleaned(cleaned).unwrap();
    let total = started.elapsed();
    let install = total - built;
    eprintln!(
        "{} records ({keys} keys), log {:.1} MiB -> {:.1} MiB; pass {:.0} ms \
         (plan {:.2} ms, build {:.0} ms without the lock, install {:.1} ms); \
         {:.0} MiB/s read; {} records removed",
        batches * per_batch,
        before as f64 / 1048576.0,
        log.size_bytes() as f64 / 1048576.0,
        total.as_secs_f64() * 1e3,
        planned.as_secs_f64() * 1e3,
        (built - planned).as_secs_f64() * 1e3,
        install.as_secs_f64() * 1e3,
        stats.bytes_read as f64 / 1048576.0 / total.as_secs_f64(),
        stats.records_removed,
    );
    assert!(stats.records_removed > 0);
}
