//! A member's settings, named after Kafka's consumer configs.

use crate::consumer::ConsumerConfig;
use crate::error::{Error, Result};
use crate::offsets::OffsetSpec;

/// Where a partition without a committed offset starts (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoOffsetReset {
    Earliest,
    #[default]
    Latest,
}

impl AutoOffsetReset {
    pub(super) fn spec(self) -> OffsetSpec {
        match self {
            AutoOffsetReset::Earliest => OffsetSpec::Earliest,
            AutoOffsetReset::Latest => OffsetSpec::Latest,
        }
    }
}

/// Group member settings, named after Kafka's consumer configs.
#[derive(Debug, Clone)]
pub struct GroupConsumerConfig {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`: a static member (KIP-345) keeps its partitions across restarts
    /// within the session timeout, and does not leave the group on close.
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms`: the coordinator removes a member not heard from for this long.
    pub session_timeout_ms: i32,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
    /// `max.poll.interval.ms`: a member that does not poll for this long leaves the group.
    /// Also the rebalance timeout sent with JoinGroup.
    pub max_poll_interval_ms: i32,
    /// `auto.offset.reset`, for partitions without a committed offset, and for positions
    /// that fell out of the log. Replaces `consumer.auto_offset_reset`.
    pub auto_offset_reset: AutoOffsetReset,
    /// The fetch settings.
    pub consumer: ConsumerConfig,
}

impl GroupConsumerConfig {
    /// Kafka's defaults for group `group_id`.
    pub fn new(group_id: &str) -> GroupConsumerConfig {
        GroupConsumerConfig {
            group_id: group_id.to_owned(),
            group_instance_id: None,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            auto_offset_reset: AutoOffsetReset::Latest,
            consumer: ConsumerConfig::default(),
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        let fail = |what: &str| Err(Error::Config(what.to_owned()));
        if self.group_id.is_empty() {
            return fail("group.id is empty");
        }
        if self.group_instance_id.as_deref() == Some("") {
            return fail("group.instance.id is empty (leave it unset for a dynamic member)");
        }
        if self.heartbeat_interval_ms <= 0 || self.max_poll_interval_ms <= 0 {
            return fail("heartbeat.interval.ms and max.poll.interval.ms must be positive");
        }
        if self.heartbeat_interval_ms >= self.session_timeout_ms {
            return fail("heartbeat.interval.ms must be lower than session.timeout.ms");
        }
        Ok(())
    }

    pub(super) fn fetch_config(&self) -> ConsumerConfig {
        ConsumerConfig {
            auto_offset_reset: Some(self.auto_offset_reset.spec()),
            ..self.consumer.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas_and_valid() {
        let c = GroupConsumerConfig::new("g");
        assert_eq!(
            (
                c.session_timeout_ms,
                c.heartbeat_interval_ms,
                c.max_poll_interval_ms
            ),
            (45_000, 3_000, 300_000)
        );
        assert_eq!(c.auto_offset_reset, AutoOffsetReset::Latest);
        c.validate().unwrap();
    }

    #[test]
    fn nonsense_is_refused() {
        let bad = [
            GroupConsumerConfig::new(""),
            GroupConsumerConfig {
                group_instance_id: Some(String::new()),
                ..GroupConsumerConfig::new("g")
            },
            GroupConsumerConfig {
                heartbeat_interval_ms: 45_000,
                ..GroupConsumerConfig::new("g")
            },
            GroupConsumerConfig {
                max_poll_interval_ms: 0,
                ..GroupConsumerConfig::new("g")
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn the_group_setting_replaces_the_fetchers_reset() {
        let c = GroupConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            ..GroupConsumerConfig::new("g")
        };
        assert_eq!(
            c.fetch_config().auto_offset_reset,
            Some(OffsetSpec::Earliest)
        );
    }
}
