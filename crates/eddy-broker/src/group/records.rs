//! Keys and values of `__consumer_offsets`, in Kafka's own format, so tools
//! that read that topic (`kafka-console-consumer --formatter
//! OffsetsMessageFormatter`, Cruise Control, Burrow) understand Eddy's.
//!
//! ```text
//! offset commit   key   v1: i16 version=1, string group, string topic, i32 partition
//!                 value v3: i16 version=3, i64 offset, i32 leader_epoch,
//!                           string metadata, i64 commit_timestamp
//! group metadata  key   v2: i16 version=2, string group
//!                 value v3: i16 version=3, string protocol_type, i32 generation,
//!                           nullable string protocol, nullable string leader,
//!                           i64 current_state_timestamp, [member]
//!                 member:   string member_id, nullable string instance_id,
//!                           string client_id, string client_host,
//!                           i32 rebalance_timeout, i32 session_timeout,
//!                           bytes subscription, bytes assignment
//! ```
//! A record with a null value (a tombstone) deletes its key. Strings are an
//! i16 length then UTF-8; bytes an i32 length. Pure codec: no I/O.

use super::CommittedOffset;

/// A decoded `__consumer_offsets` key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
}

impl Key {
    pub fn group(&self) -> &str {
        match self {
            Key::Offset { group, .. } | Key::Group { group } => group,
        }
    }
}

/// What Eddy keeps of a group across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMetadata {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// A decoded value; `None` of [`decode_value`] is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Offset(CommittedOffset),
    Group(GroupMetadata),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("__consumer_offsets record is truncated")]
    Truncated,
    #[error("__consumer_offsets key version {0} is unknown")]
    KeyVersion(i16),
    #[error("__consumer_offsets value version {0} is unknown for this key")]
    ValueVersion(i16),
    #[error("__consumer_offsets record holds a string that is not UTF-8")]
    Utf8,
    #[error("__consumer_offsets record has {0} bytes after its last field")]
    Trailing(usize),
}

pub fn encode_offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + group.len() + topic.len());
    out.extend_from_slice(&1i16.to_be_bytes());
    put_str(&mut out, group);
    put_str(&mut out, topic);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}

pub fn encode_offset_value(c: &CommittedOffset) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + c.metadata.len());
    out.extend_from_slice(&3i16.to_be_bytes());
    out.extend_from_slice(&c.offset.to_be_bytes());
    out.extend_from_slice(&c.leader_epoch.to_be_bytes());
    put_str(&mut out, &c.metadata);
    out.extend_from_slice(&c.commit_timestamp_ms.to_be_bytes());
    out
}

pub fn encode_group_key(group: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + group.len());
    out.extend_from_slice(&2i16.to_be_bytes());
    put_str(&mut out, group);
    out
}

pub fn encode_group_value(g: &GroupMetadata) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&3i16.to_be_bytes());
    put_str(&mut out, &g.protocol_type);
    out.extend_from_slice(&g.generation.to_be_bytes());
    put_nullable_str(&mut out, g.protocol.as_deref());
    put_nullable_str(&mut out, g.leader.as_deref());
    out.extend_from_slice(&g.current_state_timestamp_ms.to_be_bytes());
    out.extend_from_slice(&(g.members.len() as i32).to_be_bytes());
    for m in &g.members {
        put_str(&mut out, &m.member_id);
        put_nullable_str(&mut out, m.instance_id.as_deref());
        put_str(&mut out, &m.client_id);
        put_str(&mut out, &m.client_host);
        out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
        out.extend_from_slice(&m.session_timeout_ms.to_be_bytes());
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

pub fn decode_key(bytes: &[u8]) -> Result<Key, RecordError> {
    let mut r = Reader { bytes };
    let key = match r.i16()? {
        0 | 1 => Key::Offset {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        },
        2 => Key::Group { group: r.string()? },
        v => return Err(RecordError::KeyVersion(v)),
    };
    r.finish()?;
    Ok(key)
}

/// Decodes the value of `key`; `None` value bytes are a tombstone. Reads
/// the value versions Kafka writes to non-flexible logs (offset 0-3,
/// group 0-3); flexible versions (tagged fields) are refused.
pub fn decode_value(key: &Key, bytes: Option<&[u8]>) -> Result<Option<Value>, RecordError> {
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let mut r = Reader { bytes };
    let version = r.i16()?;
    let value = match key {
        Key::Offset { .. } => Value::Offset(decode_offset_value(&mut r, version)?),
        Key::Group { .. } => Value::Group(decode_group_value(&mut r, version)?),
    };
    r.finish()?;
    Ok(Some(value))
}

fn decode_offset_value(r: &mut Reader<'_>, version: i16) -> Result<CommittedOffset, RecordError> {
    if !(0..=3).contains(&version) {
        return Err(RecordError::ValueVersion(version));
    }
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    if version == 1 {
        r.i64()?; // expire_timestamp, dropped by Kafka in v2
    }
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

fn decode_group_value(r: &mut Reader<'_>, version: i16) -> Result<GroupMetadata, RecordError> {
    if !(0..=3).contains(&version) {
        return Err(RecordError::ValueVersion(version));
    }
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = r.i32()?.max(0) as usize;
    // Bounded by the bytes present: a member takes at least 20 bytes.
    let mut members = Vec::with_capacity(count.min(r.bytes.len() / 20));
    for _ in 0..count {
        let member_id = r.string()?;
        let instance_id = if version >= 3 {
            r.nullable_string()?
        } else {
            None
        };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        members.push(MemberMetadata {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription: r.bytes()?.to_vec(),
            assignment: r.bytes()?.to_vec(),
        });
    }
    Ok(GroupMetadata {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

/// Kafka's partition for a group: `Utils.abs(groupId.hashCode()) % n`,
/// with Java's `String.hashCode` over UTF-16 code units.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    assert!(partitions > 0, "__consumer_offsets has partitions");
    let hash = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

/// Longest string the format holds (an i16 length).
pub const STRING_BYTES_MAX: usize = i16::MAX as usize;

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Group ids are checked against the bound before anything is written;
    // only a member id built from a huge client id could be cut here, and
    // it is cut on a character boundary so the record still decodes.
    let mut len = s.len().min(STRING_BYTES_MAX);
    while !s.is_char_boundary(len) {
        len -= 1;
    }
    out.extend_from_slice(&(len as i16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len]);
}

fn put_nullable_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.bytes.len() < n {
            return Err(RecordError::Truncated);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, RecordError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, RecordError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes(b.try_into().expect("4 bytes")))
    }

    fn i64(&mut self) -> Result<i64, RecordError> {
        let b = self.take(8)?;
        Ok(i64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let b = self.take(len as usize)?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| RecordError::Utf8)
    }

    fn string(&mut self) -> Result<String, RecordError> {
        Ok(self.nullable_string()?.unwrap_or_default())
    }

    fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(&[]);
        }
        self.take(len as usize)
    }

    fn finish(&self) -> Result<(), RecordError> {
        match self.bytes.len() {
            0 => Ok(()),
            n => Err(RecordError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn offset_record_round_trips_with_kafka_layout() {
        let key = encode_offset_key("g", "t", 3);
        assert_eq!(key, [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]);
        let c = CommittedOffset {
            offset: 42,
            leader_epoch: 7,
            metadata: "m".into(),
            commit_timestamp_ms: 1000,
        };
        let value = encode_offset_value(&c);
        assert_eq!(&value[..2], &[0, 3]);
        let k = decode_key(&key).unwrap();
        assert_eq!(k.group(), "g");
        assert_eq!(
            decode_value(&k, Some(&value)).unwrap(),
            Some(Value::Offset(c))
        );
        assert_eq!(decode_value(&k, None).unwrap(), None);
    }

    #[test]
    fn group_record_round_trips() {
        let g = GroupMetadata {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 9,
            members: vec![MemberMetadata {
                member_id: "m1".into(),
                instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: vec![1, 2],
                assignment: vec![3],
            }],
        };
        let key = encode_group_key("grp");
        let k = decode_key(&key).unwrap();
        assert_eq!(
            k,
            Key::Group {
                group: "grp".into()
            }
        );
        let v = encode_group_value(&g);
        assert_eq!(decode_value(&k, Some(&v)).unwrap(), Some(Value::Group(g)));
    }

    #[test]
    fn truncated_and_unknown_records_are_errors_not_panics() {
        let key = encode_offset_key("g", "t", 3);
        for n in 0..key.len() {
            assert!(decode_key(&key[..n]).is_err());
        }
        assert_eq!(decode_key(&[0, 9]), Err(RecordError::KeyVersion(9)));
        let k = decode_key(&key).unwrap();
        assert_eq!(
            decode_value(&k, Some(&[0, 4])),
            Err(RecordError::ValueVersion(4))
        );
    }

    fn string() -> impl Strategy<Value = String> {
        "[a-z0-9.-]{0,12}"
    }

    proptest! {
        #[test]
        fn offset_records_round_trip(
            group in string(), topic in string(), partition in any::<i32>(),
            offset in any::<i64>(), leader_epoch in any::<i32>(),
            metadata in string(), commit_timestamp_ms in any::<i64>(),
        ) {
            let key = encode_offset_key(&group, &topic, partition);
            let c = CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms };
            let k = decode_key(&key).unwrap();
            prop_assert_eq!(&k, &Key::Offset { group, topic, partition });
            let v = decode_value(&k, Some(&encode_offset_value(&c))).unwrap();
            prop_assert_eq!(v, Some(Value::Offset(c)));
        }

        #[test]
        fn group_records_round_trip(
            protocol_type in string(), generation in any::<i32>(),
            protocol in proptest::option::of(string()), leader in proptest::option::of(string()),
            members in proptest::collection::vec(
                (string(), proptest::option::of(string()), any::<i32>(),
                 proptest::collection::vec(any::<u8>(), 0..16)),
                0..4,
            ),
        ) {
            let g = GroupMetadata {
                protocol_type,
                generation,
                protocol,
                leader,
                current_state_timestamp_ms: 5,
                members: members
                    .into_iter()
                    .map(|(id, instance, timeout, bytes)| MemberMetadata {
                        member_id: id.clone(),
                        instance_id: instance,
                        client_id: id,
                        client_host: "/h".into(),
                        rebalance_timeout_ms: timeout,
                        session_timeout_ms: timeout,
                        subscription: bytes.clone(),
                        assignment: bytes,
                    })
                    .collect(),
            };
            let k = Key::Group { group: "g".into() };
            let v = decode_value(&k, Some(&encode_group_value(&g))).unwrap();
            prop_assert_eq!(v, Some(Value::Group(g)));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(k) = decode_key(&bytes) {
                let _ = decode_value(&k, Some(&bytes));
            }
            let _ = decode_value(&Key::Group { group: String::new() }, Some(&bytes));
            let _ = decode_value(&Key::Offset { group: String::new(), topic: String::new(), partition: 0 }, Some(&bytes));
        }
    }

    #[test]
    fn an_overlong_member_id_is_cut_on_a_char_boundary() {
        let g = GroupMetadata {
            members: vec![MemberMetadata {
                member_id: "é".repeat(20_000),
                ..MemberMetadata::default()
            }],
            ..GroupMetadata::default()
        };
        let k = Key::Group { group: "g".into() };
        let Some(Value::Group(back)) = decode_value(&k, Some(&encode_group_value(&g))).unwrap()
        else {
            panic!("a group value");
        };
        assert_eq!(back.members[0].member_id, "é".repeat(16_383));
    }

    #[test]
    fn partition_matches_java_string_hash_code() {
        // "hello".hashCode() == 99162322; 99162322 % 50 == 22
        assert_eq!(partition_for("hello", 50), 22);
        assert_eq!(partition_for("", 50), 0);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE -> abs is 0
        assert_eq!(partition_for("polygenelubricants", 50), 0);
    }
}
