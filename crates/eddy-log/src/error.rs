//! The one error type of this crate. The broker maps each variant to a
//! Kafka error code at its edge (noted on each variant).

use std::path::PathBuf;

use crate::batch::BatchError;

#[derive(thiserror::Error, Debug)]
pub enum LogError {
    /// An operating-system error on one of the log's files.
    /// Broker: KAFKA_STORAGE_ERROR.
    #[error("log I/O error: could not {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The producer sent a batch that fails validation. Broker: CORRUPT_MESSAGE.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// Broker: MESSAGE_TOO_LARGE.
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    BatchTooLarge { size: usize, max: usize },
    /// Broker: OFFSET_OUT_OF_RANGE.
    #[error("offset {requested} is outside the log [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        requested: i64,
        log_start: i64,
        log_end: i64,
    },
    /// Stored data failed its checks; the bad bytes are never served.
    /// Broker: KAFKA_STORAGE_ERROR.
    #[error("corrupt log segment {segment} at byte {position}: {reason}")]
    Corrupt {
        segment: PathBuf,
        position: u64,
        reason: String,
    },
    /// An earlier write or fsync failed, so what is on disk is unknown: the
    /// log refuses writes until it is reopened (and recovered). Retrying a
    /// failed fsync and trusting it is how data gets lost silently.
    /// Broker: KAFKA_STORAGE_ERROR.
    #[error("log is poisoned by an earlier write or fsync failure; reopen it to recover")]
    Poisoned,
    /// Broker: INVALID_CONFIG.
    #[error("invalid log config: {0}")]
    InvalidConfig(String),
}

impl LogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Attaches the operation and file to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn context(self, op: &'static str, path: &std::path::Path) -> Result<T, LogError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, op: &'static str, path: &std::path::Path) -> Result<T, LogError> {
        self.map_err(|source| LogError::io(op, path, source))
    }
}
