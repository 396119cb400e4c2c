//! OffsetFetch: committed offsets of one group (v1-7) or several (v8+);
//! -1 for a partition with none.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::TopicName;

use super::text;
use crate::broker::Broker;
use crate::group::{codes, CommittedOffset};

/// (topic, [(partition, committed)]) grouped by topic in request order.
type ByTopic = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

pub fn handle(broker: &Arc<Broker>, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                let wanted = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
                        .collect::<Vec<_>>()
                });
                // v9: a consumer-protocol member names itself and its epoch.
                let member = g.member_id.as_ref().map(|m| (m.as_str(), g.member_epoch));
                let stale = member
                    .and_then(|(m, e)| broker.groups.consumer_offsets_check(&g.group_id, m, e))
                    .filter(|e| *e != codes::NONE);
                let (error, by_topic) = match stale {
                    Some(e) => (e, Vec::new()),
                    None => lookup(broker, &g.group_id, wanted.as_deref()),
                };
                let topics = by_topic
                    .into_iter()
                    .map(|(name, parts)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(text(name)))
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|(p, c)| {
                                        let (offset, epoch, metadata) = fields(c);
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(text(metadata)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(error)
                    .with_topics(topics)
            })
            .collect();
        let mut out = OffsetFetchResponse::default().with_groups(groups);
        if req.require_stable {
            mark_unstable(broker, &mut out, "");
        }
        return out;
    }
    let wanted = req.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
            .collect::<Vec<_>>()
    });
    let (error, by_topic) = lookup(broker, &req.group_id, wanted.as_deref());
    let topics = by_topic
        .into_iter()
        .map(|(name, parts)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(text(name)))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, c)| {
                            let (offset, epoch, metadata) = fields(c);
                            let mut out = OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(offset)
                                .with_metadata(Some(text(metadata)));
                            if version >= 5 {
                                out.committed_leader_epoch = epoch;
                            }
                            out
                        })
                        .collect(),
                )
        })
        .collect();
    let mut out = OffsetFetchResponse::default().with_topics(topics);
    if version >= 7 && req.require_stable {
        mark_unstable(broker, &mut out, &req.group_id);
    }
    if version >= 2 {
        out.error_code = error;
    }
    out
}

fn fields(c: Option<CommittedOffset>) -> (i64, i32, String) {
    match c {
        Some(c) => (c.offset, c.leader_epoch, c.metadata),
        None => (-1, -1, String::new()),
    }
}

fn lookup(broker: &Broker, group_id: &str, wanted: Option<&[(String, i32)]>) -> (i16, ByTopic) {
    if group_id.is_empty() {
        return (codes::INVALID_GROUP_ID, Vec::new());
    }
    let mut by_topic: ByTopic = Vec::new();
    for (topic, partition, committed) in broker.groups.fetch(group_id, wanted) {
        match by_topic.last_mut() {
            Some((t, parts)) if *t == topic => parts.push((partition, committed)),
            _ => by_topic.push((topic, vec![(partition, committed)])),
        }
    }
    (codes::NONE, by_topic)
}

/// KIP-447: with require_stable, a partition whose offset a transaction
/// has pending answers UNSTABLE_OFFSET_COMMIT (the consumer retries).
fn mark_unstable(broker: &Broker, out: &mut OffsetFetchResponse, legacy_group: &str) {
    const UNSTABLE_OFFSET_COMMIT: i16 = 88;
    for t in out.topics.iter_mut() {
        for p in t.partitions.iter_mut() {
            if broker
                .groups
                .has_pending_txn_offset(legacy_group, &t.name, p.partition_index)
            {
                p.error_code = UNSTABLE_OFFSET_COMMIT;
                p.committed_offset = -1;
            }
        }
    }
    for g in out.groups.iter_mut() {
        for t in g.topics.iter_mut() {
            for p in t.partitions.iter_mut() {
                if broker
                    .groups
                    .has_pending_txn_offset(&g.group_id, &t.name, p.partition_index)
                {
                    p.error_code = UNSTABLE_OFFSET_COMMIT;
                    p.committed_offset = -1;
                }
            }
        }
    }
}
