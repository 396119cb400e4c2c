//! EndTxn: commit or abort. Version 5+ is Transactions V2 (KIP-890): the
//! coordinator bumps the producer epoch on every ending and answers with
//! the id and epoch for the next transaction.

use std::sync::Arc;

use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::end_txn_response::EndTxnResponse;
use kafka_protocol::messages::{ProducerId, ResponseKind};

use super::Reply;
use crate::broker::Broker;
use crate::txn::{codes, fenced_code};

/// PRODUCER_FENCED exists from v2 (Kafka 2.7).
const FENCED_FROM_VERSION: i16 = 2;
/// The first version of Transactions V2.
pub const V2_FROM_VERSION: i16 = 5;

pub fn handle(broker: &Arc<Broker>, req: EndTxnRequest, version: i16) -> Reply {
    let broker = broker.clone();
    Box::pin(async move {
        let outcome = broker
            .txns
            .end_txn(
                &broker,
                &req.transactional_id,
                req.producer_id.0,
                req.producer_epoch,
                req.committed,
                version >= V2_FROM_VERSION,
            )
            .await;
        let mut response = EndTxnResponse::default();
        match outcome {
            Ok((id, epoch)) => {
                response.producer_id = ProducerId(id);
                response.producer_epoch = epoch;
            }
            Err(code) => {
                response.error_code = fenced_code(code, version >= FENCED_FROM_VERSION);
                response.producer_id = ProducerId(-1);
                response.producer_epoch = -1;
            }
        }
        if response.error_code == codes::NONE && version < V2_FROM_VERSION {
            // Only v5+ carries the id and epoch.
            response.producer_id = ProducerId(-1);
            response.producer_epoch = -1;
        }
        Some(ResponseKind::EndTxn(response))
    })
}
