//! The client's one error type, and Kafka error codes with their protocol names.

use std::fmt;

use kafka_protocol::ResponseError;

/// A Kafka error code as it came off the wire, named the way Kafka's docs and logs name it
/// (`UNKNOWN_TOPIC_OR_PARTITION`), so a message from Eddy reads like one from any Kafka tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KafkaCode(pub i16);

impl KafkaCode {
    pub const NONE: KafkaCode = KafkaCode(0);
    pub const OFFSET_OUT_OF_RANGE: KafkaCode = KafkaCode(1);
    pub const UNKNOWN_TOPIC_OR_PARTITION: KafkaCode = KafkaCode(3);
    pub const COORDINATOR_LOAD_IN_PROGRESS: KafkaCode = KafkaCode(14);
    pub const COORDINATOR_NOT_AVAILABLE: KafkaCode = KafkaCode(15);
    pub const NOT_COORDINATOR: KafkaCode = KafkaCode(16);
    pub const CLUSTER_AUTHORIZATION_FAILED: KafkaCode = KafkaCode(31);
    pub const UNSUPPORTED_VERSION: KafkaCode = KafkaCode(35);
    pub const TOPIC_ALREADY_EXISTS: KafkaCode = KafkaCode(36);
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: KafkaCode = KafkaCode(43);
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: KafkaCode = KafkaCode(45);
    pub const DUPLICATE_SEQUENCE_NUMBER: KafkaCode = KafkaCode(46);
    pub const INVALID_PRODUCER_EPOCH: KafkaCode = KafkaCode(47);
    pub const INVALID_TXN_STATE: KafkaCode = KafkaCode(48);
    pub const INVALID_PRODUCER_ID_MAPPING: KafkaCode = KafkaCode(49);
    pub const INVALID_TRANSACTION_TIMEOUT: KafkaCode = KafkaCode(50);
    pub const CONCURRENT_TRANSACTIONS: KafkaCode = KafkaCode(51);
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: KafkaCode = KafkaCode(53);
    pub const PRODUCER_FENCED: KafkaCode = KafkaCode(90);

    /// `Ok(())` for code 0, otherwise the error with `context` saying what was being done.
    pub fn check(self, context: impl fmt::Display) -> Result<(), Error> {
        self.check_with_message(context, None)
    }

    /// Like [`KafkaCode::check`], keeping the broker's own error message when it sent one.
    pub fn check_with_message(
        self,
        context: impl fmt::Display,
        message: Option<&str>,
    ) -> Result<(), Error> {
        if self.is_ok() {
            return Ok(());
        }
        Err(Error::Kafka {
            code: self,
            context: context.to_string(),
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        })
    }

    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Whether Kafka's protocol marks this error as worth retrying (leader moves, timeouts).
    pub fn is_retriable(self) -> bool {
        ResponseError::try_from_code(self.0).is_some_and(|e| e.is_retriable())
    }

    /// The protocol name (`NOT_LEADER_OR_FOLLOWER`), or `UNKNOWN_CODE_<n>` for codes newer than
    /// the codec crate.
    pub fn name(self) -> String {
        match ResponseError::try_from_code(self.0) {
            None => "NONE".to_owned(),
            Some(ResponseError::Unknown(code)) => format!("UNKNOWN_CODE_{code}"),
            Some(known) => screaming_snake(&known.to_string()),
        }
    }
}

impl fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// `UnknownTopicOrPartition` -> `UNKNOWN_TOPIC_OR_PARTITION`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Everything that can go wrong in the client. Operating errors only: bugs panic.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The io::Error is part of the message rather than a `source()`, so that printing the
    // chain does not say it twice (and the hint stays last).
    #[error("cannot reach broker {addr}: {cause}\nhint: is the broker running, and is the address (--bootstrap) right?")]
    Connect { addr: String, cause: std::io::Error },
    #[error("connection to {addr} failed: {cause}")]
    Io { addr: String, cause: std::io::Error },
    #[error("connection to {addr} was closed{}", if *.in_flight { " with requests in flight" } else { "" })]
    ConnectionClosed { addr: String, in_flight: bool },
    #[error("{what} timed out after {timeout_ms} ms")]
    Timeout { what: String, timeout_ms: u64 },
    #[error("{context}: broker returned {code}{}", .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        code: KafkaCode,
        context: String,
        message: Option<String>,
    },
    #[error("broker {addr} does not support {api} (it offers versions {broker_min}..={broker_max}, this client speaks {client_min}..={client_max})")]
    UnsupportedVersion {
        addr: String,
        api: String,
        broker_min: i16,
        broker_max: i16,
        client_min: i16,
        client_max: i16,
    },
    #[error("broker {addr} does not offer {api} at all")]
    UnsupportedApi { addr: String, api: String },
    #[error("frame of {size_bytes} bytes from {addr} is over the limit of {max_bytes} bytes")]
    FrameTooLarge {
        addr: String,
        size_bytes: usize,
        max_bytes: usize,
    },
    #[error("could not encode {what}: {detail}")]
    Encode { what: String, detail: String },
    #[error("could not decode {what}: {detail}")]
    Decode { what: String, detail: String },
    #[error("topic {0:?} does not exist\nhint: create it with `eddy topic create {0}`")]
    UnknownTopic(String),
    #[error("topic {topic:?} has no partition {partition} (it has {partition_count})")]
    UnknownPartition {
        topic: String,
        partition: i32,
        partition_count: usize,
    },
    #[error("partition {topic}-{partition} has no leader right now")]
    NoLeader { topic: String, partition: i32 },
    #[error("none of the bootstrap brokers {0} answered")]
    NoBroker(String),
    #[error(
        "record of {size_bytes} bytes is over the limit of {max_bytes} bytes (max.request.size)"
    )]
    RecordTooLarge { size_bytes: usize, max_bytes: usize },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("the producer is closed")]
    ProducerClosed,
    /// A transactional producer's transaction failed but the producer is fine: only
    /// `abort_transaction` is allowed next (see [`Error::txn_requires_abort`]).
    #[error("the transaction cannot commit: {cause}\nhint: call abort_transaction(), then rewind the input to its last committed offsets")]
    TxnAbortable { cause: Box<Error> },
    /// A transactional producer can no longer be used: it was fenced by a newer instance with
    /// its `transactional.id`, is not authorized, or the broker cannot do transactions.
    #[error("the transactional producer cannot go on: {cause}\nhint: drop it; a new producer with the same transactional.id takes over after init_transactions()")]
    TxnFatal { cause: Box<Error> },
    /// A transactional call out of order (commit without begin...): nothing was changed.
    #[error("{0}")]
    TxnState(String),
}

impl Error {
    /// Whether retrying the same request later may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Kafka { code, .. } => code.is_retriable(),
            Error::Connect { .. }
            | Error::Io { .. }
            | Error::ConnectionClosed { .. }
            | Error::Timeout { .. }
            | Error::NoLeader { .. } => true,
            _ => false,
        }
    }

    /// The Kafka error code, when the broker sent one (also inside a transaction error).
    pub fn kafka_code(&self) -> Option<KafkaCode> {
        match self {
            Error::Kafka { code, .. } => Some(*code),
            Error::TxnAbortable { cause } | Error::TxnFatal { cause } => cause.kafka_code(),
            _ => None,
        }
    }

    /// From a transactional producer: it cannot be used any more, every call will fail the
    /// same way. Drop it and create a new one with the same `transactional.id`; its
    /// `init_transactions` aborts whatever this one left open.
    pub fn is_fatal_txn(&self) -> bool {
        matches!(self, Error::TxnFatal { .. })
    }

    /// From a transactional producer: the open transaction cannot commit, but the producer is
    /// fine. Call `abort_transaction` (the only call allowed next) and rewind the input.
    pub fn txn_requires_abort(&self) -> bool {
        matches!(self, Error::TxnAbortable { .. })
    }
}

/// One failed request fails every record in it, so the error must be handed out many times.
/// `std::io::Error` is not `Clone`; a copy keeps its kind and message.
impl Clone for Error {
    fn clone(&self) -> Error {
        let io = |e: &std::io::Error| std::io::Error::new(e.kind(), e.to_string());
        match self {
            Error::Connect { addr, cause } => Error::Connect {
                addr: addr.clone(),
                cause: io(cause),
            },
            Error::Io { addr, cause } => Error::Io {
                addr: addr.clone(),
                cause: io(cause),
            },
            Error::ConnectionClosed { addr, in_flight } => Error::ConnectionClosed {
                addr: addr.clone(),
                in_flight: *in_flight,
            },
            Error::Timeout { what, timeout_ms } => Error::Timeout {
                what: what.clone(),
                timeout_ms: *timeout_ms,
            },
            Error::Kafka {
                code,
                context,
                message,
            } => Error::Kafka {
                code: *code,
                context: context.clone(),
                message: message.clone(),
            },
            Error::UnsupportedVersion {
                addr,
                api,
                broker_min,
                broker_max,
                client_min,
                client_max,
            } => Error::UnsupportedVersion {
                addr: addr.clone(),
                api: api.clone(),
                broker_min: *broker_min,
                broker_max: *broker_max,
                client_min: *client_min,
                client_max: *client_max,
            },
            Error::UnsupportedApi { addr, api } => Error::UnsupportedApi {
                addr: addr.clone(),
                api: api.clone(),
            },
            Error::FrameTooLarge {
                addr,
                size_bytes,
                max_bytes,
            } => Error::FrameTooLarge {
                addr: addr.clone(),
                size_bytes: *size_bytes,
                max_bytes: *max_bytes,
            },
            Error::Encode { what, detail } => Error::Encode {
                what: what.clone(),
                detail: detail.clone(),
            },
            Error::Decode { what, detail } => Error::Decode {
                what: what.clone(),
                detail: detail.clone(),
            },
            Error::UnknownTopic(t) => Error::UnknownTopic(t.clone()),
            Error::UnknownPartition {
                topic,
                partition,
                partition_count,
            } => Error::UnknownPartition {
                topic: topic.clone(),
                partition: *partition,
                partition_count: *partition_count,
            },
            Error::NoLeader { topic, partition } => Error::NoLeader {
                topic: topic.clone(),
                partition: *partition,
            },
            Error::NoBroker(b) => Error::NoBroker(b.clone()),
            Error::RecordTooLarge {
                size_bytes,
                max_bytes,
            } => Error::RecordTooLarge {
                size_bytes: *size_bytes,
                max_bytes: *max_bytes,
            },
            Error::Config(c) => Error::Config(c.clone()),
            Error::ProducerClosed => Error::ProducerClosed,
            Error::TxnAbortable { cause } => Error::TxnAbortable {
                cause: cause.clone(),
            },
            Error::TxnFatal { cause } => Error::TxnFatal {
                cause: cause.clone(),
            },
            Error::TxnState(s) => Error::TxnState(s.clone()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_kafka_names() {
        assert_eq!(KafkaCode(3).name(), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(KafkaCode(6).name(), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(KafkaCode(-1).name(), "UNKNOWN_SERVER_ERROR");
        assert_eq!(KafkaCode(36).name(), "TOPIC_ALREADY_EXISTS");
        assert_eq!(KafkaCode(0).name(), "NONE");
        assert_eq!(KafkaCode(9999).name(), "UNKNOWN_CODE_9999");
    }

    #[test]
    fn retriable_follows_the_protocol() {
        assert!(KafkaCode(6).is_retriable());
        assert!(!KafkaCode(36).is_retriable());
        assert!(!KafkaCode(9999).is_retriable());
    }

    #[test]
    fn check_carries_context_and_message() {
        let err = KafkaCode(36)
            .check_with_message("create topic t", Some("exists"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "create topic t: broker returned TOPIC_ALREADY_EXISTS (36): exists"
        );
        assert!(KafkaCode(0).check("x").is_ok());
    }
}
