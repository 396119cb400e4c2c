//! A task's `.checkpoint` file: for each changelog partition of the task's
//! stores, the offset its persistent store holds everything up to, so a
//! restart restores only the changelog's tail.
//!
//! The format is Kafka Streams' own (`OffsetCheckpoint`, version 0), text
//! an operator can read:
//!
//! ```text
//! 0                          version
//! 2                          number of entries
//! app-counts-changelog 3 1042
//! app-totals-changelog 3 77
//! ```
//!
//! The file is replaced atomically: written to `.checkpoint.tmp`, fsynced,
//! renamed over `.checkpoint`, then the directory is fsynced so that the
//! rename itself survives a crash. A reader sees the old file or the new
//! one, never a torn one; a file that does not parse anyway is an error
//! ([`StoreError::CorruptCheckpoint`]), never a panic.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result, StoreError};

pub(crate) const CHECKPOINT_FILE: &str = ".checkpoint";
const TMP_FILE: &str = ".checkpoint.tmp";
const VERSION: &str = "0";
/// A task has one entry per store; more than this is not a checkpoint.
pub const CHECKPOINT_ENTRIES_MAX: usize = 10_000;
/// Kafka's limit on topic names.
const TOPIC_NAME_BYTES_MAX: usize = 249;

/// A partition of a store's changelog topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChangelogPartition {
    pub topic: String,
    pub partition: i32,
}

impl ChangelogPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        ChangelogPartition {
            topic: topic.into(),
            partition,
        }
    }
}

/// Changelog partition → offset, as written in a `.checkpoint` file.
pub type Checkpoint = BTreeMap<ChangelogPartition, i64>;

/// Checks a name used in a path or a topic: Kafka's legal topic characters
/// (`[a-zA-Z0-9._-]`, at most 249), and not `.` or `..`.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let problem = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > TOPIC_NAME_BYTES_MAX {
        Some("it is longer than 249 bytes")
    } else if name == "." || name == ".." {
        Some("it is . or ..")
    } else if !name.chars().all(legal) {
        Some("only ASCII letters, digits, '.', '_' and '-' are allowed")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(StoreError::Invalid {
            what,
            detail: format!("{name:?}: {problem}"),
        }),
        None => Ok(()),
    }
}

/// Reads `dir/.checkpoint`; `Ok(None)` if there is none.
pub(crate) fn read(dir: &Path) -> Result<Option<Checkpoint>> {
    let path = dir.join(CHECKPOINT_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read", path, e)),
    };
    let corrupt = |line: usize, detail: String| StoreError::CorruptCheckpoint {
        path: path.clone(),
        line,
        detail,
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| corrupt(0, format!("not UTF-8: {e}")))?;
    let mut lines = text.lines().enumerate().map(|(i, line)| (i + 1, line));
    match lines.next() {
        Some((_, VERSION)) => {}
        other => {
            return Err(corrupt(
                1,
                format!("expected version {VERSION}, found {other:?}"),
            ))
        }
    }
    let count = match lines.next() {
        Some((_, n)) => n
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= CHECKPOINT_ENTRIES_MAX),
        None => None,
    };
    let count = count
        .ok_or_else(|| corrupt(2, format!("expected 0..={CHECKPOINT_ENTRIES_MAX} entries")))?;
    let mut checkpoint = Checkpoint::new();
    for _ in 0..count {
        let (number, line) = lines
            .next()
            .ok_or_else(|| corrupt(checkpoint.len() + 3, format!("{count} entries announced")))?;
        let (partition, offset) = parse_entry(line).map_err(|detail| corrupt(number, detail))?;
        if checkpoint.insert(partition, offset).is_some() {
            return Err(corrupt(number, "partition listed twice".to_string()));
        }
    }
    if let Some((number, line)) = lines.next() {
        return Err(corrupt(
            number,
            format!("unexpected line after {count} entries: {line:?}"),
        ));
    }
    Ok(Some(checkpoint))
}

fn parse_entry(line: &str) -> std::result::Result<(ChangelogPartition, i64), String> {
    let fields: Vec<&str> = line.split(' ').collect();
    let [topic, partition, offset] = fields[..] else {
        return Err(format!(
            "expected \"<topic> <partition> <offset>\", found {line:?}"
        ));
    };
    check_name("topic", topic).map_err(|e| e.to_string())?;
    let partition = partition.parse::<i32>().ok().filter(|p| *p >= 0);
    let offset = offset.parse::<i64>().ok().filter(|o| *o >= 0);
    match (partition, offset) {
        (Some(partition), Some(offset)) => Ok((ChangelogPartition::new(topic, partition), offset)),
        _ => Err(format!(
            "partition and offset must be non-negative integers: {line:?}"
        )),
    }
}

/// Replaces `dir/.checkpoint` atomically and durably.
pub(crate) fn write(dir: &Path, checkpoint: &Checkpoint) -> Result<()> {
    let mut text = format!("{VERSION}\n{}\n", checkpoint.len());
    if checkpoint.len() > CHECKPOINT_ENTRIES_MAX {
        return Err(StoreError::Invalid {
            what: "checkpoint",
            detail: format!(
                "{} entries, more than {CHECKPOINT_ENTRIES_MAX}",
                checkpoint.len()
            ),
        });
    }
    for (ChangelogPartition { topic, partition }, offset) in checkpoint {
        check_name("changelog topic", topic)?;
        if *partition < 0 || *offset < 0 {
            return Err(StoreError::Invalid {
                what: "checkpoint entry",
                detail: format!(
                    "{topic}-{partition} at offset {offset}: both must be non-negative"
                ),
            });
        }
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    let tmp = dir.join(TMP_FILE);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .context("create", &tmp)?;
    file.write_all(text.as_bytes()).context("write", &tmp)?;
    file.sync_all().context("fsync", &tmp)?;
    drop(file);
    let path = dir.join(CHECKPOINT_FILE);
    fs::rename(&tmp, &path).context("rename into place", &path)?;
    sync_dir(dir)
}

/// Removes `dir/.checkpoint` durably, if present.
pub(crate) fn delete(dir: &Path) -> Result<()> {
    let path = dir.join(CHECKPOINT_FILE);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("remove", path, e)),
    }
}

/// Makes creations, renames and removals in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .context("fsync directory", dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint::from([
            (ChangelogPartition::new("app-counts-changelog", 3), 1042),
            (ChangelogPartition::new("app-totals-changelog", 3), 0),
        ])
    }

    #[test]
    fn round_trip_overwrite_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        write(dir.path(), &sample()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(sample()));
        let text = fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap();
        assert_eq!(
            text,
            "0\n2\napp-counts-changelog 3 1042\napp-totals-changelog 3 0\n"
        );
        write(dir.path(), &Checkpoint::new()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(Checkpoint::new()));
        assert!(!dir.path().join(TMP_FILE).exists());
        delete(dir.path()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        delete(dir.path()).unwrap(); // absent: fine
    }

    #[test]
    fn a_leftover_temp_file_does_not_count() {
        // A crash before the rename leaves the temp file and the old checkpoint.
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &sample()).unwrap();
        fs::write(dir.path().join(TMP_FILE), "0\n1\ntorn 0").unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(sample()));
        write(dir.path(), &Checkpoint::new()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(Checkpoint::new()));
    }

    #[test]
    fn corrupt_files_are_errors_with_the_line() {
        let cases: [(&[u8], usize); 11] = [
            (b"", 1),
            (b"1\n0\n", 1),
            (b"0\n", 2),
            (b"0\nx\n", 2),
            (b"0\n99999999\n", 2),
            (b"0\n2\nt 0 1\n", 4),
            (b"0\n1\nt 0\n", 3),
            (b"0\n1\nt 0 -1\n", 3),
            (b"0\n1\nt/x 0 1\n", 3),
            (b"0\n2\nt 0 1\nt 0 2\n", 4),
            (b"0\n1\nt 0 1\nextra\n", 4),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (bytes, line) in cases {
            fs::write(dir.path().join(CHECKPOINT_FILE), bytes).unwrap();
            match read(dir.path()) {
                Err(StoreError::CorruptCheckpoint {
                    line: got, path, ..
                }) => {
                    assert_eq!(got, line, "{bytes:?}");
                    assert!(path.ends_with(CHECKPOINT_FILE));
                }
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
        fs::write(dir.path().join(CHECKPOINT_FILE), b"\xff\xfe").unwrap();
        assert!(matches!(
            read(dir.path()),
            Err(StoreError::CorruptCheckpoint { .. })
        ));
    }

    #[test]
    fn unwritable_entries_are_refused_before_touching_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &sample()).unwrap();
        for bad in [
            Checkpoint::from([(ChangelogPartition::new("has space", 0), 1)]),
            Checkpoint::from([(ChangelogPartition::new("t", -1), 1)]),
            Checkpoint::from([(ChangelogPartition::new("t", 0), -1)]),
        ] {
            assert!(matches!(
                write(dir.path(), &bad),
                Err(StoreError::Invalid { .. })
            ));
        }
        assert_eq!(read(dir.path()).unwrap(), Some(sample()));
    }

    #[test]
    fn names_follow_kafka_topic_rules() {
        for ok in ["a", "app-1.counts_v2", &"x".repeat(249)] {
            check_name("topic", ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(250)] {
            assert!(check_name("topic", bad).is_err(), "{bad:?}");
        }
    }
}
