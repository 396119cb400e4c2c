//! A stream thread: one group member running its tasks. It polls, routes records to tasks
//! (within a task, the record with the smallest timestamp among its partitions goes first),
//! sends what the tasks produce, and commits on `commit.interval.ms`.
//!
//! - at_least_once: every send acknowledged first, then the consumed offsets.
//! - exactly_once_v2: outputs, changelog writes and consumed offsets go in one
//!   transaction of the thread's producer (KIP-447: the offsets carry the member's
//!   generation, so a member that lost its tasks cannot commit for them). When a
//!   transaction has to be aborted, the tasks are rebuilt from their changelogs (read
//!   committed) and the input rewound to the committed offsets, so the state and the
//!   outputs never hold an aborted transaction's effects.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eddy_client::group_consumer::{
    AutoOffsetReset, GroupConsumer, GroupConsumerConfig, GroupEvent,
};
use eddy_client::offsets::list_offsets_with_isolation;
use eddy_client::{
    Client, ClientConfig, ConsumerConfig, ConsumerRecord, DeliveryFuture, IsolationLevel,
    OffsetSpec, Producer, ProducerConfig, ProducerRecord, SeekTo, TopicPartition,
};
use tokio::sync::watch;

use super::assignor::{AssignmentInfo, StreamsAssignor};
use super::global::GlobalUpdater;
use super::standby::{StandbyRunner, Standbys};
use super::stores::{LocalState, TaskRecovery};
use super::{Shared, StreamsState};
use crate::config::{ProcessingGuarantee, RestoreEvent, RestoreListener, StreamsConfig};
use crate::error::Result;
use crate::record::OutRecord;
use crate::state::StoreHandle;
use crate::task::{InputRecord, Task, TaskId};
use crate::topology::Topology;

/// Sends in flight before the thread waits for their acknowledgements.
const PENDING_SENDS_MAX: usize = 100_000;

pub(super) struct StreamThread {
    topology: Arc<Topology>,
    config: StreamsConfig,
    shared: Arc<Shared>,
    client: Client,
    consumer: GroupConsumer,
    producer: Producer,
    tasks: BTreeMap<TaskId, Task>,
    /// Next offset to commit per input partition.
    positions: BTreeMap<TopicPartition, i64>,
    pending: VecDeque<DeliveryFuture>,
    /// Offsets of the last successful commit (exactly-once: skip empty transactions).
    last_committed: BTreeMap<TopicPartition, i64>,
    prev_tasks: Arc<Mutex<Vec<TaskId>>>,
    last_commit: Instant,
    started: Instant,
    /// exactly_once_v2: a transaction is open (begun at the first send after a commit).
    eos: bool,
    in_txn: bool,
    /// Tasks' directories, persistent stores and checkpoints.
    local: LocalState,
    /// Standby replicas of this assignment, updating in the background.
    standby: Option<StandbyRunner>,
    /// Global tables' stores, shared by every task, and what keeps them current.
    globals: HashMap<String, StoreHandle>,
    global_updater: Option<GlobalUpdater>,
    prev_standby: Arc<Mutex<Vec<TaskId>>>,
    /// Held while running: one instance per state directory.
    _process: super::process::ProcessDir,
}

impl StreamThread {
    pub(super) async fn start(
        topology: Arc<Topology>,
        config: StreamsConfig,
        shared: Arc<Shared>,
    ) -> Result<StreamThread> {
        let client = Client::connect(ClientConfig::new(&config.bootstrap_servers)).await?;
        let app = config.application_id.clone();
        super::topics::prepare(&client, &topology, &app).await?;
        let prev_tasks = Arc::new(Mutex::new(Vec::new()));
        let prev_standby = Arc::new(Mutex::new(Vec::new()));
        let assignor = Arc::new(StreamsAssignor {
            topology: topology.clone(),
            application_id: app.clone(),
            host: config.application_server.clone(),
            prev_tasks: prev_tasks.clone(),
            prev_standby_tasks: prev_standby.clone(),
            num_standby_replicas: config.num_standby_replicas,
        });
        let mut gc = GroupConsumerConfig::new(&app);
        gc.session_timeout_ms = config.session_timeout_ms;
        gc.group_instance_id = config.group_instance_id.clone();
        gc.heartbeat_interval_ms = config.heartbeat_interval_ms;
        gc.max_poll_interval_ms = config.max_poll_interval_ms;
        gc.auto_offset_reset = if config.auto_offset_reset_earliest {
            AutoOffsetReset::Earliest
        } else {
            AutoOffsetReset::Latest
        };
        gc.consumer.fetch_max_wait_ms = 100;
        let mut consumer = GroupConsumer::new(client.clone(), gc, assignor).await?;
        let sources: Vec<String> = topology
            .subtopologies()
            .iter()
            .flat_map(|s| s.source_topics.iter().map(|t| t.resolve(&app)))
            .collect();
        let refs: Vec<&str> = sources.iter().map(String::as_str).collect();
        consumer.subscribe(&refs).await?;
        let process = super::process::ProcessDir::open(&config.state_dir, &app)?;
        let eos = config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2;
        let mut pc = ProducerConfig::default();
        if eos {
            // EOS v2: one producer per thread; fencing is by group generation (KIP-447).
            // The process id is kept in the state directory, so a restarted instance has
            // its predecessor's transactional id: init_transactions fences the dead
            // one's open transaction at once instead of leaving it to its timeout.
            pc.transactional_id = Some(format!("{app}-{}-1", process.id));
            pc.transaction_timeout_ms = 10_000; // Kafka Streams' default under EOS
        }
        let local = LocalState::open(&config.state_dir, &app, eos)?;
        let globals = StoreHandle::globals(&topology);
        let global_updater = GlobalUpdater::start(&client, &topology, &globals, eos).await?;
        let producer = Producer::new(client.clone(), pc).await?;
        if eos {
            producer.init_transactions().await?;
        }
        Ok(StreamThread {
            topology,
            config,
            shared,
            client,
            consumer,
            producer,
            tasks: BTreeMap::new(),
            positions: BTreeMap::new(),
            pending: VecDeque::new(),
            last_committed: BTreeMap::new(),
            prev_tasks,
            last_commit: Instant::now(),
            started: Instant::now(),
            eos,
            in_txn: false,
            local,
            standby: None,
            globals,
            global_updater: Some(global_updater),
            prev_standby,
            _process: process,
        })
    }

    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<()> {
        loop {
            if *stop.borrow() {
                return self.shutdown().await;
            }
            let event = tokio::select! {
                e = self.consumer.poll() => e?,
                _ = stop.changed() => continue,
            };
            match event {
                GroupEvent::Revoked(_) => {
                    self.shared.set_state(StreamsState::Rebalancing);
                    self.commit().await?;
                    self.close_tasks(true)?;
                    self.stop_standbys().await?;
                }
                GroupEvent::Assigned {
                    partitions,
                    user_data,
                    ..
                } => {
                    let info = AssignmentInfo::parse(&user_data);
                    self.shared.set_hosts(info.hosts.clone());
                    self.assign(&partitions).await?;
                    self.start_standbys(&info).await?;
                    self.shared.set_state(StreamsState::Running);
                }
                GroupEvent::Records(records) => self.process(records).await?,
            }
            let now = self.now_ms();
            for task in self.tasks.values_mut() {
                task.punctuate_wall_clock(now)?;
            }
            self.send_outputs().await?;
            if self.last_commit.elapsed() >= Duration::from_millis(self.config.commit_interval_ms) {
                self.commit().await?;
            }
        }
    }

    async fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let app = self.config.application_id.clone();
        let mut ids: Vec<TaskId> = partitions
            .iter()
            .filter_map(|tp| {
                let sub = self.topology.subtopology_reading(&app, &tp.topic)?;
                Some(TaskId {
                    subtopology: sub,
                    partition: tp.partition,
                })
            })
            .collect();
        ids.sort();
        ids.dedup();
        for id in &ids {
            let task = self.open_task(*id).await?;
            self.tasks.insert(*id, task);
        }
        for tp in partitions {
            if let Some(p) = self.consumer.position(tp) {
                self.positions.insert(tp.clone(), p);
            }
        }
        *self.prev_tasks.lock().unwrap_or_else(|p| p.into_inner()) = ids.clone();
        self.shared.set_tasks(&self.tasks);
        tracing::info!(application_id = %app, tasks = ?ids.iter().map(|t| t.to_string()).collect::<Vec<_>>(), "tasks assigned");
        Ok(())
    }

    /// A task with its stores restored: persistent stores from their checkpoint on,
    /// in-memory stores from their changelogs' start.
    async fn open_task(&mut self, id: TaskId) -> Result<Task> {
        let app = self.config.application_id.clone();
        let mut wiped = false;
        loop {
            let recovery = self.local.open_task(id)?;
            let local = &self.local;
            let stores = |spec: &crate::topology::StoreSpec, id: TaskId| local.engine(spec, id);
            let mut task = Task::new(
                self.topology.clone(),
                id,
                &app,
                &stores,
                &self.globals,
                self.config.errors.clone(),
                self.now_ms(),
            )?;
            let listener = self.config.restore_listener.as_ref();
            match restore(&self.client, &mut task, self.eos, &recovery, listener).await? {
                Restored::Done(positions) => {
                    self.local.restored(id, positions)?;
                    return Ok(task);
                }
                Restored::CheckpointPastEnd(what) if !wiped => {
                    tracing::warn!(task = %id, %what, "checkpoint is past the changelog's end (was the changelog recreated?); wiping the task's stores and restoring in full");
                    drop(task);
                    self.local.wipe(id)?;
                    wiped = true;
                }
                Restored::CheckpointPastEnd(what) => {
                    return Err(crate::error::StreamsError::Config(format!(
                        "task {id}: {what} even after wiping its stores"
                    )))
                }
            }
        }
    }

    /// Opens this member's standby tasks (those it does not run) and starts updating them.
    async fn start_standbys(&mut self, info: &AssignmentInfo) -> Result<()> {
        let app = self.config.application_id.clone();
        let ids: Vec<TaskId> = info
            .standby_tasks()
            .into_iter()
            .filter(|id| !self.tasks.contains_key(id))
            .collect();
        let mut standbys = Standbys {
            tasks: BTreeMap::new(),
            positions: Default::default(),
        };
        for id in &ids {
            let recovery = self.local.open_task(*id)?;
            let local = &self.local;
            let stores = |spec: &crate::topology::StoreSpec, id: TaskId| local.engine(spec, id);
            let mut task = Task::new(
                self.topology.clone(),
                *id,
                &app,
                &stores,
                &self.globals,
                self.config.errors.clone(),
                self.now_ms(),
            )?;
            for (store, ms) in &recovery.stream_times {
                task.set_restored_time(store, *ms);
            }
            for (store, topic, partition) in task.changelogs() {
                let key = (topic, partition);
                if let Some(&from) = recovery.from.get(&key) {
                    if task.store_is_persistent(&store) {
                        standbys.positions.insert(key, from);
                    }
                }
            }
            standbys.tasks.insert(*id, task);
        }
        *self.prev_standby.lock().unwrap_or_else(|p| p.into_inner()) = ids.clone();
        self.shared.set_standby_tasks(ids.clone());
        if !ids.is_empty() {
            tracing::info!(application_id = %app, standby = ?ids.iter().map(|t| t.to_string()).collect::<Vec<_>>(), "standby tasks assigned");
            self.standby = Some(StandbyRunner::start(&self.client, standbys, self.eos).await?);
        }
        Ok(())
    }

    /// Stops the standbys and checkpoints them (before a rebalance's new assignment).
    async fn stop_standbys(&mut self) -> Result<()> {
        self.shared.set_standby_tasks(Vec::new());
        let Some(runner) = self.standby.take() else {
            return Ok(());
        };
        let Some(standbys) = runner.stop().await else {
            return Ok(());
        };
        let mut result = Ok(());
        for (_, task) in standbys.tasks {
            let closed = self
                .local
                .close_standby(&self.topology, task, &standbys.positions);
            if result.is_ok() {
                result = closed;
            }
        }
        result
    }

    async fn process(&mut self, records: Vec<ConsumerRecord>) -> Result<()> {
        let app = self.config.application_id.clone();
        // Per task, per partition, in offset order.
        let mut queues: BTreeMap<TaskId, BTreeMap<(String, i32), VecDeque<ConsumerRecord>>> =
            BTreeMap::new();
        for r in records {
            let Some(sub) = self.topology.subtopology_reading(&app, &r.topic) else {
                continue;
            };
            let id = TaskId {
                subtopology: sub,
                partition: r.partition,
            };
            queues
                .entry(id)
                .or_default()
                .entry((r.topic.clone(), r.partition))
                .or_default()
                .push_back(r);
        }
        for (id, mut parts) in queues {
            let Some(task) = self.tasks.get_mut(&id) else {
                continue;
            };
            loop {
                // The smallest timestamp among the partitions' heads goes next.
                let next = parts
                    .iter()
                    .filter_map(|(k, q)| q.front().map(|r| (r.timestamp_ms, k.clone())))
                    .min();
                let Some((_, k)) = next else { break };
                let r = parts
                    .get_mut(&k)
                    .and_then(VecDeque::pop_front)
                    .expect("head seen");
                let tp = TopicPartition::new(&r.topic, r.partition);
                let offset = r.offset;
                task.process(InputRecord {
                    topic: r.topic,
                    partition: r.partition,
                    offset,
                    timestamp_ms: r.timestamp_ms,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                })?;
                self.positions.insert(tp, offset + 1);
            }
        }
        self.send_outputs().await
    }

    async fn send_outputs(&mut self) -> Result<()> {
        let outs: Vec<OutRecord> = self
            .tasks
            .values_mut()
            .flat_map(|t| t.take_output())
            .collect();
        if self.eos && !self.in_txn && !outs.is_empty() {
            self.producer.begin_transaction()?;
            self.in_txn = true;
        }
        for o in outs {
            let record = ProducerRecord {
                topic: o.topic,
                partition: o.partition,
                key: o.key,
                value: o.value,
                headers: o.headers,
                timestamp_ms: Some(o.timestamp_ms),
            };
            self.pending.push_back(self.producer.send(record).await?);
        }
        if self.pending.len() > PENDING_SENDS_MAX {
            self.await_sends().await?;
        }
        Ok(())
    }

    async fn await_sends(&mut self) -> Result<()> {
        while let Some(f) = self.pending.pop_front() {
            let md = f.await?;
            self.local.acked(&md.topic, md.partition, md.offset);
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        if self.eos {
            self.commit_transaction().await
        } else {
            self.commit_at_least_once().await
        }
    }

    /// At-least-once commit: every output acknowledged, stores flushed, then offsets.
    async fn commit_at_least_once(&mut self) -> Result<()> {
        self.send_outputs().await?;
        self.await_sends().await?;
        for t in self.tasks.values_mut() {
            t.flush_stores()?;
        }
        let offsets = self.offsets();
        if !offsets.is_empty() {
            if let Err(e) = self.consumer.commit(&offsets).await {
                if eddy_client::group_consumer::is_membership_lost(&e) {
                    tracing::warn!(error = %e, "commit refused: the group moved on; records since the last commit will be processed again");
                } else {
                    return Err(e.into());
                }
            }
        }
        self.local.committed(&self.topology, &mut self.tasks)?;
        self.committed()
    }

    fn offsets(&self) -> Vec<(TopicPartition, i64)> {
        self.positions
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    fn committed(&mut self) -> Result<()> {
        self.shared.set_metrics(&self.tasks);
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Exactly-once commit: the consumed offsets join the transaction, which commits.
    async fn commit_transaction(&mut self) -> Result<()> {
        self.send_outputs().await?;
        let offsets = self.offsets();
        if !self.in_txn {
            if offsets.is_empty() || !self.advanced(&offsets) {
                return self.committed();
            }
            self.producer.begin_transaction()?;
            self.in_txn = true;
        }
        let result = async {
            while let Some(f) = self.pending.pop_front() {
                let md = f.await?;
                self.local.acked(&md.topic, md.partition, md.offset);
            }
            let group = self.consumer.group_metadata();
            self.producer
                .send_offsets_to_transaction(&offsets, &group)
                .await?;
            self.producer.commit_transaction().await
        }
        .await;
        self.in_txn = false;
        match result {
            Ok(()) => {
                self.last_committed = offsets.into_iter().collect();
                self.committed()
            }
            Err(e) if e.is_fatal_txn() => Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "transaction failed; aborting it and rebuilding the tasks from their changelogs");
                self.pending.clear();
                if let Err(abort) = self.producer.abort_transaction().await {
                    if abort.is_fatal_txn() {
                        return Err(abort.into());
                    }
                }
                self.rebuild_tasks().await
            }
        }
    }

    /// Whether any position moved since the last commit.
    fn advanced(&self, offsets: &[(TopicPartition, i64)]) -> bool {
        offsets
            .iter()
            .any(|(tp, o)| self.last_committed.get(tp) != Some(o))
    }

    /// After an aborted transaction: fresh tasks restored from the committed changelogs,
    /// input rewound to the committed offsets.
    async fn rebuild_tasks(&mut self) -> Result<()> {
        let assignment = self.consumer.assignment();
        // The stores may hold the aborted transaction's writes: no checkpoint vouches for
        // them (under exactly-once they are wiped when the tasks open again).
        self.close_tasks(false)?;
        let committed = self.consumer.committed(&assignment).await?;
        for (tp, offset) in committed {
            match offset {
                Some(o) => self.consumer.seek(&tp, o).await?,
                None => {
                    let earliest = list_offsets_with_isolation(
                        &self.client,
                        &tp.topic,
                        &[tp.partition],
                        OffsetSpec::Earliest,
                        IsolationLevel::ReadCommitted,
                    )
                    .await?;
                    let o = earliest
                        .get(&tp.partition)
                        .and_then(|l| l.offset)
                        .unwrap_or(0);
                    self.consumer.seek(&tp, o).await?;
                }
            }
        }
        self.assign(&assignment).await
    }

    /// Closes every task; `clean`: after a successful commit, so stores are checkpointed.
    fn close_tasks(&mut self, clean: bool) -> Result<()> {
        // Interactive queries let go of the stores first, so that their engines close.
        self.shared.set_tasks(&BTreeMap::new());
        let mut result = Ok(());
        for (_, t) in std::mem::take(&mut self.tasks) {
            let closed = self.local.close_task(&self.topology, t, clean);
            if result.is_ok() {
                result = closed;
            }
        }
        self.positions.clear();
        result
    }

    async fn shutdown(mut self) -> Result<()> {
        let result = self.commit().await;
        let closed = self.close_tasks(result.is_ok());
        let standbys = self.stop_standbys().await;
        if let Some(g) = self.global_updater.take() {
            g.stop().await;
        }
        let result = result.and(closed).and(standbys);
        let _ = self.consumer.close().await;
        self.producer.close().await;
        tracing::info!(
            uptime_s = self.started.elapsed().as_secs(),
            "stream thread stopped"
        );
        result
    }
}

enum Restored {
    /// Changelog partition → the position the restore reached.
    Done(Vec<((String, i32), i64)>),
    /// A checkpoint offset beyond the changelog's end.
    CheckpointPastEnd(String),
}

/// Replays each store's changelog partition into it, from the checkpoint (persistent stores
/// that have one) or the start, to the end.
async fn restore(
    client: &Client,
    task: &mut Task,
    read_committed: bool,
    recovery: &TaskRecovery,
    listener: Option<&RestoreListener>,
) -> Result<Restored> {
    for (store, ms) in &recovery.stream_times {
        task.set_restored_time(store, *ms);
    }
    let mut positions = Vec::new();
    for (store, topic, partition) in task.changelogs() {
        let isolation = if read_committed {
            IsolationLevel::ReadCommitted
        } else {
            IsolationLevel::ReadUncommitted
        };
        let end = list_offsets_with_isolation(
            client,
            &topic,
            &[partition],
            OffsetSpec::Latest,
            isolation,
        )
        .await?;
        let end = end.get(&partition).and_then(|o| o.offset).unwrap_or(0);
        let from = recovery
            .from
            .get(&(topic.clone(), partition))
            .copied()
            .filter(|_| task.store_is_persistent(&store));
        if let Some(from) = from {
            let high_watermark = list_offsets_with_isolation(
                client,
                &topic,
                &[partition],
                OffsetSpec::Latest,
                IsolationLevel::ReadUncommitted,
            )
            .await?;
            let hw = high_watermark
                .get(&partition)
                .and_then(|o| o.offset)
                .unwrap_or(0);
            if from > hw {
                return Ok(Restored::CheckpointPastEnd(format!(
                    "store {store:?}: checkpoint at offset {from} of {topic}-{partition}, whose end is {hw}"
                )));
            }
        }
        let start = from.unwrap_or(0);
        let task_id = task.id;
        let notify = |records: u64, to_offset: i64| {
            if let Some(l) = listener {
                (l.0)(&RestoreEvent {
                    task: task_id,
                    store: store.clone(),
                    topic: topic.clone(),
                    partition,
                    from_offset: start,
                    to_offset,
                    records,
                });
            }
        };
        if end == 0 || start >= end {
            notify(0, start.max(end));
            positions.push(((topic, partition), start.max(end)));
            continue;
        }
        let config = ConsumerConfig {
            auto_offset_reset: Some(OffsetSpec::Earliest),
            fetch_max_wait_ms: 50,
            isolation_level: isolation,
            ..ConsumerConfig::default()
        };
        let mut c = eddy_client::Consumer::new(client.clone(), config);
        c.assign(&topic, Some(&[partition])).await?;
        match from {
            Some(o) => c.seek(&topic, partition, SeekTo::Offset(o)).await?,
            None => c.seek(&topic, partition, SeekTo::Earliest).await?,
        }
        let mut restored = 0u64;
        // Until the position reaches both the listed end and the end the last fetch
        // reported: some brokers' ListOffsets lags their fetches (Tansu's does).
        loop {
            for r in c.poll().await? {
                task.restore(
                    &store,
                    r.key.as_deref().unwrap_or_default(),
                    r.value.as_deref(),
                    r.timestamp_ms,
                )?;
                restored += 1;
            }
            if c.at_end() && c.position(&topic, partition).unwrap_or(0) >= end {
                break;
            }
        }
        let position = c.position(&topic, partition).unwrap_or(end);
        notify(restored, position);
        tracing::info!(task = %task.id, store = %store, records = restored, from = start, end = position, "store restored from its changelog");
        positions.push(((topic, partition), position));
    }
    task.reinit()?;
    Ok(Restored::Done(positions))
}
