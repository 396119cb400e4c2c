//! Tasks' state on this instance's disk: `<state.dir>/<application.id>/<task>/` holds a
//! task's persistent stores (fjall), its `.checkpoint` (changelog partition → the offset
//! its stores are restored up to) and `.stream-time` (the stream time each store had seen).
//!
//! The checkpoint follows Kafka Streams: under at_least_once it moves after every commit
//! (stores flushed first); under exactly_once_v2 it is deleted when processing starts and
//! written only on a clean close, so after a crash the stores are wiped and rebuilt from the
//! changelogs' committed records. A restart or a reassignment to the same instance then
//! replays only the changelog records after the checkpoint. In-memory stores are always
//! restored from the changelog's start and never checkpointed.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::Path;

use eddy_store::{
    ChangelogPartition, Checkpoint, ProcessingGuarantee, StateDirectory, TaskDirectory,
};

use crate::error::{Result, StreamsError};
use crate::task::{Task, TaskId};
use crate::topology::{StoreSpec, Topology};

const STREAM_TIME_FILE: &str = ".stream-time";

type Engine = Box<dyn eddy_store::KeyValueStore>;

pub(super) struct LocalState {
    root: StateDirectory,
    guarantee: ProcessingGuarantee,
    dirs: BTreeMap<TaskId, TaskDirectory>,
    /// Per changelog partition: the offset after the last record known to be in the store
    /// (where the restore ended, then each acknowledged write).
    positions: HashMap<(String, i32), i64>,
}

/// Where a task's stores start restoring from.
pub(super) struct TaskRecovery {
    /// Changelog partition → first offset to replay (persistent stores with a checkpoint).
    pub from: HashMap<(String, i32), i64>,
    /// Store → stream time it had seen at the checkpoint.
    pub stream_times: HashMap<String, i64>,
}

impl LocalState {
    pub fn open(state_dir: &Path, application_id: &str, exactly_once: bool) -> Result<LocalState> {
        let root = StateDirectory::new(state_dir, application_id)
            .map_err(|e| StreamsError::store("-", e))?;
        Ok(LocalState {
            root,
            guarantee: if exactly_once {
                ProcessingGuarantee::ExactlyOnce
            } else {
                ProcessingGuarantee::AtLeastOnce
            },
            dirs: BTreeMap::new(),
            positions: HashMap::new(),
        })
    }

    fn disk_id(id: TaskId) -> eddy_store::TaskId {
        eddy_store::TaskId::new(id.subtopology as u32, id.partition as u32)
    }

    /// Locks the task's directory and reads what its checkpoint vouches for (under
    /// exactly-once without a checkpoint, the stores are wiped first).
    pub fn open_task(&mut self, id: TaskId) -> Result<TaskRecovery> {
        let err = |e| StreamsError::store(&id.to_string(), e);
        let dir = match self.dirs.remove(&id) {
            Some(d) => d,
            None => self.root.lock_task(Self::disk_id(id)).map_err(err)?,
        };
        let recovery = dir.recover(self.guarantee).map_err(err)?;
        let stream_times = if recovery.checkpoint.is_empty() {
            HashMap::new()
        } else {
            read_stream_times(dir.path())
        };
        let from = recovery
            .checkpoint
            .iter()
            .map(|(cp, o)| ((cp.topic.clone(), cp.partition), *o))
            .collect();
        self.dirs.insert(id, dir);
        Ok(TaskRecovery { from, stream_times })
    }

    /// The engine of `spec` for task `id`: fjall under the task's directory when the store is
    /// persistent, else in memory.
    pub fn engine(&self, spec: &StoreSpec, id: TaskId) -> Result<Engine> {
        if !spec.persistent {
            return Ok(Box::new(eddy_store::InMemoryKeyValueStore::new(
                spec.name.clone(),
            )));
        }
        let dir = self.dirs.get(&id).ok_or_else(|| {
            StreamsError::Config(format!("task {id}: state directory not locked"))
        })?;
        let err = |e| StreamsError::store(&spec.name, e);
        let path = dir.store_dir(&spec.name).map_err(err)?;
        let store =
            eddy_store::PersistentKeyValueStore::open(spec.name.clone(), path).map_err(err)?;
        Ok(Box::new(store))
    }

    /// Restoration of a task is done: its changelogs are read up to `positions`.
    pub fn restored(&mut self, id: TaskId, positions: Vec<((String, i32), i64)>) -> Result<()> {
        self.positions.extend(positions);
        if let Some(dir) = self.dirs.get(&id) {
            dir.begin_processing(self.guarantee)
                .map_err(|e| StreamsError::store(&id.to_string(), e))?;
        }
        Ok(())
    }

    /// A changelog write was acknowledged at `offset`.
    pub fn acked(&mut self, topic: &str, partition: i32, offset: i64) {
        if offset < 0 {
            return;
        }
        if let Some(p) = self.positions.get_mut(&(topic.to_owned(), partition)) {
            *p = (*p).max(offset + 1);
        }
    }

    /// Wipes a task's stores (closed before) for a full restore: its checkpoint pointed
    /// past its changelog's end, which happens when the changelog was deleted and created
    /// again.
    pub fn wipe(&mut self, id: TaskId) -> Result<()> {
        if let Some(dir) = self.dirs.get(&id) {
            dir.wipe()
                .map_err(|e| StreamsError::store(&id.to_string(), e))?;
        }
        Ok(())
    }

    /// After a commit (at_least_once): every task's stores flushed, then its checkpoint.
    pub fn committed(
        &mut self,
        topology: &Topology,
        tasks: &mut BTreeMap<TaskId, Task>,
    ) -> Result<()> {
        if self.guarantee != ProcessingGuarantee::AtLeastOnce {
            return Ok(());
        }
        for (id, task) in tasks.iter_mut() {
            let Some(dir) = self.dirs.get(id) else {
                continue;
            };
            let checkpoint = self.checkpoint(topology, task);
            if checkpoint.is_empty() {
                continue;
            }
            task.flush_stores()?;
            write_stream_times(dir.path(), &task.store_times())?;
            dir.committed(self.guarantee, &checkpoint)
                .map_err(|e| StreamsError::store(&id.to_string(), e))?;
        }
        Ok(())
    }

    /// Closes a task's directory. `clean`: the task's last commit succeeded, so its stores
    /// are flushed and checkpointed; otherwise the checkpoint is left as it was (under
    /// exactly-once there is none, and the stores will be wiped).
    pub fn close_task(&mut self, topology: &Topology, mut task: Task, clean: bool) -> Result<()> {
        let id = task.id;
        let checkpoint = self.checkpoint(topology, &task);
        for (_, topic, partition) in task.changelogs() {
            self.positions.remove(&(topic, partition));
        }
        let result = match self.dirs.remove(&id) {
            Some(dir) if clean => task.flush_stores().and_then(|()| {
                write_stream_times(dir.path(), &task.store_times())?;
                dir.close_clean(&checkpoint)
                    .map_err(|e| StreamsError::store(&id.to_string(), e))
            }),
            _ => Ok(()),
        };
        task.close();
        result
    }

    /// Closes a standby task cleanly: its stores are read up to `positions`.
    pub fn close_standby(
        &mut self,
        topology: &Topology,
        task: Task,
        positions: &HashMap<(String, i32), i64>,
    ) -> Result<()> {
        for (_, topic, partition) in task.changelogs() {
            if let Some(&p) = positions.get(&(topic.clone(), partition)) {
                self.positions.insert((topic, partition), p);
            }
        }
        self.close_task(topology, task, true)
    }

    /// The task's persistent, logged stores and how far each is restored.
    fn checkpoint(&self, topology: &Topology, task: &Task) -> Checkpoint {
        let mut checkpoint = Checkpoint::new();
        for (store, topic, partition) in task.changelogs() {
            let persistent = topology.stores.get(&store).is_some_and(|s| s.persistent);
            if !persistent {
                continue;
            }
            if let Some(&offset) = self.positions.get(&(topic.clone(), partition)) {
                checkpoint.insert(ChangelogPartition::new(topic, partition), offset);
            }
        }
        checkpoint
    }
}

/// `store<TAB>ms` per line; a missing or unreadable file means no stream time known.
fn read_stream_times(dir: &Path) -> HashMap<String, i64> {
    let Ok(text) = fs::read_to_string(dir.join(STREAM_TIME_FILE)) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| {
            let (store, ms) = l.split_once('\t')?;
            Some((store.to_owned(), ms.parse().ok()?))
        })
        .collect()
}

/// Written (atomically, durably) before the checkpoint it goes with.
fn write_stream_times(dir: &Path, times: &[(String, i64)]) -> Result<()> {
    let io =
        |e: std::io::Error| StreamsError::Config(format!("state directory {}: {e}", dir.display()));
    let tmp = dir.join(".stream-time.tmp");
    let mut f = fs::File::create(&tmp).map_err(io)?;
    for (store, ms) in times {
        writeln!(f, "{store}\t{ms}").map_err(io)?;
    }
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, dir.join(STREAM_TIME_FILE)).map_err(io)
}
