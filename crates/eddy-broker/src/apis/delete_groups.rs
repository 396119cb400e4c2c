//! DeleteGroups: deletes groups without members, with their offsets. The
//! answer waits until the tombstones are durable in `__consumer_offsets`.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::delete_groups_response::{
    DeletableGroupResult, DeleteGroupsResponse,
};
use kafka_protocol::messages::ResponseKind;

use super::Reply;
use crate::broker::Broker;
use crate::group::codes;

pub fn handle(broker: &Arc<Broker>, req: DeleteGroupsRequest) -> Reply {
    // Each group is deleted (or refused) now, in request order; only the
    // wait for durability is deferred.
    let outcomes: Vec<_> = req
        .groups_names
        .into_iter()
        .map(|id| {
            let outcome = broker.groups.delete_group(&id);
            (id, outcome)
        })
        .collect();
    Box::pin(async move {
        let mut results = Vec::with_capacity(outcomes.len());
        for (id, outcome) in outcomes {
            let error = match outcome {
                Err(code) => code,
                Ok(None) => codes::NONE,
                Ok(Some(wait)) => match wait.await {
                    Ok(Ok(())) => codes::NONE,
                    Ok(Err(code)) => code,
                    Err(_) => codes::KAFKA_STORAGE_ERROR,
                },
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(id)
                    .with_error_code(error),
            );
        }
        Some(ResponseKind::DeleteGroups(
            DeleteGroupsResponse::default().with_results(results),
        ))
    })
}
