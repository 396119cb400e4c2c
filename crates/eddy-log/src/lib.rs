//! Eddy's log: one directory of segment files per Kafka partition, in
//! Kafka's own on-disk layout. Plain synchronous code over files; no async
//! runtime, no `unsafe`, no mmap.
//!
//! # Layout
//!
//! - [`batch`]: the v2 record batch — header parsing, full validation
//!   (CRC-32C), offset assignment, recompression, and an encoder/decoder
//!   for tests.
//! - [`compression`]: Kafka's codecs (gzip, snappy, lz4, zstd) over a
//!   batch's records section, bounded against decompression bombs.
//! - `config`: [`LogConfig`], Kafka's topic settings with their defaults.
//! - `error`: [`LogError`], one variant per Kafka error the broker reports.
//! - `partition`: [`Log`] itself, the append and read paths.
//! - `segment`: one `.log` file and its two indexes.
//! - `index`: the sparse `.index` / `.timeindex`, in memory and on disk.
//! - `scan`: walking a segment batch by batch in chunks (lookups, recovery).
//! - `recovery`: [`Log::open`] — trusting or recovering each segment.
//! - `time_lookup`: ListOffsets by timestamp and MAX_TIMESTAMP, to the record.
//! - `retention`: time/size retention, DeleteRecords, truncation.
//! - `flush`: group commit — [`FlushJob`]s run fsyncs outside the lock.
//! - `checkpoint`: the small atomically replaced files beside the segments.
//! - [`txn_index`]: aborted transactions (for `read_committed` fetches).
//! - [`cleaner`]: log compaction (`cleanup.policy=compact`), copy and swap.
//!
//! # On disk
//!
//! ```text
//! 00000000000000000000.log        batches back to back, as producers sent them
//! 00000000000000000000.index      (relative offset u32, position u32) every index.interval.bytes
//! 00000000000000000000.timeindex  (max timestamp i64, relative offset u32), same interval
//! 00000000000000004242.log        next segment: named after its base offset
//! recovery-point                  segments wholly below are fsynced, data and indexes
//! log-start-offset                DeleteRecords / retention low-water mark
//! cleaner-offset-checkpoint       first offset the cleaner has not compacted yet
//! clean-shutdown                  written by close(), removed by open()
//! ```
//!
//! # Durability
//!
//! `append` writes to the page cache; nothing is durable until a
//! [`FlushJob`] for it has run and been passed to [`Log::mark_flushed`]
//! ([`Log::flushed_offset`] says how far). A failed fsync poisons the log
//! ([`LogError::Poisoned`]) instead of being retried. On open after a
//! crash, the segments from the recovery point on are scanned and CRC
//! checked, and the log is cut at the first torn or corrupt batch.
//!
//! # Example
//!
//! ```
//! use eddy_log::batch::{encode_batch, SimpleRecord};
//! use eddy_log::{Log, LogConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
//! let record = SimpleRecord { value: Some(b"hello".to_vec()), ..Default::default() };
//! let mut batch = encode_batch(&[record], 1_000, -1, -1, -1);
//! let info = log.append(&mut batch, 0, 1_000).unwrap();
//! assert_eq!((info.base_offset, log.log_end_offset()), (0, 1));
//!
//! if let Some(job) = log.flush_job() {
//!     let done = job.complete(); // the fsyncs: run these outside the partition lock
//!     log.mark_flushed(done).unwrap();
//! }
//! assert_eq!(log.flushed_offset(), 1);
//!
//! let read = log.read(0, 1 << 20, i64::MAX, true).unwrap();
//! assert_eq!(&read.records[..], &batch[..]);
//! log.close().unwrap();
//! ```

pub mod batch;
mod checkpoint;
pub mod cleaner;
pub mod compression;
mod config;
mod error;
mod flush;
mod index;
mod partition;
mod recovery;
mod retention;
mod scan;
mod segment;
mod time_lookup;
pub mod txn_index;

pub use config::{DirtyRatio, LogConfig};
pub use error::LogError;
pub use flush::{FlushDone, FlushJob};
pub use partition::{AppendInfo, Log, ReadResult};
