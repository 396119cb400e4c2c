//! Group commit: fsyncs run outside the partition lock.
//!
//! The broker's flusher thread calls [`Log::flush_job`] under the lock,
//! releases it, calls [`FlushJob::complete`] (the fsyncs), and hands the
//! [`FlushDone`] back to [`Log::mark_flushed`] under the lock. Appends go
//! on meanwhile; they only add data past the job's offset.
//!
//! A job syncs, in order: the log file of every segment holding data past
//! `flushed_offset`; the index files of sealed segments written since
//! their last sync; the directory if segments were created; then, if the
//! active segment changed, the `recovery-point` checkpoint. The recovery
//! point is always the active segment's base offset: every sealed segment
//! below it has durable data *and* indexes, so recovery can trust it, and
//! it moves only on a roll, so it costs one extra fsync per segment, not
//! per flush.
//!
//! [`Log::flush_job`]: crate::Log::flush_job
//! [`Log::mark_flushed`]: crate::Log::mark_flushed

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::checkpoint;

/// Serializes recovery-point writes between flush jobs (outside the
/// partition lock) and the log itself. `epoch` changes when the log is
/// truncated: a job from before must not write its now-stale point.
#[derive(Debug)]
pub(crate) struct CheckpointGate {
    pub(crate) dir: PathBuf,
    pub(crate) epoch: u64,
    /// Set by `close`/`delete`: late jobs must not write into the
    /// directory any more (it may be gone, or recreated for a new topic).
    pub(crate) retired: bool,
}

pub(crate) type SharedGate = Arc<Mutex<CheckpointGate>>;

pub(crate) fn lock_gate(gate: &SharedGate) -> std::sync::MutexGuard<'_, CheckpointGate> {
    // A panic while holding it cannot leave the gate inconsistent: it
    // only holds plain values.
    gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Fsyncs to run without holding the partition lock. `Send`.
#[derive(Debug)]
pub struct FlushJob {
    pub(crate) files: Vec<Arc<File>>,
    pub(crate) sync_dir: Option<PathBuf>,
    pub(crate) offset: i64,
    /// Base offsets of sealed segments whose index files are in `files`.
    pub(crate) sealed_indexes: Vec<i64>,
    pub(crate) dir_generation: u64,
    pub(crate) epoch: u64,
    pub(crate) recovery_point: Option<i64>,
    pub(crate) gate: SharedGate,
}

impl FlushJob {
    /// Runs the fsyncs (and the recovery-point write, if due). Stops at the
    /// first error: after a failed fsync nothing about the file is known.
    pub fn run(&self) -> io::Result<()> {
        for file in &self.files {
            file.sync_data()?;
        }
        if let Some(dir) = &self.sync_dir {
            File::open(dir)?.sync_all()?;
        }
        if let Some(recovery_point) = self.recovery_point {
            let gate = lock_gate(&self.gate);
            if gate.epoch == self.epoch && !gate.retired {
                checkpoint::write_io(&gate.dir, checkpoint::RECOVERY_POINT, recovery_point)?;
            }
        }
        Ok(())
    }

    /// Everything below this offset is durable once the job succeeds.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Runs the job and packages the outcome for [`crate::Log::mark_flushed`].
    pub fn complete(self) -> FlushDone {
        let result = self.run();
        FlushDone { job: self, result }
    }
}

/// A finished [`FlushJob`] and its outcome.
#[derive(Debug)]
pub struct FlushDone {
    pub(crate) job: FlushJob,
    pub(crate) result: io::Result<()>,
}

impl FlushDone {
    /// For callers that ran [`FlushJob::run`] themselves.
    pub fn new(job: FlushJob, result: io::Result<()>) -> FlushDone {
        FlushDone { job, result }
    }
    pub fn offset(&self) -> i64 {
        self.job.offset
    }
    pub fn result(&self) -> &io::Result<()> {
        &self.result
    }
}
