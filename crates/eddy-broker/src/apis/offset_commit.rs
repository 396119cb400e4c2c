//! OffsetCommit: committed offsets of a group, checked against its
//! generation; generation -1 commits for a consumer outside any group.
//! The answer waits until the commit is durable in `__consumer_offsets`.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_request::OffsetCommitRequest;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::ResponseKind;

use super::Reply;
use crate::broker::Broker;
use crate::group::{codes, CommitPartition, Committed};

pub fn handle(broker: &Arc<Broker>, req: OffsetCommitRequest, version: i16) -> Reply {
    // Partitions of unknown topics are answered without being committed.
    let mut valid = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            if broker.partition(&t.name, p.partition_index).is_some() {
                valid.push(CommitPartition {
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                });
            }
        }
    }
    let outcome = broker.groups.commit(
        &req.group_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id_or_member_epoch,
        &valid,
    );
    let (outcome, durable) = match outcome {
        Ok(Committed { errors, durable }) => (Ok(errors), durable),
        Err(e) => (Err(e), None),
    };
    let mut codes_iter = outcome.as_ref().ok().map(|v| v.iter());
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = if broker.partition(&t.name, p.partition_index).is_none() {
                        codes::UNKNOWN_TOPIC_OR_PARTITION
                    } else {
                        match (&outcome, codes_iter.as_mut()) {
                            (Err(e), _) => *e,
                            (Ok(_), Some(it)) => it.next().copied().unwrap_or(codes::NONE),
                            (Ok(_), None) => codes::NONE,
                        }
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect::<Vec<_>>();
    Box::pin(async move {
        let failed = match durable {
            None => codes::NONE,
            Some(wait) => match wait.await {
                Ok(Ok(())) => codes::NONE,
                Ok(Err(code)) => code,
                Err(_) => codes::KAFKA_STORAGE_ERROR,
            },
        };
        let mut topics = topics;
        if failed != codes::NONE {
            // Not durable: no partition may be reported committed.
            for p in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                if p.error_code == codes::NONE {
                    p.error_code = failed;
                }
            }
        }
        Some(ResponseKind::OffsetCommit(
            OffsetCommitResponse::default().with_topics(topics),
        ))
    })
}
