//! DescribeProducers (KIP-664): the producers a partition remembers, with
//! the start offset of each one's ongoing transaction — what an operator
//! needs to find a hanging transaction.

use std::sync::Arc;

use eddy_protocol::codes;
use kafka_protocol::messages::describe_producers_request::DescribeProducersRequest;
use kafka_protocol::messages::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::ProducerId;

use super::text;
use crate::broker::Broker;
use crate::partition::Partition;

pub fn handle(broker: &Arc<Broker>, req: DescribeProducersRequest) -> DescribeProducersResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| match broker.partition(&t.name, index) {
                    Some(p) => describe(&p),
                    None => PartitionResponse::default()
                        .with_partition_index(index)
                        .with_error_code(codes::UNKNOWN_TOPIC_OR_PARTITION)
                        .with_error_message(Some(text(
                            "This server does not host this topic-partition.",
                        ))),
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

fn describe(partition: &Partition) -> PartitionResponse {
    let response = PartitionResponse::default().with_partition_index(partition.index);
    if partition.is_failed() {
        return response.with_error_code(codes::KAFKA_STORAGE_ERROR);
    }
    let state = partition.lock();
    let mut producers: Vec<ProducerState> = state
        .producers
        .iter()
        .map(|(&pid, e)| {
            ProducerState::default()
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(e.epoch as i32)
                .with_last_sequence(e.batches.back().map_or(-1, |b| b.last_seq))
                .with_last_timestamp(e.last_timestamp_ms)
                .with_coordinator_epoch(e.coordinator_epoch)
                .with_current_txn_start_offset(e.txn_first_offset.unwrap_or(-1))
        })
        .collect();
    drop(state);
    producers.sort_by_key(|p| p.producer_id.0);
    response.with_active_producers(producers)
}
