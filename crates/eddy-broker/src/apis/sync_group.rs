//! SyncGroup: the leader hands in every member's assignment; each member's
//! answer waits until the leader's arrives.

use std::sync::Arc;

use kafka_protocol::messages::sync_group_request::SyncGroupRequest;
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::messages::ResponseKind;

use super::{text, Reply};
use crate::broker::Broker;
use crate::group::{codes, SyncParams, SyncResult};

pub fn handle(broker: &Arc<Broker>, req: SyncGroupRequest, version: i16) -> Reply {
    let params = SyncParams {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: req.generation_id,
        protocol_type: req.protocol_type.as_ref().map(|s| s.to_string()),
        protocol_name: req.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    let rx = broker.groups.sync(params);
    Box::pin(async move {
        let r = rx
            .await
            .unwrap_or_else(|_| SyncResult::error(codes::REBALANCE_IN_PROGRESS));
        let mut out = SyncGroupResponse::default()
            .with_error_code(r.error)
            .with_assignment(r.assignment);
        if version >= 5 {
            out.protocol_type = r.protocol_type.map(text);
            out.protocol_name = r.protocol_name.map(text);
        }
        Some(ResponseKind::SyncGroup(out))
    })
}
