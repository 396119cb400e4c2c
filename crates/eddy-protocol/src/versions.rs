//! The APIs and versions Eddy serves.
//!
//! Versions run from the Kafka 2.1 floor of KIP-896 (the `kafka-protocol`
//! crate's minimum versions already follow it) up to the newest version the
//! codec crate knows. An API is listed only once Eddy implements it.

use kafka_protocol::messages::ApiKey;

/// Every API Eddy answers, in ApiVersions order.
pub const SUPPORTED: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::SyncGroup,
    ApiKey::DescribeGroups,
    ApiKey::ListGroups,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DeleteRecords,
    ApiKey::InitProducerId,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::TxnOffsetCommit,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::CreatePartitions,
    ApiKey::DeleteGroups,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::OffsetDelete,
    ApiKey::DescribeCluster,
    ApiKey::DescribeProducers,
    ApiKey::DescribeTransactions,
    ApiKey::ListTransactions,
    ApiKey::ConsumerGroupHeartbeat,
    ApiKey::ConsumerGroupDescribe,
    ApiKey::DescribeTopicPartitions,
];

/// (min, max) versions Eddy serves for `key`, or None if not served.
pub fn range(key: ApiKey) -> Option<(i16, i16)> {
    if !SUPPORTED.contains(&key) {
        return None;
    }
    // The codec's decoders can lag its version table (InitProducerId v6 is
    // listed but not decodable in 0.18): serve only what the guard has a
    // schema for, which was checked against the decoders.
    let v = key.valid_versions();
    let g = crate::guard::versions(key as i16)?;
    let (min, max) = (v.min.max(*g.start()), v.max.min(*g.end()));
    (min <= max).then_some((min, max))
}

/// The range ApiVersions advertises. Produce is advertised from v0 though
/// only v3+ is served: librdkafka before 2.10 enables gzip and snappy only
/// when Produce v0 is listed, and Kafka 4.0 restored the same advertisement
/// for that reason (KAFKA-18659). A request below v3 is still refused.
pub fn advertised(key: ApiKey) -> Option<(i16, i16)> {
    let (min, max) = range(key)?;
    Some(if key == ApiKey::Produce {
        (0, max)
    } else {
        (min, max)
    })
}

pub fn is_supported(key: ApiKey, version: i16) -> bool {
    matches!(range(key), Some((min, max)) if version >= min && version <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_api_has_a_guarded_range() {
        for key in SUPPORTED {
            let (min, max) = range(*key).expect("served API without a range");
            assert!(min <= max);
        }
        assert_eq!(range(ApiKey::InitProducerId).map(|r| r.1), Some(5));
    }
}
