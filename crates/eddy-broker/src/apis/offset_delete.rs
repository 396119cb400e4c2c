//! OffsetDelete: deletes committed offsets of a group for partitions its
//! members do not consume. The answer waits until the tombstones are durable.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::ResponseKind;

use super::{ready, Reply};
use crate::broker::Broker;
use crate::group::{codes, OffsetsDeleted};

pub fn handle(broker: &Arc<Broker>, req: OffsetDeleteRequest) -> Reply {
    // Partitions of unknown topics are answered without asking the group.
    let known: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p.partition_index)))
        .filter(|(t, p)| broker.partition(&t.name, *p).is_some())
        .map(|(t, p)| (t.name.to_string(), p))
        .collect();
    let (errors, durable) = match broker.groups.delete_offsets(&req.group_id, &known) {
        Ok(OffsetsDeleted { errors, durable }) => (errors, durable),
        Err(code) => {
            // A group-level error answers the whole request (as Kafka does).
            return ready(ResponseKind::OffsetDelete(
                OffsetDeleteResponse::default().with_error_code(code),
            ));
        }
    };
    let mut known_errors = errors.into_iter();
    let topics: Vec<OffsetDeleteResponseTopic> = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = if broker.partition(&t.name, p.partition_index).is_none() {
                        codes::UNKNOWN_TOPIC_OR_PARTITION
                    } else {
                        known_errors.next().unwrap_or(codes::NONE)
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Box::pin(async move {
        let failed = match durable {
            None => codes::NONE,
            Some(wait) => match wait.await {
                Ok(Ok(())) => codes::NONE,
                Ok(Err(code)) => code,
                Err(_) => codes::KAFKA_STORAGE_ERROR,
            },
        };
        let mut response = OffsetDeleteResponse::default().with_topics(topics);
        if failed != codes::NONE {
            // Not durable: report the failure rather than partitions deleted.
            response.error_code = failed;
        }
        Some(ResponseKind::OffsetDelete(response))
    })
}
