//! The bytes a `consumer` group carries for its members, sans-io: the subscription each
//! member sends in JoinGroup, and the assignment the leader hands out through SyncGroup.
//! Standard Kafka encoding, so Java, librdkafka and `eddy group describe` read our groups and
//! we read theirs.
//!
//! ```text
//! Subscription v0: version i16 | topics [string] | user_data nullable bytes
//!              v1: ... | owned_partitions [topic string | partitions [i32]]
//!              v2: ... | generation_id i32
//!              v3: ... | rack_id nullable string
//! Assignment v0-3: version i16 | [topic string | partitions [i32]] | user_data nullable bytes
//! ```
//!
//! Encoding goes through the codec crate's `ConsumerProtocolSubscription`/`Assignment`.
//! Decoding is done here: the bytes come from other clients, and the codec crate would size
//! vectors from counts it has not checked, so every count is checked against the bytes left.
//! A version newer than v3 is read as v3: every version so far only appends fields.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedTopic,
};
use kafka_protocol::messages::consumer_protocol_subscription::{
    ConsumerProtocolSubscription, TopicPartition as OwnedTopic,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::client::topic_name;
use crate::error::{Error, Result};
use crate::record::TopicPartition;

/// The subscription version we write: v3, as the Java client does since 3.5.
pub const SUBSCRIPTION_VERSION: i16 = 3;
/// The assignment version we write (all versions have the same fields).
pub const ASSIGNMENT_VERSION: i16 = 3;

/// A member's subscription as JoinGroup carries it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    pub topics: Vec<String>,
    /// Empty when the member sent none (null).
    pub user_data: Bytes,
    /// Partitions the member owned in its last generation (v1+; empty before).
    pub owned: Vec<TopicPartition>,
    /// The member's last generation (v2+; -1 when unknown).
    pub generation_id: i32,
}

/// A member's assignment as SyncGroup carries it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    pub partitions: Vec<TopicPartition>,
    pub user_data: Bytes,
}

/// Groups partitions by topic, partitions ascending, as the wire wants them.
fn by_topic(partitions: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut out: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        out.entry(tp.topic.as_str()).or_default().push(tp.partition);
    }
    for ps in out.values_mut() {
        ps.sort_unstable();
        ps.dedup();
    }
    out
}

fn encode_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Encode {
        what: what.to_owned(),
        detail: e.to_string(),
    }
}

pub fn encode_subscription(s: &Subscription) -> Result<Bytes> {
    let owned = by_topic(&s.owned)
        .into_iter()
        .map(|(topic, partitions)| {
            OwnedTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(partitions)
        })
        .collect();
    let message = ConsumerProtocolSubscription::default()
        .with_topics(
            s.topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .with_user_data(Some(s.user_data.clone()))
        .with_owned_partitions(owned)
        .with_generation_id(s.generation_id)
        .with_rack_id(None);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&SUBSCRIPTION_VERSION.to_be_bytes());
    message
        .encode(&mut buf, SUBSCRIPTION_VERSION)
        .map_err(|e| encode_error("consumer protocol subscription", e))?;
    Ok(buf.freeze())
}

pub fn encode_assignment(a: &Assignment) -> Result<Bytes> {
    let assigned = by_topic(&a.partitions)
        .into_iter()
        .map(|(topic, partitions)| {
            AssignedTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(partitions)
        })
        .collect();
    let message = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(assigned)
        .with_user_data(Some(a.user_data.clone()));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&ASSIGNMENT_VERSION.to_be_bytes());
    message
        .encode(&mut buf, ASSIGNMENT_VERSION)
        .map_err(|e| encode_error("consumer protocol assignment", e))?;
    Ok(buf.freeze())
}

/// Reads a subscription. `what` names it in errors (whose subscription).
pub fn decode_subscription(bytes: &Bytes, what: &str) -> Result<Subscription> {
    let mut r = Reader::new(bytes.clone(), what);
    let version = r.version()?;
    let n = r.count("topics", 2)?;
    let topics = (0..n)
        .map(|_| r.string("topic"))
        .collect::<Result<Vec<_>>>()?;
    let user_data = r.nullable_bytes("user data")?;
    let owned = if version >= 1 {
        r.topic_partitions("owned partitions")?
    } else {
        Vec::new()
    };
    let generation_id = if version >= 2 {
        r.i32("generation id")?
    } else {
        -1
    };
    Ok(Subscription {
        topics,
        user_data,
        owned,
        generation_id,
    })
}

/// Reads an assignment; empty bytes (a member the leader gave nothing) are an empty one.
pub fn decode_assignment(bytes: &Bytes, what: &str) -> Result<Assignment> {
    if bytes.is_empty() {
        return Ok(Assignment::default());
    }
    let mut r = Reader::new(bytes.clone(), what);
    r.version()?;
    let partitions = r.topic_partitions("assigned partitions")?;
    let user_data = r.nullable_bytes("user data")?;
    Ok(Assignment {
        partitions,
        user_data,
    })
}

/// A cursor over untrusted bytes; `Bytes` so user data is handed out without a copy.
struct Reader<'a> {
    buf: Bytes,
    what: &'a str,
}

impl<'a> Reader<'a> {
    fn new(buf: Bytes, what: &'a str) -> Reader<'a> {
        Reader { buf, what }
    }

    fn error(&self, detail: String) -> Error {
        Error::Decode {
            what: self.what.to_owned(),
            detail,
        }
    }

    fn need(&self, n: usize, field: &str) -> Result<()> {
        if self.buf.remaining() < n {
            return Err(self.error(format!("the bytes end before its {field}")));
        }
        Ok(())
    }

    fn i16(&mut self, field: &str) -> Result<i16> {
        self.need(2, field)?;
        Ok(self.buf.get_i16())
    }

    fn i32(&mut self, field: &str) -> Result<i32> {
        self.need(4, field)?;
        Ok(self.buf.get_i32())
    }

    fn version(&mut self) -> Result<i16> {
        let v = self.i16("version")?;
        if v < 0 {
            return Err(self.error(format!("version {v} is negative")));
        }
        Ok(v)
    }

    /// An array count, bounded by the bytes left: each element takes at least
    /// `element_bytes_min`, so no count makes us allocate more than the bytes describe.
    fn count(&mut self, field: &str, element_bytes_min: usize) -> Result<usize> {
        let n = self.i32(field)?;
        let Ok(n) = usize::try_from(n) else {
            return Err(self.error(format!("the count of its {field} is negative ({n})")));
        };
        if n.saturating_mul(element_bytes_min) > self.buf.remaining() {
            return Err(self.error(format!("{n} {field} cannot fit in the bytes left")));
        }
        Ok(n)
    }

    fn string(&mut self, field: &str) -> Result<String> {
        let len = self.i16(field)?;
        let Ok(len) = usize::try_from(len) else {
            return Err(self.error(format!("its {field} has a negative length")));
        };
        self.need(len, field)?;
        let bytes = self.buf.split_to(len);
        String::from_utf8(bytes.to_vec()).map_err(|_| self.error(format!("{field} is not UTF-8")))
    }

    fn nullable_bytes(&mut self, field: &str) -> Result<Bytes> {
        let len = self.i32(field)?;
        if len < 0 {
            return Ok(Bytes::new()); // null
        }
        let len = len as usize;
        self.need(len, field)?;
        Ok(self.buf.split_to(len))
    }

    /// `[topic string | partitions [i32]]`, flattened.
    fn topic_partitions(&mut self, field: &str) -> Result<Vec<TopicPartition>> {
        let n = self.count(field, 6)?;
        let mut out = Vec::new();
        for _ in 0..n {
            let topic = self.string("topic")?;
            let k = self.count("partitions", 4)?;
            for _ in 0..k {
                let partition = self.i32("partition")?;
                out.push(TopicPartition::new(&topic, partition));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(list: &[(&str, i32)]) -> Vec<TopicPartition> {
        list.iter()
            .map(|(t, p)| TopicPartition::new(t, *p))
            .collect()
    }

    #[test]
    fn subscription_round_trips() {
        let s = Subscription {
            topics: vec!["orders".into(), "payments".into()],
            user_data: Bytes::from_static(b"\x00\x01state"),
            owned: tps(&[("orders", 0), ("orders", 2), ("payments", 1)]),
            generation_id: 7,
        };
        let bytes = encode_subscription(&s).unwrap();
        assert_eq!(decode_subscription(&bytes, "s").unwrap(), s);
        // What the broker and `eddy group describe` read agrees.
        assert_eq!(
            eddy_protocol::consumer_protocol::subscription_topics(&bytes).unwrap(),
            ["orders", "payments"]
        );
    }

    #[test]
    fn assignment_round_trips() {
        let a = Assignment {
            partitions: tps(&[("a", 0), ("a", 3), ("b", 1)]),
            user_data: Bytes::from_static(b"hello"),
        };
        let bytes = encode_assignment(&a).unwrap();
        assert_eq!(decode_assignment(&bytes, "a").unwrap(), a);
        assert_eq!(
            eddy_protocol::consumer_protocol::assignment_partitions(&bytes).unwrap(),
            vec![("a".to_string(), vec![0, 3]), ("b".to_string(), vec![1])]
        );
        assert_eq!(
            decode_assignment(&Bytes::new(), "a").unwrap(),
            Assignment::default()
        );
    }

    #[test]
    fn reads_every_version_the_codec_crate_writes() {
        for version in 0..=3i16 {
            let mut message = ConsumerProtocolSubscription::default()
                .with_topics(vec![StrBytes::from_static_str("t")])
                .with_user_data(Some(Bytes::from_static(b"u")));
            if version >= 1 {
                message.owned_partitions = vec![OwnedTopic::default()
                    .with_topic(topic_name("t"))
                    .with_partitions(vec![4])];
            }
            if version >= 2 {
                message.generation_id = 3;
            }
            let mut buf = BytesMut::new();
            buf.extend_from_slice(&version.to_be_bytes());
            message.encode(&mut buf, version).unwrap();
            let s = decode_subscription(&buf.freeze(), "s").unwrap();
            assert_eq!(s.topics, ["t"]);
            assert_eq!(s.user_data, Bytes::from_static(b"u"));
            let owned = if version >= 1 {
                tps(&[("t", 4)])
            } else {
                vec![]
            };
            assert_eq!(s.owned, owned);
            assert_eq!(s.generation_id, if version >= 2 { 3 } else { -1 });
        }
    }

    #[test]
    fn null_user_data_is_empty() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&0i16.to_be_bytes());
        ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("t")])
            .encode(&mut buf, 0)
            .unwrap();
        let s = decode_subscription(&buf.freeze(), "s").unwrap();
        assert!(s.user_data.is_empty());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let s = Subscription {
            topics: vec!["orders".into()],
            user_data: Bytes::from_static(b"xyz"),
            owned: tps(&[("orders", 1)]),
            generation_id: 2,
        };
        let sub = encode_subscription(&s).unwrap();
        // The rack id (a null string, 2 bytes) is the last field and is not read.
        for cut in 0..sub.len() - 2 {
            assert!(
                decode_subscription(&sub.slice(..cut), "s").is_err(),
                "cut {cut}"
            );
        }
        let asg = encode_assignment(&Assignment {
            partitions: tps(&[("a", 1)]),
            user_data: Bytes::from_static(b"u"),
        })
        .unwrap();
        for cut in 1..asg.len() {
            assert!(
                decode_assignment(&asg.slice(..cut), "a").is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn huge_or_negative_counts_are_refused_before_allocating() {
        let mut buf = vec![0, 0];
        buf.extend_from_slice(&i32::MAX.to_be_bytes());
        let bytes = Bytes::from(buf);
        assert!(decode_subscription(&bytes, "s").is_err());
        assert!(decode_assignment(&bytes, "a").is_err());
        let negative = Bytes::from(vec![0, 0, 0xff, 0xff, 0xff, 0xfe]);
        assert!(decode_subscription(&negative, "s").is_err());
        assert!(decode_assignment(&Bytes::from_static(&[0xff, 0xff]), "a").is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic sweep (no proptest in this crate): every byte value at
        // every position of a valid subscription.
        let sub = encode_subscription(&Subscription {
            topics: vec!["ab".into()],
            user_data: Bytes::from_static(b"u"),
            owned: tps(&[("ab", 0)]),
            generation_id: 1,
        })
        .unwrap();
        for at in 0..sub.len() {
            for value in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut bytes = sub.to_vec();
                bytes[at] = value;
                let bytes = Bytes::from(bytes);
                let _ = decode_subscription(&bytes, "s");
                let _ = decode_assignment(&bytes, "a");
            }
        }
    }
}
