//! One partition's fetched bytes to records, sans-io: whole v2 batches are decoded, records
//! before the position skipped, a batch cut off at `max.partition.fetch.bytes` left for the
//! next fetch. Control batches (transaction markers) advance the position but yield nothing;
//! under read_committed, batches of aborted transactions are dropped too ([`AbortedFilter`]).

use bytes::Bytes;
use kafka_protocol::records::{self, RecordBatchDecoder};

use super::aborted::AbortedFilter;
use crate::error::{Error, Result};
use crate::record::{ConsumerRecord, Header, TimestampType};

/// The fields of a v2 batch header the consumer needs, read without decoding the records.
/// ```text
/// base_offset i64 | length i32 | leader_epoch i32 | magic i8 | crc u32 | attributes i16 |
/// last_offset_delta i32 | base_timestamp i64 | max_timestamp i64 | producer_id i64 |
/// producer_epoch i16 | base_sequence i32 | record count i32 | ... records
/// ```
struct BatchFrame {
    base_offset: i64,
    /// Bytes of the whole batch, header included.
    total_len: usize,
    magic: i8,
    last_offset_delta: i32,
    log_append_time: bool,
    /// Attribute bit 4: the batch belongs to a transaction.
    transactional: bool,
    /// Attribute bit 5: the batch holds a transaction marker.
    control: bool,
    max_timestamp: i64,
    producer_id: i64,
}

const BATCH_HEADER_BYTES: usize = 61;

fn batch_frame(buf: &[u8]) -> Option<BatchFrame> {
    if buf.len() < BATCH_HEADER_BYTES {
        return None;
    }
    let i64_at = |at: usize| i64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
    let i32_at = |at: usize| i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
    let length = usize::try_from(i32_at(8)).ok()?;
    let attributes = i16::from_be_bytes([buf[21], buf[22]]);
    Some(BatchFrame {
        base_offset: i64_at(0),
        total_len: 12 + length,
        magic: buf[16] as i8,
        last_offset_delta: i32_at(23),
        log_append_time: attributes & (1 << 3) != 0,
        transactional: attributes & (1 << 4) != 0,
        control: attributes & (1 << 5) != 0,
        max_timestamp: i64_at(35),
        producer_id: i64_at(43),
    })
}

/// A control record's key is `version i16 | type i16`; type 0 is ABORT, 1 COMMIT.
fn is_abort_marker(set: &records::RecordSet) -> bool {
    let key = set.records.first().and_then(|r| r.key.as_deref());
    matches!(key, Some([_, _, 0, 0, ..]))
}

/// Decodes every whole batch in `records`, appending records at or past `position` to `out`
/// (under read_committed, `aborted` drops those of aborted transactions). Returns the
/// position after them.
pub(super) fn decode_batches(
    topic: &str,
    partition: i32,
    mut records: Bytes,
    mut position: i64,
    mut aborted: Option<&mut AbortedFilter>,
    out: &mut Vec<ConsumerRecord>,
) -> Result<i64> {
    let decode_err = |detail: String| Error::Decode {
        what: format!("records of {topic}-{partition}"),
        detail,
    };
    while let Some(frame) = batch_frame(&records) {
        if frame.total_len > records.len() {
            break; // cut off by max.partition.fetch.bytes: the next fetch gets it whole
        }
        let mut batch = records.split_to(frame.total_len);
        let last_offset = frame.base_offset + i64::from(frame.last_offset_delta);
        if frame.magic != 2 {
            return Err(decode_err(format!(
                "record batch v{} at offset {} (only v2 is supported)",
                frame.magic, frame.base_offset
            )));
        }
        let visible = last_offset >= position;
        // A marker before the position still ends its producer's aborted range.
        let marker_for_filter = aborted.is_some() && frame.control;
        if !visible && !marker_for_filter {
            continue;
        }
        let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| decode_err(e.to_string()))?;
        let dropped = aborted.as_deref_mut().is_some_and(|filter| {
            let abort_marker = frame.control && is_abort_marker(&set);
            filter.drops(
                frame.producer_id,
                last_offset,
                frame.transactional,
                abort_marker,
            )
        });
        if !visible {
            continue;
        }
        if !dropped {
            for record in set.records {
                if record.offset < position || record.control {
                    continue;
                }
                out.push(consumer_record(topic, partition, record, &frame));
            }
        }
        position = position.max(last_offset + 1);
    }
    Ok(position)
}

fn consumer_record(
    topic: &str,
    partition: i32,
    record: records::Record,
    frame: &BatchFrame,
) -> ConsumerRecord {
    let (timestamp_ms, timestamp_type) = if frame.log_append_time {
        // The broker stamps the batch once, in max_timestamp.
        (frame.max_timestamp, TimestampType::LogAppendTime)
    } else {
        (record.timestamp, TimestampType::CreateTime)
    };
    ConsumerRecord {
        topic: topic.to_owned(),
        partition,
        offset: record.offset,
        timestamp_ms,
        timestamp_type,
        key: record.key,
        value: record.value,
        headers: record
            .headers
            .into_iter()
            .map(|(k, v)| Header {
                key: k.to_string(),
                value: v,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{Compression, RecordBatchEncoder, RecordEncodeOptions};

    /// How a test batch is made: plain, transactional data of a producer, or its marker.
    #[derive(Clone, Copy)]
    enum Kind {
        Plain,
        Txn(i64),
        Commit(i64),
        Abort(i64),
    }

    fn encode(base_offset: i64, n: usize, kind: Kind) -> Bytes {
        let (producer_id, transactional, control) = match kind {
            Kind::Plain => (-1, false, false),
            Kind::Txn(p) => (p, true, false),
            Kind::Commit(p) | Kind::Abort(p) => (p, true, true),
        };
        let records: Vec<records::Record> = (0..n)
            .map(|i| records::Record {
                transactional,
                control,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id,
                producer_epoch: if producer_id < 0 { -1 } else { 0 },
                timestamp_type: records::TimestampType::Creation,
                offset: base_offset + i as i64,
                // The encoder splits a batch where offset - sequence changes.
                sequence: if producer_id < 0 { -1 } else { 0 } + i as i32,
                timestamp: 1000 + i as i64,
                key: match kind {
                    Kind::Abort(_) => Some(Bytes::from_static(&[0, 0, 0, 0])),
                    Kind::Commit(_) => Some(Bytes::from_static(&[0, 0, 0, 1])),
                    _ => None,
                },
                value: Some(Bytes::from(format!("v{}", base_offset + i as i64))),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::Lz4,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf.freeze()
    }

    fn batch(base_offset: i64, n: usize, control: bool) -> Bytes {
        if control {
            encode(base_offset, n, Kind::Commit(1))
        } else {
            encode(base_offset, n, Kind::Plain)
        }
    }

    fn values(records: &[ConsumerRecord]) -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn skips_records_before_the_position_and_keeps_a_cut_tail() {
        let mut all = BytesMut::new();
        all.extend_from_slice(&batch(10, 5, false));
        all.extend_from_slice(&batch(15, 5, false));
        let third = batch(20, 5, false);
        all.extend_from_slice(&third[..third.len() - 3]); // cut off, as a fetch may
        let mut out = Vec::new();
        let next = decode_batches("t", 0, all.freeze(), 12, None, &mut out).unwrap();
        assert_eq!(next, 20);
        assert_eq!(
            values(&out),
            ["v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19"]
        );
        assert!(out
            .iter()
            .all(|r| r.timestamp_type == TimestampType::CreateTime));
        assert_eq!(out[0].offset, 12);
        assert_eq!(out[0].timestamp_ms, 1002);
    }

    #[test]
    fn control_batches_advance_without_records() {
        let mut all = BytesMut::new();
        all.extend_from_slice(&batch(0, 2, false));
        all.extend_from_slice(&batch(2, 1, true));
        all.extend_from_slice(&batch(3, 1, false));
        let mut out = Vec::new();
        let next = decode_batches("t", 0, all.freeze(), 0, None, &mut out).unwrap();
        assert_eq!(next, 4);
        assert_eq!(values(&out), ["v0", "v1", "v3"]);
    }

    #[test]
    fn nothing_whole_means_no_progress() {
        let b = batch(0, 3, false);
        let mut out = Vec::new();
        let next = decode_batches("t", 0, b.slice(..40), 0, None, &mut out).unwrap();
        assert_eq!(next, 0);
        assert!(out.is_empty());
    }

    fn log(batches: &[(i64, usize, Kind)]) -> Bytes {
        let mut all = BytesMut::new();
        for &(base, n, kind) in batches {
            all.extend_from_slice(&encode(base, n, kind));
        }
        all.freeze()
    }

    /// Two producers interleaved: 7 aborts twice, 8 commits; plain records in between. The
    /// fetch's aborted list is (7, 0) and (7, 9), as a broker answers it.
    fn interleaved() -> Bytes {
        log(&[
            (0, 2, Kind::Txn(7)),    // 0-1 aborted
            (2, 2, Kind::Txn(8)),    // 2-3 committed
            (4, 1, Kind::Plain),     // 4
            (5, 1, Kind::Txn(7)),    // 5 aborted
            (6, 1, Kind::Abort(7)),  // marker
            (7, 1, Kind::Txn(8)),    // 7 committed
            (8, 1, Kind::Commit(8)), // marker
            (9, 2, Kind::Txn(7)),    // 9-10 aborted again
            (11, 1, Kind::Plain),    // 11
            (12, 1, Kind::Abort(7)), // marker
            (13, 1, Kind::Txn(7)),   // 13: a later transaction of 7, not aborted
        ])
    }

    #[test]
    fn read_committed_drops_aborted_transactions_only() {
        let mut filter = AbortedFilter::new([(7, 0), (7, 9)]);
        let mut out = Vec::new();
        let next = decode_batches("t", 0, interleaved(), 0, Some(&mut filter), &mut out).unwrap();
        assert_eq!(next, 14);
        assert_eq!(values(&out), ["v2", "v3", "v4", "v7", "v11", "v13"]);
        let offsets: Vec<i64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [2, 3, 4, 7, 11, 13]);
    }

    #[test]
    fn read_uncommitted_sees_every_data_record() {
        let mut out = Vec::new();
        let next = decode_batches("t", 0, interleaved(), 0, None, &mut out).unwrap();
        assert_eq!(next, 14);
        let offsets: Vec<i64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [0, 1, 2, 3, 4, 5, 7, 9, 10, 11, 13]);
    }

    /// A fetch from the middle: markers before the position still close their ranges, so a
    /// later transaction of the same producer is kept.
    #[test]
    fn read_committed_from_the_middle_of_the_log() {
        for position in 0..14 {
            let mut filter = AbortedFilter::new([(7, 0), (7, 9)]);
            let mut out = Vec::new();
            let all = interleaved();
            let next = decode_batches("t", 0, all, position, Some(&mut filter), &mut out);
            assert_eq!(next.unwrap(), 14);
            let offsets: Vec<i64> = out.iter().map(|r| r.offset).collect();
            let expected: Vec<i64> = [2, 3, 4, 7, 11, 13]
                .into_iter()
                .filter(|&o| o >= position)
                .collect();
            assert_eq!(offsets, expected, "from {position}");
        }
    }
}
