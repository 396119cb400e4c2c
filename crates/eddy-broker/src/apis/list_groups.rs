//! ListGroups: every group, filtered by state (v4+) and type (v5+).

use std::sync::Arc;

use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use kafka_protocol::messages::GroupId;

use super::text;
use crate::broker::Broker;

pub fn handle(broker: &Arc<Broker>, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let wants = |filter: &[kafka_protocol::protocol::StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let mut groups: Vec<ListedGroup> = broker
        .groups
        .list()
        .into_iter()
        .filter(|(_, _, state)| version < 4 || wants(&req.states_filter, state.name()))
        .filter(|_| version < 5 || wants(&req.types_filter, "classic"))
        .map(|(id, protocol_type, state)| {
            let mut g = ListedGroup::default()
                .with_group_id(GroupId(text(id)))
                .with_protocol_type(text(protocol_type));
            if version >= 4 {
                g.group_state = text(state.name());
            }
            if version >= 5 {
                g.group_type = text("classic");
            }
            g
        })
        .collect();
    // Consumer-protocol groups (KIP-848): type "consumer", their own states.
    for (id, state) in broker.groups.list_consumer() {
        if (version >= 4 && !wants(&req.states_filter, state.name()))
            || (version >= 5 && !wants(&req.types_filter, "consumer"))
        {
            continue;
        }
        let mut g = ListedGroup::default()
            .with_group_id(GroupId(text(id)))
            .with_protocol_type(text("consumer"));
        if version >= 4 {
            g.group_state = text(state.name());
        }
        if version >= 5 {
            g.group_type = text("consumer");
        }
        groups.push(g);
    }
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    ListGroupsResponse::default().with_groups(groups)
}
