//! The classic group coordinator (Kafka's GroupCoordinator): membership,
//! rebalances and committed offsets of consumer groups.
//!
//! # Layout
//! - [`state`]: one group's state machine, sans-io (time is a parameter).
//! - [`member`]: a member and the JoinGroup/SyncGroup answers it waits for.
//! - [`offsets`]: committed offsets of one group.
//! - [`records`]: the `__consumer_offsets` key/value codec (Kafka's format).
//! - `delete`: DeleteGroups and OffsetDelete.
//! - [`consumer`]: the KIP-848 consumer protocol (ConsumerGroupHeartbeat).
//!
//! The coordinator keeps every group behind one std Mutex (no await while
//! held); JoinGroup and SyncGroup hand back oneshot receivers that the API
//! handlers await, and one timer task fires session, join-phase and
//! pending-member deadlines.
//!
//! Durability: every OffsetCommit, every generation change and every
//! expired offset is appended as records to `__consumer_offsets` through a
//! [`GroupLog`], under the groups lock so the log's order is the memory's
//! order; at start the broker replays that topic into [`GroupCoordinator::load`].

pub mod consumer;
mod delete;
pub mod member;
pub mod offsets;
pub mod records;
pub mod state;
pub mod txn_offsets;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};

use crate::clock::now_ms;
use crate::flusher::FlushResult;
pub use delete::OffsetsDeleted;
pub use member::{JoinParams, JoinResult, JoinedMember, SyncParams, SyncResult};
pub use offsets::CommittedOffset;
pub use state::{Group, GroupConfig, State};

/// Kafka error codes of the group APIs.
pub mod codes {
    pub use eddy_protocol::codes::*;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
}

/// The timer never sleeps longer than this, as a backstop.
const TICK_MS_MAX: u64 = 1000;

/// One `__consumer_offsets` record: key, and value (None: a tombstone).
pub type Record = (Vec<u8>, Option<Vec<u8>>);

/// Where the coordinator writes its records: `__consumer_offsets`.
pub trait GroupLog: Send + Sync {
    /// Appends `records` to the partition of `group` and asks for them to
    /// be made durable; the receiver resolves once they are. An error is a
    /// Kafka error code and means nothing was written.
    fn append(
        &self,
        group: &str,
        records: Vec<Record>,
    ) -> Result<oneshot::Receiver<FlushResult>, i16>;
}

struct Inner {
    groups: Mutex<HashMap<String, Group>>,
    config: GroupConfig,
    /// None in unit tests of the state machine: offsets stay in memory.
    log: Option<std::sync::Weak<dyn GroupLog>>,
    /// Consumer-protocol groups; their offsets stay in `groups`. Taken
    /// after `groups` when both are held.
    consumer: Mutex<consumer::ConsumerGroups>,
}

impl Inner {
    fn append(
        &self,
        group: &str,
        records: Vec<Record>,
    ) -> Option<Result<oneshot::Receiver<FlushResult>, i16>> {
        let log = self.log.as_ref()?;
        Some(match log.upgrade() {
            Some(log) => log.append(group, records),
            None => Err(codes::COORDINATOR_NOT_AVAILABLE),
        })
    }

    /// Writes the group's metadata when what is kept of it changed. Nobody
    /// waits for it: after a crash that lost it, members of the newer
    /// generation are told ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID and rejoin.
    fn generation_changed(&self, group: &Group) {
        let value = records::encode_group_value(&group.metadata(now_ms()));
        let record = (records::encode_group_key(&group.id), Some(value));
        if let Some(Err(code)) = self.append(&group.id, vec![record]) {
            tracing::warn!(group = %group.id, error = codes::name(code), "writing group metadata failed");
        }
    }
}

pub struct GroupCoordinator {
    inner: Arc<Inner>,
    /// Wakes the timer task when a deadline may have moved earlier.
    wake: Arc<Notify>,
    timer_started: AtomicBool,
    /// Offsets of open transactions (TxnOffsetCommit), until their marker.
    pending_txn: txn_offsets::PendingTxnOffsets,
}

/// One partition of an OffsetCommit.
#[derive(Debug, Clone)]
pub struct CommitPartition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// What an accepted OffsetCommit gives back.
pub struct Committed {
    /// One error code per partition, in request order.
    pub errors: Vec<i16>,
    /// Resolves once the commit is durable; None when nothing was written.
    pub durable: Option<oneshot::Receiver<FlushResult>>,
}

/// A group as DescribeGroups shows it.
pub struct Described {
    pub state: State,
    pub protocol_type: String,
    pub protocol_name: String,
    /// (member id, instance id, client id, client host, metadata, assignment)
    pub members: Vec<DescribedMember>,
}

pub struct DescribedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: bytes::Bytes,
    pub assignment: bytes::Bytes,
}

impl GroupCoordinator {
    /// A coordinator whose state lives in memory only (unit tests).
    pub fn new(config: GroupConfig) -> GroupCoordinator {
        GroupCoordinator::with_log(config, None)
    }

    /// A coordinator that writes its records to `log`.
    pub fn with_log(
        config: GroupConfig,
        log: Option<std::sync::Weak<dyn GroupLog>>,
    ) -> GroupCoordinator {
        GroupCoordinator {
            inner: Arc::new(Inner {
                groups: Mutex::new(HashMap::new()),
                config,
                log,
                consumer: Mutex::default(),
            }),
            wake: Arc::new(Notify::new()),
            timer_started: AtomicBool::new(false),
            pending_txn: Default::default(),
        }
    }

    /// Runs `f` on the group (creating it when `create`), then re-arms the timer.
    fn with_group<T>(
        &self,
        id: &str,
        create: bool,
        f: impl FnOnce(&mut Group, &GroupConfig) -> T,
    ) -> Option<T> {
        self.start_timer();
        let mut groups = self.inner.groups.lock().expect("groups lock");
        if create && !groups.contains_key(id) {
            groups.insert(id.to_string(), Group::new(id));
        }
        let out = groups.get_mut(id).map(|g| {
            let before = g.persisted_view();
            let out = f(g, &self.inner.config);
            if g.persisted_view() != before {
                self.inner.generation_changed(g);
            }
            out
        });
        drop(groups);
        self.wake.notify_one();
        out
    }

    pub fn join(&self, p: JoinParams) -> oneshot::Receiver<JoinResult> {
        let error = if p.group_id.is_empty() || p.group_id.len() > records::STRING_BYTES_MAX {
            Some(codes::INVALID_GROUP_ID)
        } else {
            self.classic_join_refused(&p.group_id)
        };
        let member_id = p.member_id.clone();
        let known = !p.member_id.is_empty();
        let group_id = p.group_id.clone();
        let rx = error
            .is_none()
            .then(|| self.with_group(&group_id, !known, |g, config| g.join(p, config, now_ms())));
        match rx.flatten() {
            Some(rx) => rx,
            None => {
                // An unknown group with a member id: the member's group is gone.
                let (tx, rx) = oneshot::channel();
                let _ = tx.send(JoinResult::error(
                    error.unwrap_or(codes::UNKNOWN_MEMBER_ID),
                    &member_id,
                ));
                rx
            }
        }
    }

    pub fn sync(&self, p: SyncParams) -> oneshot::Receiver<SyncResult> {
        let group_id = p.group_id.clone();
        self.with_group(&group_id, false, |g, _| g.sync(p, now_ms()))
            .unwrap_or_else(|| {
                let (tx, rx) = oneshot::channel();
                let _ = tx.send(SyncResult::error(codes::UNKNOWN_MEMBER_ID));
                rx
            })
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        self.with_group(group_id, false, |g, _| {
            g.heartbeat(member_id, instance_id, generation, now_ms())
        })
        .unwrap_or(codes::UNKNOWN_MEMBER_ID)
    }

    pub fn leave(&self, group_id: &str, member_id: &str, instance_id: Option<&str>) -> i16 {
        self.with_group(group_id, false, |g, config| {
            g.leave(member_id, instance_id, now_ms(), config)
        })
        .unwrap_or(codes::UNKNOWN_MEMBER_ID)
    }

    /// OffsetCommit for one group: an error for every partition, or one per
    /// partition and, when a log backs the coordinator, a receiver that
    /// resolves once the commit is durable (answer only then). Generation -1
    /// with no member id is a simple commit from a consumer that assigns
    /// partitions itself; it needs an empty group.
    pub fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        partitions: &[CommitPartition],
    ) -> Result<Committed, i16> {
        if group_id.is_empty() || group_id.len() > records::STRING_BYTES_MAX {
            return Err(codes::INVALID_GROUP_ID);
        }
        // A consumer-protocol group checks the member epoch itself.
        let consumer = self.consumer_offsets_check(group_id, member_id, generation);
        if let Some(error) = consumer.filter(|e| *e != codes::NONE) {
            return Err(error);
        }
        let simple = generation < 0;
        let now = now_ms();
        self.with_group(group_id, simple || consumer.is_some(), |g, _| {
            if consumer.is_none() && !(simple && g.state == State::Empty) {
                let error = g.check_member(member_id, instance_id, generation);
                if error != codes::NONE {
                    return Err(error);
                }
                if g.state == State::CompletingRebalance {
                    return Err(codes::REBALANCE_IN_PROGRESS);
                }
            }
            let mut accepted = Vec::new();
            let errors = partitions
                .iter()
                .map(|p| {
                    let metadata = p.metadata.clone().unwrap_or_default();
                    if metadata.len() > offsets::METADATA_BYTES_MAX {
                        return codes::OFFSET_METADATA_TOO_LARGE;
                    }
                    let committed = CommittedOffset {
                        offset: p.offset,
                        leader_epoch: p.leader_epoch,
                        metadata,
                        commit_timestamp_ms: now,
                    };
                    accepted.push((p.topic.as_str(), p.partition, committed));
                    codes::NONE
                })
                .collect();
            let durable = self.write_offsets(group_id, &accepted)?;
            for (topic, partition, committed) in accepted {
                g.offsets.commit(topic, partition, committed);
            }
            Ok(Committed { errors, durable })
        })
        .unwrap_or(Err(codes::ILLEGAL_GENERATION))
    }

    /// KIP-447's fencing of transactional offset commits: one that names a member (a
    /// generation, or a member id) is refused unless that member is in the group's current
    /// generation, so a member that lost its partitions in a rebalance cannot commit
    /// offsets for them in a transaction. A commit naming no member is not checked.
    pub fn check_txn_member(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        if generation < 0 && member_id.is_empty() {
            return codes::NONE;
        }
        if let Some(error) = self.consumer_offsets_check(group_id, member_id, generation) {
            return error;
        }
        let groups = self.inner.groups.lock().expect("groups lock");
        match groups.get(group_id) {
            Some(g) if !(generation < 0 && g.state == State::Empty) => {
                g.check_member(member_id, instance_id, generation)
            }
            Some(_) => codes::NONE,
            None if generation < 0 => codes::NONE,
            None => codes::ILLEGAL_GENERATION,
        }
    }

    /// Appends one record per accepted offset; nothing when none is.
    fn write_offsets(
        &self,
        group_id: &str,
        accepted: &[(&str, i32, CommittedOffset)],
    ) -> Result<Option<oneshot::Receiver<FlushResult>>, i16> {
        if accepted.is_empty() {
            return Ok(None);
        }
        let batch = accepted
            .iter()
            .map(|(t, p, c)| {
                (
                    records::encode_offset_key(group_id, t, *p),
                    Some(records::encode_offset_value(c)),
                )
            })
            .collect();
        self.inner.append(group_id, batch).transpose()
    }

    /// Replays one `__consumer_offsets` record at start: the last record of
    /// a key wins, a tombstone deletes. Groups come back Empty with their
    /// last generation and protocol; their members rejoin.
    pub fn load(&self, key: records::Key, value: Option<records::Value>) {
        let mut groups = self.inner.groups.lock().expect("groups lock");
        let id = key.group().to_string();
        match (key, value) {
            (
                records::Key::Offset {
                    topic, partition, ..
                },
                Some(records::Value::Offset(c)),
            ) => {
                let g = groups.entry(id.clone()).or_insert_with(|| Group::new(&id));
                g.offsets.commit(&topic, partition, c);
            }
            (
                records::Key::Offset {
                    topic, partition, ..
                },
                None,
            ) => {
                if let Some(g) = groups.get_mut(&id) {
                    g.offsets.remove(&topic, partition);
                }
            }
            (records::Key::Group { .. }, Some(records::Value::Group(m))) => {
                let g = groups.entry(id.clone()).or_insert_with(|| Group::new(&id));
                g.restore(&m, now_ms(), &self.inner.config);
            }
            (records::Key::Group { .. }, None) => {
                if let Some(g) = groups.get_mut(&id) {
                    g.restore(
                        &records::GroupMetadata::default(),
                        now_ms(),
                        &self.inner.config,
                    );
                }
            }
            (key, Some(_)) => {
                tracing::warn!(
                    ?key,
                    "__consumer_offsets value does not match its key; skipped"
                );
            }
        }
        if groups
            .get(&id)
            .is_some_and(|g| g.generation == 0 && g.offsets.is_empty())
        {
            groups.remove(&id);
        }
    }

    /// Committed offsets of a group: the named partitions (None when not
    /// committed), or every committed one when `wanted` is None.
    pub fn fetch(
        &self,
        group_id: &str,
        wanted: Option<&[(String, i32)]>,
    ) -> Vec<(String, i32, Option<CommittedOffset>)> {
        let groups = self.inner.groups.lock().expect("groups lock");
        let group = groups.get(group_id);
        match wanted {
            Some(list) => list
                .iter()
                .map(|(t, p)| {
                    let c = group.and_then(|g| g.offsets.get(t, *p)).cloned();
                    (t.clone(), *p, c)
                })
                .collect(),
            None => group
                .map(|g| {
                    g.offsets
                        .all()
                        .map(|(t, p, c)| (t.to_string(), p, Some(c.clone())))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn describe(&self, group_id: &str) -> Option<Described> {
        let groups = self.inner.groups.lock().expect("groups lock");
        let g = groups.get(group_id)?;
        let stable = g.state == State::Stable;
        let protocol = g.protocol_name.clone().unwrap_or_default();
        let members = g
            .members
            .iter()
            .map(|m| DescribedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(&protocol)
                } else {
                    Default::default()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Default::default()
                },
            })
            .collect();
        Some(Described {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_name: if stable { protocol } else { String::new() },
            members,
        })
    }

    /// Deletes the offsets of Empty groups committed `offsets.retention`
    /// ago or earlier, writing a tombstone for each, and forgets an Empty
    /// group left with no offsets (tombstoning its metadata). Kafka counts
    /// a consumer group's retention from when it became Empty; Eddy counts
    /// from each offset's commit, which expires no offset sooner than
    /// retention after it was written. Returns how many offsets expired.
    pub fn expire_offsets(&self, now_ms: i64) -> usize {
        let mut groups = self.inner.groups.lock().expect("groups lock");
        expire(&self.inner, &mut groups, now_ms)
    }

    /// (group id, protocol type, state) of every group.
    pub fn list(&self) -> Vec<(String, String, State)> {
        let groups = self.inner.groups.lock().expect("groups lock");
        let consumer = self.inner.consumer();
        let mut out: Vec<_> = groups
            .values()
            .filter(|g| !consumer.groups.contains_key(&g.id))
            .map(|g| {
                (
                    g.id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state,
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Starts the timer task on first use, from inside the runtime (the
    /// broker also starts it at open, so loaded offsets expire unasked).
    pub fn start_timer(&self) {
        if self.timer_started.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.timer_started.swap(true, Ordering::Relaxed) {
            return;
        }
        runtime.spawn(timer(Arc::downgrade(&self.inner), self.wake.clone()));
    }
}

fn expire(inner: &Inner, groups: &mut HashMap<String, Group>, now_ms: i64) -> usize {
    let cutoff_ms = now_ms.saturating_sub(inner.config.offsets_retention_ms);
    let mut expired = 0;
    let mut forget = Vec::new();
    let active = inner.consumer().active();
    for g in groups
        .values_mut()
        .filter(|g| g.state == State::Empty && !active.contains(&g.id))
    {
        let stale: Vec<(String, i32)> = g
            .offsets
            .all()
            .filter(|(_, _, c)| c.commit_timestamp_ms <= cutoff_ms)
            .map(|(t, p, _)| (t.to_string(), p))
            .collect();
        if stale.is_empty() {
            continue;
        }
        let mut batch: Vec<Record> = stale
            .iter()
            .map(|(t, p)| (records::encode_offset_key(&g.id, t, *p), None))
            .collect();
        let all_gone = stale.len() == g.offsets.all().count();
        if all_gone && g.generation > 0 {
            batch.push((records::encode_group_key(&g.id), None));
        }
        // Memory follows the log: a failed write keeps the offsets.
        if let Some(Err(code)) = inner.append(&g.id, batch) {
            tracing::warn!(group = %g.id, error = codes::name(code), "writing offset tombstones failed");
            continue;
        }
        for (t, p) in &stale {
            g.offsets.remove(t, *p);
        }
        expired += stale.len();
        tracing::info!(group = %g.id, offsets = stale.len(), "expired committed offsets");
        if all_gone {
            forget.push(g.id.clone());
        }
    }
    for id in forget {
        groups.remove(&id);
        inner.consumer().groups.remove(&id);
    }
    expired
}

/// Fires due deadlines and expires old offsets; ends when the coordinator
/// is dropped.
async fn timer(inner: Weak<Inner>, wake: Arc<Notify>) {
    let mut next_expiry_ms = 0;
    loop {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let now = now_ms();
        let next = {
            let mut groups = inner.groups.lock().expect("groups lock");
            if now >= next_expiry_ms {
                expire(&inner, &mut groups, now);
                next_expiry_ms = now + inner.config.offsets_retention_check_interval_ms;
            }
            groups
                .values_mut()
                .filter_map(|g| {
                    let before = g.persisted_view();
                    g.tick(now, &inner.config);
                    if g.persisted_view() != before {
                        inner.generation_changed(g);
                    }
                    g.next_deadline_ms()
                })
                .min()
        };
        let next = {
            let mut consumer = inner.consumer();
            consumer.tick(now);
            next.into_iter().chain(consumer.next_deadline_ms()).min()
        };
        drop(inner);
        let sleep_ms = next.map_or(TICK_MS_MAX, |d| {
            (d - now).clamp(1, TICK_MS_MAX as i64) as u64
        });
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms)) => {}
            _ = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests;
