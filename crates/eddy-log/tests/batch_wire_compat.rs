//! `encode_batch` and `decode_records` agree with an independent Kafka
//! codec (the `kafka-protocol` crate) in both directions, so batches built
//! by tests look like the ones real producers send.

use bytes::{Bytes, BytesMut};
use eddy_log::batch::{self, decode_records, encode_batch, SimpleRecord};
use eddy_log::{Log, LogConfig};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use proptest::prelude::*;

fn arb_record() -> impl Strategy<Value = SimpleRecord> {
    let bytes = || proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50));
    let headers = proptest::collection::btree_map("[a-z]{1,6}", bytes(), 0..3);
    (-1000i64..100_000, bytes(), bytes(), headers).prop_map(|(delta, key, value, headers)| {
        SimpleRecord {
            timestamp_delta_ms: delta,
            key,
            value,
            headers: headers.into_iter().collect(), // unique keys: kafka-protocol keeps headers in a map
        }
    })
}

fn to_kafka(
    records: &[SimpleRecord],
    base_ms: i64,
    producer_id: i64,
    epoch: i16,
    sequence: i32,
) -> Vec<Record> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut headers = kafka_protocol::indexmap::IndexMap::new();
            for (k, v) in &r.headers {
                headers.insert(StrBytes::from_string(k.clone()), v.clone().map(Bytes::from));
            }
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: if sequence < 0 {
                    -1
                } else {
                    sequence + i as i32
                },
                timestamp: base_ms + r.timestamp_delta_ms,
                key: r.key.clone().map(Bytes::from),
                value: r.value.clone().map(Bytes::from),
                headers,
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn kafka_protocol_decodes_encode_batch(
        records in proptest::collection::vec(arb_record(), 1..10),
        base_ms in 0i64..2_000_000_000_000,
        producer_id in 0i64..1000,
        sequence in 0i32..1000,
    ) {
        let bytes = encode_batch(&records, base_ms, producer_id, 2, sequence);
        let decoded = RecordBatchDecoder::decode(&mut Bytes::from(bytes)).unwrap();
        let expected = to_kafka(&records, base_ms, producer_id, 2, sequence);
        prop_assert_eq!(decoded.records, expected);
    }

    #[test]
    fn decode_records_reads_kafka_protocol_batches(
        records in proptest::collection::vec(arb_record(), 1..10),
        base_ms in 0i64..2_000_000_000_000,
    ) {
        let kafka = to_kafka(&records, base_ms, 5, 1, 0);
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        RecordBatchEncoder::encode(&mut buf, &kafka, &options).unwrap();
        let header = batch::validate(&buf).unwrap();
        prop_assert_eq!(header.records_count as usize, records.len());
        prop_assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), (5, 1, 0));
        // kafka-protocol bases timestamps on the smallest one; compare absolute times.
        let absolute = |rs: &[SimpleRecord], base: i64| -> Vec<(i64, SimpleRecord)> {
            rs.iter().map(|r| (base + r.timestamp_delta_ms, SimpleRecord { timestamp_delta_ms: 0, ..r.clone() })).collect()
        };
        let decoded = decode_records(&buf).unwrap();
        prop_assert_eq!(absolute(&decoded, header.base_timestamp), absolute(&records, base_ms));
    }
}

#[test]
fn the_log_stores_kafka_protocol_batches() {
    let records: Vec<SimpleRecord> = (0..5u8)
        .map(|i| SimpleRecord {
            value: Some(vec![i; 10]),
            ..Default::default()
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &to_kafka(&records, 1000, -1, -1, -1), &options).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
    let mut first = buf.to_vec();
    let mut second = buf.to_vec();
    log.append(&mut first, 0, 0).unwrap();
    assert_eq!(log.append(&mut second, 0, 0).unwrap().base_offset, 5);
    let read = log.read(0, 1 << 20, i64::MAX, true).unwrap();
    let sets = RecordBatchDecoder::decode_all(&mut read.records.clone()).unwrap();
    let offsets: Vec<i64> = sets
        .iter()
        .flat_map(|s| s.records.iter().map(|r| r.offset))
        .collect();
    assert_eq!(offsets, (0..10).collect::<Vec<_>>());
}
