//! Records as the application sees them, on the way in and on the way out.

use bytes::Bytes;

/// One record header. Kafka allows repeated keys; see [`ProducerRecord::headers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

/// A record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    pub topic: String,
    /// Overrides the partitioner when set.
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Sent in order. A repeated key keeps only its last value: the codec crate stores a
    /// record's headers in a map.
    pub headers: Vec<Header>,
    /// CreateTime in ms since the epoch; the send time when `None`.
    pub timestamp_ms: Option<i64>,
}

impl ProducerRecord {
    pub fn new(topic: &str, value: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.to_owned(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp_ms: None,
        }
    }

    pub fn with_key(mut self, key: impl Into<Bytes>) -> ProducerRecord {
        self.key = Some(key.into());
        self
    }

    pub fn with_partition(mut self, partition: i32) -> ProducerRecord {
        self.partition = Some(partition);
        self
    }

    pub fn with_header(mut self, key: &str, value: impl Into<Bytes>) -> ProducerRecord {
        self.headers.push(Header {
            key: key.to_owned(),
            value: Some(value.into()),
        });
        self
    }

    pub fn with_timestamp(mut self, timestamp_ms: i64) -> ProducerRecord {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// Bytes this record adds to a batch, roughly: what `batch.size` and `buffer.memory`
    /// count. Over-estimates the varint framing slightly, which is the safe side.
    pub fn size_estimate_bytes(&self) -> usize {
        const RECORD_OVERHEAD_BYTES: usize = 21; // length, attributes, deltas, lengths
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len) + 10)
            .sum();
        RECORD_OVERHEAD_BYTES
            + self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + headers
    }
}

/// Where a produced record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: i32,
    /// -1 with acks=0, where the broker tells us nothing.
    pub offset: i64,
    /// The CreateTime we sent, or the broker's LogAppendTime if the topic uses it.
    pub timestamp_ms: i64,
}

/// Whether a consumed record's timestamp was set by its producer or by the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// A consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// A topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.to_owned(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Who a group member is, as a transactional producer passes it with consumed offsets
/// (`send_offsets_to_transaction`, TxnOffsetCommit): the broker checks the generation and
/// member id (KIP-447) so a member that lost its partitions cannot commit for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    pub group_id: String,
    /// -1 when not known (a group-less commit).
    pub generation_id: i32,
    /// Empty when not known.
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// Metadata of a group the committer is not a member of: the broker checks nothing.
    pub fn group_only(group_id: &str) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata {
            group_id: group_id.to_owned(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}
