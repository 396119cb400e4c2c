//! Producer settings: `acks`, `compression.type` and the rest of
//! [`ProducerConfig`], with Kafka's names and defaults.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use kafka_protocol::records;

use crate::partitioner::Partitioner;

/// `acks`: how many replicas must have a batch before the broker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: the broker does not answer; offsets are unknown (-1).
    None,
    /// `acks=1`: the leader wrote it.
    Leader,
    /// `acks=all`: every in-sync replica has it.
    All,
}

impl Acks {
    pub(super) fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

impl FromStr for Acks {
    type Err = Error;
    fn from_str(s: &str) -> Result<Acks> {
        match s {
            "0" | "none" => Ok(Acks::None),
            "1" | "leader" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            other => Err(Error::Config(format!(
                "acks must be 0, 1 or all, not {other:?}"
            ))),
        }
    }
}

/// `compression.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub(super) fn codec(self) -> records::Compression {
        match self {
            Compression::None => records::Compression::None,
            Compression::Gzip => records::Compression::Gzip,
            Compression::Snappy => records::Compression::Snappy,
            Compression::Lz4 => records::Compression::Lz4,
            Compression::Zstd => records::Compression::Zstd,
        }
    }
}

impl FromStr for Compression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Compression> {
        match s {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "snappy" => Ok(Compression::Snappy),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(Error::Config(format!(
                "compression must be none, gzip, snappy, lz4 or zstd, not {other:?}"
            ))),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        })
    }
}

/// Producer settings, named after Kafka's. Requests in flight per broker are the client's
/// `max.in.flight.requests.per.connection` ([`crate::ConnectionConfig`]).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub acks: Acks,
    pub compression: Compression,
    /// `linger.ms`: how long a batch waits for more records before it is sent.
    pub linger_ms: u64,
    /// `batch.size`: a batch is sent once it holds this many bytes.
    pub batch_size_bytes: usize,
    /// `buffer.memory`: records waiting to be acknowledged; `send` waits when it is used up.
    pub buffer_memory_bytes: usize,
    /// `max.request.size`: bound on one record and on one Produce request.
    pub max_request_size_bytes: usize,
    /// `retries`: sends of a batch after the first, for retriable errors.
    pub retries: u32,
    /// `retry.backoff.ms`.
    pub retry_backoff_ms: u64,
    /// `enable.idempotence`: InitProducerId plus sequence numbers; needs `acks=all`.
    pub enable_idempotence: bool,
    /// For records with neither key nor partition.
    pub partitioner: Partitioner,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            compression: Compression::None,
            linger_ms: 5,
            batch_size_bytes: 16 * 1024,
            buffer_memory_bytes: 32 * 1024 * 1024,
            max_request_size_bytes: 1024 * 1024,
            retries: 5,
            retry_backoff_ms: 100,
            enable_idempotence: false,
            partitioner: Partitioner::Sticky,
        }
    }
}

impl ProducerConfig {
    pub(super) fn validate(&self, max_in_flight: usize) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
        if self.batch_size_bytes == 0 || self.buffer_memory_bytes == 0 {
            return bad("batch.size and buffer.memory must be positive");
        }
        if self.buffer_memory_bytes > u32::MAX as usize {
            return bad("buffer.memory must be under 4 GiB");
        }
        if self.max_request_size_bytes < self.batch_size_bytes {
            return bad("max.request.size must be at least batch.size");
        }
        if self.enable_idempotence && self.acks != Acks::All {
            return bad("enable.idempotence needs acks=all");
        }
        if self.enable_idempotence && max_in_flight > 5 {
            return bad("enable.idempotence allows at most 5 requests in flight per connection");
        }
        Ok(())
    }
}
