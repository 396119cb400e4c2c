//! Rough append/read/recovery throughput of one partition log.
//!
//! `cargo run --release -p eddy-log --example log_throughput -- [total_mib] [batch_kib] [batches_per_append]`
//!
//! Appends `total_mib` of uncompressed batches, runs a flush job every
//! 8 MiB as the broker's group commit would, reads everything back with
//! 1 MiB fetches, then reopens uncleanly (recovery scan) and cleanly.

use std::time::Instant;

use eddy_log::batch::{encode_batch, SimpleRecord};
use eddy_log::{Log, LogConfig};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments"))
        .collect();
    let total_mib = args.first().copied().unwrap_or(1024);
    let batch_kib = args.get(1).copied().unwrap_or(16);
    let per_append = args.get(2).copied().unwrap_or(4) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = LogConfig {
        segment_bytes: 256 << 20,
        ..LogConfig::default()
    };

    // 1 KiB records, `batch_kib` per batch.
    let record = SimpleRecord {
        value: Some(vec![7; 1000]),
        ..Default::default()
    };
    let template = encode_batch(&vec![record; batch_kib as usize], 0, -1, -1, -1);
    let append_bytes: Vec<u8> = template.repeat(per_append);
    let appends = (total_mib << 20) / append_bytes.len() as u64;

    let mut log = Log::open(dir.path(), config.clone(), 0).expect("open");
    let started = Instant::now();
    let mut since_flush = 0;
    for _ in 0..appends {
        let mut buf = append_bytes.clone();
        log.append(&mut buf, 0, 0).expect("append");
        since_flush += buf.len();
        if since_flush >= 8 << 20 {
            if let Some(job) = log.flush_job() {
                log.mark_flushed(job.complete()).expect("flush");
            }
            since_flush = 0;
        }
    }
    report("append+flush", log.size_bytes(), started);

    let started = Instant::now();
    let mut offset = 0;
    let mut read_bytes = 0u64;
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20, i64::MAX, true).expect("read");
        read_bytes += read.records.len() as u64;
        for one in eddy_log::batch::split(&read.records) {
            offset = eddy_log::batch::BatchHeader::parse(one.expect("whole"))
                .expect("header")
                .next_offset();
        }
    }
    report("read", read_bytes, started);

    let size = log.size_bytes();
    drop(log);
    let started = Instant::now();
    let log = Log::open(dir.path(), config.clone(), 0).expect("reopen");
    report("unclean reopen (scan from recovery point)", size, started);
    let started = Instant::now();
    log.close().expect("close");
    let log = Log::open(dir.path(), config, 0).expect("reopen");
    report("close + clean reopen", size, started);
    drop(log);
}

fn report(what: &str, bytes: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{what:45} {:8.1} MiB in {secs:6.3}s = {:8.1} MiB/s",
        bytes as f64 / 1048576.0,
        bytes as f64 / 1048576.0 / secs
    );
}
