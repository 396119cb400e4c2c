//! A consumer-group member, speaking the classic group protocol as the Java `KafkaConsumer`
//! and librdkafka do, so it works against Eddy and any Kafka broker: it finds the group's
//! coordinator (FindCoordinator), joins a generation (JoinGroup, SyncGroup; the leader runs
//! the [`Assignor`]), heartbeats in the background, starts each partition at the group's
//! committed offset (OffsetFetch) and commits as a member of its generation (OffsetCommit).
//!
//! # Layout
//!
//! - [`assignor`]: the [`Assignor`] trait and Kafka's [`RangeAssignor`].
//! - `config`: [`GroupConsumerConfig`], named after Kafka's consumer configs.
//! - `protocol`: the `consumer` protocol bytes (subscriptions, assignments), sans-io.
//! - `coordinator`: the member's own connection to its coordinator, and the group requests.
//! - `membership`: one join attempt, and what each error means for the next.
//! - `heartbeat`: the background heartbeat and what it reports to `poll()`.
//! - `positions`: where each partition is, pause/resume, and fetching.
//! - `commit`: committed offsets, the metadata a transactional producer needs, close.
//! - this file: [`GroupConsumer`], the state machine the application drives with `poll()`.
//!
//! # The eager protocol, as the application sees it
//!
//! `poll()` hands out one [`GroupEvent`] at a time. The first call joins and returns
//! [`GroupEvent::Assigned`]; then come [`GroupEvent::Records`]. When the group rebalances
//! (a member joins or leaves, the subscription changes, the coordinator moves, the heartbeat
//! says this member was removed), `poll()` returns [`GroupEvent::Revoked`] with every
//! partition held: finish with them (commit) *before* polling again, since the next
//! `poll()` is what rejoins, after which another member may own them. A commit refused
//! with a rebalance error ([`is_membership_lost`]) means the group has already moved on.
//!
//! # Example
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use eddy_client::{Client, ClientConfig, GroupConsumer, GroupConsumerConfig, GroupEvent};
//! use eddy_client::{RangeAssignor, TopicPartition};
//!
//! # async fn example() -> eddy_client::Result<()> {
//! let client = Client::connect(ClientConfig::new("127.0.0.1:9092")).await?;
//! let config = GroupConsumerConfig::new("billing");
//! let mut consumer = GroupConsumer::new(client, config, Arc::new(RangeAssignor)).await?;
//! consumer.subscribe(&["orders"]).await?;
//! let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
//! loop {
//!     match consumer.poll().await? {
//!         GroupEvent::Assigned { partitions, .. } => println!("assigned {partitions:?}"),
//!         GroupEvent::Records(records) => {
//!             for r in &records {
//!                 println!("{}-{}@{}: {:?}", r.topic, r.partition, r.offset, r.value);
//!                 next.insert(TopicPartition::new(&r.topic, r.partition), r.offset + 1);
//!             }
//!             let offsets: Vec<(TopicPartition, i64)> = next.clone().into_iter().collect();
//!             consumer.commit(&offsets).await?;
//!         }
//!         // Everything read was committed with its batch: nothing left to finish.
//!         GroupEvent::Revoked(_) => next.clear(),
//!     }
//! #   break;
//! }
//! consumer.close().await
//! # }
//! ```

pub mod assignor;
mod commit;
mod config;
mod coordinator;
mod heartbeat;
mod membership;
mod positions;
mod protocol;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use assignor::{Assignor, MemberAssignment, MemberSubscription, RangeAssignor};
pub use config::{AutoOffsetReset, GroupConsumerConfig};

use crate::client::Client;
use crate::consumer::Consumer;
use crate::error::{Error, Result};
use crate::record::{ConsumerRecord, TopicPartition};
use coordinator::{Coordinator, Identity};
use heartbeat::{Heartbeat, Rejoin, Shared};
use membership::{JoinContext, Step};

/// Kafka error codes of the group protocol, for matching [`Error::kafka_code`].
pub mod codes {
    use crate::error::KafkaCode;
    pub const NONE: KafkaCode = KafkaCode(0);
    pub const COORDINATOR_LOAD_IN_PROGRESS: KafkaCode = KafkaCode(14);
    pub const COORDINATOR_NOT_AVAILABLE: KafkaCode = KafkaCode(15);
    pub const NOT_COORDINATOR: KafkaCode = KafkaCode(16);
    pub const ILLEGAL_GENERATION: KafkaCode = KafkaCode(22);
    pub const INCONSISTENT_GROUP_PROTOCOL: KafkaCode = KafkaCode(23);
    pub const UNKNOWN_MEMBER_ID: KafkaCode = KafkaCode(25);
    pub const INVALID_SESSION_TIMEOUT: KafkaCode = KafkaCode(26);
    pub const REBALANCE_IN_PROGRESS: KafkaCode = KafkaCode(27);
    pub const MEMBER_ID_REQUIRED: KafkaCode = KafkaCode(79);
    pub const FENCED_INSTANCE_ID: KafkaCode = KafkaCode(82);
    pub const UNSTABLE_OFFSET_COMMIT: KafkaCode = KafkaCode(88);
}

/// Join attempts one `poll()` makes before it returns (empty) and leaves the rest to the
/// next; each JoinGroup may wait a whole rebalance.
const JOIN_ATTEMPTS_MAX: u32 = 10;

/// What one [`GroupConsumer::poll`] brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// Partitions this member is giving up (eager protocol: all of them, before every
    /// rejoin). The application must finish with them (commit offsets, or its transaction)
    /// BEFORE calling poll() again: the next poll() is what rejoins the group.
    Revoked(Vec<TopicPartition>),
    /// The new assignment after a rebalance, with the assignor's user data for this member.
    /// Positions are set: the committed offset, else `auto.offset.reset`.
    Assigned {
        partitions: Vec<TopicPartition>,
        user_data: Bytes,
        generation_id: i32,
    },
    /// Fetched records (possibly empty after the poll timeout).
    Records(Vec<ConsumerRecord>),
}

/// Whether `error` (from [`GroupConsumer::commit`], or a transactional producer's offset
/// commit) means the group moved on without this member: its partitions may be someone
/// else's already. The next poll returns Revoked (if it has not yet), then rejoins.
pub fn is_membership_lost(error: &Error) -> bool {
    matches!(
        error.kafka_code(),
        Some(
            codes::ILLEGAL_GENERATION
                | codes::UNKNOWN_MEMBER_ID
                | codes::REBALANCE_IN_PROGRESS
                | codes::FENCED_INSTANCE_ID
        )
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Outside a generation: the next poll joins.
    Unjoined,
    /// In a generation whose positions are still to be looked up; Assigned not handed out.
    Assigning,
    /// Assigned was handed out: fetching.
    Fetching,
}

/// A member of a consumer group. Not shareable: one task polls it. Dropping it stops the
/// heartbeat without leaving (the coordinator notices after `session.timeout.ms`); call
/// [`GroupConsumer::close`] to leave at once.
///
/// Do not drop a `poll()` future half-way (say, in a `select!`): records it fetched would
/// be skipped, as with [`Consumer::poll`].
pub struct GroupConsumer {
    client: Client,
    config: GroupConsumerConfig,
    assignor: Arc<dyn Assignor>,
    /// Sorted, no duplicates.
    topics: Vec<String>,
    id: Identity,
    /// `None` once lost; found again when next needed.
    coordinator: Option<Coordinator>,
    phase: Phase,
    /// The current generation's partitions, sorted; empty outside one.
    assigned: Vec<TopicPartition>,
    assigned_user_data: Bytes,
    /// Fetches the assigned partitions that are not paused.
    fetcher: Consumer,
    /// Paused partitions and their positions; they are not in the fetcher.
    paused: BTreeMap<TopicPartition, Option<i64>>,
    /// Resumed since the fetcher was last rebuilt, and their positions.
    resumed: BTreeMap<TopicPartition, Option<i64>>,
    /// The fetcher still holds what was paused (or lacks what was resumed) since.
    fetcher_stale: bool,
    /// What the next join must first reset of `id`. Kept until then, so that commits while
    /// handling Revoked carry the old generation and the broker refuses them if it must
    /// (a reset identity, generation -1, would be taken as a group-less commit).
    reset: Option<Rejoin>,
    heartbeat: Option<Heartbeat>,
    shared: Arc<Shared>,
    /// Set by FENCED_INSTANCE_ID: every later poll fails.
    fatal: Option<Error>,
}

impl GroupConsumer {
    /// A member of `config.group_id`, not yet joined: [`GroupConsumer::subscribe`], then
    /// [`GroupConsumer::poll`]. Looks for the coordinator now, so that a broker that cannot
    /// host the group is an error here; one that is not ready yet (a new cluster creating
    /// its offsets topic) is looked for again by the first poll.
    pub async fn new(
        client: Client,
        config: GroupConsumerConfig,
        assignor: Arc<dyn Assignor>,
    ) -> Result<GroupConsumer> {
        config.validate()?;
        let max_poll_interval_ms = config.max_poll_interval_ms;
        let coordinator = match Coordinator::find(&client, &config.group_id, max_poll_interval_ms)
            .await
        {
            Ok(coordinator) => Some(coordinator),
            Err(e) if e.is_retriable() => {
                tracing::warn!(%e, group = %config.group_id, "no coordinator yet; poll retries");
                None
            }
            Err(e) => return Err(e),
        };
        let fetcher = Consumer::new(client.clone(), config.fetch_config());
        Ok(GroupConsumer {
            id: Identity {
                group_id: config.group_id.clone(),
                member_id: String::new(),
                generation_id: -1,
                instance_id: config.group_instance_id.clone(),
            },
            client,
            config,
            assignor,
            topics: Vec::new(),
            coordinator,
            phase: Phase::Unjoined,
            assigned: Vec::new(),
            assigned_user_data: Bytes::new(),
            fetcher,
            paused: BTreeMap::new(),
            resumed: BTreeMap::new(),
            fetcher_stale: false,
            reset: None,
            heartbeat: None,
            shared: Arc::new(Shared::default()),
            fatal: None,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Subscribes to `topics`, replacing the subscription. A change while in a generation
    /// makes the next poll return Revoked, and the one after rejoin.
    pub async fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        if topics.is_empty() || topics.iter().any(|t| t.is_empty()) {
            return Err(Error::Config(format!(
                "cannot subscribe to {topics:?}: name at least one topic, none empty"
            )));
        }
        let mut topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        topics.sort();
        topics.dedup();
        if topics != self.topics {
            self.topics = topics;
            if self.phase != Phase::Unjoined {
                self.shared.raise(Rejoin::Requested);
            }
        }
        Ok(())
    }

    pub fn subscription(&self) -> &[String] {
        &self.topics
    }

    /// The next event: joins on the first call (and after a Revoked), then fetches. May
    /// wait through a whole rebalance (at most the group's rebalance timeout).
    pub async fn poll(&mut self) -> Result<GroupEvent> {
        self.shared.touch_poll();
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        if self.topics.is_empty() {
            return Err(Error::Config("poll() before subscribe()".into()));
        }
        if let Some(revoked) = self.absorb_signal().await? {
            return Ok(GroupEvent::Revoked(revoked));
        }
        if self.phase == Phase::Unjoined {
            if let Some(heartbeat) = self.heartbeat.take() {
                heartbeat.stop().await;
                // What it raised meanwhile is about the generation being left.
                self.absorb_signal().await?;
            }
            if !self.join().await? {
                return Ok(GroupEvent::Records(Vec::new()));
            }
            self.phase = Phase::Assigning;
        }
        if self.phase == Phase::Assigning {
            match self.look_up_positions().await {
                Ok(()) => {}
                Err(e) if e.is_retriable() => {
                    tracing::warn!(%e, "looking up positions failed; the next poll retries");
                    return Ok(GroupEvent::Records(Vec::new()));
                }
                Err(e) => return Err(e),
            }
            self.phase = Phase::Fetching;
            return Ok(GroupEvent::Assigned {
                partitions: self.assigned.clone(),
                user_data: self.assigned_user_data.clone(),
                generation_id: self.id.generation_id,
            });
        }
        self.fetch().await.map(GroupEvent::Records)
    }

    /// Acts on what the heartbeat (or `subscribe`) raised. Returns the partitions to hand
    /// out as Revoked, if Assigned had handed them out.
    async fn absorb_signal(&mut self) -> Result<Option<Vec<TopicPartition>>> {
        let signal = self.shared.take();
        if let Some(e) = signal.fatal {
            return Err(self.fail(e).await);
        }
        if signal.coordinator_lost {
            self.coordinator = None;
        }
        let Some(rejoin) = signal.rejoin else {
            return Ok(None);
        };
        self.reset = self.reset.max(Some(rejoin));
        let handed_out = self.phase == Phase::Fetching;
        self.phase = Phase::Unjoined;
        let revoked = self.revoke_all();
        tracing::info!(group = %self.id.group_id, member = %self.id.member_id, ?rejoin,
            partitions = revoked.len(), "rejoining the group");
        Ok((handed_out && !revoked.is_empty()).then_some(revoked))
    }

    fn revoke_all(&mut self) -> Vec<TopicPartition> {
        self.fetcher = Consumer::new(self.client.clone(), self.config.fetch_config());
        self.paused.clear();
        self.resumed.clear();
        self.fetcher_stale = false;
        self.assigned_user_data = Bytes::new();
        std::mem::take(&mut self.assigned)
    }

    /// Makes `error` the answer of every later poll.
    async fn fail(&mut self, error: Error) -> Error {
        tracing::error!(%error, group = %self.id.group_id, "group member failed for good");
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.stop().await;
        }
        self.phase = Phase::Unjoined;
        self.revoke_all();
        self.fatal = Some(error.clone());
        error
    }

    async fn coordinator(&mut self) -> Result<Coordinator> {
        if let Some(c) = &self.coordinator {
            return Ok(c.clone());
        }
        let found = Coordinator::find(
            &self.client,
            &self.config.group_id,
            self.config.max_poll_interval_ms,
        )
        .await?;
        tracing::info!(group = %self.id.group_id, coordinator = found.node_id, addr = found.addr(),
            "found the group coordinator");
        Ok(self.coordinator.insert(found).clone())
    }

    /// Joins a generation; false when it did not within [`JOIN_ATTEMPTS_MAX`] attempts.
    async fn join(&mut self) -> Result<bool> {
        if let Some(reset) = self.reset.take() {
            reset.apply(&mut self.id);
        }
        let backoff = Duration::from_millis(self.client.config().retry_backoff_ms);
        for attempt in 1..=JOIN_ATTEMPTS_MAX {
            let result = match self.coordinator().await {
                Ok(coordinator) => {
                    let ctx = JoinContext {
                        client: &self.client,
                        assignor: self.assignor.as_ref(),
                        topics: &self.topics,
                        session_timeout_ms: self.config.session_timeout_ms,
                        rebalance_timeout_ms: self.config.max_poll_interval_ms,
                        reason: "rebalance",
                    };
                    membership::join_once(&ctx, &coordinator, &mut self.id)
                        .await
                        .map(|assignment| (coordinator, assignment))
                }
                Err(e) => Err(e),
            };
            let error = match result {
                Ok((coordinator, assignment)) => {
                    self.start_generation(coordinator, assignment);
                    return Ok(true);
                }
                Err(e) => e,
            };
            let step = membership::next_step(&error);
            tracing::info!(%error, attempt, ?step, group = %self.id.group_id, "join attempt failed");
            match step {
                Step::Rejoin(reset) => reset.apply(&mut self.id),
                Step::Backoff => tokio::time::sleep(backoff).await,
                Step::FindCoordinator => {
                    self.coordinator = None;
                    tokio::time::sleep(backoff).await;
                }
                Step::Fatal => return Err(self.fail(error).await),
                Step::Fail => return Err(error),
            }
        }
        tracing::warn!(group = %self.id.group_id, "no generation joined after {JOIN_ATTEMPTS_MAX} attempts; the next poll goes on");
        Ok(false)
    }

    fn start_generation(&mut self, coordinator: Coordinator, assignment: protocol::Assignment) {
        let mut partitions = assignment.partitions;
        partitions.sort();
        partitions.dedup();
        tracing::info!(group = %self.id.group_id, member = %self.id.member_id,
            generation = self.id.generation_id, ?partitions, "assigned");
        self.assigned = partitions;
        self.assigned_user_data = assignment.user_data;
        let settings = heartbeat::Settings {
            interval_ms: self.config.heartbeat_interval_ms as u64,
            max_poll_interval_ms: self.config.max_poll_interval_ms as u64,
            is_static: self.id.instance_id.is_some(),
        };
        // The poll clock starts again with the generation, as Java's does when its heartbeat
        // thread is enabled: the poll that joined may have waited through a whole rebalance.
        self.shared.touch_poll();
        self.heartbeat = Some(Heartbeat::start(
            coordinator,
            self.id.clone(),
            settings,
            self.shared.clone(),
        ));
    }
}
