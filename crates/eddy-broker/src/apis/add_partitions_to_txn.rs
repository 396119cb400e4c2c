//! AddPartitionsToTxn: v0-3 from a producer (one transaction), v4+ the
//! batched form Kafka's brokers use to verify (verify_only) or add
//! partitions for several transactions.

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::ResponseKind;

use super::Reply;
use crate::broker::Broker;
use crate::txn::{codes, fenced_code, TopicPartition};

/// PRODUCER_FENCED exists from v2 (Kafka 2.7).
const FENCED_FROM_VERSION: i16 = 2;

pub fn handle(broker: &Arc<Broker>, req: AddPartitionsToTxnRequest, version: i16) -> Reply {
    let broker = broker.clone();
    Box::pin(async move {
        let mut response = AddPartitionsToTxnResponse::default();
        if version <= 3 {
            let result = one(
                &broker,
                &req.v3_and_below_transactional_id,
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
                &req.v3_and_below_topics,
                false,
                version,
            )
            .await;
            response.results_by_topic_v3_and_below = result;
        } else {
            for t in &req.transactions {
                let topics = one(
                    &broker,
                    &t.transactional_id,
                    t.producer_id.0,
                    t.producer_epoch,
                    &t.topics,
                    t.verify_only,
                    version,
                )
                .await;
                response.results_by_transaction.push(
                    AddPartitionsToTxnResult::default()
                        .with_transactional_id(t.transactional_id.clone())
                        .with_topic_results(topics),
                );
            }
        }
        Some(ResponseKind::AddPartitionsToTxn(response))
    })
}

/// One transaction's partitions: unknown ones fail alone (the rest are
/// not attempted); otherwise all get the coordinator's answer.
async fn one(
    broker: &Arc<Broker>,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let wanted: Vec<TopicPartition> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .collect();
    let unknown: Vec<bool> = wanted
        .iter()
        .map(|(t, p)| broker.partition(t, *p).is_none())
        .collect();
    let codes_by_partition: Vec<i16> = if unknown.iter().any(|u| *u) {
        unknown
            .iter()
            .map(|u| {
                if *u {
                    codes::UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    codes::OPERATION_NOT_ATTEMPTED
                }
            })
            .collect()
    } else {
        let outcome = if verify_only {
            broker
                .txns
                .verify(transactional_id, producer_id, epoch, &wanted)
        } else {
            broker
                .txns
                .add_partitions(broker, transactional_id, producer_id, epoch, &wanted)
                .await
        };
        let code = match outcome {
            Ok(()) => codes::NONE,
            Err(code) => fenced_code(code, version >= FENCED_FROM_VERSION),
        };
        vec![code; wanted.len()]
    };
    let mut codes_iter = codes_by_partition.into_iter();
    topics
        .iter()
        .map(|t| {
            let results = t
                .partitions
                .iter()
                .map(|p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(codes_iter.next().unwrap_or(codes::NONE))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results)
        })
        .collect()
}
