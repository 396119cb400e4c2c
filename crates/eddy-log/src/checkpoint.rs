//! Small durable files beside the segments: the recovery point, the log
//! start offset and the clean-shutdown marker.
//!
//! A checkpoint is replaced atomically: written to `<name>.tmp`, fsynced,
//! renamed over `<name>`, then the directory is fsynced so the rename
//! itself survives a crash. A reader therefore sees the old or the new
//! value, never a torn one. The format is text, `1\n<offset>\n` (a version
//! line, like Kafka's checkpoint files), so an operator can read it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, LogError};

/// Offset below which every segment (data and indexes) has been fsynced.
pub(crate) const RECOVERY_POINT: &str = "recovery-point";
/// Persisted `log_start_offset` (DeleteRecords and retention move it).
pub(crate) const LOG_START_OFFSET: &str = "log-start-offset";
/// Present only between a completed `close` and the next `open`.
pub(crate) const CLEAN_SHUTDOWN: &str = "clean-shutdown";
pub(crate) const TMP_SUFFIX: &str = ".tmp";
const VERSION: &str = "1";

/// Writes `offset` to `dir/name` atomically and durably.
pub(crate) fn write(dir: &Path, name: &str, offset: i64) -> Result<(), LogError> {
    write_io(dir, name, offset).context("write checkpoint", &dir.join(name))
}

/// [`write`] for callers that report plain `io::Error`s (flush jobs).
pub(crate) fn write_io(dir: &Path, name: &str, offset: i64) -> std::io::Result<()> {
    assert!(offset >= 0);
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(format!("{VERSION}\n{offset}\n").as_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// Reads a checkpoint; `Ok(None)` when it is absent or unreadable as a
/// checkpoint (the caller then falls back to the safe choice: a full
/// recovery scan, or the first segment's base offset).
pub(crate) fn read(dir: &Path, name: &str) -> Result<Option<i64>, LogError> {
    let path = dir.join(name);
    let text = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io("read", path, e)),
    };
    let parsed = std::str::from_utf8(&text).ok().and_then(|text| {
        let mut lines = text.lines();
        let version = lines.next()?;
        let offset = lines.next()?.parse::<i64>().ok()?;
        (version == VERSION && lines.next().is_none() && offset >= 0).then_some(offset)
    });
    if parsed.is_none() {
        tracing::warn!(path = %path.display(), "ignoring unreadable checkpoint file");
    }
    Ok(parsed)
}

/// Creates an empty marker file durably.
pub(crate) fn write_marker(dir: &Path, name: &str) -> Result<(), LogError> {
    let path = dir.join(name);
    let file = File::create(&path).context("create", &path)?;
    file.sync_all().context("fsync", &path)?;
    sync_dir(dir)
}

/// Removes a file if present; returns whether it existed. The caller
/// syncs the directory when the removal must be durable.
pub(crate) fn remove_if_present(path: &Path) -> Result<bool, LogError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(LogError::io("remove", path, e)),
    }
}

/// Makes creations, renames and removals of directory entries durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .context("fsync directory", dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path(), RECOVERY_POINT).unwrap(), None);
        write(dir.path(), RECOVERY_POINT, 42).unwrap();
        assert_eq!(read(dir.path(), RECOVERY_POINT).unwrap(), Some(42));
        write(dir.path(), RECOVERY_POINT, 7).unwrap();
        assert_eq!(read(dir.path(), RECOVERY_POINT).unwrap(), Some(7));
        assert!(!dir.path().join("recovery-point.tmp").exists());
    }

    #[test]
    fn junk_reads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        for junk in [
            &b"1\n"[..],
            b"2\n5\n",
            b"1\n-3\n",
            b"1\nabc\n",
            b"\xff\xfe",
            b"1\n5\n6\n",
        ] {
            fs::write(dir.path().join(LOG_START_OFFSET), junk).unwrap();
            assert_eq!(
                read(dir.path(), LOG_START_OFFSET).unwrap(),
                None,
                "{junk:?}"
            );
        }
    }
}
