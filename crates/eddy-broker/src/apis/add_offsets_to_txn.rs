//! AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the
//! transaction, so the commit marker reaches the offsets TxnOffsetCommit
//! writes there.

use std::sync::Arc;

use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use kafka_protocol::messages::ResponseKind;

use super::Reply;
use crate::broker::Broker;
use crate::consumer_offsets::TOPIC;
use crate::group::records::partition_for;
use crate::txn::{codes, fenced_code};

/// PRODUCER_FENCED exists from v2 (Kafka 2.7).
const FENCED_FROM_VERSION: i16 = 2;

pub fn handle(broker: &Arc<Broker>, req: AddOffsetsToTxnRequest, version: i16) -> Reply {
    let broker = broker.clone();
    Box::pin(async move {
        let outcome = add(&broker, &req).await;
        let code = match outcome {
            Ok(()) => codes::NONE,
            Err(code) => fenced_code(code, version >= FENCED_FROM_VERSION),
        };
        Some(ResponseKind::AddOffsetsToTxn(
            AddOffsetsToTxnResponse::default().with_error_code(code),
        ))
    })
}

async fn add(broker: &Arc<Broker>, req: &AddOffsetsToTxnRequest) -> Result<(), i16> {
    if req.group_id.is_empty() {
        return Err(codes::INVALID_GROUP_ID);
    }
    let partition = offsets_partition(broker, &req.group_id)?;
    broker
        .txns
        .add_partitions(
            broker,
            &req.transactional_id,
            req.producer_id.0,
            req.producer_epoch,
            &[(TOPIC.to_string(), partition)],
        )
        .await
}

/// The `__consumer_offsets` partition of `group` (creating the topic).
pub(super) fn offsets_partition(broker: &Broker, group: &str) -> Result<i32, i16> {
    let topic = broker.offsets_topic()?;
    Ok(partition_for(group, topic.partition_count()))
}
