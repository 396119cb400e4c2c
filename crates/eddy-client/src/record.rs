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
