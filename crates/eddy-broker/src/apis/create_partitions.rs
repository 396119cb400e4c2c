//! CreatePartitions: grow a topic.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use kafka_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};

use super::text;
use crate::broker::Broker;

pub fn handle(broker: &Arc<Broker>, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let mut r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            if let Err(e) = broker.create_partitions(&t.name, t.count, req.validate_only) {
                r.error_code = e.code;
                r.error_message = Some(text(e.message));
            }
            r
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
