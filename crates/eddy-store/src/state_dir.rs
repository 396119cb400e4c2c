//! The state directory, laid out as Kafka Streams lays out `state.dir`:
//!
//! ```text
//! <state.dir>/<application.id>/
//!   0_3/                    one directory per task (subtopology 0, partition 3)
//!     .lock                 held while a process owns the task
//!     .checkpoint           changelog partition -> offset (crate::checkpoint)
//!     fjall/<store>/        one persistent store (Kafka: rocksdb/<store>/)
//! ```
//!
//! A task's directory is used only through a [`TaskDirectory`], which holds
//! the task's lock: an exclusive `flock` on `.lock` (std's
//! `File::try_lock`), which the kernel releases when the process dies, so a
//! crashed instance never leaves a task locked. The lock is per open file,
//! so a second [`StateDirectory::lock_task`] in the same process is refused
//! too. `.lock` itself is never deleted: a process could otherwise lock a
//! file that another has just unlinked, and both would own the task.
//!
//! Store directories are named after the engine, as Kafka's `rocksdb/`:
//! a future engine would get a directory of its own and restore from the
//! changelog, instead of misreading the old engine's files.

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::checkpoint::{self, check_name, Checkpoint, CHECKPOINT_FILE};
use crate::error::{IoContext, Result, StoreError};

const LOCK_FILE: &str = ".lock";
/// Parent of the persistent stores' directories inside a task directory.
const STORES_DIR: &str = "fjall";

/// A stream task: a subtopology and an input partition, `0_3` on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    pub subtopology: u32,
    pub partition: u32,
}

impl TaskId {
    pub fn new(subtopology: u32, partition: u32) -> Self {
        TaskId {
            subtopology,
            partition,
        }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

impl FromStr for TaskId {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        let parse = |n: &str| {
            n.parse::<u32>()
                .ok()
                .filter(|_| n.bytes().all(|b| b.is_ascii_digit()))
        };
        let parsed = s
            .split_once('_')
            .and_then(|(sub, part)| Some(TaskId::new(parse(sub)?, parse(part)?)));
        parsed.ok_or_else(|| StoreError::Invalid {
            what: "task id",
            detail: format!("{s:?} is not <subtopology>_<partition>, e.g. 0_3"),
        })
    }
}

/// How a task's checkpoint follows its commits (Kafka's `processing.guarantee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingGuarantee {
    /// `at_least_once`: the checkpoint is written after each commit's flush.
    AtLeastOnce,
    /// `exactly_once_v2`: the checkpoint is deleted once processing starts
    /// and written only on a clean close. A store may hold writes of a
    /// transaction that was then aborted, so after a crash (no checkpoint)
    /// it is wiped and rebuilt from its changelog's committed records.
    ExactlyOnce,
}

/// What [`TaskDirectory::recover`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Offsets to restore each changelog from; a partition not listed
    /// restores from its start.
    pub checkpoint: Checkpoint,
    /// Whether the task's persistent stores were deleted.
    pub wiped: bool,
}

/// `<state.dir>/<application.id>`.
#[derive(Debug, Clone)]
pub struct StateDirectory {
    path: PathBuf,
}

impl StateDirectory {
    /// Creates `<state_dir>/<application_id>` if needed.
    pub fn new(state_dir: impl AsRef<Path>, application_id: &str) -> Result<Self> {
        check_name("application.id", application_id)?;
        let path = state_dir.as_ref().join(application_id);
        fs::create_dir_all(&path).context("create state directory", &path)?;
        Ok(StateDirectory { path })
    }

    /// `<state.dir>/<application.id>`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn task_path(&self, task: TaskId) -> PathBuf {
        self.path.join(task.to_string())
    }

    /// Creates the task's directory if needed and takes its lock, or fails
    /// with [`StoreError::TaskLocked`] at once if someone holds it.
    pub fn lock_task(&self, task: TaskId) -> Result<TaskDirectory> {
        let path = self.task_path(task);
        fs::create_dir_all(&path).context("create task directory", &path)?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .context("open lock file", &lock_path)?;
        match lock.try_lock() {
            Ok(()) => Ok(TaskDirectory {
                task,
                path,
                _lock: lock,
            }),
            Err(TryLockError::WouldBlock) => Err(StoreError::TaskLocked {
                task,
                path: self.path.clone(),
            }),
            Err(TryLockError::Error(e)) => Err(StoreError::io("lock", lock_path, e)),
        }
    }

    /// The tasks that have a directory here, in order (other entries are
    /// ignored).
    pub fn tasks(&self) -> Result<Vec<TaskId>> {
        let mut tasks = Vec::new();
        for entry in fs::read_dir(&self.path).context("list", &self.path)? {
            let entry = entry.context("list", &self.path)?;
            let is_dir = entry.file_type().context("stat", &entry.path())?.is_dir();
            if let (true, Some(task)) = (
                is_dir,
                entry.file_name().to_str().and_then(|n| n.parse().ok()),
            ) {
                tasks.push(task);
            }
        }
        tasks.sort();
        Ok(tasks)
    }

    /// Deletes a task's stores and checkpoint, taking and releasing its
    /// lock (fails if another owner holds it). For a task this process
    /// holds, use [`TaskDirectory::wipe`].
    pub fn wipe_task(&self, task: TaskId) -> Result<()> {
        self.lock_task(task)?.wipe()
    }
}

/// A locked task directory; the lock is released when this is dropped.
#[derive(Debug)]
pub struct TaskDirectory {
    task: TaskId,
    path: PathBuf,
    _lock: File,
}

impl TaskDirectory {
    pub fn task(&self) -> TaskId {
        self.task
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory of the persistent store `store` (not created: the
    /// engine creates it on open).
    pub fn store_dir(&self, store: &str) -> Result<PathBuf> {
        check_name("store name", store)?;
        Ok(self.path.join(STORES_DIR).join(store))
    }

    pub fn read_checkpoint(&self) -> Result<Option<Checkpoint>> {
        checkpoint::read(&self.path)
    }

    /// Replaces the checkpoint atomically and durably. The stores it covers
    /// must have been flushed first.
    pub fn write_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        checkpoint::write(&self.path, checkpoint)
    }

    pub fn delete_checkpoint(&self) -> Result<()> {
        checkpoint::delete(&self.path)
    }

    /// Deletes everything in the task directory but its lock: the
    /// checkpoint first (so that a crash halfway leaves no checkpoint
    /// vouching for half-deleted stores), then the stores. Close the
    /// task's stores before.
    pub fn wipe(&self) -> Result<()> {
        self.delete_checkpoint()?;
        for entry in fs::read_dir(&self.path).context("list", &self.path)? {
            let entry = entry.context("list", &self.path)?;
            let path = entry.path();
            if entry.file_name() == LOCK_FILE {
                continue;
            }
            if entry.file_type().context("stat", &path)?.is_dir() {
                fs::remove_dir_all(&path).context("remove", &path)?;
            } else {
                fs::remove_file(&path).context("remove", &path)?;
            }
        }
        checkpoint::sync_dir(&self.path)
    }

    /// At task start, before the stores are opened: the offsets to restore
    /// from. Without a readable checkpoint under exactly-once, the stores
    /// are wiped first (they may hold writes a crash left uncommitted);
    /// under at-least-once they are kept and the changelog replayed onto
    /// them from its start, as Kafka Streams does.
    pub fn recover(&self, guarantee: ProcessingGuarantee) -> Result<Recovery> {
        let checkpoint = match self.read_checkpoint() {
            Ok(checkpoint) => checkpoint,
            Err(e @ StoreError::CorruptCheckpoint { .. }) => {
                tracing::warn!(task = %self.task, error = %e, "ignoring corrupt checkpoint");
                None
            }
            Err(e) => return Err(e),
        };
        match (checkpoint, guarantee) {
            (Some(checkpoint), _) => Ok(Recovery {
                checkpoint,
                wiped: false,
            }),
            (None, ProcessingGuarantee::AtLeastOnce) => Ok(Recovery {
                checkpoint: Checkpoint::new(),
                wiped: false,
            }),
            (None, ProcessingGuarantee::ExactlyOnce) => {
                let wiped = self.has_state()?;
                if wiped {
                    tracing::info!(task = %self.task, "no checkpoint under exactly-once: wiping state");
                    self.wipe()?;
                }
                Ok(Recovery {
                    checkpoint: Checkpoint::new(),
                    wiped,
                })
            }
        }
    }

    /// Once restoration is done and processing begins: under exactly-once
    /// the checkpoint goes, so that a crash from here on wipes the stores.
    pub fn begin_processing(&self, guarantee: ProcessingGuarantee) -> Result<()> {
        match guarantee {
            ProcessingGuarantee::AtLeastOnce => Ok(()),
            ProcessingGuarantee::ExactlyOnce => self.delete_checkpoint(),
        }
    }

    /// After each commit, once the stores are flushed: under at-least-once
    /// the checkpoint moves to `checkpoint`; under exactly-once nothing.
    pub fn committed(&self, guarantee: ProcessingGuarantee, checkpoint: &Checkpoint) -> Result<()> {
        match guarantee {
            ProcessingGuarantee::AtLeastOnce => self.write_checkpoint(checkpoint),
            ProcessingGuarantee::ExactlyOnce => Ok(()),
        }
    }

    /// On a clean close, after the last commit and flush: the checkpoint
    /// is written under either guarantee, then the lock released.
    pub fn close_clean(self, checkpoint: &Checkpoint) -> Result<()> {
        self.write_checkpoint(checkpoint)
    }

    /// Whether anything but the lock and checkpoint files is here.
    fn has_state(&self) -> Result<bool> {
        for entry in fs::read_dir(&self.path).context("list", &self.path)? {
            let name = entry.context("list", &self.path)?.file_name();
            if name != LOCK_FILE && name != CHECKPOINT_FILE {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
#[path = "state_dir_tests.rs"]
mod tests;
