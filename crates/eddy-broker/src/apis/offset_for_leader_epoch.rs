//! OffsetForLeaderEpoch: one node, one leader epoch (0), so every epoch up
//! to the current one ends at the log end.

use std::sync::Arc;

use eddy_protocol::codes;
use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};

use super::produce::LEADER_EPOCH;
use crate::broker::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let Some(partition) = broker.partition(&t.topic, p.partition) else {
                        r.error_code = codes::UNKNOWN_TOPIC_OR_PARTITION;
                        return r;
                    };
                    // The leader epoch never changes, so no epoch is ever fenced.
                    if p.current_leader_epoch > LEADER_EPOCH {
                        r.error_code = codes::UNKNOWN_LEADER_EPOCH;
                    } else if p.leader_epoch >= 0 {
                        r.leader_epoch = LEADER_EPOCH;
                        r.end_offset = partition.high_watermark();
                    }
                    r
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
