//! DescribeTransactions (KIP-664): the coordinator's view of each id.

use std::sync::Arc;

use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::describe_transactions_response::{
    DescribeTransactionsResponse, TopicData, TransactionState,
};
use kafka_protocol::messages::{ProducerId, TopicName};

use super::text;
use crate::broker::Broker;
use crate::txn::{codes, TxnMetadata};

pub fn handle(
    broker: &Arc<Broker>,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let ids: Vec<String> = req
        .transactional_ids
        .iter()
        .map(|t| t.to_string())
        .collect();
    let states = broker
        .txns
        .describe(&ids)
        .into_iter()
        .zip(req.transactional_ids.iter())
        .map(|(m, id)| match m {
            Some(m) => described(&m).with_transactional_id(id.clone()),
            None => TransactionState::default()
                .with_transactional_id(id.clone())
                .with_error_code(codes::TRANSACTIONAL_ID_NOT_FOUND)
                .with_transaction_state(text(""))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

fn described(m: &TxnMetadata) -> TransactionState {
    let mut topics: Vec<TopicData> = Vec::new();
    for (topic, partition) in &m.partitions {
        match topics.last_mut() {
            Some(t) if t.topic.as_str() == topic => t.partitions.push(*partition),
            _ => topics.push(
                TopicData::default()
                    .with_topic(TopicName(text(topic)))
                    .with_partitions(vec![*partition]),
            ),
        }
    }
    TransactionState::default()
        .with_transaction_state(text(m.state.name()))
        .with_transaction_timeout_ms(m.timeout_ms)
        .with_transaction_start_time_ms(m.start_ms)
        .with_producer_id(ProducerId(m.producer_id))
        .with_producer_epoch(m.producer_epoch)
        .with_topics(topics)
}
