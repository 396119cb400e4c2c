//! TxnOffsetCommit: offsets committed as part of a transaction. The
//! transaction coordinator checks the producer and its open transaction
//! (v5+, Transactions V2, adds the group's `__consumer_offsets` partition
//! implicitly); the group side writes them as transactional records that
//! stay pending until the marker (`group/txn_offsets.rs`).

use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::ResponseKind;

use super::add_offsets_to_txn::offsets_partition;
use super::{ready, Reply};
use crate::broker::Broker;
use crate::consumer_offsets::TOPIC;
use crate::group::txn_offsets::TxnCommitPartition;
use crate::txn::codes;

/// The first version that adds the offsets partition implicitly (KIP-890).
const IMPLICIT_ADD_FROM_VERSION: i16 = 5;

pub fn handle(broker: &Arc<Broker>, req: TxnOffsetCommitRequest, version: i16) -> Reply {
    let partitions: Vec<TxnCommitPartition> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| TxnCommitPartition {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let outcome = commit(broker, &req, version, &partitions);
    let (errors, durable) = match outcome {
        Ok(ok) => ok,
        Err(code) => (vec![code; partitions.len()], None),
    };
    let mut response = respond(&req, errors);
    let Some(durable) = durable else {
        return ready(ResponseKind::TxnOffsetCommit(response));
    };
    Box::pin(async move {
        let failed = match durable.await {
            Ok(Ok(())) => codes::NONE,
            Ok(Err(code)) => code,
            Err(_) => codes::KAFKA_STORAGE_ERROR,
        };
        if failed != codes::NONE {
            for p in response
                .topics
                .iter_mut()
                .flat_map(|t| t.partitions.iter_mut())
            {
                p.error_code = failed;
            }
        }
        Some(ResponseKind::TxnOffsetCommit(response))
    })
}

type Accepted = (
    Vec<i16>,
    Option<tokio::sync::oneshot::Receiver<crate::flusher::FlushResult>>,
);

fn commit(
    broker: &Arc<Broker>,
    req: &TxnOffsetCommitRequest,
    version: i16,
    partitions: &[TxnCommitPartition],
) -> Result<Accepted, i16> {
    if req.group_id.is_empty() {
        return Err(codes::INVALID_GROUP_ID);
    }
    let index = offsets_partition(broker, &req.group_id)?;
    tracing::debug!(group = %req.group_id.as_str(), member = %req.member_id.as_str(), generation = req.generation_id, transactional_id = %req.transactional_id.as_str(), "TxnOffsetCommit");
    let member = broker.groups.check_txn_member(
        &req.group_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
    );
    if member != codes::NONE {
        return Err(member);
    }
    broker.txns.check_produce(
        &req.transactional_id,
        req.producer_id.0,
        req.producer_epoch,
        &[(TOPIC.to_string(), index)],
        version >= IMPLICIT_ADD_FROM_VERSION,
    )?;
    broker.groups.txn_commit(
        broker,
        &req.group_id,
        req.producer_id.0,
        req.producer_epoch,
        partitions,
    )
}

fn respond(req: &TxnOffsetCommitRequest, errors: Vec<i16>) -> TxnOffsetCommitResponse {
    let mut errors = errors.into_iter();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(errors.next().unwrap_or(codes::NONE))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
