//! InitProducerId: idempotent producers (including the epoch bump a
//! producer asks for after a sequence error, KIP-360) and transactional
//! producers, which the transaction coordinator answers (`crate::txn`).

use std::sync::Arc;

use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::{ProducerId, ResponseKind};

use super::{ready, Reply};
use crate::broker::Broker;
use crate::txn::fenced_code;

/// PRODUCER_FENCED exists from InitProducerId v4 (Kafka 2.7).
const FENCED_FROM_VERSION: i16 = 4;

pub fn handle(broker: &Arc<Broker>, req: InitProducerIdRequest, version: i16) -> Reply {
    let Some(txn_id) = req.transactional_id.as_ref().map(|t| t.to_string()) else {
        return ready(ResponseKind::InitProducerId(idempotent(broker, &req)));
    };
    let broker = broker.clone();
    Box::pin(async move {
        let expected = (req.producer_id.0, req.producer_epoch);
        let outcome = broker
            .txns
            .init_producer_id(&broker, &txn_id, req.transaction_timeout_ms, expected)
            .await;
        let mut response = InitProducerIdResponse::default();
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
        Some(ResponseKind::InitProducerId(response))
    })
}

fn idempotent(broker: &Arc<Broker>, req: &InitProducerIdRequest) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    // A known producer asking for a bump keeps its id with the next epoch,
    // unless the epoch would overflow.
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        response.producer_id = req.producer_id;
        response.producer_epoch = req.producer_epoch + 1;
        return response;
    }
    match broker.next_producer_id() {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e.message, "allocating a producer id failed");
            response.error_code = e.code;
            response.producer_id = ProducerId(-1);
            response.producer_epoch = -1;
        }
    }
    response
}
