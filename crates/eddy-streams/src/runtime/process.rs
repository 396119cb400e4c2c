//! The instance's own corner of `state.dir`: `<state.dir>/<application.id>/`, locked while
//! the instance runs (one instance per state directory, as Kafka Streams requires), with
//! the instance's process id kept across restarts (Kafka's `kafka-streams-process-metadata`),
//! which names its transactional producer.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Result, StreamsError};

pub(crate) struct ProcessDir {
    pub id: String,
    /// Holds the lock until dropped.
    _lock: File,
}

impl ProcessDir {
    pub fn open(state_dir: &Path, application_id: &str) -> Result<ProcessDir> {
        let dir = state_dir.join(application_id);
        let io = |what: &str, e: std::io::Error| {
            StreamsError::Config(format!("state directory {}: {what}: {e}", dir.display()))
        };
        fs::create_dir_all(&dir).map_err(|e| io("cannot create it", e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))
            .map_err(|e| io("cannot open its lock file", e))?;
        if lock.try_lock().is_err() {
            return Err(StreamsError::Config(format!(
                "state directory {} is in use by another instance of {application_id:?}; give each instance its own state.dir",
                dir.display()
            )));
        }
        let path = dir.join("process-id");
        let id = match fs::read_to_string(&path) {
            Ok(s) if uuid::Uuid::parse_str(s.trim()).is_ok() => s.trim().to_owned(),
            _ => {
                let id = uuid::Uuid::new_v4().to_string();
                let tmp = dir.join("process-id.tmp");
                let mut f = File::create(&tmp).map_err(|e| io("cannot write the process id", e))?;
                f.write_all(id.as_bytes())
                    .and_then(|()| f.sync_all())
                    .and_then(|()| fs::rename(&tmp, &path))
                    .map_err(|e| io("cannot write the process id", e))?;
                id
            }
        };
        Ok(ProcessDir { id, _lock: lock })
    }
}
