//! The embedded protocol of classic consumer groups (protocol type `consumer`):
//! the member metadata JoinGroup carries (`ConsumerProtocolSubscription`) and
//! the assignment SyncGroup hands out (`ConsumerProtocolAssignment`).
//!
//! These bytes are opaque to the group protocol and come from clients, so
//! they are read here with every count checked against the bytes present
//! (the codec crate would size vectors from the counts). Only the leading
//! fields are read: every version so far starts with them, and a newer
//! version than Kafka's current one is read the same way (Kafka does too).
//!
//! ```text
//! Subscription: version i16 | topics [string] | user_data bytes | ... (v1+ fields)
//! Assignment:   version i16 | [topic string, partitions [i32]] | user_data bytes
//! ```

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConsumerProtocolError {
    #[error("consumer protocol data ends before its {0}")]
    Truncated(&'static str),
    #[error("consumer protocol {0} has a negative length or count")]
    Negative(&'static str),
    #[error("consumer protocol string is not UTF-8")]
    NotUtf8,
    #[error("consumer protocol version {0} is negative")]
    BadVersion(i16),
}

type Result<T> = std::result::Result<T, ConsumerProtocolError>;

/// A cursor over untrusted bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(ConsumerProtocolError::Truncated(what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn i16(&mut self, what: &'static str) -> Result<i16> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An array count, bounded by the bytes left: each element takes at
    /// least `element_bytes_min`, so no count can make us allocate more
    /// than the buffer could describe.
    fn count(&mut self, what: &'static str, element_bytes_min: usize) -> Result<usize> {
        let n = self.i32(what)?;
        let n = usize::try_from(n).map_err(|_| ConsumerProtocolError::Negative(what))?;
        if n.saturating_mul(element_bytes_min) > self.buf.len() {
            return Err(ConsumerProtocolError::Truncated(what));
        }
        Ok(n)
    }

    fn string(&mut self, what: &'static str) -> Result<String> {
        let len = self.i16(what)?;
        let len = usize::try_from(len).map_err(|_| ConsumerProtocolError::Negative(what))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ConsumerProtocolError::NotUtf8)
    }

    fn version(&mut self) -> Result<i16> {
        let v = self.i16("version")?;
        if v < 0 {
            return Err(ConsumerProtocolError::BadVersion(v));
        }
        Ok(v)
    }
}

/// The topics a consumer subscribes to, from its JoinGroup metadata.
pub fn subscription_topics(metadata: &[u8]) -> Result<Vec<String>> {
    let mut r = Reader { buf: metadata };
    r.version()?;
    let n = r.count("topics", 2)?;
    (0..n).map(|_| r.string("topic")).collect()
}

/// (topic, partitions) a consumer was assigned, from its SyncGroup assignment.
/// Empty bytes (a member with nothing assigned yet) are an empty assignment.
pub fn assignment_partitions(assignment: &[u8]) -> Result<Vec<(String, Vec<i32>)>> {
    if assignment.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader { buf: assignment };
    r.version()?;
    let n = r.count("assigned partitions", 6)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let topic = r.string("topic")?;
        let k = r.count("partitions", 4)?;
        let partitions = (0..k)
            .map(|_| r.i32("partition"))
            .collect::<Result<Vec<i32>>>()?;
        out.push((topic, partitions));
    }
    Ok(out)
}

/// Encodes a v0 subscription (tests, and clients that join groups).
pub fn encode_subscription(topics: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        put_string(&mut out, t);
    }
    out.extend_from_slice(&(-1i32).to_be_bytes()); // null user data
    out
}

/// Encodes a v0 assignment.
pub fn encode_assignment(assigned: &[(&str, &[i32])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&(assigned.len() as i32).to_be_bytes());
    for (topic, partitions) in assigned {
        put_string(&mut out, topic);
        out.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
        for p in *partitions {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    let len = i16::try_from(s.len()).expect("topic names are at most 249 bytes");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::{
        ConsumerProtocolAssignment, TopicPartition,
    };
    use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use proptest::prelude::*;

    fn name(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.to_string()))
    }

    #[test]
    fn reads_what_the_codec_crate_writes_in_every_version() {
        for version in 0..=3i16 {
            let sub = ConsumerProtocolSubscription::default().with_topics(vec![
                StrBytes::from_static_str("a"),
                StrBytes::from_static_str("bb"),
            ]);
            let mut buf = bytes::BytesMut::new();
            buf.extend_from_slice(&version.to_be_bytes());
            sub.encode(&mut buf, version).unwrap();
            assert_eq!(subscription_topics(&buf).unwrap(), ["a", "bb"]);
        }
        for version in 0..=3i16 {
            let asg = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
                TopicPartition::default()
                    .with_topic(name("a"))
                    .with_partitions(vec![0, 2]),
            ]);
            let mut buf = bytes::BytesMut::new();
            buf.extend_from_slice(&version.to_be_bytes());
            asg.encode(&mut buf, version).unwrap();
            assert_eq!(
                assignment_partitions(&buf).unwrap(),
                vec![("a".to_string(), vec![0, 2])]
            );
        }
    }

    #[test]
    fn encoders_round_trip() {
        let sub = encode_subscription(&["x", "y"]);
        assert_eq!(subscription_topics(&sub).unwrap(), ["x", "y"]);
        let asg = encode_assignment(&[("x", &[1, 3]), ("y", &[])]);
        assert_eq!(
            assignment_partitions(&asg).unwrap(),
            vec![("x".to_string(), vec![1, 3]), ("y".to_string(), vec![])]
        );
        assert_eq!(assignment_partitions(&[]).unwrap(), vec![]);
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        let mut buf = vec![0, 0];
        buf.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(subscription_topics(&buf).is_err());
        assert!(assignment_partitions(&buf).is_err());
        buf[2] = 0xff; // negative
        assert!(subscription_topics(&buf).is_err());
        assert!(subscription_topics(&[0xff, 0xff]).is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_give_an_answer_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = subscription_topics(&bytes);
            let _ = assignment_partitions(&bytes);
        }

        #[test]
        fn every_prefix_of_valid_data_is_refused_or_read_whole(cut in 0usize..40) {
            let sub = encode_subscription(&["orders", "payments"]);
            // version, count, then two i16-prefixed names: the topics end here.
            let topics_end_bytes = 2 + 4 + (2 + 6) + (2 + 8);
            let cut = cut.min(sub.len());
            match subscription_topics(&sub[..cut]) {
                Ok(topics) => {
                    prop_assert!(cut >= topics_end_bytes);
                    prop_assert_eq!(topics, vec!["orders".to_string(), "payments".to_string()]);
                }
                Err(_) => prop_assert!(cut < topics_end_bytes),
            }
        }
    }
}
