//! JoinGroup: the first phase of a rebalance. The answer waits until the
//! join phase completes (see `group::state`).

use std::sync::Arc;

use kafka_protocol::messages::join_group_request::JoinGroupRequest;
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use kafka_protocol::messages::ResponseKind;

use super::{text, Reply};
use crate::broker::Broker;
use crate::group::{codes, JoinParams, JoinResult};

pub fn handle(
    broker: &Arc<Broker>,
    req: JoinGroupRequest,
    version: i16,
    client_id: String,
    client_host: String,
) -> Reply {
    let params = JoinParams {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id,
        client_host,
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let member_id = params.member_id.clone();
    let rx = broker.groups.join(params);
    Box::pin(async move {
        let result = rx
            .await
            .unwrap_or_else(|_| JoinResult::error(codes::REBALANCE_IN_PROGRESS, &member_id));
        Some(ResponseKind::JoinGroup(response(result, version)))
    })
}

fn response(r: JoinResult, version: i16) -> JoinGroupResponse {
    let members = r
        .members
        .into_iter()
        .map(|m| {
            let mut out = JoinGroupResponseMember::default()
                .with_member_id(text(m.member_id))
                .with_metadata(m.metadata);
            if version >= 5 {
                out.group_instance_id = m.instance_id.map(text);
            }
            out
        })
        .collect();
    let mut out = JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation)
        .with_leader(text(r.leader))
        .with_member_id(text(r.member_id))
        .with_members(members);
    if version >= 7 {
        out.protocol_type = r.protocol_type.map(text);
        out.protocol_name = r.protocol_name.map(text);
    } else {
        // Not nullable before v7.
        out.protocol_name = Some(text(r.protocol_name.unwrap_or_default()));
    }
    if version >= 9 {
        out.skip_assignment = r.skip_assignment;
    }
    out
}
