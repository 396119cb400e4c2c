//! The log cleaner thread: compacts every partition whose topic has
//! `cleanup.policy=compact` (`__consumer_offsets` included), as Kafka's
//! `LogCleaner` does, with one thread (`log.cleaner.threads` is accepted
//! but only 1 is used).
//!
//! Each pass follows `eddy_log::cleaner`'s three phases: the partition lock
//! is held to plan (and roll a due active segment) and to swap the cleaned
//! segments in; reading the log, building the key map and writing the
//! cleaned files happen with no lock held, so produce and fetch go on.
//! After a round that cleaned nothing the thread sleeps
//! `log.cleaner.backoff.ms`. A std thread, not a tokio task: the work is
//! blocking file I/O and CPU (decompression), for seconds at a time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use eddy_log::cleaner::{CleanStats, CleanerLimits};

use crate::broker::Broker;
use crate::clock::now_ms;
use crate::partition::Partition;

/// Smallest backoff honoured, so a zero cannot spin the thread.
const BACKOFF_MS_MIN: u64 = 10;

/// Counters for `/metrics`.
#[derive(Default)]
pub struct CleanerMetrics {
    pub passes: AtomicU64,
    pub errors: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    pub records_removed: AtomicU64,
    /// Milliseconds spent in passes (all three phases).
    pub pass_ms: AtomicU64,
    /// Per partition: (passes, first dirty offset, bytes after the last pass).
    pub partitions: Mutex<BTreeMap<(String, i32), PartitionCleaning>>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PartitionCleaning {
    pub passes: u64,
    pub first_dirty_offset: i64,
    pub size_bytes: u64,
}

impl CleanerMetrics {
    /// Prometheus text: the log cleaner's counters, and per compacted partition its passes,
    /// checkpoint and size after the last pass.
    pub fn render(&self, out: &mut String) {
        use std::sync::atomic::Ordering::Relaxed;
        let c = self;
        let totals = [
            (
                "passes",
                "Cleaning passes completed.",
                c.passes.load(Relaxed),
            ),
            (
                "errors",
                "Cleaning passes that failed.",
                c.errors.load(Relaxed),
            ),
            (
                "bytes_read",
                "Log bytes read by the cleaner.",
                c.bytes_read.load(Relaxed),
            ),
            (
                "bytes_written",
                "Cleaned log bytes written.",
                c.bytes_written.load(Relaxed),
            ),
            (
                "records_removed",
                "Records removed by compaction.",
                c.records_removed.load(Relaxed),
            ),
            (
                "pass_ms",
                "Milliseconds spent cleaning.",
                c.pass_ms.load(Relaxed),
            ),
        ];
        for (name, help, value) in totals {
            out.push_str(&format!(
            "# HELP eddy_log_cleaner_{name}_total {help}\n# TYPE eddy_log_cleaner_{name}_total counter\neddy_log_cleaner_{name}_total {value}\n"
        ));
        }
        let partitions = c.partitions.lock().expect("cleaner metrics lock").clone();
        out.push_str("# HELP eddy_log_cleaner_partition_passes_total Cleaning passes per partition.\n# TYPE eddy_log_cleaner_partition_passes_total counter\n");
        for ((topic, partition), p) in &partitions {
            out.push_str(&format!(
            "eddy_log_cleaner_partition_passes_total{{topic=\"{topic}\",partition=\"{partition}\"}} {}\n",
            p.passes
        ));
        }
        out.push_str("# HELP eddy_log_cleaner_partition_first_dirty_offset The cleaner checkpoint.\n# TYPE eddy_log_cleaner_partition_first_dirty_offset gauge\n");
        for ((topic, partition), p) in &partitions {
            out.push_str(&format!(
            "eddy_log_cleaner_partition_first_dirty_offset{{topic=\"{topic}\",partition=\"{partition}\"}} {}\n",
            p.first_dirty_offset
        ));
        }
        out.push_str("# HELP eddy_log_cleaner_partition_size_bytes Log bytes after the last pass.\n# TYPE eddy_log_cleaner_partition_size_bytes gauge\n");
        for ((topic, partition), p) in &partitions {
            out.push_str(&format!(
            "eddy_log_cleaner_partition_size_bytes{{topic=\"{topic}\",partition=\"{partition}\"}} {}\n",
            p.size_bytes
        ));
        }
    }

    fn record(
        &self,
        partition: &Partition,
        stats: &CleanStats,
        size_bytes: u64,
        elapsed: Duration,
    ) {
        self.passes.fetch_add(1, Ordering::Relaxed);
        self.bytes_read
            .fetch_add(stats.bytes_read, Ordering::Relaxed);
        self.bytes_written
            .fetch_add(stats.bytes_written, Ordering::Relaxed);
        self.records_removed
            .fetch_add(stats.records_removed, Ordering::Relaxed);
        self.pass_ms
            .fetch_add(elapsed.as_millis() as u64, Ordering::Relaxed);
        let mut partitions = self.partitions.lock().expect("cleaner metrics lock");
        let entry = partitions
            .entry((partition.topic.to_string(), partition.index))
            .or_default();
        entry.passes += 1;
        entry.first_dirty_offset = stats.first_dirty_after;
        entry.size_bytes = size_bytes;
    }
}

/// The running thread; dropping the handle does not stop it, [`stop`](Self::stop) does.
pub struct CleanerThread {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl CleanerThread {
    /// Stops after the partition in hand and waits for the thread.
    pub fn stop(self) {
        drop(self.stop);
        if self.thread.join().is_err() {
            tracing::error!("log cleaner thread panicked");
        }
    }
}

/// Starts the cleaner unless `log.cleaner.enable=false`.
pub fn start(broker: Arc<Broker>) -> Option<CleanerThread> {
    if !broker.config.bool("log.cleaner.enable") {
        tracing::info!("log cleaner disabled (log.cleaner.enable=false)");
        return None;
    }
    let backoff = Duration::from_millis(
        (broker.config.i64("log.cleaner.backoff.ms").max(0) as u64).max(BACKOFF_MS_MIN),
    );
    let limits = CleanerLimits {
        dedupe_buffer_bytes: broker
            .config
            .i64("log.cleaner.dedupe.buffer.size")
            .clamp(1 << 10, i64::MAX) as usize,
        ..CleanerLimits::default()
    };
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("eddy-log-cleaner".into())
        .spawn(move || run(&broker, &limits, backoff, &stopped))
        .ok()?;
    Some(CleanerThread { stop, thread })
}

fn run(broker: &Broker, limits: &CleanerLimits, backoff: Duration, stopped: &mpsc::Receiver<()>) {
    loop {
        let cleaned = clean_round(broker, limits, stopped);
        if cleaned > 0 {
            if stop_requested(stopped, Duration::ZERO) {
                return;
            }
            continue;
        }
        if stop_requested(stopped, backoff) {
            return;
        }
    }
}

fn stop_requested(stopped: &mpsc::Receiver<()>, wait: Duration) -> bool {
    !matches!(stopped.recv_timeout(wait), Err(RecvTimeoutError::Timeout))
}

/// One look at every partition; returns how many were cleaned.
pub fn clean_round(broker: &Broker, limits: &CleanerLimits, stopped: &mpsc::Receiver<()>) -> usize {
    let mut cleaned = 0;
    for topic in broker.topics() {
        for partition in topic.all_partitions() {
            if stop_requested(stopped, Duration::ZERO) {
                return cleaned;
            }
            if !partition.is_failed() && clean_partition(broker, &partition, limits) {
                cleaned += 1;
            }
        }
    }
    cleaned
}

/// Plans under the lock, builds without it, installs under it.
pub fn clean_partition(broker: &Broker, partition: &Partition, limits: &CleanerLimits) -> bool {
    let started = Instant::now();
    let plan = {
        let mut state = partition.lock();
        let plan = state.log.plan_cleaning(now_ms());
        partition.publish(&state);
        plan
    };
    let plan = match plan {
        Ok(Some(plan)) => plan,
        Ok(None) => return false,
        Err(e) => return failed(broker, partition, &e),
    };
    let cleaned = match plan.build(limits) {
        Ok(cleaned) => cleaned,
        Err(e) => return failed(broker, partition, &e),
    };
    let installed = install(partition, cleaned);
    let size_bytes = partition.lock().log.size_bytes();
    match installed {
        Ok(stats) => {
            let elapsed = started.elapsed();
            tracing::info!(topic = %partition.topic, partition = partition.index, bytes_read = stats.bytes_read, bytes_written = stats.bytes_written, records_removed = stats.records_removed, ms = elapsed.as_millis() as u64, "log cleaned");
            broker
                .cleaner
                .record(partition, &stats, size_bytes, elapsed);
            true
        }
        Err(e) => failed(broker, partition, &e),
    }
}

/// Swaps the cleaned groups in one at a time, taking the partition lock
/// for each swap only, so produce and fetch interleave with a long pass.
fn install(
    partition: &Partition,
    mut cleaned: eddy_log::cleaner::Cleaned,
) -> Result<CleanStats, eddy_log::LogError> {
    loop {
        let mut state = partition.lock();
        let more = state.log.install_next_group(&mut cleaned);
        if state.log.is_poisoned() {
            partition.mark_failed();
        }
        match more {
            Ok(true) => {}
            Ok(false) => return Ok(state.log.finish_install(cleaned)),
            Err(e) => return Err(e),
        }
    }
}

/// A pass that failed is retried after the backoff; a corrupt segment is
/// already fenced by the log, and a poisoned log fails the partition.
fn failed(broker: &Broker, partition: &Partition, e: &eddy_log::LogError) -> bool {
    broker.cleaner.errors.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "log cleaning failed");
    false
}
