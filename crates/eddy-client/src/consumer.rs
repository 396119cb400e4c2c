//! A consumer without groups: the application assigns partitions and seeks; each
//! [`Consumer::poll`] is one round of Fetch long polls, one request per leader, in flight
//! together.
//!
//! Fetch answers whole record batches, so records before the position are skipped, and the
//! last batch may be cut off at `max.partition.fetch.bytes`: such a tail is left for the next
//! fetch. Control batches (transaction markers) advance the position but yield nothing.
//!
//! With `isolation.level=read_committed` a partition is read up to its last stable offset
//! (the first offset of its oldest open transaction), and records of aborted transactions
//! are dropped, as Kafka's Fetcher does.
//!
//! # Layout
//!
//! - `batches`: a fetched partition's bytes to records, sans-io.
//! - `aborted`: which batches read_committed drops, sans-io.

mod aborted;
mod batches;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest};

use crate::client::{topic_name, Client};
use crate::connection::PendingResponse;
use crate::error::{Error, KafkaCode, Result};
use crate::offsets::{list_offsets_with_isolation, OffsetSpec};
use crate::record::ConsumerRecord;
use aborted::AbortedFilter;
use batches::decode_batches;

/// `isolation.level`: whether a consumer sees records of open and aborted transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record up to the high watermark, whatever becomes of its transaction (the Java
    /// consumer's default).
    #[default]
    ReadUncommitted,
    /// Up to the last stable offset, without the records of aborted transactions.
    ReadCommitted,
}

impl IsolationLevel {
    /// The `isolation_level` field of Fetch and ListOffsets.
    pub(crate) fn wire(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

impl FromStr for IsolationLevel {
    type Err = Error;
    fn from_str(s: &str) -> Result<IsolationLevel> {
        match s {
            "read_uncommitted" => Ok(IsolationLevel::ReadUncommitted),
            "read_committed" => Ok(IsolationLevel::ReadCommitted),
            other => Err(Error::Config(format!(
                "isolation.level must be read_uncommitted or read_committed, not {other:?}"
            ))),
        }
    }
}

impl fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        })
    }
}

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
    /// `isolation.level`; under read_committed, `Latest` is the last stable offset.
    pub isolation_level: IsolationLevel,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            fetch_max_wait_ms: 500,
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 * 1024 * 1024,
            max_partition_fetch_bytes: 1024 * 1024,
            auto_offset_reset: Some(OffsetSpec::Latest),
            isolation_level: IsolationLevel::ReadUncommitted,
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
    /// Last stable offset from the last fetch: where read_committed stops.
    last_stable_offset: Option<i64>,
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
                let isolation = self.config.isolation_level;
                let spec = OffsetSpec::Timestamp(ms);
                match list_offsets_with_isolation(
                    &self.client,
                    topic,
                    &[partition],
                    spec,
                    isolation,
                )
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
        let isolation = self.config.isolation_level;
        let found =
            list_offsets_with_isolation(&self.client, topic, &[partition], spec, isolation).await?;
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

    /// Whether every assigned partition has been read up to its end as of the last fetch:
    /// its high watermark, or under read_committed its last stable offset (false before the
    /// first fetch of any partition).
    pub fn at_end(&self) -> bool {
        let committed = self.config.isolation_level == IsolationLevel::ReadCommitted;
        self.partitions.values().all(|s| {
            let end = match committed {
                true => s.last_stable_offset.or(s.high_watermark),
                false => s.high_watermark,
            };
            match (s.position, end) {
                (Some(position), Some(end)) => position >= end,
                _ => false,
            }
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
            .with_isolation_level(self.config.isolation_level.wire())
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
        state.last_stable_offset =
            (data.last_stable_offset >= 0).then_some(data.last_stable_offset);
        let Some(records) = data.records else {
            return Ok(());
        };
        let mut aborted = match self.config.isolation_level {
            IsolationLevel::ReadCommitted => Some(AbortedFilter::new(
                data.aborted_transactions
                    .iter()
                    .flatten()
                    .map(|t| (t.producer_id.0, t.first_offset)),
            )),
            IsolationLevel::ReadUncommitted => None,
        };
        let position = state.position.expect("fetched partitions have a position");
        let next = decode_batches(topic, partition, records, position, aborted.as_mut(), out)?;
        assert!(next >= position, "position moved backwards");
        state.position = Some(next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_level_uses_kafka_spellings_and_wire_values() {
        for level in [
            IsolationLevel::ReadUncommitted,
            IsolationLevel::ReadCommitted,
        ] {
            assert_eq!(level.to_string().parse::<IsolationLevel>().unwrap(), level);
        }
        assert_eq!(IsolationLevel::default(), IsolationLevel::ReadUncommitted);
        assert_eq!(IsolationLevel::ReadCommitted.wire(), 1);
        assert!("committed".parse::<IsolationLevel>().is_err());
    }
}
