//! The producer's batches, sans-io: records go into one open batch per partition; a batch is
//! sealed when it is full (`batch.size`) or has waited `linger.ms`; sealed batches queue for
//! the sender in order. Time is passed in, so tests drive it by hand.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use crate::error::Result;
use crate::record::{Header, RecordMetadata};

/// Where a record's delivery report goes.
pub enum Report {
    /// To a [`crate::DeliveryFuture`].
    Channel(oneshot::Sender<Result<RecordMetadata>>),
    /// To a callback, run on the task that read the broker's answer: it must be quick.
    Callback(Box<dyn FnOnce(Result<RecordMetadata>) + Send>),
}

impl Report {
    fn deliver(self, report: Result<RecordMetadata>) {
        match self {
            // The caller may have dropped its delivery future; that is its choice.
            Report::Channel(tx) => drop(tx.send(report)),
            Report::Callback(callback) => callback(report),
        }
    }
}

/// A record waiting in a batch, with where its delivery report goes.
pub struct PendingRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
    pub timestamp_ms: i64,
    pub size_bytes: usize,
    pub report: Report,
}

/// Records bound for one partition, sent in one produce request as one record batch.
pub struct Batch {
    pub topic: String,
    pub partition: i32,
    pub records: Vec<PendingRecord>,
    pub size_bytes: usize,
    pub created_at: Instant,
    /// How many times it was sent and failed with a retriable error.
    pub attempts: u32,
    /// Assigned once, when an idempotent producer first drains it; kept across retries so the
    /// broker can drop duplicates.
    pub base_sequence: Option<i32>,
    /// `buffer.memory` this batch holds; released when the batch is dropped.
    pub permit: Option<OwnedSemaphorePermit>,
}

impl Batch {
    fn new(topic: &str, partition: i32, now: Instant) -> Batch {
        Batch {
            topic: topic.to_owned(),
            partition,
            records: Vec::new(),
            size_bytes: 0,
            created_at: now,
            attempts: 0,
            base_sequence: None,
            permit: None,
        }
    }

    /// Delivers `result` to every record of the batch.
    pub fn complete(self, result: impl Fn(usize, &PendingRecord) -> Result<RecordMetadata>) {
        for (i, record) in self.records.into_iter().enumerate() {
            let report = result(i, &record);
            record.report.deliver(report);
        }
    }
}

/// What an append did, so the caller knows whether to wake the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// A new open batch was started (the sender must learn its linger deadline).
    pub new_batch: bool,
    /// A full batch was sealed and is ready to send.
    pub sealed: bool,
}

/// Open and ready batches, bounded by the producer's `buffer.memory` semaphore.
pub struct Accumulator {
    batch_size_bytes: usize,
    linger: Duration,
    open: HashMap<(String, i32), Batch>,
    ready: VecDeque<Batch>,
}

impl Accumulator {
    pub fn new(batch_size_bytes: usize, linger: Duration) -> Accumulator {
        assert!(batch_size_bytes > 0);
        Accumulator {
            batch_size_bytes,
            linger,
            open: HashMap::new(),
            ready: VecDeque::new(),
        }
    }

    /// Adds `record` to `topic`-`partition`'s open batch, sealing that batch first if the
    /// record would overflow it. A record bigger than `batch.size` gets a batch of its own.
    pub fn append(
        &mut self,
        topic: &str,
        partition: i32,
        record: PendingRecord,
        permit: OwnedSemaphorePermit,
        now: Instant,
    ) -> Appended {
        let key = (topic.to_owned(), partition);
        let mut appended = Appended {
            new_batch: false,
            sealed: false,
        };
        let overflows = self.open.get(&key).is_some_and(|b| {
            !b.records.is_empty() && b.size_bytes + record.size_bytes > self.batch_size_bytes
        });
        if overflows {
            let full = self.open.remove(&key).expect("checked above");
            self.ready.push_back(full);
            appended.sealed = true;
        }
        let batch = self.open.entry(key).or_insert_with(|| {
            appended.new_batch = true;
            Batch::new(topic, partition, now)
        });
        batch.size_bytes += record.size_bytes;
        batch.records.push(record);
        match &mut batch.permit {
            Some(held) => held.merge(permit),
            None => batch.permit = Some(permit),
        }
        appended
    }

    /// Seals batches that lingered long enough (all of them when `force`, for flush and
    /// close), and takes every ready batch, oldest first. Also returns when the next open
    /// batch will be due, if any is left.
    pub fn drain(&mut self, now: Instant, force: bool) -> (Vec<Batch>, Option<Instant>) {
        let due: Vec<(String, i32)> = self
            .open
            .iter()
            .filter(|(_, b)| force || now.duration_since(b.created_at) >= self.linger)
            .map(|(k, _)| k.clone())
            .collect();
        let mut sealed: Vec<Batch> = due.iter().filter_map(|k| self.open.remove(k)).collect();
        sealed.sort_by_key(|b| b.created_at);
        self.ready.extend(sealed);
        let next_due = self.open.values().map(|b| b.created_at + self.linger).min();
        (self.ready.drain(..).collect(), next_due)
    }

    /// Puts a batch that failed with a retriable error back at the head of the queue.
    pub fn requeue(&mut self, batch: Batch) {
        self.ready.push_front(batch);
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.open.is_empty() && self.ready.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    fn record(size_bytes: usize) -> (PendingRecord, oneshot::Receiver<Result<RecordMetadata>>) {
        let (done, rx) = oneshot::channel();
        let record = PendingRecord {
            key: None,
            value: Some(Bytes::from(vec![0; size_bytes])),
            headers: Vec::new(),
            timestamp_ms: 0,
            size_bytes,
            report: Report::Channel(done),
        };
        (record, rx)
    }

    fn permit(memory: &Arc<Semaphore>, n: usize) -> OwnedSemaphorePermit {
        memory.clone().try_acquire_many_owned(n as u32).unwrap()
    }

    #[test]
    fn batches_seal_when_full_and_hold_their_memory() {
        let memory = Arc::new(Semaphore::new(1000));
        let mut acc = Accumulator::new(100, Duration::from_secs(60));
        let now = Instant::now();
        let mut receivers = Vec::new();
        for i in 0..5 {
            let (r, rx) = record(40);
            receivers.push(rx);
            let appended = acc.append("t", 0, r, permit(&memory, 40), now);
            // 40 + 40 fit in 100, the third record does not.
            assert_eq!(appended.sealed, i == 2 || i == 4, "record {i}");
            assert_eq!(appended.new_batch, i % 2 == 0, "record {i}");
        }
        assert_eq!(memory.available_permits(), 1000 - 200);
        let (ready, next_due) = acc.drain(now, false);
        assert_eq!(ready.len(), 2);
        assert!(ready
            .iter()
            .all(|b| b.records.len() == 2 && b.size_bytes == 80));
        assert_eq!(next_due, Some(now + Duration::from_secs(60)));
        drop(ready);
        assert_eq!(memory.available_permits(), 1000 - 40);
    }

    #[test]
    fn linger_and_force_seal_open_batches() {
        let memory = Arc::new(Semaphore::new(1000));
        let linger = Duration::from_millis(5);
        let mut acc = Accumulator::new(100, linger);
        let start = Instant::now();
        let (a, _ra) = record(10);
        let (b, _rb) = record(10);
        acc.append("t", 0, a, permit(&memory, 10), start);
        acc.append(
            "t",
            1,
            b,
            permit(&memory, 10),
            start + Duration::from_millis(3),
        );
        let (ready, next) = acc.drain(start + Duration::from_millis(4), false);
        assert!(ready.is_empty());
        assert_eq!(next, Some(start + linger));
        let (ready, next) = acc.drain(start + Duration::from_millis(6), false);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].partition, 0);
        assert_eq!(next, Some(start + Duration::from_millis(3) + linger));
        let (ready, next) = acc.drain(start + Duration::from_millis(6), true);
        assert_eq!(ready.len(), 1);
        assert_eq!(next, None);
        assert!(acc.is_empty());
    }

    #[test]
    fn oversized_record_gets_its_own_batch_and_requeue_goes_first() {
        let memory = Arc::new(Semaphore::new(1000));
        let mut acc = Accumulator::new(100, Duration::ZERO);
        let now = Instant::now();
        let (big, _r1) = record(300);
        let (small, _r2) = record(10);
        acc.append("t", 0, big, permit(&memory, 300), now);
        acc.append("t", 0, small, permit(&memory, 10), now);
        let (mut ready, _) = acc.drain(now, false);
        assert_eq!(ready.len(), 2);
        assert_eq!(ready[0].size_bytes, 300);
        let second = ready.pop().unwrap();
        acc.requeue(second);
        let (other, _r3) = record(10);
        acc.append("t", 1, other, permit(&memory, 10), now);
        let (ready, _) = acc.drain(now, false);
        assert_eq!(ready[0].size_bytes, 10);
        assert_eq!(ready[0].partition, 0);
        assert_eq!(ready[1].partition, 1);
    }

    #[test]
    fn complete_reports_to_every_record() {
        let memory = Arc::new(Semaphore::new(1000));
        let mut acc = Accumulator::new(100, Duration::ZERO);
        let now = Instant::now();
        let mut receivers = Vec::new();
        for _ in 0..3 {
            let (r, rx) = record(10);
            receivers.push(rx);
            acc.append("t", 2, r, permit(&memory, 10), now);
        }
        let (mut ready, _) = acc.drain(now, false);
        let batch = ready.pop().unwrap();
        batch.complete(|i, r| {
            Ok(RecordMetadata {
                topic: "t".into(),
                partition: 2,
                offset: 100 + i as i64,
                timestamp_ms: r.timestamp_ms,
            })
        });
        for (i, mut rx) in receivers.into_iter().enumerate() {
            assert_eq!(rx.try_recv().unwrap().unwrap().offset, 100 + i as i64);
        }
    }
}
