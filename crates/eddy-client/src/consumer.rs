//! A consumer without groups: the application assigns partitions and seeks; each
//! [`Consumer::poll`] is one round of Fetch long polls, one request per leader, in flight
//! together.
//!
//! Fetch answers whole record batches, so records before the position are skipped, and the
//! last batch may be cut off at `max.partition.fetch.bytes`: such a tail is left for the next
//! fetch. Control batches (transaction markers) advance the position but yield nothing.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest};
use kafka_protocol::records::{self, RecordBatchDecoder};

use crate::client::{topic_name, Client};
use crate::connection::PendingResponse;
use crate::error::{Error, KafkaCode, Result};
use crate::offsets::{list_offsets, OffsetSpec};
use crate::record::{ConsumerRecord, Header, TimestampType};

/// Consumer settings, named after Kafka's.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `fetch.max.wait.ms`: how long the broker may hold a fetch waiting for data.
    pub fetch_max_wait_ms: u64,
    /// `fetch.min.bytes`: the broker answers early once it has this much.
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes`: bound on one fetch response.
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`: bound per partition in one fetch.
    pub max_partition_fetch_bytes: i32,
    /// `auto.offset.reset`: where to start a partition that has no position, or whose
    /// position fell out of the log. `None` makes either case an error.
    pub auto_offset_reset: Option<OffsetSpec>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            fetch_max_wait_ms: 500,
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 * 1024 * 1024,
            max_partition_fetch_bytes: 1024 * 1024,
            auto_offset_reset: Some(OffsetSpec::Latest),
        }
    }
}

/// Where to move a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    Earliest,
    Latest,
    Offset(i64),
    /// The first record at or after this time (ms since the epoch); the end if none is.
    Timestamp(i64),
}

#[derive(Debug, Clone, Default)]
struct PartitionState {
    /// Next offset to fetch; `None` until seeked or reset.
    position: Option<i64>,
    /// High watermark from the last fetch, `None` before the first.
    high_watermark: Option<i64>,
}

type TopicPartition = (String, i32);

/// A group-less consumer. Not shareable: one task polls it.
pub struct Consumer {
    client: Client,
    config: ConsumerConfig,
    partitions: BTreeMap<TopicPartition, PartitionState>,
}

impl Consumer {
    pub fn new(client: Client, config: ConsumerConfig) -> Consumer {
        Consumer {
            client,
            config,
            partitions: BTreeMap::new(),
        }
    }

    /// Adds partitions of `topic` (all of them when `None`) to the assignment, returning
    /// those added. They start where `auto.offset.reset` says unless sought.
    pub async fn assign(&mut self, topic: &str, partitions: Option<&[i32]>) -> Result<Vec<i32>> {
        let metadata = self.client.topic(topic).await?;
        let all: Vec<i32> = metadata.partitions.iter().map(|p| p.partition).collect();
        let chosen = match partitions {
            None => all,
            Some(wanted) => {
                for p in wanted {
                    if !all.contains(p) {
                        return Err(Error::UnknownPartition {
                            topic: topic.to_owned(),
                            partition: *p,
                            partition_count: all.len(),
                        });
                    }
                }
                wanted.to_vec()
            }
        };
        for &p in &chosen {
            self.partitions.entry((topic.to_owned(), p)).or_default();
        }
        Ok(chosen)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.partitions.keys().cloned().collect()
    }

    /// Moves one assigned partition.
    pub async fn seek(&mut self, topic: &str, partition: i32, to: SeekTo) -> Result<()> {
        let key = (topic.to_owned(), partition);
        if !self.partitions.contains_key(&key) {
            return Err(Error::Config(format!(
                "cannot seek {topic}-{partition}: it is not assigned"
            )));
        }
        let offset = match to {
            SeekTo::Offset(offset) => offset,
            SeekTo::Earliest => self.look_up(topic, partition, OffsetSpec::Earliest).await?,
            SeekTo::Latest => self.look_up(topic, partition, OffsetSpec::Latest).await?,
            SeekTo::Timestamp(ms) => {
                match list_offsets(&self.client, topic, &[partition], OffsetSpec::Timestamp(ms))
                    .await?
                    .get(&partition)
                    .and_then(|o| o.offset)
                {
                    Some(offset) => offset,
                    None => self.look_up(topic, partition, OffsetSpec::Latest).await?,
                }
            }
        };
        let state = self.partitions.get_mut(&key).expect("checked above");
        state.position = Some(offset);
        Ok(())
    }

    /// Moves every assigned partition.
    pub async fn seek_all(&mut self, to: SeekTo) -> Result<()> {
        for (topic, partition) in self.assignment() {
            self.seek(&topic, partition, to).await?;
        }
        Ok(())
    }

    async fn look_up(&self, topic: &str, partition: i32, spec: OffsetSpec) -> Result<i64> {
        let found = list_offsets(&self.client, topic, &[partition], spec).await?;
        found
            .get(&partition)
            .and_then(|o| o.offset)
            .ok_or_else(|| Error::Decode {
                what: "ListOffsets response".into(),
                detail: format!("no {spec:?} offset for {topic}-{partition}"),
            })
    }

    /// Next offset to be returned for a partition, if known.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.partitions
            .get(&(topic.to_owned(), partition))
            .and_then(|s| s.position)
    }

    /// Whether every assigned partition has been read up to its high watermark as of the
    /// last fetch (false before the first fetch of any partition).
    pub fn at_end(&self) -> bool {
        self.partitions
            .values()
            .all(|s| match (s.position, s.high_watermark) {
                (Some(position), Some(hw)) => position >= hw,
                _ => false,
            })
    }

    /// One round of fetches; an empty result means no data arrived within
    /// `fetch.max.wait.ms`.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        self.reset_unpositioned().await?;
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i64)>> = BTreeMap::new();
        for (key, state) in &self.partitions {
            let position = state
                .position
                .expect("reset_unpositioned set every position");
            let leader = self.client.leader_id(&key.0, key.1).await?;
            by_leader
                .entry(leader)
                .or_default()
                .push((key.clone(), position));
        }
        // Dispatch to every leader first, then wait: the long polls run side by side.
        let mut in_flight: Vec<PendingResponse<FetchRequest>> = Vec::new();
        for (leader, wanted) in &by_leader {
            let conn = self.client.broker(*leader).await?;
            let version = conn.version(ApiKey::Fetch)?;
            in_flight.push(conn.dispatch(&self.fetch_request(wanted), version).await?);
        }
        let mut out = Vec::new();
        for pending in in_flight {
            let response = match pending.wait().await {
                Ok(response) => response,
                // The connection dropped or timed out mid-poll: the next poll reconnects. A
                // broker that cannot be reached at all fails the next poll's connect instead.
                Err(e) if e.is_retriable() => {
                    tracing::warn!(%e, "fetch failed; retrying on the next poll");
                    for (topic, _) in self.partitions.keys() {
                        self.client.invalidate(topic);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            KafkaCode(response.error_code).check("fetch")?;
            for topic in response.responses {
                let name = topic.topic.0.to_string();
                for partition in topic.partitions {
                    self.absorb(&name, partition, &mut out).await?;
                }
            }
        }
        Ok(out)
    }

    fn fetch_request(&self, wanted: &[(TopicPartition, i64)]) -> FetchRequest {
        let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
        for ((topic, partition), position) in wanted {
            topics.entry(topic).or_default().push(
                FetchPartition::default()
                    .with_partition(*partition)
                    .with_fetch_offset(*position)
                    .with_partition_max_bytes(self.config.max_partition_fetch_bytes),
            );
        }
        let topics = topics
            .into_iter()
            .map(|(name, partitions)| {
                FetchTopic::default()
                    .with_topic(topic_name(name))
                    .with_partitions(partitions)
            })
            .collect();
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(self.config.fetch_max_wait_ms as i32)
            .with_min_bytes(self.config.fetch_min_bytes)
            .with_max_bytes(self.config.fetch_max_bytes)
            // Session-less fetches: epoch -1 asks for no incremental fetch session.
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics)
    }

    /// Gives partitions without a position the `auto.offset.reset` one.
    async fn reset_unpositioned(&mut self) -> Result<()> {
        let missing: Vec<TopicPartition> = self
            .partitions
            .iter()
            .filter(|(_, s)| s.position.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        for (topic, partition) in missing {
            self.reset(&topic, partition, "has no position").await?;
        }
        Ok(())
    }

    async fn reset(&mut self, topic: &str, partition: i32, why: &str) -> Result<()> {
        let Some(spec) = self.config.auto_offset_reset else {
            return Err(Error::Config(format!(
                "{topic}-{partition} {why} and auto.offset.reset is none\nhint: seek it first"
            )));
        };
        let offset = self.look_up(topic, partition, spec).await?;
        if let Some(state) = self.partitions.get_mut(&(topic.to_owned(), partition)) {
            state.position = Some(offset);
        }
        Ok(())
    }

    /// Takes one partition's answer: its records (past the position), its high watermark,
    /// or its error.
    async fn absorb(
        &mut self,
        topic: &str,
        data: PartitionData,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<()> {
        let partition = data.partition_index;
        let key = (topic.to_owned(), partition);
        let Some(state) = self.partitions.get_mut(&key) else {
            return Ok(()); // not ours (unassigned meanwhile)
        };
        let code = KafkaCode(data.error_code);
        if code == KafkaCode::OFFSET_OUT_OF_RANGE {
            return self.reset(topic, partition, "fell out of the log").await;
        }
        if code.is_retriable() {
            // Leader moved or is loading: look again next poll.
            self.client.invalidate(topic);
            return Ok(());
        }
        code.check(format!("fetch {topic}-{partition}"))?;
        state.high_watermark = Some(data.high_watermark);
        let Some(records) = data.records else {
            return Ok(());
        };
        let position = state.position.expect("fetched partitions have a position");
        let next = decode_batches(topic, partition, records, position, out)?;
        assert!(next >= position, "position moved backwards");
        state.position = Some(next);
        Ok(())
    }
}

/// The fields of a v2 batch header the consumer needs, read without decoding the records.
/// ```text
/// base_offset i64 | length i32 | leader_epoch i32 | magic i8 | crc u32 | attributes i16 |
/// last_offset_delta i32 | base_timestamp i64 | max_timestamp i64 | ... records
/// ```
struct BatchFrame {
    base_offset: i64,
    /// Bytes of the whole batch, header included.
    total_len: usize,
    magic: i8,
    last_offset_delta: i32,
    log_append_time: bool,
    max_timestamp: i64,
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
        max_timestamp: i64_at(35),
    })
}

/// Decodes every whole batch in `records`, appending records at or past `position` to `out`.
/// Returns the position after them.
fn decode_batches(
    topic: &str,
    partition: i32,
    mut records: Bytes,
    mut position: i64,
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
        let batch_end = frame.base_offset + i64::from(frame.last_offset_delta) + 1;
        if frame.magic != 2 {
            return Err(decode_err(format!(
                "record batch v{} at offset {} (only v2 is supported)",
                frame.magic, frame.base_offset
            )));
        }
        if batch_end <= position {
            continue;
        }
        let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| decode_err(e.to_string()))?;
        for record in set.records {
            if record.offset < position || record.control {
                continue;
            }
            out.push(consumer_record(topic, partition, record, &frame));
        }
        position = position.max(batch_end);
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

    fn batch(base_offset: i64, n: usize, control: bool) -> Bytes {
        let records: Vec<records::Record> = (0..n)
            .map(|i| records::Record {
                transactional: control,
                control,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: records::TimestampType::Creation,
                offset: base_offset + i as i64,
                sequence: -1 + i as i32,
                timestamp: 1000 + i as i64,
                key: None,
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
        let next = decode_batches("t", 0, all.freeze(), 12, &mut out).unwrap();
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
        let next = decode_batches("t", 0, all.freeze(), 0, &mut out).unwrap();
        assert_eq!(next, 4);
        assert_eq!(values(&out), ["v0", "v1", "v3"]);
    }

    #[test]
    fn nothing_whole_means_no_progress() {
        let b = batch(0, 3, false);
        let mut out = Vec::new();
        let next = decode_batches("t", 0, b.slice(..40), 0, &mut out).unwrap();
        assert_eq!(next, 0);
        assert!(out.is_empty());
    }
}
