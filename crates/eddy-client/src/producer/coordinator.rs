//! What a transactional producer asks its coordinators: InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn and EndTxn of the transaction coordinator (FindCoordinator key type 1),
//! TxnOffsetCommit of the group's coordinator. Each call is retried with backoff while a
//! coordinator is loading, moving or busy, for at most `max.block.ms`; its errors come back
//! classified as [`txn_state::classify`] says.
//!
//! AddPartitionsToTxn is sent in its client shape (v3 and below) before a partition's first
//! batch of a transaction, so transactions work on every Kafka broker since 0.11, not only
//! on those that add partitions implicitly (Transactions V2).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, ApiVersionsRequest, EndTxnRequest,
    GroupId, InitProducerIdRequest, ProducerId, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::txn_state::{abortable, classify, classify_error, fatal, Call, Outcome};
use crate::admin::Admin;
use crate::client::{topic_name, Client};
use crate::connection::Connection;
use crate::error::{Error, KafkaCode, Result};
use crate::record::{ConsumerGroupMetadata, TopicPartition};

/// The feature whose finalized level 2 means Transactions V2 (KIP-890).
const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";
/// AddPartitionsToTxn v4+ is the brokers' batched form; producers speak v3 and below.
const ADD_PARTITIONS_CLIENT_VERSION_MAX: i16 = 3;
/// EndTxn v5 is Transactions V2: the coordinator bumps the epoch and answers the new one.
const END_TXN_V2_VERSION_MIN: i16 = 5;
/// TxnOffsetCommit v3 carries the group generation and member (KIP-447).
const TXN_OFFSET_COMMIT_GROUP_METADATA_VERSION_MIN: i16 = 3;
/// InitProducerId v3 takes the current id and epoch to bump them (KIP-360).
const INIT_PRODUCER_ID_BUMP_VERSION_MIN: i16 = 3;
/// Java's pause after CONCURRENT_TRANSACTIONS: the previous ending is almost done.
const CONCURRENT_TRANSACTIONS_BACKOFF: Duration = Duration::from_millis(20);
/// OPERATION_NOT_ATTEMPTED: another partition of the same request failed.
const OPERATION_NOT_ATTEMPTED: KafkaCode = KafkaCode(55);

/// One attempt of a coordinator call.
enum Attempt<T> {
    Done(T),
    Retry {
        refind: bool,
        error: Error,
    },
    /// Already classified (TxnFatal or TxnAbortable).
    Failed(Error),
}

impl<T> Attempt<T> {
    fn from_error(error: Error) -> Attempt<T> {
        match classify_error(&error) {
            Outcome::Retry { refind } => Attempt::Retry { refind, error },
            Outcome::Abortable => Attempt::Failed(abortable(error)),
            Outcome::Fatal => Attempt::Failed(fatal(error)),
        }
    }

    /// `ok` unless `code` is an error, which `call`'s rules classify.
    fn judge(call: Call, code: KafkaCode, context: String, message: Option<&str>, ok: T) -> Self {
        let Err(error) = code.check_with_message(context, message) else {
            return Attempt::Done(ok);
        };
        match classify(call, code) {
            Outcome::Retry { refind } => Attempt::Retry { refind, error },
            Outcome::Abortable => Attempt::Failed(abortable(error)),
            Outcome::Fatal => Attempt::Failed(fatal(error)),
        }
    }
}

/// `?` for attempts: an error of a step (connect, version) becomes a classified attempt.
macro_rules! step {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Attempt::from_error(e),
        }
    };
}

/// The coordinators of one transactional id.
pub(super) struct Coordinators {
    client: Client,
    transactional_id: String,
    timeout_ms: i32,
    backoff: Duration,
    max_block_ms: u64,
    /// The transaction coordinator once found; forgotten when it says it no longer is.
    txn_conn: Mutex<Option<Arc<Connection>>>,
}

impl Coordinators {
    pub fn new(
        client: Client,
        transactional_id: &str,
        timeout_ms: i32,
        backoff_ms: u64,
        max_block_ms: u64,
    ) -> Coordinators {
        Coordinators {
            client,
            transactional_id: transactional_id.to_owned(),
            timeout_ms,
            backoff: Duration::from_millis(backoff_ms),
            max_block_ms,
            txn_conn: Mutex::new(None),
        }
    }

    pub fn transactional_id(&self) -> &str {
        &self.transactional_id
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Option<Arc<Connection>>> {
        self.txn_conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn txn_coordinator(&self) -> Result<Arc<Connection>> {
        if let Some(conn) = self.cached().clone().filter(|c| !c.is_broken()) {
            return Ok(conn);
        }
        let admin = Admin::new(self.client.clone());
        let (_, conn) = admin
            .transaction_coordinator(&self.transactional_id)
            .await?;
        *self.cached() = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `attempt` until it is done or failed, pausing between retries, for at most
    /// `max.block.ms`; then the last retriable error, as a timeout.
    async fn retry<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let deadline = Instant::now() + Duration::from_millis(self.max_block_ms);
        loop {
            let (refind, error) = match attempt().await {
                Attempt::Done(v) => return Ok(v),
                Attempt::Failed(e) => return Err(e),
                Attempt::Retry { refind, error } => (refind, error),
            };
            if refind {
                *self.cached() = None;
            }
            let pause = if error.kafka_code() == Some(KafkaCode::CONCURRENT_TRANSACTIONS) {
                self.backoff.min(CONCURRENT_TRANSACTIONS_BACKOFF)
            } else {
                self.backoff
            };
            if Instant::now() + pause >= deadline {
                return Err(Error::Timeout {
                    what: format!("{what} (last error: {error})"),
                    timeout_ms: self.max_block_ms,
                });
            }
            tracing::debug!(transactional_id = %self.transactional_id, %error, "{what}: retrying");
            tokio::time::sleep(pause).await;
        }
    }

    /// Whether the coordinator's broker finalized Transactions V2.
    pub async fn supports_v2(&self) -> Result<bool> {
        self.retry("ApiVersions", || async {
            let conn = step!(self.txn_coordinator().await);
            let request = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("eddy-client"))
                .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
            let response = step!(conn.send(&request).await);
            let v2 = response.finalized_features.iter().any(|f| {
                f.name.as_str() == TRANSACTION_VERSION_FEATURE && f.max_version_level >= 2
            });
            Attempt::Done(v2)
        })
        .await
    }

    /// InitProducerId for the transactional id: a new epoch (fencing older instances and
    /// aborting what they left open), or with `current` the next epoch of this instance.
    pub async fn init_producer_id(&self, current: Option<(i64, i16)>) -> Result<(i64, i16)> {
        let (producer_id, epoch) = current.unwrap_or((-1, -1));
        self.retry("InitProducerId", || async {
            let conn = step!(self.txn_coordinator().await);
            let version = step!(conn.version(ApiKey::InitProducerId));
            if current.is_some() && version < INIT_PRODUCER_ID_BUMP_VERSION_MIN {
                return Attempt::Failed(fatal(Error::UnsupportedVersion {
                    addr: conn.addr().to_owned(),
                    api: "InitProducerId with an epoch to bump (KIP-360)".to_owned(),
                    broker_min: 0,
                    broker_max: version,
                    client_min: INIT_PRODUCER_ID_BUMP_VERSION_MIN,
                    client_max: INIT_PRODUCER_ID_BUMP_VERSION_MIN,
                }));
            }
            let request = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(text(&self.transactional_id))))
                .with_transaction_timeout_ms(self.timeout_ms)
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch);
            let pending = step!(conn.dispatch(&request, version).await);
            let r = step!(pending.wait().await);
            let context = format!("InitProducerId for {:?}", self.transactional_id);
            let identity = (r.producer_id.0, r.producer_epoch);
            Attempt::judge(
                Call::InitProducerId,
                KafkaCode(r.error_code),
                context,
                None,
                identity,
            )
        })
        .await
    }

    /// AddPartitionsToTxn: the coordinator will write markers to these partitions.
    pub async fn add_partitions(
        &self,
        identity: (i64, i16),
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
        for tp in partitions {
            match topics.last_mut().filter(|t| t.name.0.as_str() == tp.topic) {
                Some(t) => t.partitions.push(tp.partition),
                None => topics.push(
                    AddPartitionsToTxnTopic::default()
                        .with_name(topic_name(&tp.topic))
                        .with_partitions(vec![tp.partition]),
                ),
            }
        }
        let request = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(text(&self.transactional_id)))
            .with_v3_and_below_producer_id(ProducerId(identity.0))
            .with_v3_and_below_producer_epoch(identity.1)
            .with_v3_and_below_topics(topics);
        self.retry("AddPartitionsToTxn", || async {
            let conn = step!(self.txn_coordinator().await);
            let version = step!(conn.version(ApiKey::AddPartitionsToTxn));
            let version = version.min(ADD_PARTITIONS_CLIENT_VERSION_MAX);
            let pending = step!(conn.dispatch(&request, version).await);
            let response = step!(pending.wait().await);
            let mut answered = 0;
            let mut worst = Attempt::Done(());
            for topic in &response.results_by_topic_v3_and_below {
                for p in &topic.results_by_partition {
                    answered += 1;
                    let code = KafkaCode(p.partition_error_code);
                    if code.is_ok() || code == OPERATION_NOT_ATTEMPTED {
                        continue;
                    }
                    let context = format!(
                        "add {}-{} to the transaction",
                        topic.name.0, p.partition_index
                    );
                    worst = worse(
                        worst,
                        Attempt::judge(Call::AddPartitions, code, context, None, ()),
                    );
                }
            }
            if answered != partitions.len() && matches!(worst, Attempt::Done(())) {
                return Attempt::Failed(abortable(Error::Decode {
                    what: "AddPartitionsToTxn response".to_owned(),
                    detail: format!("{answered} answers for {} partitions", partitions.len()),
                }));
            }
            worst
        })
        .await
        .map_err(abortable)
    }

    /// AddOffsetsToTxn: the group's offsets partition joins the transaction.
    pub async fn add_offsets(&self, identity: (i64, i16), group_id: &str) -> Result<()> {
        let request = AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(text(&self.transactional_id)))
            .with_producer_id(ProducerId(identity.0))
            .with_producer_epoch(identity.1)
            .with_group_id(GroupId(text(group_id)));
        self.retry("AddOffsetsToTxn", || async {
            let conn = step!(self.txn_coordinator().await);
            let response = step!(conn.send(&request).await);
            let context = format!("add the offsets of group {group_id:?} to the transaction");
            Attempt::judge(
                Call::AddOffsets,
                KafkaCode(response.error_code),
                context,
                None,
                (),
            )
        })
        .await
        .map_err(abortable)
    }

    /// TxnOffsetCommit to the group's coordinator: the offsets count once the transaction
    /// commits.
    pub async fn commit_offsets(
        &self,
        identity: (i64, i16),
        offsets: &[(TopicPartition, i64)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
        for (tp, offset) in offsets {
            let partition = TxnOffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::from_static_str("")));
            match topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(topic_name(&tp.topic))
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let request = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(text(&self.transactional_id)))
            .with_group_id(GroupId(text(&group.group_id)))
            .with_producer_id(ProducerId(identity.0))
            .with_producer_epoch(identity.1)
            .with_generation_id(group.generation_id)
            .with_member_id(text(&group.member_id))
            .with_group_instance_id(group.group_instance_id.as_deref().map(text))
            .with_topics(topics);
        let member_known = group.generation_id >= 0 || !group.member_id.is_empty();
        self.retry("TxnOffsetCommit", || async {
            let admin = Admin::new(self.client.clone());
            let (_, conn) = step!(admin.group_coordinator(&group.group_id).await);
            let version = step!(conn.version(ApiKey::TxnOffsetCommit));
            if member_known && version < TXN_OFFSET_COMMIT_GROUP_METADATA_VERSION_MIN {
                return Attempt::Failed(fatal(Error::UnsupportedVersion {
                    addr: conn.addr().to_owned(),
                    api: "TxnOffsetCommit with group metadata (KIP-447)".to_owned(),
                    broker_min: 0,
                    broker_max: version,
                    client_min: TXN_OFFSET_COMMIT_GROUP_METADATA_VERSION_MIN,
                    client_max: TXN_OFFSET_COMMIT_GROUP_METADATA_VERSION_MIN,
                }));
            }
            let pending = step!(conn.dispatch(&request, version).await);
            let response = step!(pending.wait().await);
            let mut worst = Attempt::Done(());
            for topic in &response.topics {
                for p in &topic.partitions {
                    let context = format!(
                        "commit the offset of {}-{} for group {:?} in the transaction",
                        topic.name.0, p.partition_index, group.group_id
                    );
                    let code = KafkaCode(p.error_code);
                    worst = worse(
                        worst,
                        Attempt::judge(Call::TxnOffsetCommit, code, context, None, ()),
                    );
                }
            }
            worst
        })
        .await
        .map_err(abortable)
    }

    /// EndTxn. With Transactions V2 the answer carries the id and epoch to use next.
    pub async fn end_txn(
        &self,
        identity: (i64, i16),
        commit: bool,
        v2: bool,
    ) -> Result<Option<(i64, i16)>> {
        let request = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(text(&self.transactional_id)))
            .with_producer_id(ProducerId(identity.0))
            .with_producer_epoch(identity.1)
            .with_committed(commit);
        let what = if commit { "commit" } else { "abort" };
        self.retry(&format!("EndTxn ({what})"), || async {
            let conn = step!(self.txn_coordinator().await);
            let mut version = step!(conn.version(ApiKey::EndTxn));
            if !v2 {
                version = version.min(END_TXN_V2_VERSION_MIN - 1);
            }
            let pending = step!(conn.dispatch(&request, version).await);
            let r = step!(pending.wait().await);
            let next = (version >= END_TXN_V2_VERSION_MIN
                && r.producer_id.0 >= 0
                && r.producer_epoch >= 0)
                .then_some((r.producer_id.0, r.producer_epoch));
            let context = format!("{what} the transaction of {:?}", self.transactional_id);
            Attempt::judge(Call::EndTxn, KafkaCode(r.error_code), context, None, next)
        })
        .await
        .map_err(abortable)
    }
}

/// The attempt that decides a request with several answers: a fatal one, else an abortable
/// one, else a retry.
fn worse(a: Attempt<()>, b: Attempt<()>) -> Attempt<()> {
    let rank = |x: &Attempt<()>| match x {
        Attempt::Done(()) => 0,
        Attempt::Retry { .. } => 1,
        Attempt::Failed(e) if e.is_fatal_txn() => 3,
        Attempt::Failed(_) => 2,
    };
    if rank(&b) > rank(&a) {
        b
    } else {
        a
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}
