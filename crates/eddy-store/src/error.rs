//! [`StoreError`], the one error type of this crate. Each variant names the
//! store or the path it is about, so a message read in a log is enough to
//! find the file.

use std::path::PathBuf;

use crate::state_dir::TaskId;

/// Results of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// An operating-system error on a state directory, lock or checkpoint file.
    #[error("state store I/O error: could not {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The persistent engine failed. A failed write or fsync poisons the
    /// engine (it refuses further writes); the store must be reopened, and
    /// under exactly-once wiped and restored from its changelog.
    #[cfg(feature = "persistent")]
    #[error("persistent store {store:?} at {path}: {source}")]
    Engine {
        store: String,
        path: PathBuf,
        #[source]
        source: fjall::Error,
    },
    /// A key longer than the engine takes, refused by every store alike so
    /// that an in-memory topology does not fail only once it is persistent.
    #[error(
        "store {store:?}: key of {key_bytes} bytes exceeds the limit of {key_bytes_max} bytes"
    )]
    KeyTooLarge {
        store: String,
        key_bytes: usize,
        key_bytes_max: usize,
    },
    /// Bytes read back from a store do not decode as a window or session key
    /// of this crate's layout: the store was written by something else, or
    /// the disk returned garbage.
    #[error("store {store:?}: corrupt {layout} key {key:02x?}: {detail}")]
    CorruptKey {
        store: String,
        layout: &'static str,
        key: Vec<u8>,
        detail: &'static str,
    },
    /// A `.checkpoint` file that does not parse. Callers treat the task as
    /// having no checkpoint (restore from the changelog's start, and under
    /// exactly-once wipe first), which [`crate::TaskDirectory::recover`] does.
    #[error("corrupt checkpoint file {path}, line {line}: {detail}")]
    CorruptCheckpoint {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    /// Another process (or another handle in this one) holds the task's lock.
    #[error(
        "task {task} is locked by another instance using state directory {path}; \
         give each instance its own state.dir, or wait for the other to release the task"
    )]
    TaskLocked { task: TaskId, path: PathBuf },
    /// A caller passed a value that cannot be stored or named.
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Attaches an operation and a path to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn context(self, op: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| StoreError::io(op, path, e))
    }
}
