//! The codecs and `recompress` agree with an independent Kafka codec (the
//! `kafka-protocol` crate, whose snappy and lz4 follow Kafka's Java client)
//! in both directions, and recompression keeps records byte for byte.

use bytes::{Bytes, BytesMut};
use eddy_log::batch::{self, decode_records, encode_batch, recompress, SimpleRecord};
use eddy_log::compression::{self, decompress, GZIP, LZ4, NONE, SNAPPY, ZSTD};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use proptest::prelude::*;

const LIMIT_BYTES: usize = 16 << 20;
const CODECS: [(i16, Compression); 5] = [
    (NONE, Compression::None),
    (GZIP, Compression::Gzip),
    (SNAPPY, Compression::Snappy),
    (LZ4, Compression::Lz4),
    (ZSTD, Compression::Zstd),
];

fn kafka_records(values: &[Vec<u8>], base_ms: i64) -> Vec<Record> {
    values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let mut headers = IndexMap::new();
            headers.insert(
                StrBytes::from_static_str("trace"),
                Some(Bytes::from(vec![i as u8; 3])),
            );
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: 7,
                producer_epoch: 1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: base_ms + 10 * i as i64,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(value.clone())),
                headers,
            }
        })
        .collect()
}

fn kafka_encode(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut out, records, &options).unwrap();
    out.to_vec()
}

fn arb_values() -> impl Strategy<Value = Vec<Vec<u8>>> {
    // Repetitive values, so the codecs have something to do, plus random ones.
    let value = prop_oneof![
        (any::<u8>(), 0usize..3000).prop_map(|(b, n)| vec![b; n]),
        proptest::collection::vec(any::<u8>(), 0..300),
    ];
    proptest::collection::vec(value, 1..20)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn kafka_protocol_batches_decompress_and_recompress(values in arb_values()) {
        let records = kafka_records(&values, 1_700_000_000_000);
        let plain = kafka_encode(&records, Compression::None);
        for (codec, kind) in CODECS {
            let packed = kafka_encode(&records, kind);
            let header = batch::validate(&packed).unwrap();
            prop_assert_eq!(header.compression(), codec);
            let section = decompress(codec, &packed[batch::HEADER_BYTES..], LIMIT_BYTES).unwrap();
            prop_assert_eq!(&section[..], &plain[batch::HEADER_BYTES..]);
            // Back to uncompressed: exactly the bytes kafka-protocol writes.
            prop_assert_eq!(recompress(&packed, NONE, LIMIT_BYTES).unwrap(), plain.clone());
            // And across to every codec: kafka-protocol reads the same records.
            for (other, _) in CODECS {
                let across = recompress(&packed, other, LIMIT_BYTES).unwrap();
                let header = batch::validate(&across).unwrap();
                prop_assert_eq!(header.compression(), other);
                let decoded = RecordBatchDecoder::decode(&mut Bytes::from(across)).unwrap();
                prop_assert_eq!(&decoded.records, &records);
            }
        }
    }

    #[test]
    fn our_snappy_framing_is_byte_for_byte_kafkas(values in arb_values()) {
        let records = kafka_records(&values, 5);
        let plain = kafka_encode(&records, Compression::None);
        let ours = compression::compress(SNAPPY, &plain[batch::HEADER_BYTES..]).unwrap();
        let theirs = kafka_encode(&records, Compression::Snappy);
        prop_assert_eq!(&ours[..], &theirs[batch::HEADER_BYTES..]);
    }
}

#[test]
fn recompress_keeps_every_other_header_field_and_duplicate_header_keys() {
    let record = |i: u8| SimpleRecord {
        timestamp_delta_ms: i as i64 * 3,
        key: Some(vec![i]),
        value: Some(vec![b'v'; 500]),
        // Duplicate keys: Kafka allows them, and a map-based decoder would lose one.
        headers: vec![
            ("dup".to_string(), Some(vec![1])),
            ("dup".to_string(), Some(vec![2])),
            ("null".to_string(), None),
        ],
    };
    let records: Vec<_> = (0..5).map(record).collect();
    let mut plain =
        batch::encode_batch_with_attributes(&records, 1_000, 42, 3, 100, 0x10 /* txn */);
    batch::assign_offset(&mut plain, 1234, 9);
    let before = batch::validate(&plain).unwrap();
    for codec in [GZIP, SNAPPY, LZ4, ZSTD] {
        let packed = recompress(&plain, codec, LIMIT_BYTES).unwrap();
        assert!(
            packed.len() < plain.len(),
            "{}",
            compression::codec_name(codec)
        );
        let after = batch::validate(&packed).unwrap();
        assert_eq!(after.attributes, before.attributes | codec);
        assert_eq!(after.batch_length as usize, packed.len() - 12);
        let unchanged = |h: &batch::BatchHeader| {
            (
                h.base_offset,
                h.partition_leader_epoch,
                h.last_offset_delta,
                h.base_timestamp,
                h.max_timestamp,
                h.producer_id,
                h.producer_epoch,
                h.base_sequence,
                h.records_count,
            )
        };
        assert_eq!(unchanged(&after), unchanged(&before));
        let back = recompress(&packed, NONE, LIMIT_BYTES).unwrap();
        assert_eq!(back, plain);
        assert_eq!(decode_records(&back).unwrap(), records);
        // Already in the codec: returned as it is.
        assert_eq!(recompress(&packed, codec, LIMIT_BYTES).unwrap(), packed);
    }
}

#[test]
fn recompress_refuses_bombs_bad_codecs_and_bad_batches() {
    let big = SimpleRecord {
        value: Some(vec![0; 4 << 20]),
        ..Default::default()
    };
    let plain = encode_batch(&[big], 0, -1, -1, -1);
    for codec in [GZIP, SNAPPY, LZ4, ZSTD] {
        let packed = recompress(&plain, codec, LIMIT_BYTES).unwrap();
        let err = recompress(&packed, NONE, 1 << 20).unwrap_err();
        assert!(
            matches!(err, batch::BatchError::DecompressedTooLarge { .. }),
            "{err}"
        );
    }
    assert_eq!(
        recompress(&plain, 5, LIMIT_BYTES),
        Err(batch::BatchError::UnknownCodec(5))
    );
    let mut corrupt = plain.clone();
    corrupt[100] ^= 1;
    assert!(matches!(
        recompress(&corrupt, GZIP, LIMIT_BYTES),
        Err(batch::BatchError::CrcMismatch { .. })
    ));
}
