//! LeaveGroup: one member (v0-2) or a batch of members by member id or
//! group.instance.id (v3+).

use std::sync::Arc;

use kafka_protocol::messages::leave_group_request::LeaveGroupRequest;
use kafka_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};

use crate::broker::Broker;
use crate::group::codes;

/// Bound on members removed by one request.
const MEMBERS_MAX: usize = 10_000;

pub fn handle(broker: &Arc<Broker>, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    if version < 3 {
        let error = broker.groups.leave(&req.group_id, &req.member_id, None);
        return LeaveGroupResponse::default().with_error_code(error);
    }
    if req.members.len() > MEMBERS_MAX {
        return LeaveGroupResponse::default().with_error_code(codes::INVALID_REQUEST);
    }
    let members = req
        .members
        .into_iter()
        .map(|m| {
            let error =
                broker
                    .groups
                    .leave(&req.group_id, &m.member_id, m.group_instance_id.as_deref());
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(error)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
