//! Keys and values of `__transaction_state`, in Kafka's TransactionLog
//! format, so Kafka tooling reads Eddy's topic. Pure codec: no I/O.
//!
//! ```text
//! key   v0: i16 version=0, string transactional_id
//! value v0: i16 version=0, i64 producer_id, i16 producer_epoch,
//!           i32 timeout_ms, i8 state, [string topic, [i32 partition]] (nullable),
//!           i64 last_update_ms, i64 start_ms
//! value v1: the same fields, flexible (compact strings and arrays, uvarint
//!           lengths + 1), then tagged fields: 0 previous producer id,
//!           1 next producer id, 2 client transaction version,
//!           100 (Eddy's own, ignored by Kafka) the last producer epoch
//! ```
//! A null value (a tombstone) forgets the transactional id. Eddy writes v1.

use std::collections::{BTreeMap, BTreeSet};

use super::state::{TxnMetadata, TxnState};

/// Longest string the format holds (an i16 length in v0).
pub const STRING_BYTES_MAX: usize = i16::MAX as usize;
/// Bound on partitions per decoded transaction (garbage must not allocate).
pub const PARTITIONS_MAX: usize = 100_000;

const TAG_PREV_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_TXN_VERSION: u32 = 2;
const TAG_LAST_PRODUCER_EPOCH: u32 = 100;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record ends early")]
    Truncated,
    #[error("unknown {what} version {version}")]
    Version { what: &'static str, version: i16 },
    #[error("invalid record: {0}")]
    Invalid(&'static str),
}

type R<T> = Result<T, RecordError>;

pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&0i16.to_be_bytes());
    put_str(&mut out, transactional_id);
    out
}

pub fn decode_key(bytes: &[u8]) -> R<String> {
    let mut r = Reader(bytes);
    match r.i16()? {
        0 => r.str(),
        v => Err(RecordError::Version {
            what: "key",
            version: v,
        }),
    }
}

/// Encodes `m` as value v1.
pub fn encode_value(m: &TxnMetadata) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&1i16.to_be_bytes());
    out.extend_from_slice(&m.producer_id.to_be_bytes());
    out.extend_from_slice(&m.producer_epoch.to_be_bytes());
    out.extend_from_slice(&m.timeout_ms.to_be_bytes());
    out.push(m.state as u8);
    let topics = group_partitions(&m.partitions);
    put_uvarint(&mut out, topics.len() as u32 + 1);
    for (topic, parts) in &topics {
        put_compact_str(&mut out, topic);
        put_uvarint(&mut out, parts.len() as u32 + 1);
        for p in parts {
            out.extend_from_slice(&p.to_be_bytes());
        }
        put_uvarint(&mut out, 0);
    }
    out.extend_from_slice(&m.update_ms.to_be_bytes());
    out.extend_from_slice(&m.start_ms.to_be_bytes());
    let tags: [(u32, Vec<u8>); 4] = [
        (
            TAG_PREV_PRODUCER_ID,
            m.prev_producer_id.to_be_bytes().to_vec(),
        ),
        (
            TAG_NEXT_PRODUCER_ID,
            m.next_producer_id.to_be_bytes().to_vec(),
        ),
        (
            TAG_CLIENT_TXN_VERSION,
            (if m.v2 { 2i16 } else { 0 }).to_be_bytes().to_vec(),
        ),
        (
            TAG_LAST_PRODUCER_EPOCH,
            m.last_producer_epoch.to_be_bytes().to_vec(),
        ),
    ];
    put_uvarint(&mut out, tags.len() as u32);
    for (tag, bytes) in tags {
        put_uvarint(&mut out, tag);
        put_uvarint(&mut out, bytes.len() as u32);
        out.extend_from_slice(&bytes);
    }
    out
}

/// Decodes a value of `transactional_id` (v0 or v1).
pub fn decode_value(transactional_id: &str, bytes: &[u8]) -> R<TxnMetadata> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if !(0..=1).contains(&version) {
        return Err(RecordError::Version {
            what: "value",
            version,
        });
    }
    let flexible = version >= 1;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = TxnState::from_byte(r.i8()?).ok_or(RecordError::Invalid("state"))?;
    let partitions = r.partitions(flexible)?;
    let update_ms = r.i64()?;
    let start_ms = r.i64()?;
    let mut m = TxnMetadata::new(transactional_id, producer_id, timeout_ms, update_ms);
    m.producer_epoch = producer_epoch;
    m.state = state;
    m.partitions = partitions;
    m.start_ms = start_ms;
    if flexible {
        r.tags(&mut m)?;
    }
    Ok(m)
}

fn group_partitions(set: &BTreeSet<(String, i32)>) -> BTreeMap<&str, Vec<i32>> {
    let mut out: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in set {
        out.entry(t.as_str()).or_default().push(*p);
    }
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(STRING_BYTES_MAX)];
    out.extend_from_slice(&(bytes.len() as i16).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_compact_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(STRING_BYTES_MAX)];
    put_uvarint(out, bytes.len() as u32 + 1);
    out.extend_from_slice(bytes);
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if self.0.len() < n {
            return Err(RecordError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn i8(&mut self) -> R<i8> {
        Ok(self.take(1)?[0] as i8)
    }
    fn i16(&mut self) -> R<i16> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn i32(&mut self) -> R<i32> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i64(&mut self) -> R<i64> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn uvarint(&mut self) -> R<u32> {
        let mut v: u32 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.take(1)?[0];
            v |= ((b & 0x7f) as u32) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError::Invalid("varint"))
    }
    fn utf8(bytes: &[u8]) -> R<String> {
        String::from_utf8(bytes.to_vec()).map_err(|_| RecordError::Invalid("utf-8"))
    }
    fn str(&mut self) -> R<String> {
        let len = self.i16()?;
        let len = usize::try_from(len).map_err(|_| RecordError::Invalid("string length"))?;
        Self::utf8(self.take(len)?)
    }
    /// Array length: None for a null array.
    fn len(&mut self, flexible: bool) -> R<Option<usize>> {
        let n = if flexible {
            self.uvarint()? as i64 - 1
        } else {
            self.i32()? as i64
        };
        if n < 0 {
            return Ok(None);
        }
        let n = n as usize;
        // Every element takes at least a byte: a length beyond what is
        // left is garbage, not an allocation to attempt.
        if n > self.0.len() || n > PARTITIONS_MAX {
            return Err(RecordError::Invalid("array length"));
        }
        Ok(Some(n))
    }
    fn partitions(&mut self, flexible: bool) -> R<BTreeSet<(String, i32)>> {
        let mut out = BTreeSet::new();
        let Some(topics) = self.len(flexible)? else {
            return Ok(out);
        };
        for _ in 0..topics {
            let topic = if flexible {
                let n = self.uvarint()? as usize;
                let n = n.checked_sub(1).ok_or(RecordError::Invalid("null topic"))?;
                Self::utf8(self.take(n)?)?
            } else {
                self.str()?
            };
            let parts = self.len(flexible)?.unwrap_or(0);
            for _ in 0..parts {
                out.insert((topic.clone(), self.i32()?));
            }
            if out.len() > PARTITIONS_MAX {
                return Err(RecordError::Invalid("too many partitions"));
            }
            if flexible {
                self.skip_tags()?;
            }
        }
        Ok(out)
    }
    fn skip_tags(&mut self) -> R<()> {
        let n = self.uvarint()?;
        for _ in 0..n {
            self.uvarint()?;
            let len = self.uvarint()? as usize;
            self.take(len)?;
        }
        Ok(())
    }
    fn tags(&mut self, m: &mut TxnMetadata) -> R<()> {
        let n = self.uvarint()?;
        for _ in 0..n {
            let tag = self.uvarint()?;
            let len = self.uvarint()? as usize;
            let mut field = Reader(self.take(len)?);
            match tag {
                TAG_PREV_PRODUCER_ID => m.prev_producer_id = field.i64()?,
                TAG_NEXT_PRODUCER_ID => m.next_producer_id = field.i64()?,
                TAG_CLIENT_TXN_VERSION => m.v2 = field.i16()? >= 2,
                TAG_LAST_PRODUCER_EPOCH => m.last_producer_epoch = field.i16()?,
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn state() -> impl Strategy<Value = TxnState> {
        (0i8..=7).prop_map(|b| TxnState::from_byte(b).expect("valid byte"))
    }

    prop_compose! {
        fn metadata()(
            id in "[a-z0-9._-]{1,40}",
            pid in -1i64..i64::MAX, prev in -1i64..1000, next in -1i64..1000,
            epoch in -1i16..i16::MAX, last in -1i16..i16::MAX,
            timeout in 0i32..i32::MAX, state in state(),
            parts in proptest::collection::btree_set(("[a-z]{1,8}", 0i32..100), 0..20),
            start in -1i64..i64::MAX, update in 0i64..i64::MAX, v2 in any::<bool>(),
        ) -> TxnMetadata {
            TxnMetadata {
                transactional_id: id, producer_id: pid, prev_producer_id: prev,
                next_producer_id: next, producer_epoch: epoch, last_producer_epoch: last,
                timeout_ms: timeout, state, partitions: parts, start_ms: start,
                update_ms: update, v2,
            }
        }
    }

    proptest! {
        #[test]
        fn value_round_trips(m in metadata()) {
            let bytes = encode_value(&m);
            prop_assert_eq!(decode_value(&m.transactional_id, &bytes), Ok(m.clone()));
            prop_assert_eq!(decode_key(&encode_key(&m.transactional_id)), Ok(m.transactional_id));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_key(&bytes);
            let _ = decode_value("t", &bytes);
        }

        #[test]
        fn truncated_values_are_errors(m in metadata(), cut in 0usize..1000) {
            let bytes = encode_value(&m);
            let cut = cut % bytes.len();
            prop_assert!(decode_value("t", &bytes[..cut]).is_err());
        }
    }

    #[test]
    fn value_v0_decodes() {
        let mut b = Vec::new();
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&7i64.to_be_bytes());
        b.extend_from_slice(&3i16.to_be_bytes());
        b.extend_from_slice(&60_000i32.to_be_bytes());
        b.push(1);
        b.extend_from_slice(&1i32.to_be_bytes());
        put_str(&mut b, "orders");
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&4i32.to_be_bytes());
        b.extend_from_slice(&100i64.to_be_bytes());
        b.extend_from_slice(&90i64.to_be_bytes());
        let m = decode_value("tx", &b).expect("v0 decodes");
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.state),
            (7, 3, TxnState::Ongoing)
        );
        assert_eq!(m.partitions.len(), 2);
        assert_eq!((m.update_ms, m.start_ms, m.prev_producer_id), (100, 90, -1));
    }
}
