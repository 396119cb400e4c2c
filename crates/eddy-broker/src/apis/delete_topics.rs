//! DeleteTopics, by name or (v6+) by topic id.

use std::sync::Arc;

use eddy_protocol::codes;
use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use kafka_protocol::messages::TopicName;

use super::text;
use crate::broker::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let mut targets: Vec<(Option<String>, uuid::Uuid)> = Vec::new();
    if version >= 6 {
        for t in req.topics {
            targets.push((t.name.map(|n| n.0.to_string()), t.topic_id));
        }
    } else {
        for n in req.topic_names {
            targets.push((Some(n.0.to_string()), uuid::Uuid::nil()));
        }
    }
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let resolved = match &name {
                Some(n) => Some(n.clone()),
                None => broker.topic_by_id(id).map(|t| t.name.to_string()),
            };
            let mut r =
                DeletableTopicResult::default().with_name(name.clone().map(|n| TopicName(text(n))));
            if version >= 6 {
                r.topic_id = id;
            }
            match resolved {
                None => {
                    r.error_code = codes::UNKNOWN_TOPIC_ID;
                    r.error_message = Some(text(format!("Topic id {id} does not exist.")));
                }
                Some(n) => {
                    if let Some(t) = broker.topic(&n) {
                        if version >= 6 {
                            r.topic_id = t.id;
                        }
                    }
                    if let Err(e) = broker.delete_topic(&n) {
                        r.error_code = e.code;
                        r.error_message = Some(text(e.message));
                    }
                }
            }
            if version < 5 {
                r.error_message = None;
            }
            r
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
