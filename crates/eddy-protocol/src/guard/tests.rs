//! The guard against the `kafka-protocol` crate, for every API and version it covers.
//!
//! Bodies come from two places: the crate's own encoding of default requests, and a
//! generator that writes random bodies from the guard's tables. A generated body must
//! decode with the crate using every byte (so the tables describe what the crate reads),
//! and the crate's re-encoding of what it decoded must pass the guard using every byte
//! (so the guard accepts what the crate writes). Then the same bodies are broken, by
//! inflating each array count and by cutting them short, and the guard must refuse them.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, Message};
use proptest::prelude::*;

use super::requests::APIS;
use super::schema::{Api, Field, Ty};
use super::{walk_request_body, GuardError, Limits};

/// Decode a body; return the bytes the decoder took and its re-encoding of the result.
type Roundtrip = fn(&[u8], i16) -> Result<(usize, Vec<u8>), String>;

/// The crate's codec for one request type, behind fn pointers so APIs can be iterated.
struct CrateCodec {
    versions: (i16, i16),
    default_body: fn(i16) -> Result<Vec<u8>, String>,
    roundtrip: Roundtrip,
}

impl CrateCodec {
    fn of<T: Default + Decodable + Encodable + Message>() -> CrateCodec {
        CrateCodec {
            versions: (T::VERSIONS.min, T::VERSIONS.max),
            default_body: |version| {
                let mut out = Vec::new();
                T::default()
                    .encode(&mut out, version)
                    .map_err(|e| format!("{e:#}"))?;
                Ok(out)
            },
            roundtrip: |body, version| {
                let mut buf = Bytes::copy_from_slice(body);
                let decoded = T::decode(&mut buf, version).map_err(|e| format!("{e:#}"))?;
                let consumed_bytes = body.len() - buf.remaining();
                let mut out = Vec::new();
                decoded
                    .encode(&mut out, version)
                    .map_err(|e| format!("{e:#}"))?;
                Ok((consumed_bytes, out))
            },
        }
    }
}

/// Every API the broker serves (the guard's brief), with the crate's request type.
macro_rules! served_apis {
    ($($key:ident => $ty:ident,)*) => {
        const SERVED: &[ApiKey] = &[$(ApiKey::$key),*];

        fn crate_codec(api_key: i16) -> Option<CrateCodec> {
            use kafka_protocol::messages::*;
            $(if api_key == ApiKey::$key as i16 {
                return Some(CrateCodec::of::<$ty>());
            })*
            None
        }
    };
}

served_apis! {
    ApiVersions => ApiVersionsRequest,
    Metadata => MetadataRequest,
    Produce => ProduceRequest,
    Fetch => FetchRequest,
    ListOffsets => ListOffsetsRequest,
    OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
    CreateTopics => CreateTopicsRequest,
    DeleteTopics => DeleteTopicsRequest,
    CreatePartitions => CreatePartitionsRequest,
    DescribeConfigs => DescribeConfigsRequest,
    AlterConfigs => AlterConfigsRequest,
    IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
    DeleteRecords => DeleteRecordsRequest,
    DescribeCluster => DescribeClusterRequest,
    DescribeTopicPartitions => DescribeTopicPartitionsRequest,
    InitProducerId => InitProducerIdRequest,
    FindCoordinator => FindCoordinatorRequest,
    JoinGroup => JoinGroupRequest,
    SyncGroup => SyncGroupRequest,
    Heartbeat => HeartbeatRequest,
    LeaveGroup => LeaveGroupRequest,
    OffsetCommit => OffsetCommitRequest,
    OffsetFetch => OffsetFetchRequest,
    DescribeGroups => DescribeGroupsRequest,
    ListGroups => ListGroupsRequest,
    DeleteGroups => DeleteGroupsRequest,
    OffsetDelete => OffsetDeleteRequest,
    ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest,
    ConsumerGroupDescribe => ConsumerGroupDescribeRequest,
    AddPartitionsToTxn => AddPartitionsToTxnRequest,
    AddOffsetsToTxn => AddOffsetsToTxnRequest,
    EndTxn => EndTxnRequest,
    TxnOffsetCommit => TxnOffsetCommitRequest,
    WriteTxnMarkers => WriteTxnMarkersRequest,
    DescribeTransactions => DescribeTransactionsRequest,
    ListTransactions => ListTransactionsRequest,
    DescribeProducers => DescribeProducersRequest,
    SaslHandshake => SaslHandshakeRequest,
    SaslAuthenticate => SaslAuthenticateRequest,
}

/// Every (api, version) the tables cover.
fn api_versions() -> impl Iterator<Item = (&'static Api, i16)> {
    APIS.iter()
        .flat_map(|api| (api.min_version..=api.max_version).map(move |version| (api, version)))
}

fn walk(api: &Api, version: i16, body: &[u8]) -> Result<usize, GuardError> {
    walk_request_body(api.key, version, body, &Limits::DEFAULT)
}

#[test]
fn tables_cover_every_served_api_at_the_versions_the_crate_decodes() {
    let mut table_keys: Vec<i16> = APIS.iter().map(|api| api.key).collect();
    let mut served_keys: Vec<i16> = SERVED.iter().map(|key| *key as i16).collect();
    table_keys.sort_unstable();
    served_keys.sort_unstable();
    assert_eq!(
        table_keys, served_keys,
        "one table per served API, no duplicates"
    );

    for api in APIS {
        let codec = crate_codec(api.key).expect("every table has a crate type");
        assert_eq!(
            (api.min_version, api.max_version),
            codec.versions,
            "{} versions differ from the crate's decoder",
            api.name
        );
        let valid = ApiKey::try_from(api.key)
            .expect("known key")
            .valid_versions();
        assert!(
            valid.min <= api.min_version && api.max_version <= valid.max,
            "{}",
            api.name
        );
    }
}

#[test]
fn array_elements_take_at_least_one_byte() {
    // `walk_array` bounds a count by the bytes remaining, which is only sound (never
    // rejects a valid body) if every element takes at least a byte.
    fn check(fields: &[Field], api: &Api, version: i16) {
        let flexible = version >= api.flexible_from;
        for field in fields.iter().filter(|field| field.present(version)) {
            let mut ty = field.ty;
            if let Ty::Array(element) = ty {
                let min_bytes = element.min_bytes(version, flexible);
                assert!(min_bytes >= 1, "{} v{version} {}", api.name, field.name);
                ty = *element;
            }
            if let Ty::Struct(inner) | Ty::OptStruct(inner) = ty {
                check(inner, api, version);
            }
        }
    }
    for (api, version) in api_versions() {
        check(api.body, api, version);
    }
}

#[test]
fn default_requests_are_accepted_whole() {
    let mut encoded = 0;
    for (api, version) in api_versions() {
        let codec = crate_codec(api.key).expect("codec");
        // A few defaults set a field a version lacks; the generated bodies cover those.
        let Ok(body) = (codec.default_body)(version) else {
            continue;
        };
        assert_eq!(
            walk(api, version, &body),
            Ok(body.len()),
            "{} v{version}",
            api.name
        );
        encoded += 1;
    }
    assert!(
        encoded * 10 >= api_versions().count() * 9,
        "most defaults encode: {encoded}"
    );
}

/// Writes a random body by the tables, reading its choices from `entropy` (zeros once
/// that runs out, which makes the smallest body: proptest shrinks toward it).
struct Gen<'a> {
    entropy: &'a [u8],
    used: usize,
    version: i16,
    flexible: bool,
    out: Vec<u8>,
    /// Offset and width of every array count prefix written to the body itself (not
    /// inside a tagged field's value, which is written aside first).
    array_prefixes: Vec<(usize, usize)>,
    aside: u32,
    /// Write null now and then for any string, bytes or array, nullable or not, and
    /// unknown tags among the low numbers Kafka assigns, so that a body may be valid or
    /// not, and a wrong table makes the guard and the crate disagree.
    lax: bool,
}

impl Gen<'_> {
    fn body(api: &Api, version: i16, entropy: &[u8]) -> (Vec<u8>, Vec<(usize, usize)>) {
        Gen::body_with(api, version, entropy, false)
    }

    fn body_with(
        api: &Api,
        version: i16,
        entropy: &[u8],
        lax: bool,
    ) -> (Vec<u8>, Vec<(usize, usize)>) {
        let mut gen = Gen {
            entropy,
            used: 0,
            version,
            flexible: version >= api.flexible_from,
            out: Vec::new(),
            array_prefixes: Vec::new(),
            aside: 0,
            lax,
        };
        gen.write_struct(api.body);
        (gen.out, gen.array_prefixes)
    }

    fn byte(&mut self) -> u8 {
        let byte = self.entropy.get(self.used).copied().unwrap_or(0);
        self.used += 1;
        byte
    }

    fn below(&mut self, n: u8) -> u8 {
        self.byte() % n
    }

    fn varint(&mut self, mut value: u32) {
        while value >= 0x80 {
            self.out.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.out.push(value as u8);
    }

    /// A length prefix; `None` writes null.
    fn length(&mut self, length: Option<usize>, classic_bytes: usize) {
        if self.flexible {
            self.varint(length.map_or(0, |length| length as u32 + 1));
        } else {
            let length = length.map_or(-1, |length| length as i32);
            match classic_bytes {
                2 => self.out.extend_from_slice(&(length as i16).to_be_bytes()),
                _ => self.out.extend_from_slice(&length.to_be_bytes()),
            }
        }
    }

    fn write_struct(&mut self, fields: &[Field]) {
        let version = self.version;
        for field in fields
            .iter()
            .filter(|field| field.tag.is_none() && field.present(version))
        {
            self.write_value(field.ty, field.nullable);
        }
        if self.flexible {
            self.write_tagged_fields(fields);
        }
    }

    fn write_tagged_fields(&mut self, fields: &[Field]) {
        let version = self.version;
        let mut entries = BTreeMap::new();
        for field in fields
            .iter()
            .filter(|field| field.tag.is_some() && field.present(version))
        {
            if self.below(2) == 1 {
                let value = self.aside(|gen| gen.write_value(field.ty, field.nullable));
                entries.insert(field.tag.expect("filtered"), value);
            }
        }
        for _ in 0..self.below(3) {
            // Unknown tags: above any tag Kafka has assigned in these messages, or (lax) a
            // low one the table does not know, which the crate must not know either.
            let tag = match self.lax && self.below(2) == 0 {
                true => u32::from(self.below(4)),
                false => 10 + u32::from(self.byte()),
            };
            if fields.iter().any(|field| field.tag == Some(tag)) {
                continue;
            }
            let value = (0..self.below(4)).map(|_| self.byte()).collect();
            entries.insert(tag, value);
        }
        self.varint(entries.len() as u32);
        for (tag, value) in entries {
            self.varint(tag);
            self.varint(value.len() as u32);
            self.out.extend_from_slice(&value);
        }
    }

    fn aside(&mut self, write: impl FnOnce(&mut Self)) -> Vec<u8> {
        let outer = std::mem::take(&mut self.out);
        self.aside += 1;
        write(self);
        self.aside -= 1;
        std::mem::replace(&mut self.out, outer)
    }

    fn write_value(&mut self, ty: Ty, nullable: bool) {
        let null = (nullable || self.lax) && self.below(4) == 0;
        match ty {
            Ty::Bool => {
                let value = self.below(2);
                self.out.push(value);
            }
            Ty::Str if null => self.length(None, 2),
            Ty::Str => {
                let length = usize::from(self.below(6));
                self.length(Some(length), 2);
                for _ in 0..length {
                    let letter = b'a' + self.below(26);
                    self.out.push(letter);
                }
            }
            Ty::Bytes if null => self.length(None, 4),
            Ty::Bytes => {
                let length = usize::from(self.below(12));
                self.length(Some(length), 4);
                for _ in 0..length {
                    let byte = self.byte();
                    self.out.push(byte);
                }
            }
            Ty::Struct(fields) => self.write_struct(fields),
            Ty::OptStruct(fields) => {
                if null {
                    self.out.push(0xff);
                } else {
                    self.out.push(1);
                    self.write_struct(fields);
                }
            }
            Ty::Array(_) if null => self.length(None, 4),
            Ty::Array(element) => {
                let count = usize::from(self.below(4));
                if self.aside == 0 {
                    let width = if self.flexible { 1 } else { 4 };
                    self.array_prefixes.push((self.out.len(), width));
                }
                self.length(Some(count), 4);
                for _ in 0..count {
                    self.write_value(*element, false);
                }
            }
            fixed => {
                let bytes = fixed.fixed_bytes().expect("fixed width");
                for _ in 0..bytes {
                    let byte = self.byte();
                    self.out.push(byte);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_requests_agree_with_the_crate(entropy in prop::collection::vec(any::<u8>(), 0..512)) {
        for (api, version) in api_versions() {
            let codec = crate_codec(api.key).expect("codec");
            let (body, _) = Gen::body(api, version, &entropy);
            let context = format!("{} v{version} body {body:02x?}", api.name);

            prop_assert_eq!(walk(api, version, &body), Ok(body.len()), "guard: {}", context);
            let (consumed_bytes, reencoded) = (codec.roundtrip)(&body, version)
                .map_err(|e| TestCaseError::fail(format!("crate: {context}: {e}")))?;
            prop_assert_eq!(consumed_bytes, body.len(), "crate left bytes: {}", context);
            prop_assert_eq!(
                walk(api, version, &reencoded),
                Ok(reencoded.len()),
                "guard on the crate's encoding {:02x?}: {}", reencoded, context
            );
        }
    }

    #[test]
    fn guard_accepts_exactly_what_the_crate_accepts(
        entropy in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        for (api, version) in api_versions() {
            let codec = crate_codec(api.key).expect("codec");
            let (body, _) = Gen::body_with(api, version, &entropy, true);
            let guard_accepts = walk(api, version, &body) == Ok(body.len());
            let crate_accepts =
                matches!((codec.roundtrip)(&body, version), Ok((bytes, _)) if bytes == body.len());
            prop_assert_eq!(guard_accepts, crate_accepts, "{} v{} body {:02x?}", api.name, version, body);
        }
    }

    #[test]
    fn inflated_array_counts_are_rejected(entropy in prop::collection::vec(any::<u8>(), 0..256)) {
        for (api, version) in api_versions() {
            let (body, prefixes) = Gen::body(api, version, &entropy);
            for (offset, width) in prefixes {
                let huge: &[u8] = if version >= api.flexible_from {
                    &[0xff, 0xff, 0xff, 0xff, 0x0f] // u32::MAX - 1 elements
                } else {
                    &[0x7f, 0xff, 0xff, 0xff] // i32::MAX elements
                };
                let mut inflated = body[..offset].to_vec();
                inflated.extend_from_slice(huge);
                inflated.extend_from_slice(&body[offset + width..]);
                let result = walk(api, version, &inflated);
                prop_assert!(
                    matches!(result, Err(GuardError::ArrayTooLong { .. })),
                    "{} v{} count at {}: {:?}", api.name, version, offset, result
                );
            }
        }
    }

    #[test]
    fn every_strict_prefix_is_rejected(entropy in prop::collection::vec(any::<u8>(), 0..128)) {
        for (api, version) in api_versions() {
            let (body, _) = Gen::body(api, version, &entropy);
            for cut in 0..body.len() {
                prop_assert!(walk(api, version, &body[..cut]).is_err(), "{} v{} cut {}", api.name, version, cut);
            }
        }
    }
}

#[test]
fn known_tagged_field_must_fill_its_declared_size() {
    let fetch = super::requests::find(1).expect("fetch");
    let (mut body, _) = Gen::body(fetch, 12, &[]);
    // An empty v12 body ends with a zero tagged-field count; replace it with cluster_id
    // (tag 0) holding "ab" (three bytes: length + 1, then the letters) but declaring four.
    assert_eq!(body.pop(), Some(0));
    body.extend_from_slice(&[1, 0, 4, 3, b'a', b'b', 0]);
    assert_eq!(
        walk(fetch, 12, &body),
        Err(GuardError::TaggedSizeMismatch {
            field: "cluster_id",
            declared_bytes: 4,
            used_bytes: 3,
        })
    );
    // Declaring two bytes for a three-byte value runs out of the value's window.
    let fixed = body.len() - 5;
    body[fixed] = 2;
    assert!(matches!(
        walk(fetch, 12, &body),
        Err(GuardError::Truncated { .. })
    ));
}
