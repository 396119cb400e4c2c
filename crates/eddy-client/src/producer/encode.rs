//! A batch as bytes: one v2 record batch per [`Batch`], compressed, with the producer id,
//! epoch, sequence numbers and transactional flag of an idempotent or transactional producer.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{self, RecordBatchEncoder, RecordEncodeOptions};

use super::Compression;
use crate::accumulator::Batch;
use crate::error::{Error, Result};

/// Kafka's sequence numbers wrap from i32::MAX to 0 (`DefaultRecordBatch.incrementSequence`).
pub(super) fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// One v2 record batch holding all of `batch`'s records; `transactional` sets the batch's
/// transactional flag (its records count only once the transaction commits).
pub(super) fn encode_batch(
    batch: &Batch,
    identity: Option<(i64, i16)>,
    transactional: bool,
    compression: Compression,
) -> Result<Bytes> {
    assert!(
        !transactional || identity.is_some(),
        "a transactional batch needs a producer id"
    );
    let (producer_id, producer_epoch) = identity.unwrap_or((-1, -1));
    // Non-idempotent batches carry base sequence -1. The encoder derives the base from the
    // first record and splits a batch wherever offset - sequence changes, so sequences
    // count up from the base either way.
    let base_sequence = batch.base_sequence.unwrap_or(-1);
    let records: Vec<records::Record> = batch
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| records::Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: records::TimestampType::Creation,
            offset: i as i64,
            sequence: base_sequence.wrapping_add(i as i32),
            timestamp: r.timestamp_ms,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|h| (StrBytes::from_string(h.key.clone()), h.value.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::with_capacity(batch.size_bytes + 128);
    let options = RecordEncodeOptions {
        version: 2,
        compression: compression.codec(),
    };
    RecordBatchEncoder::encode_with_custom_compression(
        &mut buf,
        &records,
        &options,
        Some(compress_records),
    )
    .map_err(|e| Error::Encode {
        what: format!("record batch for {}-{}", batch.topic, batch.partition),
        detail: e.to_string(),
    })?;
    // The whole batch must be one record batch: its length field covers the rest.
    let batch_len = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
    assert_eq!(
        batch_len as usize + 12,
        buf.len(),
        "encoder split the batch"
    );
    Ok(buf.freeze())
}

/// Compresses a batch's encoded records into `out`. The codec crate's own LZ4 runs at level
/// 4, which LZ4 implements as LZ4-HC: about ten times slower than LZ4's fast mode, which is
/// what Kafka's clients used before KIP-390 and what a streaming producer wants. The other
/// codecs keep the crate's settings (gzip 6, zstd 3, snappy).
fn compress_records(
    records: &mut BytesMut,
    out: &mut BytesMut,
    compression: records::Compression,
) -> anyhow::Result<()> {
    use kafka_protocol::compression::{Compressor, Gzip, Snappy, Zstd};
    let copy = |tmp: &mut BytesMut| {
        tmp.extend_from_slice(records);
        Ok(())
    };
    match compression {
        records::Compression::None => out.extend_from_slice(records),
        records::Compression::Gzip => Gzip::compress(out, copy)?,
        records::Compression::Snappy => Snappy::compress(out, copy)?,
        records::Compression::Zstd => Zstd::compress(out, copy)?,
        records::Compression::Lz4 => {
            use std::io::Write;
            let mut encoder = lz4::EncoderBuilder::new()
                .level(LZ4_FAST_LEVEL)
                .block_mode(lz4::BlockMode::Independent)
                .build(bytes::BufMut::writer(out))?;
            encoder.write_all(records)?;
            encoder.finish().1?;
        }
    }
    Ok(())
}

/// LZ4 frame levels below 3 select the fast compressor.
const LZ4_FAST_LEVEL: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use kafka_protocol::records::RecordBatchDecoder;
    use tokio::sync::{oneshot, Semaphore};

    use crate::accumulator::{Accumulator, PendingRecord, Report};

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(increment_sequence(0, 5), 5);
        assert_eq!(increment_sequence(i32::MAX - 2, 2), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX - 2, 3), 0);
        assert_eq!(increment_sequence(i32::MAX, 10), 9);
    }

    fn batch_of(n: usize, base_sequence: Option<i32>) -> Batch {
        let memory = Arc::new(Semaphore::new(1 << 20));
        let mut acc = Accumulator::new(1 << 20, Duration::ZERO);
        let now = Instant::now();
        for i in 0..n {
            let (tx, _rx) = oneshot::channel();
            let record = PendingRecord {
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![b'x'; 100])),
                headers: vec![crate::Header {
                    key: "h".into(),
                    value: Some(Bytes::from_static(b"v")),
                }],
                timestamp_ms: 1_700_000_000_000 + i as i64,
                size_bytes: 130,
                report: Report::Channel(tx),
            };
            let permit = memory.clone().try_acquire_many_owned(130).unwrap();
            acc.append("t", 0, record, permit, now);
        }
        let mut batch = acc.drain(now, true).0.pop().unwrap();
        batch.base_sequence = base_sequence;
        batch
    }

    /// Encode, then decode with the codec crate: one batch, every field back, per codec.
    #[test]
    fn batches_round_trip_through_every_codec() {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        let producers = [(None, None, false), (Some((7, 1)), Some(40), false)];
        let transactional = [(Some((9, 3)), Some(0), true)];
        for codec in codecs {
            for (identity, base_sequence, txn) in producers.into_iter().chain(transactional) {
                let batch = batch_of(50, base_sequence);
                let mut encoded = encode_batch(&batch, identity, txn, codec).unwrap();
                let set = RecordBatchDecoder::decode(&mut encoded).unwrap();
                assert!(encoded.is_empty(), "{codec}: one batch only");
                assert_eq!(set.compression, codec.codec());
                assert_eq!(set.records.len(), 50);
                for (i, r) in set.records.iter().enumerate() {
                    assert_eq!(r.offset, i as i64);
                    assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
                    assert_eq!(r.value.as_deref(), Some(&[b'x'; 100][..]));
                    assert_eq!(r.timestamp, 1_700_000_000_000 + i as i64);
                    assert_eq!(r.headers.len(), 1);
                    assert_eq!(r.producer_id, identity.map_or(-1, |p| p.0));
                    assert_eq!(r.producer_epoch, identity.map_or(-1, |p| p.1));
                    assert_eq!(r.sequence, base_sequence.unwrap_or(-1) + i as i32);
                    assert_eq!(r.transactional, txn);
                    assert!(!r.control);
                }
            }
        }
    }
}
