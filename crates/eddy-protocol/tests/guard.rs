//! The request guard through its public API: hostile bodies that must be refused before
//! `kafka-protocol` sees them, and arbitrary bytes that must never make it panic.
//!
//! The agreement of the guard's schemas with the crate, API by API and version by
//! version, is tested beside the tables (`src/guard/tests.rs`).

use bytes::{Buf, Bytes};
use eddy_protocol::guard::{check_request_body, versions, walk_request_body, GuardError, Limits};
use kafka_protocol::messages::{
    CreateTopicsRequest, DescribeTopicPartitionsRequest, FetchRequest, MetadataRequest,
    ProduceRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use proptest::prelude::*;

const PRODUCE: i16 = 0;
const FETCH: i16 = 1;
const METADATA: i16 = 3;
const OFFSET_COMMIT: i16 = 8;
const CREATE_TOPICS: i16 = 19;
const DESCRIBE_TOPIC_PARTITIONS: i16 = 75;

fn walk(api_key: i16, version: i16, body: &[u8]) -> Result<usize, GuardError> {
    walk_request_body(api_key, version, body, &Limits::DEFAULT)
}

fn encode(message: &impl Encodable, version: i16) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode(&mut out, version).expect("encodable");
    out
}

/// A Produce request with one topic holding `partitions` empty partitions.
fn produce(partitions: usize) -> ProduceRequest {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let partition_data = (0..partitions)
        .map(|index| PartitionProduceData::default().with_index(index as i32))
        .collect();
    let topic = TopicProduceData::default()
        .with_name(StrBytes::from_static_str("t").into())
        .with_partition_data(partition_data);
    ProduceRequest::default().with_topic_data(vec![topic])
}

#[test]
fn metadata_claiming_i32_max_topics_in_a_few_bytes_is_rejected() {
    // The shape of the request that made the crate try to allocate hundreds of gigabytes.
    let body = [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        check_request_body(METADATA, 0, &body),
        Err(GuardError::ArrayTooLong {
            field: "topics",
            count: i32::MAX as u64,
            element_min_bytes: 2,
            remaining_bytes: 6,
        })
    );
}

#[test]
fn compact_array_claiming_u32_max_elements_is_rejected() {
    // Produce v9: transactional_id null, acks, timeout, then topic_data's compact count.
    let mut body = vec![0, 0, 1, 0, 0, 0x75, 0x30];
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0]);
    assert!(matches!(
        check_request_body(PRODUCE, 9, &body),
        Err(GuardError::ArrayTooLong { field: "topic_data", count, .. }) if count == u64::from(u32::MAX - 1)
    ));
}

#[test]
fn nested_array_count_is_checked_too() {
    for version in [3, 9] {
        let mut body = encode(&produce(1), version);
        // Counting back from the end: the partition count, one partition (index, null
        // records, [tags]), [the topic's tags, the request's tags].
        let count_at = body.len()
            - if version >= 9 {
                1 + 4 + 1 + 1 + 1 + 1
            } else {
                4 + 4 + 4
            };
        let inflated: &[u8] = if version >= 9 {
            &[0xff, 0xff, 0xff, 0xff, 0x0f]
        } else {
            &[0x7f, 0xff, 0xff, 0xff]
        };
        let width = if version >= 9 { 1 } else { 4 };
        assert_eq!(
            walk(PRODUCE, version, &body),
            Ok(body.len()),
            "v{version} as encoded"
        );
        body.splice(count_at..count_at + width, inflated.iter().copied());
        assert!(
            matches!(
                walk(PRODUCE, version, &body),
                Err(GuardError::ArrayTooLong {
                    field: "partition_data",
                    ..
                })
            ),
            "v{version}: {:?}",
            walk(PRODUCE, version, &body)
        );
    }
}

#[test]
fn string_longer_than_the_body_is_rejected() {
    // Metadata v1: one topic whose name claims i16::MAX bytes.
    let body = [0, 0, 0, 1, 0x7f, 0xff, b'a'];
    assert_eq!(
        walk(METADATA, 1, &body),
        Err(GuardError::Truncated {
            field: "name",
            needed_bytes: i16::MAX as u64,
            remaining_bytes: 1,
        })
    );
}

#[test]
fn negative_and_unexpected_null_lengths_are_rejected() {
    // Metadata v1: a topic name of length -2, then of length -1 (names are nullable here).
    assert_eq!(
        walk(METADATA, 1, &[0, 0, 0, 1, 0xff, 0xfe]),
        Err(GuardError::NegativeLength {
            field: "name",
            length: -2
        })
    );
    assert_eq!(walk(METADATA, 1, &[0, 0, 0, 1, 0xff, 0xff]), Ok(6));
    // CreateTopics v2: topics is not nullable.
    assert_eq!(
        walk(CREATE_TOPICS, 2, &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0]),
        Err(GuardError::UnexpectedNull { field: "topics" })
    );
}

#[test]
fn tagged_field_sections_are_bounded() {
    let body = encode(&FetchRequest::default(), 12);
    assert_eq!(walk(FETCH, 12, &body), Ok(body.len()));
    let without_tags = &body[..body.len() - 1];

    // A tagged-field count of u32::MAX.
    let mut inflated = without_tags.to_vec();
    inflated.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(matches!(
        walk(FETCH, 12, &inflated),
        Err(GuardError::TooManyTaggedFields { .. })
    ));

    // One unknown tag whose size runs past the end.
    let mut past_end = without_tags.to_vec();
    past_end.extend_from_slice(&[1, 9, 0xff, 0xff, 0x03, 0]);
    assert!(matches!(
        walk(FETCH, 12, &past_end),
        Err(GuardError::Truncated { .. })
    ));

    // A known tag (cluster_id) whose value is longer than its declared size.
    let mut short = without_tags.to_vec();
    short.extend_from_slice(&[1, 0, 1, 3, b'i', b'd']);
    assert!(matches!(
        walk(FETCH, 12, &short),
        Err(GuardError::Truncated {
            field: "cluster_id",
            ..
        })
    ));
}

#[test]
fn overlong_varint_is_rejected() {
    // DescribeCluster v0 is flexible from the start: its only tagged-field count here has
    // a fifth byte carrying bits past 32.
    let body = [0, 0x80, 0x80, 0x80, 0x80, 0x10];
    assert_eq!(
        walk(60, 0, &body),
        Err(GuardError::MalformedVarint {
            field: "DescribeCluster"
        })
    );
}

#[test]
fn nullable_struct_marker_must_be_minus_one_or_one() {
    let request = DescribeTopicPartitionsRequest::default();
    let mut body = encode(&request, 0);
    assert_eq!(walk(DESCRIBE_TOPIC_PARTITIONS, 0, &body), Ok(body.len()));
    // Default: topics [], limit, cursor null (-1), tagged fields 0. Java reads a marker of
    // 0 as present and the crate as null: refuse it.
    let marker_at = body.len() - 2;
    assert_eq!(body[marker_at], 0xff);
    body[marker_at] = 0;
    assert_eq!(
        walk(DESCRIBE_TOPIC_PARTITIONS, 0, &body),
        Err(GuardError::BadStructMarker {
            field: "cursor",
            marker: 0
        })
    );
}

#[test]
fn element_and_depth_limits_apply() {
    let body = encode(&produce(100), 3);
    assert_eq!(walk(PRODUCE, 3, &body), Ok(body.len()));
    let tight = Limits {
        elements_max: 100,
        ..Limits::DEFAULT
    };
    assert_eq!(
        walk_request_body(PRODUCE, 3, &body, &tight),
        Err(GuardError::TooManyElements { elements_max: 100 })
    );
    let roomy = Limits {
        elements_max: 101,
        ..Limits::DEFAULT
    };
    assert_eq!(walk_request_body(PRODUCE, 3, &body, &roomy), Ok(body.len()));

    // Request, topic, partition: three structs deep.
    let shallow = Limits {
        depth_max: 2,
        ..Limits::DEFAULT
    };
    assert_eq!(
        walk_request_body(PRODUCE, 3, &body, &shallow),
        Err(GuardError::TooDeep {
            field: "partition_data",
            depth_max: 2
        })
    );
}

#[test]
fn every_api_the_broker_serves_is_guarded() {
    // check_request_body lets an api key without a schema through, so serving an API the
    // guard does not cover would hand its bodies to the codec unchecked.
    for key in eddy_protocol::versions::SUPPORTED {
        assert!(
            versions(*key as i16).is_some(),
            "{key:?} is served but the guard has no schema for it (src/guard/requests.rs)"
        );
    }
}

#[test]
fn unknown_apis_pass_and_unsupported_versions_do_not() {
    // CreateAcls is not served: the caller rejects it, the guard stays out of the way.
    assert_eq!(check_request_body(30, 1, &[0xff; 4]), Ok(()));
    assert_eq!(
        walk(30, 1, &[]),
        Err(GuardError::UnknownApiKey { api_key: 30 })
    );
    assert_eq!(versions(30), None);

    // The crate's ApiKey::valid_versions says OffsetCommit goes to v10, but its decoder
    // stops at v9, and so does the guard.
    assert_eq!(versions(OFFSET_COMMIT), Some(2..=9));
    assert!(matches!(
        check_request_body(OFFSET_COMMIT, 10, &[]),
        Err(GuardError::UnsupportedVersion {
            api_version: 10,
            ..
        })
    ));
}

#[test]
fn trailing_bytes_are_allowed_and_counted() {
    let mut body = encode(&MetadataRequest::default(), 4);
    let body_bytes = body.len();
    body.extend_from_slice(b"trailer");
    assert_eq!(check_request_body(METADATA, 4, &body), Ok(()));
    assert_eq!(walk(METADATA, 4, &body), Ok(body_bytes));
}

/// Decode with the crate and return the bytes it took.
fn crate_decode<T: Decodable>(body: &[u8], version: i16) -> Option<usize> {
    let mut buf = Bytes::copy_from_slice(body);
    T::decode(&mut buf, version)
        .ok()
        .map(|_| body.len() - buf.remaining())
}

fn crate_decode_any(api_key: i16, version: i16, body: &[u8]) -> Option<usize> {
    match api_key {
        PRODUCE => crate_decode::<ProduceRequest>(body, version),
        FETCH => crate_decode::<FetchRequest>(body, version),
        METADATA => crate_decode::<MetadataRequest>(body, version),
        CREATE_TOPICS => crate_decode::<CreateTopicsRequest>(body, version),
        DESCRIBE_TOPIC_PARTITIONS => crate_decode::<DescribeTopicPartitionsRequest>(body, version),
        _ => unreachable!("not in the strategy"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(
        api_key in -2i16..80,
        version in -1i16..20,
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        if let Ok(bytes) = walk(api_key, version, &body) {
            prop_assert!(bytes <= body.len());
        }
    }

    /// Small counts make random bytes pass the guard often enough to matter; where the
    /// crate decodes them too (it also checks UTF-8, for one), both read the same bytes.
    #[test]
    fn accepted_bytes_are_what_the_crate_reads(
        api_key in prop::sample::select(vec![PRODUCE, FETCH, METADATA, CREATE_TOPICS, DESCRIBE_TOPIC_PARTITIONS]),
        version_pick in 0u8..=255,
        body in prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 0xff]), 0..64),
    ) {
        let range = versions(api_key).expect("covered");
        let span = (range.end() - range.start() + 1) as u8;
        let version = range.start() + i16::from(version_pick % span);
        // Only ever decode what the guard passed: unguarded, these bytes abort the process.
        if let Ok(guard_bytes) = walk(api_key, version, &body) {
            if let Some(crate_bytes) = crate_decode_any(api_key, version, &body) {
                prop_assert_eq!(guard_bytes, crate_bytes);
            }
        }
    }
}
