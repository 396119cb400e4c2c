//! Broker and topic settings, by Kafka's names, with Kafka's defaults
//! (except where Eddy's durability promise needs a different one; those are
//! marked). Settings come from a server.properties file and `--set k=v`.

use std::collections::BTreeMap;
use std::path::Path;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown setting '{0}' (see docs/configuration.md for the settings Eddy knows)")]
    Unknown(String),
    #[error("invalid value '{value}' for '{name}': {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    #[error("{path}:{line}: expected key=value, got '{text}'")]
    Syntax {
        path: String,
        line: usize,
        text: String,
    },
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Bool,
    Str,
    List,
    Double,
}

/// One known broker setting.
pub struct Def {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
    /// The topic-level config this broker setting provides the default for.
    pub topic: Option<&'static str>,
}

const fn def(name: &'static str, default: &'static str, kind: Kind) -> Def {
    Def {
        name,
        default,
        kind,
        topic: None,
    }
}
const fn topic(name: &'static str, default: &'static str, kind: Kind, t: &'static str) -> Def {
    Def {
        name,
        default,
        kind,
        topic: Some(t),
    }
}

const I64_MAX: &str = "9223372036854775807";

/// Every broker setting Eddy knows. Anything else is an error.
pub const BROKER_DEFS: &[Def] = &[
    def("node.id", "0", Kind::Int),
    def("broker.id", "0", Kind::Int),
    def("listeners", "", Kind::Str),
    def("advertised.listeners", "", Kind::Str),
    def("log.dirs", "", Kind::Str),
    def("log.dir", "", Kind::Str),
    def("num.partitions", "1", Kind::Int),
    def("default.replication.factor", "1", Kind::Int),
    def("auto.create.topics.enable", "true", Kind::Bool),
    def("delete.topic.enable", "true", Kind::Bool),
    topic(
        "log.segment.bytes",
        "1073741824",
        Kind::Int,
        "segment.bytes",
    ),
    topic("log.roll.ms", "604800000", Kind::Int, "segment.ms"),
    def("log.roll.hours", "168", Kind::Int),
    topic("log.retention.ms", "604800000", Kind::Int, "retention.ms"),
    def("log.retention.minutes", "", Kind::Int),
    def("log.retention.hours", "168", Kind::Int),
    topic("log.retention.bytes", "-1", Kind::Int, "retention.bytes"),
    def("log.retention.check.interval.ms", "300000", Kind::Int),
    topic(
        "log.index.interval.bytes",
        "4096",
        Kind::Int,
        "index.interval.bytes",
    ),
    topic(
        "log.index.size.max.bytes",
        "10485760",
        Kind::Int,
        "segment.index.bytes",
    ),
    topic(
        "message.max.bytes",
        "1048588",
        Kind::Int,
        "max.message.bytes",
    ),
    topic("log.cleanup.policy", "delete", Kind::List, "cleanup.policy"),
    topic(
        "compression.type",
        "producer",
        Kind::Str,
        "compression.type",
    ),
    topic(
        "log.message.timestamp.type",
        "CreateTime",
        Kind::Str,
        "message.timestamp.type",
    ),
    topic(
        "log.cleaner.delete.retention.ms",
        "86400000",
        Kind::Int,
        "delete.retention.ms",
    ),
    topic(
        "log.cleaner.min.compaction.lag.ms",
        "0",
        Kind::Int,
        "min.compaction.lag.ms",
    ),
    topic(
        "log.cleaner.max.compaction.lag.ms",
        I64_MAX,
        Kind::Int,
        "max.compaction.lag.ms",
    ),
    topic(
        "log.cleaner.min.cleanable.ratio",
        "0.5",
        Kind::Double,
        "min.cleanable.dirty.ratio",
    ),
    topic("min.insync.replicas", "1", Kind::Int, "min.insync.replicas"),
    // Eddy's default is 1 (fsync before acknowledging, with group commit);
    // Kafka's is Long.MAX_VALUE, relying on replication. See docs/durability.md.
    topic(
        "log.flush.interval.messages",
        "1",
        Kind::Int,
        "flush.messages",
    ),
    topic("log.flush.interval.ms", I64_MAX, Kind::Int, "flush.ms"),
    def("log.flush.scheduler.interval.ms", "1000", Kind::Int),
    def("socket.request.max.bytes", "104857600", Kind::Int),
    // Kafka's default is unbounded; Eddy puts a limit on everything.
    def("queued.max.request.bytes", "536870912", Kind::Int),
    def("max.connections", "10000", Kind::Int),
    def("connections.max.idle.ms", "600000", Kind::Int),
    def("num.network.threads", "3", Kind::Int),
    def("num.io.threads", "8", Kind::Int),
    def("num.recovery.threads.per.data.dir", "1", Kind::Int),
    def("socket.send.buffer.bytes", "102400", Kind::Int),
    def("socket.receive.buffer.bytes", "102400", Kind::Int),
    def("offsets.topic.replication.factor", "1", Kind::Int),
    def("offsets.topic.num.partitions", "50", Kind::Int),
    def("offsets.retention.minutes", "10080", Kind::Int),
    def("offsets.retention.check.interval.ms", "600000", Kind::Int),
    def("transaction.state.log.replication.factor", "1", Kind::Int),
    def("transaction.state.log.min.isr", "1", Kind::Int),
    // The transaction coordinator; see docs/configuration.md.
    def("transaction.state.log.num.partitions", "50", Kind::Int),
    def("transaction.max.timeout.ms", "900000", Kind::Int),
    def(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "10000",
        Kind::Int,
    ),
    def("transactional.id.expiration.ms", "604800000", Kind::Int),
    def("group.initial.rebalance.delay.ms", "3000", Kind::Int),
    // The consumer group protocol (KIP-848).
    def("group.consumer.session.timeout.ms", "45000", Kind::Int),
    def("group.consumer.heartbeat.interval.ms", "5000", Kind::Int),
    // Kafka's default is unbounded; Eddy puts a limit on everything.
    def("group.consumer.max.size", "10000", Kind::Int),
    def("group.consumer.assignors", "uniform,range", Kind::List),
    def("group.min.session.timeout.ms", "6000", Kind::Int),
    def("group.max.session.timeout.ms", "1800000", Kind::Int),
    def(
        "max.incremental.fetch.session.cache.slots",
        "1000",
        Kind::Int,
    ),
    def("fetch.max.bytes", "57671680", Kind::Int),
    // The log cleaner (compaction); see docs/configuration.md.
    def("log.cleaner.enable", "true", Kind::Bool),
    def("log.cleaner.backoff.ms", "15000", Kind::Int),
    def("log.cleaner.dedupe.buffer.size", "134217728", Kind::Int),
    def("log.cleaner.threads", "1", Kind::Int),
    def("producer.id.expiration.ms", "86400000", Kind::Int),
    def("cluster.id", "", Kind::Str),
];

/// Topic-level configs a topic may override, with the defaults used when no
/// broker setting provides one.
pub const TOPIC_DEFS: &[(&str, &str, Kind)] = &[
    ("cleanup.policy", "delete", Kind::List),
    ("compression.type", "producer", Kind::Str),
    ("delete.retention.ms", "86400000", Kind::Int),
    ("file.delete.delay.ms", "60000", Kind::Int),
    ("flush.messages", "1", Kind::Int),
    ("flush.ms", I64_MAX, Kind::Int),
    ("index.interval.bytes", "4096", Kind::Int),
    ("max.compaction.lag.ms", I64_MAX, Kind::Int),
    ("max.message.bytes", "1048588", Kind::Int),
    ("message.downconversion.enable", "true", Kind::Bool),
    // Deprecated in Kafka 3.0 and ignored there for clusters on 3.0+; Eddy
    // only stores v2 batches. Accepted so existing tooling can set it.
    ("message.format.version", "3.0-IV1", Kind::Str),
    ("message.timestamp.type", "CreateTime", Kind::Str),
    ("message.timestamp.before.max.ms", I64_MAX, Kind::Int),
    ("message.timestamp.after.max.ms", "3600000", Kind::Int),
    ("min.cleanable.dirty.ratio", "0.5", Kind::Double),
    ("min.compaction.lag.ms", "0", Kind::Int),
    ("min.insync.replicas", "1", Kind::Int),
    ("preallocate", "false", Kind::Bool),
    ("retention.bytes", "-1", Kind::Int),
    ("retention.ms", "604800000", Kind::Int),
    ("segment.bytes", "1073741824", Kind::Int),
    ("segment.index.bytes", "10485760", Kind::Int),
    ("segment.jitter.ms", "0", Kind::Int),
    ("segment.ms", "604800000", Kind::Int),
    ("unclean.leader.election.enable", "false", Kind::Bool),
];

fn check_kind(name: &str, value: &str, kind: Kind) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    match kind {
        Kind::Int if value.is_empty() => Ok(()),
        Kind::Int => value
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| bad("expected an integer")),
        Kind::Bool => match value {
            "true" | "false" => Ok(()),
            _ => Err(bad("expected true or false")),
        },
        Kind::Double => value
            .parse::<f64>()
            .map(|_| ())
            .map_err(|_| bad("expected a number")),
        Kind::Str | Kind::List => Ok(()),
    }
}

/// Validates one topic config value; used by CreateTopics and AlterConfigs.
pub fn check_topic_config(name: &str, value: &str) -> Result<(), ConfigError> {
    let (_, _, kind) = TOPIC_DEFS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
    check_kind(name, value, *kind)?;
    let invalid = |reason: &str| ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    match name {
        "cleanup.policy" => {
            for p in value.split(',').map(str::trim) {
                if p != "delete" && p != "compact" {
                    return Err(invalid("expected delete, compact or compact,delete"));
                }
            }
        }
        "compression.type"
            if !["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"].contains(&value) =>
        {
            return Err(invalid(
                "expected producer, uncompressed, gzip, snappy, lz4 or zstd",
            ));
        }
        "message.timestamp.type" if value != "CreateTime" && value != "LogAppendTime" => {
            return Err(invalid("expected CreateTime or LogAppendTime"));
        }
        "segment.bytes" if value.parse::<i64>().unwrap_or(0) < 14 => {
            return Err(invalid("must be at least 14"));
        }
        "flush.messages" | "max.message.bytes" | "segment.ms" | "index.interval.bytes"
            if value.parse::<i64>().unwrap_or(0) < 1 =>
        {
            return Err(invalid("must be at least 1"));
        }
        "retention.ms" | "retention.bytes" if value.parse::<i64>().unwrap_or(0) < -1 => {
            return Err(invalid("must be -1 or more"));
        }
        "delete.retention.ms" | "min.compaction.lag.ms"
            if value.parse::<i64>().unwrap_or(0) < 0 =>
        {
            return Err(invalid("must be 0 or more"));
        }
        "max.compaction.lag.ms" if value.parse::<i64>().unwrap_or(1) < 1 => {
            return Err(invalid("must be at least 1"));
        }
        "min.cleanable.dirty.ratio"
            if !(0.0..=1.0).contains(&value.parse::<f64>().unwrap_or(-1.0)) =>
        {
            return Err(invalid("must be between 0 and 1"));
        }
        _ => {}
    }
    Ok(())
}

/// The broker's settings: defaults overlaid by a file and `--set` values.
#[derive(Debug, Clone, Default)]
pub struct BrokerConfig {
    values: BTreeMap<String, String>,
}

impl BrokerConfig {
    /// Sets one value, rejecting unknown names and ill-typed values.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let def = BROKER_DEFS
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
        check_kind(name, value, def.kind)?;
        if let Some(t) = def.topic {
            check_topic_config(t, value).map_err(|e| match e {
                ConfigError::Invalid { value, reason, .. } => ConfigError::Invalid {
                    name: name.to_string(),
                    value,
                    reason,
                },
                other => other,
            })?;
        }
        self.values.insert(name.to_string(), value.to_string());
        Ok(())
    }

    /// Parses `key=value` (the `--set` form).
    pub fn set_pair(&mut self, pair: &str) -> Result<(), ConfigError> {
        let (k, v) = pair.split_once('=').ok_or_else(|| ConfigError::Syntax {
            path: "--set".into(),
            line: 0,
            text: pair.to_string(),
        })?;
        self.set(k.trim(), v.trim())
    }

    /// Loads a server.properties file: `key=value` lines, `#`/`!` comments.
    pub fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (k, v) = line
                .split_once(['=', ':'])
                .ok_or_else(|| ConfigError::Syntax {
                    path: path.display().to_string(),
                    line: i + 1,
                    text: line.to_string(),
                })?;
            self.set(k.trim(), v.trim())?;
        }
        Ok(())
    }

    /// The effective value: explicit, else derived (Kafka's hours/minutes
    /// fallbacks), else the default.
    pub fn get(&self, name: &str) -> String {
        if let Some(v) = self.values.get(name) {
            return v.clone();
        }
        let derived = match name {
            "log.retention.ms" => self
                .values
                .get("log.retention.minutes")
                .and_then(|m| m.parse::<i64>().ok())
                .map(|m| m * 60_000)
                .or_else(|| {
                    self.values
                        .get("log.retention.hours")
                        .and_then(|h| h.parse::<i64>().ok())
                        .map(|h| h * 3_600_000)
                }),
            "log.roll.ms" => self
                .values
                .get("log.roll.hours")
                .and_then(|h| h.parse::<i64>().ok())
                .map(|h| h * 3_600_000),
            _ => None,
        };
        if let Some(v) = derived {
            return v.to_string();
        }
        BROKER_DEFS
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.default.to_string())
            .unwrap_or_default()
    }

    pub fn is_explicit(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn i64(&self, name: &str) -> i64 {
        self.get(name).parse().unwrap_or(0)
    }

    pub fn bool(&self, name: &str) -> bool {
        self.get(name) == "true"
    }

    /// The default of a topic config as this broker sets it, and whether
    /// that comes from an explicit broker setting.
    pub fn topic_default(&self, topic_config: &str) -> (String, bool) {
        if let Some(def) = BROKER_DEFS.iter().find(|d| d.topic == Some(topic_config)) {
            let explicit = self.is_explicit(def.name)
                || (def.name == "log.retention.ms"
                    && (self.is_explicit("log.retention.minutes")
                        || self.is_explicit("log.retention.hours")))
                || (def.name == "log.roll.ms" && self.is_explicit("log.roll.hours"));
            return (self.get(def.name), explicit);
        }
        let default = TOPIC_DEFS
            .iter()
            .find(|(n, _, _)| *n == topic_config)
            .map(|(_, d, _)| *d);
        (default.unwrap_or("").to_string(), false)
    }

    /// Every setting with its effective value, for DescribeConfigs on the broker.
    pub fn all(&self) -> Vec<(&'static str, String, bool)> {
        BROKER_DEFS
            .iter()
            .map(|d| (d.name, self.get(d.name), self.is_explicit(d.name)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_an_error() {
        let mut c = BrokerConfig::default();
        assert_eq!(
            c.set("no.such.thing", "1"),
            Err(ConfigError::Unknown("no.such.thing".into()))
        );
        assert!(c.set("num.partitions", "x").is_err());
        c.set("num.partitions", "3").unwrap();
        assert_eq!(c.i64("num.partitions"), 3);
    }

    #[test]
    fn hours_fallback_and_topic_defaults() {
        let mut c = BrokerConfig::default();
        assert_eq!(c.i64("log.retention.ms"), 604_800_000);
        c.set("log.retention.hours", "1").unwrap();
        assert_eq!(c.i64("log.retention.ms"), 3_600_000);
        assert_eq!(
            c.topic_default("retention.ms"),
            ("3600000".to_string(), true)
        );
        assert_eq!(c.topic_default("segment.jitter.ms").0, "0");
    }

    #[test]
    fn properties_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("server.properties");
        std::fs::write(
            &p,
            "# comment\nnum.partitions=4\nauto.create.topics.enable = false\n",
        )
        .unwrap();
        let mut c = BrokerConfig::default();
        c.load_file(&p).unwrap();
        assert_eq!(c.i64("num.partitions"), 4);
        assert!(!c.bool("auto.create.topics.enable"));
        std::fs::write(&p, "bogus.key=1\n").unwrap();
        assert!(matches!(c.load_file(&p), Err(ConfigError::Unknown(_))));
    }
}
