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
    /// `transactional.id`: makes the producer transactional (and idempotent); it must be
    /// stable across restarts of the application, and unique to one producer at a time.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: the coordinator aborts a transaction open longer than this.
    pub transaction_timeout_ms: i32,
    /// `max.block.ms`: how long `init_transactions`, `send_offsets_to_transaction`,
    /// `commit_transaction` and `abort_transaction` keep retrying a coordinator that is
    /// loading, moving or busy before they give up.
    pub max_block_ms: u64,
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
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            max_block_ms: 60_000,
        }
    }
}

impl ProducerConfig {
    /// Sequence numbers and a producer id: asked for, or implied by a `transactional.id`.
    pub(super) fn idempotent(&self) -> bool {
        self.enable_idempotence || self.transactional_id.is_some()
    }

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
        if let Some(id) = &self.transactional_id {
            if id.is_empty() {
                return bad("transactional.id must not be empty");
            }
            if self.transaction_timeout_ms <= 0 {
                return bad("transaction.timeout.ms must be positive");
            }
        }
        let why = if self.transactional_id.is_some() {
            "transactional.id"
        } else {
            "enable.idempotence"
        };
        if self.idempotent() && self.acks != Acks::All {
            return Err(Error::Config(format!("{why} needs acks=all")));
        }
        if self.idempotent() && max_in_flight > 5 {
            return Err(Error::Config(format!(
                "{why} allows at most 5 requests in flight per connection"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_from_their_kafka_spellings() {
        assert_eq!("all".parse::<Acks>().unwrap(), Acks::All);
        assert_eq!("-1".parse::<Acks>().unwrap(), Acks::All);
        assert_eq!("0".parse::<Acks>().unwrap(), Acks::None);
        assert!("2".parse::<Acks>().is_err());
        for c in ["none", "gzip", "snappy", "lz4", "zstd"] {
            assert_eq!(c.parse::<Compression>().unwrap().to_string(), c);
        }
        assert!("brotli".parse::<Compression>().is_err());
    }

    #[test]
    fn config_limits_are_checked() {
        let ok = ProducerConfig::default();
        assert!(ok.validate(5).is_ok());
        let idempotent_acks1 = ProducerConfig {
            enable_idempotence: true,
            acks: Acks::Leader,
            ..ProducerConfig::default()
        };
        assert!(idempotent_acks1.validate(5).is_err());
        let idempotent = ProducerConfig {
            enable_idempotence: true,
            ..ProducerConfig::default()
        };
        assert!(idempotent.validate(6).is_err());
    }

    #[test]
    fn a_transactional_id_implies_idempotence() {
        let txn = ProducerConfig {
            transactional_id: Some("t1".to_owned()),
            ..ProducerConfig::default()
        };
        assert!(txn.idempotent() && txn.validate(5).is_ok());
        assert!(txn.validate(6).is_err(), "at most 5 in flight");
        let acks1 = ProducerConfig {
            acks: Acks::Leader,
            ..txn.clone()
        };
        let err = acks1.validate(5).unwrap_err().to_string();
        assert!(err.contains("transactional.id needs acks=all"), "{err}");
        let empty = ProducerConfig {
            transactional_id: Some(String::new()),
            ..ProducerConfig::default()
        };
        assert!(empty.validate(5).is_err());
        let no_timeout = ProducerConfig {
            transaction_timeout_ms: 0,
            ..txn
        };
        assert!(no_timeout.validate(5).is_err());
    }
}
