//! Records inside a topology, and the records it hands to the producer.

use bytes::Bytes;
use eddy_client::Header;

use crate::value::Value;

/// A record travelling between processors: erased key and value (see [`crate::value`]).
#[derive(Debug, Clone)]
pub struct Record {
    pub key: Value,
    pub value: Value,
    pub timestamp_ms: i64,
    pub headers: Vec<Header>,
}

/// Where the record being processed came from (Kafka's RecordContext). Punctuations and
/// records created by a punctuator have no input record: `topic` is empty, offsets -1.
#[derive(Debug, Clone, Default)]
pub struct RecordMeta {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
}

/// A record for the producer: a sink's output or a store's changelog entry.
#[derive(Debug, Clone, PartialEq)]
pub struct OutRecord {
    pub topic: String,
    /// Set for changelogs (the task's partition) and by custom partitioners; otherwise the
    /// producer's partitioner (murmur2 of the key bytes, as Java's) decides.
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp_ms: i64,
    pub headers: Vec<Header>,
}
