//! Standby replicas (`num.standby.replicas`): copies of other members' task stores, kept
//! warm by reading their changelogs as they are written. A standby task processes nothing;
//! when it becomes active on this instance (the owner died or left), its stores restore
//! from the standby's checkpoint on, not from the changelog's start.
//!
//! The standbys of one assignment run in a tokio task of their own with one consumer over
//! all their changelog partitions (read_committed under exactly-once, so they only ever
//! hold committed state). At the next rebalance the stream thread stops it, takes the tasks
//! back and checkpoints them.

use std::collections::{BTreeMap, HashMap};

use eddy_client::{Client, ConsumerConfig, IsolationLevel, OffsetSpec, SeekTo};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::task::{Task, TaskId};

/// Standby tasks and how far their changelogs are read.
pub(super) struct Standbys {
    pub tasks: BTreeMap<TaskId, Task>,
    /// Changelog partition → next offset to read.
    pub positions: HashMap<(String, i32), i64>,
}

/// The standbys, being updated in the background.
pub(super) struct StandbyRunner {
    stop: watch::Sender<bool>,
    handle: Option<JoinHandle<Standbys>>,
}

impl Drop for StandbyRunner {
    /// Also when the stream thread fails: the updater ends after its current poll.
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl StandbyRunner {
    /// Starts reading each task's changelogs from `positions` (the start where absent).
    pub async fn start(
        client: &Client,
        standbys: Standbys,
        read_committed: bool,
    ) -> Result<StandbyRunner> {
        let config = ConsumerConfig {
            auto_offset_reset: Some(OffsetSpec::Earliest),
            fetch_max_wait_ms: 200,
            isolation_level: if read_committed {
                IsolationLevel::ReadCommitted
            } else {
                IsolationLevel::ReadUncommitted
            },
            ..ConsumerConfig::default()
        };
        let mut consumer = eddy_client::Consumer::new(client.clone(), config);
        // Which task and store each changelog partition feeds.
        let mut feeds: HashMap<(String, i32), (TaskId, String)> = HashMap::new();
        // Collected first: a task is not shared across awaits.
        let changelogs: Vec<(TaskId, String, String, i32)> = standbys
            .tasks
            .iter()
            .flat_map(|(id, task)| {
                task.changelogs()
                    .into_iter()
                    .map(|(store, topic, partition)| (*id, store, topic, partition))
            })
            .collect();
        for (id, store, topic, partition) in changelogs {
            consumer.assign(&topic, Some(&[partition])).await?;
            let to = match standbys.positions.get(&(topic.clone(), partition)) {
                Some(&o) => SeekTo::Offset(o),
                None => SeekTo::Earliest,
            };
            consumer.seek(&topic, partition, to).await?;
            feeds.insert((topic, partition), (id, store));
        }
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(async move {
            let mut standbys = standbys;
            // Not a select on the stop signal: a poll cancelled halfway could lose records
            // whose positions it had already moved. A poll ends within fetch.max.wait.ms.
            while !feeds.is_empty() && !*stopped.borrow() {
                let records = match consumer.poll().await {
                    Ok(r) => r,
                    Err(e) => {
                        // The standbys fall behind; the active tasks are unaffected, and a
                        // takeover restores whatever they missed.
                        tracing::warn!(error = %e, "standby replicas stopped updating");
                        return standbys;
                    }
                };
                for r in records {
                    let Some((id, store)) = feeds.get(&(r.topic.clone(), r.partition)) else {
                        continue;
                    };
                    let Some(task) = standbys.tasks.get_mut(id) else {
                        continue;
                    };
                    let key = r.key.as_deref().unwrap_or_default();
                    if let Err(e) = task.restore(store, key, r.value.as_deref(), r.timestamp_ms) {
                        tracing::warn!(task = %id, %store, error = %e, "standby replicas stopped updating");
                        return standbys;
                    }
                    standbys
                        .positions
                        .insert((r.topic.clone(), r.partition), r.offset + 1);
                }
                // Transaction markers move the position past the last record.
                for key in feeds.keys() {
                    if let Some(p) = consumer.position(&key.0, key.1) {
                        standbys.positions.insert(key.clone(), p);
                    }
                }
            }
            standbys
        });
        Ok(StandbyRunner {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops updating and hands the standbys back.
    pub async fn stop(mut self) -> Option<Standbys> {
        self.stop.send_replace(true);
        match self.handle.take()?.await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "standby updater panicked; its standbys are dropped");
                None
            }
        }
    }
}
