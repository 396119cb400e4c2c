//! The two sparse per-segment indexes, kept in memory as sorted `Vec`s and
//! mirrored in files beside the segment.
//!
//! ```text
//! .index      8 bytes per entry: relative offset u32 BE, file position u32 BE
//! .timeindex 12 bytes per entry: max timestamp so far i64 BE, relative offset u32 BE
//! ```
//!
//! Offsets are relative to the segment's base offset, as in Kafka. An
//! offset entry points at the start of the batch whose base offset it
//! names; a time entry says "the largest timestamp in this segment up to
//! and including the batch at this offset is this", and that batch is the
//! one that carries it. Index files are derived data: when one is missing
//! or fails validation the segment is scanned and the file rewritten.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint::TMP_SUFFIX;
use crate::error::{IoContext, LogError};

/// One fixed-size entry of an index file.
pub(crate) trait IndexEntry: Copy {
    const BYTES: usize;
    fn encode(&self, out: &mut Vec<u8>);
    /// `bytes` is exactly `BYTES` long.
    fn decode(bytes: &[u8]) -> Self;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp_ms: i64,
    pub relative_offset: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl IndexEntry for OffsetEntry {
    const BYTES: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32_at(b, 0),
            position: u32_at(b, 4),
        }
    }
}

impl IndexEntry for TimeEntry {
    const BYTES: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[0..8]);
        TimeEntry {
            timestamp_ms: i64::from_be_bytes(ts),
            relative_offset: u32_at(b, 8),
        }
    }
}

/// Checks what an offset index must satisfy: strictly increasing offsets
/// and positions, positions inside the log file, offsets below `offset_limit`.
pub(crate) fn offsets_valid(entries: &[OffsetEntry], log_bytes: u64, offset_limit: u64) -> bool {
    let in_bounds = entries
        .iter()
        .all(|e| (e.position as u64) < log_bytes && (e.relative_offset as u64) < offset_limit);
    let increasing = entries
        .windows(2)
        .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position);
    in_bounds && increasing
}

/// Time entries: strictly increasing timestamps, non-decreasing offsets
/// below `offset_limit`.
pub(crate) fn times_valid(entries: &[TimeEntry], offset_limit: u64) -> bool {
    let in_bounds = entries
        .iter()
        .all(|e| (e.relative_offset as u64) < offset_limit);
    let increasing = entries.windows(2).all(|w| {
        w[0].timestamp_ms < w[1].timestamp_ms && w[0].relative_offset <= w[1].relative_offset
    });
    in_bounds && increasing
}

/// An index: all entries in memory, appended to its file in batches.
pub(crate) struct IndexFile<E: IndexEntry> {
    path: PathBuf,
    file: Arc<File>,
    entries: Vec<E>,
    /// Entries `[..written]` are in the file (page cache, not necessarily disk).
    written: usize,
    scratch: Vec<u8>,
}

impl<E: IndexEntry> IndexFile<E> {
    /// Reads an index file. `Ok(None)` when it is missing, longer than
    /// `max_entries` or not a whole number of entries: the caller rebuilds.
    pub(crate) fn read_entries(path: &Path, max_entries: u64) -> Result<Option<Vec<E>>, LogError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LogError::io("open", path, e)),
        };
        let file_bytes = file.metadata().context("stat", path)?.len();
        if file_bytes % E::BYTES as u64 != 0 || file_bytes / E::BYTES as u64 > max_entries {
            return Ok(None);
        }
        let mut bytes = vec![0u8; file_bytes as usize];
        file.read_exact_at(&mut bytes, 0).context("read", path)?;
        Ok(Some(bytes.chunks_exact(E::BYTES).map(E::decode).collect()))
    }

    /// Opens an existing, already validated index file for appending.
    pub(crate) fn open(path: &Path, entries: Vec<E>) -> Result<Self, LogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .context("open", path)?;
        let written = entries.len();
        Ok(IndexFile {
            path: path.into(),
            file: Arc::new(file),
            entries,
            written,
            scratch: vec![],
        })
    }

    /// Creates an empty index file, replacing any file of that name.
    pub(crate) fn create(path: &Path) -> Result<Self, LogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .context("create", path)?;
        Ok(IndexFile {
            path: path.into(),
            file: Arc::new(file),
            entries: vec![],
            written: 0,
            scratch: vec![],
        })
    }

    /// Replaces the file with `entries` atomically and durably (temp file,
    /// fsync, rename): a crash mid-rebuild leaves the old file, which fails
    /// validation again, never a plausible-looking prefix. The caller
    /// fsyncs the directory.
    pub(crate) fn rebuild(path: &Path, entries: Vec<E>) -> Result<Self, LogError> {
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(TMP_SUFFIX);
        let tmp = PathBuf::from(tmp_name);
        let mut bytes = Vec::with_capacity(entries.len() * E::BYTES);
        entries.iter().for_each(|e| e.encode(&mut bytes));
        let file = File::create(&tmp).context("create", &tmp)?;
        file.write_all_at(&bytes, 0).context("write", &tmp)?;
        file.sync_all().context("fsync", &tmp)?;
        drop(file);
        fs::rename(&tmp, path).context("rename into place", path)?;
        Self::open(path, entries)
    }

    pub(crate) fn entries(&self) -> &[E] {
        &self.entries
    }

    pub(crate) fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    pub(crate) fn push(&mut self, entry: E) {
        self.entries.push(entry);
    }

    /// Writes entries pushed since the last call, in one positional write.
    pub(crate) fn write_pending(&mut self) -> Result<(), LogError> {
        if self.written == self.entries.len() {
            return Ok(());
        }
        self.scratch.clear();
        for entry in &self.entries[self.written..] {
            entry.encode(&mut self.scratch);
        }
        let position = (self.written * E::BYTES) as u64;
        self.file
            .write_all_at(&self.scratch, position)
            .context("append to", &self.path)?;
        self.written = self.entries.len();
        Ok(())
    }

    /// Keeps the first `keep` entries, in memory and in the file.
    pub(crate) fn truncate(&mut self, keep: usize) -> Result<(), LogError> {
        self.entries.truncate(keep);
        self.written = self.written.min(keep);
        self.file
            .set_len((self.written * E::BYTES) as u64)
            .context("truncate", &self.path)
    }

    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The entry with the largest relative offset `<= target`, if any.
pub(crate) fn floor_offset(entries: &[OffsetEntry], target: u32) -> Option<OffsetEntry> {
    let after = entries.partition_point(|e| e.relative_offset <= target);
    after.checked_sub(1).map(|i| entries[i])
}

/// The entry with the largest timestamp `< target_ms`, if any: every
/// batch up to and including its offset has a timestamp below the target.
pub(crate) fn floor_time_below(entries: &[TimeEntry], target_ms: i64) -> Option<TimeEntry> {
    let after = entries.partition_point(|e| e.timestamp_ms < target_ms);
    after.checked_sub(1).map(|i| entries[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oe(relative_offset: u32, position: u32) -> OffsetEntry {
        OffsetEntry {
            relative_offset,
            position,
        }
    }

    #[test]
    fn append_read_truncate_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = IndexFile::<OffsetEntry>::create(&path).unwrap();
        index.push(oe(3, 100));
        index.push(oe(9, 400));
        index.write_pending().unwrap();
        index.push(oe(12, 900));
        index.write_pending().unwrap();
        let read = IndexFile::<OffsetEntry>::read_entries(&path, 10)
            .unwrap()
            .unwrap();
        assert_eq!(read, index.entries());
        index.truncate(1).unwrap();
        let read = IndexFile::<OffsetEntry>::read_entries(&path, 10)
            .unwrap()
            .unwrap();
        assert_eq!(read, vec![oe(3, 100)]);
        assert_eq!(
            IndexFile::<OffsetEntry>::read_entries(&path, 0).unwrap(),
            None
        );
    }

    #[test]
    fn rebuild_replaces_junk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        fs::write(&path, b"junk junk junk junk").unwrap();
        assert!(IndexFile::<TimeEntry>::read_entries(&path, 100)
            .unwrap()
            .is_none());
        let entries = vec![TimeEntry {
            timestamp_ms: 5,
            relative_offset: 0,
        }];
        IndexFile::rebuild(&path, entries.clone()).unwrap();
        assert_eq!(
            IndexFile::<TimeEntry>::read_entries(&path, 100).unwrap(),
            Some(entries)
        );
    }

    #[test]
    fn validation_and_lookup() {
        let entries = [oe(3, 100), oe(9, 400)];
        assert!(offsets_valid(&entries, 401, 10));
        assert!(!offsets_valid(&entries, 400, 10));
        assert!(!offsets_valid(&entries, 401, 9));
        assert!(!offsets_valid(&[oe(3, 100), oe(3, 200)], 401, 10));
        assert!(!offsets_valid(&[oe(0, 0), oe(0, 0)], 401, 10));
        assert_eq!(floor_offset(&entries, 2), None);
        assert_eq!(floor_offset(&entries, 3), Some(oe(3, 100)));
        assert_eq!(floor_offset(&entries, 8), Some(oe(3, 100)));
        assert_eq!(floor_offset(&entries, 100), Some(oe(9, 400)));
        let times = [
            TimeEntry {
                timestamp_ms: 10,
                relative_offset: 0,
            },
            TimeEntry {
                timestamp_ms: 20,
                relative_offset: 5,
            },
        ];
        assert!(times_valid(&times, 6));
        assert!(!times_valid(&times, 5));
        assert_eq!(floor_time_below(&times, 10), None);
        assert_eq!(floor_time_below(&times, 11), Some(times[0]));
        assert_eq!(floor_time_below(&times, 21), Some(times[1]));
    }
}
