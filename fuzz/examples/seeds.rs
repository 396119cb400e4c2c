//! Writes the seed corpora under `fuzz/seeds/`: one well-formed frame per API and version
//! the guard covers (the crate's default request, plus a few with arrays filled in), and
//! a few valid record batches. Fuzzing starts from these instead of from nothing.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds` (from the repo root).

use std::fs;
use std::path::Path;

use bytes::Bytes;
use eddy_log::batch::{encode_batch, encode_batch_with_attributes, SimpleRecord};
use eddy_protocol::guard;
use kafka_protocol::messages::{
    create_topics_request, fetch_request, metadata_request, produce_request, ApiKey,
    CreateTopicsRequest, FetchRequest, MetadataRequest, ProduceRequest, RequestHeader, RequestKind,
    TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    write_request_seeds(&root.join("request_frame"));
    write_batch_seeds(&root.join("record_batch"));
}

fn write_request_seeds(dir: &Path) {
    fs::create_dir_all(dir).expect("seed dir");
    for key in 0..=i16::MAX {
        let Some(versions) = guard::versions(key) else {
            if key > 100 {
                break;
            }
            continue;
        };
        let api_key = ApiKey::try_from(key).expect("the guard covers known keys");
        for version in versions {
            for (variant, body) in bodies(api_key, version).into_iter().enumerate() {
                let name = format!("{api_key:?}-v{version}-{variant}");
                fs::write(dir.join(name), frame(api_key, version, &body)).expect("write seed");
            }
        }
    }
}

/// Request bodies for one API and version: the default request, and for a few APIs one
/// with its arrays filled in.
fn bodies(api_key: ApiKey, version: i16) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    if let Some(body) = default_body(api_key, version) {
        bodies.push(body);
    }
    let filled = match api_key {
        ApiKey::Produce => Some(RequestKind::Produce(produce())),
        ApiKey::Fetch => Some(RequestKind::Fetch(fetch(version))),
        ApiKey::Metadata => Some(RequestKind::Metadata(metadata())),
        ApiKey::CreateTopics => Some(RequestKind::CreateTopics(create_topics())),
        _ => None,
    };
    if let Some(request) = filled {
        let mut body = bytes::BytesMut::new();
        if request.encode(&mut body, version).is_ok() {
            bodies.push(body.to_vec());
        }
    }
    bodies
}

fn default_body(api_key: ApiKey, version: i16) -> Option<Vec<u8>> {
    let request = default_kind(api_key)?;
    let mut body = bytes::BytesMut::new();
    request.encode(&mut body, version).ok()?;
    Some(body.to_vec())
}

fn default_kind(api_key: ApiKey) -> Option<RequestKind> {
    use kafka_protocol::messages::*;
    macro_rules! kinds {
        ($($key:ident => $ty:ident,)*) => {
            match api_key {
                $(ApiKey::$key => Some(RequestKind::$key($ty::default())),)*
                _ => None,
            }
        };
    }
    kinds! {
        Produce => ProduceRequest,
        Fetch => FetchRequest,
        ListOffsets => ListOffsetsRequest,
        Metadata => MetadataRequest,
        OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest,
        FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest,
        Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest,
        SyncGroup => SyncGroupRequest,
        DescribeGroups => DescribeGroupsRequest,
        ListGroups => ListGroupsRequest,
        SaslHandshake => SaslHandshakeRequest,
        ApiVersions => ApiVersionsRequest,
        CreateTopics => CreateTopicsRequest,
        DeleteTopics => DeleteTopicsRequest,
        DeleteRecords => DeleteRecordsRequest,
        InitProducerId => InitProducerIdRequest,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest,
        AddOffsetsToTxn => AddOffsetsToTxnRequest,
        EndTxn => EndTxnRequest,
        WriteTxnMarkers => WriteTxnMarkersRequest,
        TxnOffsetCommit => TxnOffsetCommitRequest,
        DescribeConfigs => DescribeConfigsRequest,
        AlterConfigs => AlterConfigsRequest,
        SaslAuthenticate => SaslAuthenticateRequest,
        CreatePartitions => CreatePartitionsRequest,
        DeleteGroups => DeleteGroupsRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        OffsetDelete => OffsetDeleteRequest,
        DescribeCluster => DescribeClusterRequest,
        DescribeProducers => DescribeProducersRequest,
        DescribeTransactions => DescribeTransactionsRequest,
        ListTransactions => ListTransactionsRequest,
        ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest,
        ConsumerGroupDescribe => ConsumerGroupDescribeRequest,
        DescribeTopicPartitions => DescribeTopicPartitionsRequest,
    }
}

/// size | header | body, as a client sends it.
fn frame(api_key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut payload = Vec::new();
    header
        .encode(&mut payload, api_key.request_header_version(version))
        .expect("header encodes");
    payload.extend_from_slice(body);
    let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    frame
}

fn topic_name(name: &'static str) -> TopicName {
    StrBytes::from_static_str(name).into()
}

fn records() -> Vec<u8> {
    let record = SimpleRecord {
        key: Some(b"k".to_vec()),
        value: Some(b"v".to_vec()),
        ..Default::default()
    };
    encode_batch(&[record], 1_700_000_000_000, -1, -1, -1)
}

fn produce() -> ProduceRequest {
    let partition =
        produce_request::PartitionProduceData::default().with_records(Some(Bytes::from(records())));
    let topic = produce_request::TopicProduceData::default()
        .with_name(topic_name("t"))
        .with_partition_data(vec![partition]);
    ProduceRequest::default().with_topic_data(vec![topic])
}

fn fetch(version: i16) -> FetchRequest {
    let partition = fetch_request::FetchPartition::default().with_partition_max_bytes(1 << 20);
    let mut topic = fetch_request::FetchTopic::default().with_partitions(vec![partition]);
    if version <= 12 {
        topic = topic.with_topic(topic_name("t"));
    }
    FetchRequest::default().with_topics(vec![topic])
}

fn metadata() -> MetadataRequest {
    let topic = metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name("t")));
    MetadataRequest::default().with_topics(Some(vec![topic]))
}

fn create_topics() -> CreateTopicsRequest {
    let config = create_topics_request::CreatableTopicConfig::default()
        .with_name(StrBytes::from_static_str("retention.ms"))
        .with_value(Some(StrBytes::from_static_str("1000")));
    let topic = create_topics_request::CreatableTopic::default()
        .with_name(topic_name("t"))
        .with_num_partitions(3)
        .with_replication_factor(1)
        .with_configs(vec![config]);
    CreateTopicsRequest::default().with_topics(vec![topic])
}

fn write_batch_seeds(dir: &Path) {
    fs::create_dir_all(dir).expect("seed dir");
    let record = |value: &[u8]| SimpleRecord {
        value: Some(value.to_vec()),
        headers: vec![("h".to_string(), Some(b"x".to_vec()))],
        ..Default::default()
    };
    let one = encode_batch(&[record(b"a")], 1_700_000_000_000, -1, -1, -1);
    let three = encode_batch(&[record(b"a"), record(b""), record(b"c")], 5, 42, 1, 10);
    let transactional = encode_batch_with_attributes(&[record(b"t")], 5, 42, 1, 0, 0x10);
    let control = encode_batch_with_attributes(&[record(b"")], 5, 42, 1, -1, 0x30);
    let mut back_to_back = one.clone();
    back_to_back.extend_from_slice(&three);
    for (name, bytes) in [
        ("one", one),
        ("three", three),
        ("transactional", transactional),
        ("control", control),
        ("back_to_back", back_to_back),
    ] {
        fs::write(dir.join(name), bytes).expect("write seed");
    }
}
