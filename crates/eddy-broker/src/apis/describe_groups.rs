//! DescribeGroups: state, protocol and members of each group.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};

use super::text;
use crate::broker::Broker;
use crate::group::{codes, State};

pub fn handle(
    broker: &Arc<Broker>,
    req: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let mut out = DescribedGroup::default().with_group_id(id.clone());
            if version >= 3 {
                out.authorized_operations = i32::MIN;
            }
            if id.is_empty() {
                out.error_code = codes::INVALID_GROUP_ID;
                return out;
            }
            // A consumer-protocol group is described in classic terms.
            let consumer = broker.groups.describe_consumer_as_classic(&id, |m| {
                super::consumer_group_describe::classic_member(broker, m)
            });
            let Some(d) = consumer.or_else(|| broker.groups.describe(&id)) else {
                out.group_state = text(State::Dead.name());
                if version >= 6 {
                    out.error_code = codes::GROUP_ID_NOT_FOUND;
                    out.error_message = Some(text(format!("Group {} not found.", id.as_str())));
                }
                return out;
            };
            out.group_state = text(d.state.name());
            out.protocol_type = text(d.protocol_type);
            out.protocol_data = text(d.protocol_name);
            out.members = d
                .members
                .into_iter()
                .map(|m| {
                    let mut dm = DescribedGroupMember::default()
                        .with_member_id(text(m.member_id))
                        .with_client_id(text(m.client_id))
                        .with_client_host(text(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment);
                    if version >= 4 {
                        dm.group_instance_id = m.instance_id.map(text);
                    }
                    dm
                })
                .collect();
            out
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
