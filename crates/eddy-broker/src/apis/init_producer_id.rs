//! InitProducerId for idempotent producers, including the epoch bump a
//! producer asks for after a sequence error (KIP-360).

use std::sync::Arc;

use eddy_protocol::codes;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::ProducerId;

use crate::broker::Broker;

pub fn handle(broker: &Arc<Broker>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    if req.transactional_id.is_some() {
        // The transaction coordinator is not part of this broker yet.
        response.error_code = codes::COORDINATOR_NOT_AVAILABLE;
        response.producer_id = ProducerId(-1);
        response.producer_epoch = -1;
        return response;
    }
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
