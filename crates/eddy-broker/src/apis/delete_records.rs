//! DeleteRecords: move a partition's log start offset forward.

use std::sync::Arc;

use eddy_log::LogError;
use eddy_protocol::codes;
use kafka_protocol::messages::delete_records_request::DeleteRecordsRequest;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};

use crate::broker::Broker;

pub fn handle(broker: &Arc<Broker>, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index).with_low_watermark(-1);
                    let Some(partition) = broker.partition(&t.name, p.partition_index) else {
                        r.error_code = codes::UNKNOWN_TOPIC_OR_PARTITION;
                        return r;
                    };
                    let hw = partition.high_watermark();
                    // -1 means "up to the high watermark".
                    let offset = if p.offset == -1 { hw } else { p.offset };
                    if offset < 0 || offset > hw {
                        r.error_code = codes::OFFSET_OUT_OF_RANGE;
                        return r;
                    }
                    let mut state = partition.lock();
                    match state.log.delete_records_before(offset) {
                        Ok(low) => r.low_watermark = low,
                        Err(LogError::OffsetOutOfRange { .. }) => r.error_code = codes::OFFSET_OUT_OF_RANGE,
                        Err(e) => {
                            tracing::error!(topic = %t.name.0, partition = p.partition_index, error = %e, "DeleteRecords failed");
                            r.error_code = codes::KAFKA_STORAGE_ERROR;
                        }
                    }
                    partition.publish(&state);
                    r
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
