//! The flusher: a dedicated thread that fsyncs partitions with group commit.
//!
//! Producers append to the page cache under the partition lock, then ask
//! the flusher to make their offset durable and wait. The flusher drains
//! every request that has queued up, takes one flush job per partition under
//! its lock, runs all the fsyncs outside any lock (appends carry on), then
//! marks the partitions flushed and answers every waiter it covered. While
//! one round's fsyncs run, the next round's requests pile up: that is the
//! group commit. The async reactor never waits on a disk.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use eddy_protocol::codes;
use tokio::sync::{oneshot, Notify};

use crate::partition::Partition;

/// Bound on requests drained into one round.
const ROUND_REQUESTS_MAX: usize = 65_536;

pub type FlushResult = Result<(), i16>;

pub struct FlushRequest {
    pub partition: Arc<Partition>,
    /// The request is answered once everything below this offset is durable.
    pub offset: i64,
    pub done: Option<oneshot::Sender<FlushResult>>,
}

enum Message {
    Flush(FlushRequest),
    Shutdown,
}

/// Source of partitions whose relaxed flush policy (`flush.ms`,
/// `flush.messages`) says they are due.
pub trait DuePartitions: Send + Sync {
    fn due_for_flush(&self) -> Vec<Arc<Partition>>;
}

pub struct Flusher {
    tx: mpsc::Sender<Message>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Flusher {
    pub fn start(notify: Arc<Notify>, due: Weak<dyn DuePartitions>, tick: Duration) -> Flusher {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("eddy-flusher".into())
            .spawn(move || run(rx, notify, due, tick))
            .expect("spawning the flusher thread");
        Flusher {
            tx,
            thread: std::sync::Mutex::new(Some(thread)),
        }
    }

    /// Asks for `offset` of `partition` to become durable; the receiver
    /// resolves when it is (or with a Kafka error code if fsync failed).
    pub fn request(
        &self,
        partition: Arc<Partition>,
        offset: i64,
    ) -> oneshot::Receiver<FlushResult> {
        let (done, rx) = oneshot::channel();
        let req = FlushRequest {
            partition,
            offset,
            done: Some(done),
        };
        if let Err(mpsc::SendError(Message::Flush(req))) = self.tx.send(Message::Flush(req)) {
            if let Some(done) = req.done {
                let _ = done.send(Err(codes::KAFKA_STORAGE_ERROR));
            }
        }
        rx
    }

    /// Flushes without anyone waiting (relaxed policy thresholds).
    pub fn nudge(&self, partition: Arc<Partition>, offset: i64) {
        let _ = self.tx.send(Message::Flush(FlushRequest {
            partition,
            offset,
            done: None,
        }));
    }

    /// Finishes the queued rounds and stops the thread.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Message::Shutdown);
        if let Some(t) = self.thread.lock().expect("flusher lock").take() {
            let _ = t.join();
        }
    }
}

fn run(
    rx: mpsc::Receiver<Message>,
    notify: Arc<Notify>,
    due: Weak<dyn DuePartitions>,
    tick: Duration,
) {
    let mut stopping = false;
    while !stopping {
        let mut round = Vec::new();
        match rx.recv_timeout(tick) {
            Ok(Message::Flush(r)) => round.push(r),
            Ok(Message::Shutdown) => stopping = true,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => stopping = true,
        }
        while round.len() < ROUND_REQUESTS_MAX {
            match rx.try_recv() {
                Ok(Message::Flush(r)) => round.push(r),
                Ok(Message::Shutdown) => stopping = true,
                Err(_) => break,
            }
        }
        if let Some(due) = due.upgrade() {
            for partition in due.due_for_flush() {
                round.push(FlushRequest {
                    partition,
                    offset: 0,
                    done: None,
                });
            }
        }
        if !round.is_empty() {
            flush_round(round);
            notify.notify_waiters();
        }
    }
}

/// Threads fsyncing one round's partitions at once.
const FSYNC_THREADS_MAX: usize = 4;

fn record(partition: &Arc<Partition>, job: eddy_log::FlushJob, result: std::io::Result<()>) {
    let failed = result.is_err();
    let done = eddy_log::FlushDone::new(job, result);
    let mut state = partition.lock();
    if let Err(e) = state.log.mark_flushed(done) {
        tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "fsync failed; the partition refuses writes until restart");
    }
    if failed {
        partition.mark_failed();
    }
    state.unflushed_messages = 0;
    state.last_flush_ms = crate::clock::now_ms();
    partition.publish(&state);
}

fn flush_round(round: Vec<FlushRequest>) {
    let mut partitions: HashMap<*const Partition, Arc<Partition>> = HashMap::new();
    for r in &round {
        partitions
            .entry(Arc::as_ptr(&r.partition))
            .or_insert_with(|| r.partition.clone());
    }
    // Take jobs under each lock, then fsync with no lock held.
    let jobs: Vec<_> = partitions
        .values()
        .map(|p| (p.clone(), p.lock().log.flush_job()))
        .collect();
    // fsyncs of different files proceed in parallel on the device; a few
    // threads per round cut a round's latency several-fold on real disks.
    let mut groups: Vec<Vec<(Arc<Partition>, eddy_log::FlushJob)>> =
        (0..FSYNC_THREADS_MAX).map(|_| Vec::new()).collect();
    for (i, (p, job)) in jobs
        .into_iter()
        .filter_map(|(p, j)| j.map(|j| (p, j)))
        .enumerate()
    {
        groups[i % FSYNC_THREADS_MAX].push((p, job));
    }
    let run_group = |group: Vec<(Arc<Partition>, eddy_log::FlushJob)>| {
        for (partition, job) in group {
            let result = job.run();
            record(&partition, job, result);
        }
    };
    let mut groups: Vec<_> = groups.into_iter().filter(|g| !g.is_empty()).collect();
    if groups.len() <= 1 {
        // One partition dirty: no thread to spawn.
        groups.pop().map(run_group);
    } else {
        std::thread::scope(|scope| {
            for group in groups {
                scope.spawn(move || run_group(group));
            }
        });
    }
    for r in round {
        let Some(done) = r.done else { continue };
        let p = &r.partition;
        let result = if p.is_failed() {
            Err(codes::KAFKA_STORAGE_ERROR)
        } else if p.lock().log.flushed_offset() >= r.offset {
            Ok(())
        } else {
            // Truncated or not covered: never claim durability we lack.
            Err(codes::KAFKA_STORAGE_ERROR)
        };
        let _ = done.send(result);
    }
}
