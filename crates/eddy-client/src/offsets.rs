//! ListOffsets: where a partition starts, ends, or reaches a timestamp. Used by the consumer to
//! seek and by the admin to describe topics.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest};

use crate::client::{topic_name, Client};
use crate::consumer::IsolationLevel;
use crate::error::{Error, KafkaCode, Result};

/// Which offset to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (high watermark): where the next record will be written.
    Latest,
    /// The first offset whose timestamp is at or after this many ms since the epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    /// The timestamp field of ListOffsets, where Kafka encodes earliest/latest as -2/-1.
    fn wire_timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

/// One partition's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// `None` when asked for a timestamp later than every record.
    pub offset: Option<i64>,
    /// Timestamp of the record found, -1 for earliest/latest.
    pub timestamp: i64,
}

/// Looks up `spec` for each of `partitions` of `topic`, asking each partition's leader.
/// Retriable errors (leader moved) refresh metadata and retry, a bounded number of times.
pub async fn list_offsets(
    client: &Client,
    topic: &str,
    partitions: &[i32],
    spec: OffsetSpec,
) -> Result<HashMap<i32, ListedOffset>> {
    let isolation = IsolationLevel::ReadUncommitted;
    list_offsets_with_isolation(client, topic, partitions, spec, isolation).await
}

/// [`list_offsets`] as a consumer with `isolation` sees the partitions: under read_committed,
/// `Latest` is the last stable offset, not the high watermark.
pub async fn list_offsets_with_isolation(
    client: &Client,
    topic: &str,
    partitions: &[i32],
    spec: OffsetSpec,
    isolation: IsolationLevel,
) -> Result<HashMap<i32, ListedOffset>> {
    let mut found = HashMap::with_capacity(partitions.len());
    let mut todo: Vec<i32> = partitions.to_vec();
    let mut attempt = 0;
    while !todo.is_empty() {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &p in &todo {
            by_leader
                .entry(client.leader_id(topic, p).await?)
                .or_default()
                .push(p);
        }
        todo.clear();
        let mut last_error = None;
        for (leader, parts) in by_leader {
            let answers = list_on_broker(client, leader, topic, &parts, spec, isolation).await?;
            for (p, answer) in answers {
                match answer {
                    Ok(listed) => {
                        found.insert(p, listed);
                    }
                    Err(e) if e.is_retriable() => {
                        todo.push(p);
                        last_error = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if let Some(e) = last_error {
            attempt += 1;
            if attempt > client.config().metadata_retries {
                return Err(e);
            }
            client.invalidate(topic);
            tokio::time::sleep(Duration::from_millis(client.config().retry_backoff_ms)).await;
        }
    }
    Ok(found)
}

async fn list_on_broker(
    client: &Client,
    leader: i32,
    topic: &str,
    partitions: &[i32],
    spec: OffsetSpec,
    isolation: IsolationLevel,
) -> Result<Vec<(i32, Result<ListedOffset>)>> {
    let conn = client.broker(leader).await?;
    let request = ListOffsetsRequest::default()
        // -1: we are a consumer, not a follower replica.
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation.wire())
        .with_timeout_ms(client.config().connection.request_timeout_ms as i32)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&p| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_timestamp(spec.wire_timestamp())
                    })
                    .collect(),
            )]);
    let response = conn.send(&request).await?;
    let mut answers = Vec::with_capacity(partitions.len());
    for t in response
        .topics
        .into_iter()
        .filter(|t| t.name.0.as_str() == topic)
    {
        for p in t.partitions {
            let context = format!("list offsets of {topic}-{}", p.partition_index);
            let answer = KafkaCode(p.error_code)
                .check(context)
                .map(|()| ListedOffset {
                    offset: (p.offset >= 0).then_some(p.offset),
                    timestamp: p.timestamp,
                });
            answers.push((p.partition_index, answer));
        }
    }
    if answers.len() != partitions.len() {
        return Err(Error::Decode {
            what: "ListOffsets response".into(),
            detail: format!(
                "asked for {} partitions of {topic}, got {} answers",
                partitions.len(),
                answers.len()
            ),
        });
    }
    Ok(answers)
}
