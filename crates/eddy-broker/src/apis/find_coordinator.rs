//! FindCoordinator (including the batched keys of v4+): on one node, this
//! node coordinates every group and transactional id.

use std::sync::Arc;

use eddy_protocol::codes;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use kafka_protocol::messages::BrokerId;

use super::text;
use crate::broker::Broker;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub fn handle(
    broker: &Arc<Broker>,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let (host, port) = broker.advertised.clone();
    let valid_type = req.key_type == KEY_TYPE_GROUP || req.key_type == KEY_TYPE_TRANSACTION;
    let error = if valid_type {
        codes::NONE
    } else {
        codes::INVALID_REQUEST
    };
    let message = (!valid_type).then(|| {
        text(format!(
            "Key type {} is not supported (0: group, 1: transaction).",
            req.key_type
        ))
    });
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        response.coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let mut c = Coordinator::default()
                    .with_key(key.clone())
                    .with_error_code(error)
                    .with_error_message(message.clone());
                if valid_type {
                    c = c
                        .with_node_id(BrokerId(broker.node_id))
                        .with_host(text(&host))
                        .with_port(port);
                } else {
                    c = c.with_node_id(BrokerId(-1)).with_port(-1);
                }
                c
            })
            .collect();
        return response;
    }
    response.error_code = error;
    if version >= 1 {
        response.error_message = message;
    }
    if valid_type {
        response.node_id = BrokerId(broker.node_id);
        response.host = text(host);
        response.port = port;
    } else {
        response.node_id = BrokerId(-1);
        response.port = -1;
    }
    response
}
