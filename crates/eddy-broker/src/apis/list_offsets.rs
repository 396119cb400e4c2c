//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest
//! local (-4, the same here) and by timestamp. With isolation_level=1
//! (read_committed) nothing at or past the last stable offset is listed.

use std::sync::Arc;

use eddy_protocol::codes;
use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};

use super::produce::LEADER_EPOCH;
use crate::broker::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub fn handle(broker: &Arc<Broker>, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    let Some(partition) = broker.partition(&t.name, p.partition_index) else {
                        r.error_code = codes::UNKNOWN_TOPIC_OR_PARTITION;
                        return r;
                    };
                    if p.current_leader_epoch > LEADER_EPOCH {
                        r.error_code = codes::UNKNOWN_LEADER_EPOCH;
                        return r;
                    }
                    // read_committed consumers (isolation level 1) see the
                    // log end as the last stable offset, as in Kafka.
                    let hw = if req.isolation_level == 1 {
                        partition.last_stable_offset()
                    } else {
                        partition.high_watermark()
                    };
                    let found = match p.timestamp {
                        LATEST => Ok(Some((hw, -1))),
                        EARLIEST | EARLIEST_LOCAL => Ok(Some((partition.log_start_offset(), -1))),
                        LATEST_TIERED => Ok(Some((-1, -1))),
                        MAX_TIMESTAMP => Ok(partition
                            .lock()
                            .log
                            .max_timestamp()
                            .filter(|(_, o)| *o < hw)
                            .map(|(ts, o)| (o, ts))),
                        ts if ts < 0 => Err(codes::INVALID_REQUEST),
                        ts => partition
                            .lock()
                            .log
                            .offset_for_timestamp(ts)
                            .map(|f| f.filter(|(o, _)| *o < hw))
                            .map_err(|_| codes::KAFKA_STORAGE_ERROR),
                    };
                    match found {
                        Ok(Some((offset, ts))) => {
                            r.offset = offset;
                            r.timestamp = ts;
                            if version >= 4 {
                                r.leader_epoch = LEADER_EPOCH;
                            }
                        }
                        Ok(None) => {}
                        Err(code) => r.error_code = code,
                    }
                    r
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
