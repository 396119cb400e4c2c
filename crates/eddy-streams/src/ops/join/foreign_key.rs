//! Foreign-key table-table joins (KIP-213): each row of the left table joins the row of
//! the right table whose key its value names. The two tables are partitioned by
//! different keys, so the join goes through two internal topics, as Kafka's does:
//!
//! ```text
//! left table ─ send ─> <registration>-repartition (by foreign key) ─> subscribe ─┐
//!                                                 right table ─ update ──────────┤
//! left store <─ resolve <─ <response>-repartition (by primary key) <─────────────┘
//! ```
//!
//! - send: a left update subscribes its key to its new foreign key, unsubscribes it from
//!   the old one, and carries a hash of the left value.
//! - subscribe: keeps the subscriptions per foreign key in a store; answers with the
//!   right row (if the instruction asks for an answer).
//! - update: a right update answers every key subscribed to it.
//! - resolve: back at the left row, an answer whose hash is not that of the row's current
//!   value is stale (the row changed since) and dropped; otherwise the join result is
//!   forwarded, a tombstone where there is none.
//!
//! The subscription store's keys: `u32 foreign-key length | foreign key | primary key`,
//! so one foreign key's subscriptions are one range; values: the u64 hash.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes};

use crate::error::Result;
use crate::ktable::Change;
use crate::ops::join::Joiner;
use crate::processor::{Context, Node};
use crate::record::Record;
use crate::serdes::{Serde, SerdeError, SerdeRef};
use crate::state::KeyValueStore;
use crate::topology::NodeFactory;
use crate::value::{Data, Value};

/// What a subscription asks of the right side (Kafka's `SubscriptionWrapper.Instruction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Instruction {
    /// The left row is gone: unsubscribe, and answer so that its result is deleted.
    DeleteAndPropagate,
    /// The left row moved to another foreign key: unsubscribe, no answer.
    DeleteNoPropagate,
    /// Subscribe; answer even when there is no right row (left joins, and moves that must
    /// delete an earlier inner-join result).
    PropagateNullIfAbsent,
    /// Subscribe; answer only with a right row.
    PropagateOnlyIfPresent,
}

impl Instruction {
    fn byte(self) -> u8 {
        match self {
            Instruction::DeleteAndPropagate => 0,
            Instruction::DeleteNoPropagate => 1,
            Instruction::PropagateNullIfAbsent => 2,
            Instruction::PropagateOnlyIfPresent => 3,
        }
    }

    fn from_byte(b: u8) -> Option<Instruction> {
        Some(match b {
            0 => Instruction::DeleteAndPropagate,
            1 => Instruction::DeleteNoPropagate,
            2 => Instruction::PropagateNullIfAbsent,
            3 => Instruction::PropagateOnlyIfPresent,
            _ => return None,
        })
    }
}

/// A left row's subscription to a foreign key.
#[derive(Debug, Clone)]
pub(crate) struct Subscription<K> {
    instruction: Instruction,
    /// Hash of the left value; `None` for deletes.
    hash: Option<u64>,
    pk: K,
}

/// The right side's answer to a left row.
#[derive(Debug, Clone)]
pub(crate) struct Response<VO> {
    hash: Option<u64>,
    value: Option<VO>,
}

/// FNV-1a, 64 bits: stable across builds, unlike std's hasher, because hashes outlive
/// the process in the subscription store and in the internal topics.
fn value_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn wire_error(serde: &'static str, topic: &str, detail: &str) -> SerdeError {
    SerdeError {
        serde,
        topic: topic.to_owned(),
        detail: detail.to_owned(),
    }
}

fn put_hash(out: &mut Vec<u8>, hash: Option<u64>) {
    match hash {
        Some(h) => {
            out.put_u8(1);
            out.put_u64(h);
        }
        None => out.put_u8(0),
    }
}

fn take_hash(buf: &mut &[u8]) -> Option<Option<u64>> {
    match *buf.first()? {
        0 => {
            buf.advance(1);
            Some(None)
        }
        1 if buf.len() >= 9 => {
            buf.advance(1);
            Some(Some(buf.get_u64()))
        }
        _ => None,
    }
}

/// `version 0 | instruction | hash flag, u64 | primary key bytes`.
struct SubscriptionSerde<K>(SerdeRef<K>);

impl<K: Data> Serde<Subscription<K>> for SubscriptionSerde<K> {
    fn serialize(&self, topic: &str, s: &Subscription<K>) -> Result<Option<Bytes>, SerdeError> {
        let mut out = vec![0, s.instruction.byte()];
        put_hash(&mut out, s.hash);
        out.put_slice(&self.0.serialize(topic, &s.pk)?.unwrap_or_default());
        Ok(Some(Bytes::from(out)))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Subscription<K>, SerdeError> {
        let bad = || wire_error("fk-join subscription", topic, "malformed subscription");
        let mut buf = data.ok_or_else(bad)?;
        let [0, instruction, ..] = *buf else {
            return Err(bad());
        };
        let instruction = Instruction::from_byte(instruction).ok_or_else(bad)?;
        buf.advance(2);
        let hash = take_hash(&mut buf).ok_or_else(bad)?;
        let pk = self.0.deserialize(topic, Some(buf))?;
        Ok(Subscription {
            instruction,
            hash,
            pk,
        })
    }
}

/// `version 0 | hash flag, u64 | value flag | value bytes`.
struct ResponseSerde<VO>(SerdeRef<VO>);

impl<VO: Data> Serde<Response<VO>> for ResponseSerde<VO> {
    fn serialize(&self, topic: &str, r: &Response<VO>) -> Result<Option<Bytes>, SerdeError> {
        let mut out = vec![0];
        put_hash(&mut out, r.hash);
        let value = r
            .value
            .as_ref()
            .map(|v| self.0.serialize(topic, v))
            .transpose()?;
        match value {
            Some(bytes) => {
                out.put_u8(1);
                out.put_slice(&bytes.unwrap_or_default());
            }
            None => out.put_u8(0),
        }
        Ok(Some(Bytes::from(out)))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Response<VO>, SerdeError> {
        let bad = || wire_error("fk-join response", topic, "malformed response");
        let mut buf = data.ok_or_else(bad)?;
        if buf.first() != Some(&0) {
            return Err(bad());
        }
        buf.advance(1);
        let hash = take_hash(&mut buf).ok_or_else(bad)?;
        let value = match buf.split_first() {
            Some((&0, [])) => None,
            Some((&1, value)) => Some(self.0.deserialize(topic, Some(value))?),
            _ => return Err(bad()),
        };
        Ok(Response { hash, value })
    }
}

pub(crate) fn subscription_serde<K: Data>(pk: SerdeRef<K>) -> SerdeRef<Subscription<K>> {
    Arc::new(SubscriptionSerde(pk))
}

pub(crate) fn response_serde<VO: Data>(value: SerdeRef<VO>) -> SerdeRef<Response<VO>> {
    Arc::new(ResponseSerde(value))
}

/// Serdes the four nodes share.
pub(crate) struct FkSerdes<K, V, KO> {
    pub pk: SerdeRef<K>,
    pub value: SerdeRef<V>,
    pub fk: SerdeRef<KO>,
    /// What serdes are told the topic is.
    pub topic: String,
}

impl<K: Data, V: Data, KO: Data> FkSerdes<K, V, KO> {
    fn hash(&self, v: &V) -> Result<u64> {
        Ok(value_hash(
            &self.value.serialize(&self.topic, v)?.unwrap_or_default(),
        ))
    }
    fn fk_bytes(&self, fk: &KO) -> Result<Bytes> {
        Ok(self.fk.serialize(&self.topic, fk)?.unwrap_or_default())
    }
}

fn subscription_key(fk: &[u8], pk: &[u8]) -> Bytes {
    let mut k = Vec::with_capacity(4 + fk.len() + pk.len());
    k.put_u32(fk.len() as u32);
    k.put_slice(fk);
    k.put_slice(pk);
    Bytes::from(k)
}

fn forward<KR: Data, VR: Data>(
    ctx: &mut Context<'_>,
    key: KR,
    value: VR,
    timestamp_ms: i64,
) -> Result<()> {
    ctx.forward(Record {
        key: Value::new(key),
        value: Value::new(value),
        timestamp_ms,
        headers: Vec::new(),
    })
}

/// Left side: turns left updates into subscriptions keyed by foreign key.
struct SendNode<K, V, KO> {
    serdes: Arc<FkSerdes<K, V, KO>>,
    extract: Arc<dyn Fn(&V) -> KO + Send + Sync>,
    left_join: bool,
}

impl<K: Data, V: Data, KO: Data> Node for SendNode<K, V, KO> {
    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let pk: K = record.key.take();
        let change: Change<V> = record.value.take();
        let ts = record.timestamp_ms;
        let old_fk = change.old.as_ref().map(|v| (self.extract)(v));
        let Some(new) = &change.new else {
            // The row is gone: its result must go too.
            if let Some(fk) = old_fk {
                let s = Subscription {
                    instruction: Instruction::DeleteAndPropagate,
                    hash: None,
                    pk,
                };
                forward(ctx, fk, s, ts)?;
            }
            return Ok(());
        };
        let new_fk = (self.extract)(new);
        let hash = Some(self.serdes.hash(new)?);
        let moved = match &old_fk {
            Some(old) => self.serdes.fk_bytes(old)? != self.serdes.fk_bytes(&new_fk)?,
            None => false,
        };
        if let (true, Some(old)) = (moved, old_fk) {
            let s = Subscription {
                instruction: Instruction::DeleteNoPropagate,
                hash,
                pk: pk.clone(),
            };
            forward(ctx, old, s, ts)?;
        }
        // A move must replace the old result even when the new key has no right row.
        let instruction = if self.left_join || moved {
            Instruction::PropagateNullIfAbsent
        } else {
            Instruction::PropagateOnlyIfPresent
        };
        forward(
            ctx,
            new_fk,
            Subscription {
                instruction,
                hash,
                pk,
            },
            ts,
        )
    }
}

pub(crate) fn send_factory<K: Data, V: Data, KO: Data>(
    serdes: Arc<FkSerdes<K, V, KO>>,
    extract: Arc<dyn Fn(&V) -> KO + Send + Sync>,
    left_join: bool,
) -> NodeFactory {
    Arc::new(move || {
        Box::new(SendNode {
            serdes: serdes.clone(),
            extract: extract.clone(),
            left_join,
        })
    })
}

/// Right side: records subscriptions and answers them with the right row.
struct SubscribeNode<K, V, KO, VO> {
    serdes: Arc<FkSerdes<K, V, KO>>,
    store_name: String,
    right_store: String,
    subscriptions: Option<KeyValueStore<Bytes, Bytes>>,
    right: Option<KeyValueStore<KO, VO>>,
}

impl<K: Data, V: Data, KO: Data, VO: Data> Node for SubscribeNode<K, V, KO, VO> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.subscriptions = Some(ctx.key_value_store(&self.store_name)?);
        self.right = Some(ctx.key_value_store(&self.right_store)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let subscriptions = self.subscriptions.as_ref().expect("initialized");
        let fk: KO = record.key.take();
        let s: Subscription<K> = record.value.take();
        let pk_bytes = self
            .serdes
            .pk
            .serialize(&self.serdes.topic, &s.pk)?
            .unwrap_or_default();
        let key = subscription_key(&self.serdes.fk_bytes(&fk)?, &pk_bytes);
        let ts = record.timestamp_ms;
        match (s.instruction, s.hash) {
            (Instruction::DeleteAndPropagate | Instruction::DeleteNoPropagate, _) => {
                subscriptions.delete(&key)?
            }
            (_, Some(hash)) => {
                subscriptions.put(&key, &Bytes::copy_from_slice(&hash.to_be_bytes()))?
            }
            (_, None) => {
                return Err(wire_error(
                    "fk-join subscription",
                    &self.serdes.topic,
                    "a subscription without a hash",
                )
                .into())
            }
        }
        let value = self.right.as_ref().expect("initialized").get(&fk)?;
        let answer = match s.instruction {
            Instruction::DeleteNoPropagate => false,
            Instruction::PropagateOnlyIfPresent => value.is_some(),
            Instruction::DeleteAndPropagate | Instruction::PropagateNullIfAbsent => true,
        };
        if !answer {
            return Ok(());
        }
        forward(
            ctx,
            s.pk,
            Response {
                hash: s.hash,
                value,
            },
            ts,
        )
    }
}

pub(crate) fn subscribe_factory<K: Data, V: Data, KO: Data, VO: Data>(
    serdes: Arc<FkSerdes<K, V, KO>>,
    store_name: String,
    right_store: String,
) -> NodeFactory {
    Arc::new(move || {
        Box::new(SubscribeNode::<K, V, KO, VO> {
            serdes: serdes.clone(),
            store_name: store_name.clone(),
            right_store: right_store.clone(),
            subscriptions: None,
            right: None,
        })
    })
}

/// Right side: a right update answers every left row subscribed to its key.
struct UpdateNode<K, V, KO, VO> {
    serdes: Arc<FkSerdes<K, V, KO>>,
    store_name: String,
    subscriptions: Option<KeyValueStore<Bytes, Bytes>>,
    _value: std::marker::PhantomData<fn(VO)>,
}

impl<K: Data, V: Data, KO: Data, VO: Data> Node for UpdateNode<K, V, KO, VO> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.subscriptions = Some(ctx.key_value_store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let subscriptions = self.subscriptions.as_ref().expect("initialized");
        let fk_bytes = self.serdes.fk_bytes(record.key.get::<KO>())?;
        let prefix = subscription_key(&fk_bytes, &[]);
        let end = eddy_store::prefix_end(&prefix).map(Bytes::from);
        let change: Change<VO> = record.value.take();
        let topic = &self.serdes.topic;
        for (key, hash) in subscriptions.range(Some(&prefix), end.as_ref())? {
            let pk = self
                .serdes
                .pk
                .deserialize(topic, Some(&key[prefix.len()..]))?;
            let hash = <[u8; 8]>::try_from(hash.as_ref()).map_err(|_| {
                wire_error(
                    "fk-join subscription store",
                    topic,
                    "a hash that is not 8 bytes",
                )
            })?;
            let response = Response {
                hash: Some(u64::from_be_bytes(hash)),
                value: change.new.clone(),
            };
            forward(ctx, pk, response, record.timestamp_ms)?;
        }
        Ok(())
    }
}

pub(crate) fn update_factory<K: Data, V: Data, KO: Data, VO: Data>(
    serdes: Arc<FkSerdes<K, V, KO>>,
    store_name: String,
) -> NodeFactory {
    Arc::new(move || {
        Box::new(UpdateNode::<K, V, KO, VO> {
            serdes: serdes.clone(),
            store_name: store_name.clone(),
            subscriptions: None,
            _value: std::marker::PhantomData,
        })
    })
}

/// Left side: joins an answer with the left row, unless the row changed since.
struct ResolveNode<K, V, KO, VO, VR> {
    serdes: Arc<FkSerdes<K, V, KO>>,
    left_store: String,
    left: Option<KeyValueStore<K, V>>,
    left_join: bool,
    joiner: Joiner<V, VO, VR>,
}

impl<K: Data, V: Data, KO: Data, VO: Data, VR: Data> Node for ResolveNode<K, V, KO, VO, VR> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.left = Some(ctx.key_value_store(&self.left_store)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let response: Response<VO> = record.value.take();
        let row = self
            .left
            .as_ref()
            .expect("initialized")
            .get(record.key.get::<K>())?;
        let current = row.as_ref().map(|v| self.serdes.hash(v)).transpose()?;
        if current != response.hash {
            return Ok(()); // stale: the row changed, and its own answer is on its way
        }
        let new = match (&row, &response.value) {
            (Some(l), Some(r)) => Some((self.joiner)(Some(l), Some(r))),
            (Some(l), None) if self.left_join => Some((self.joiner)(Some(l), None)),
            _ => None,
        };
        ctx.forward(Record {
            key: record.key,
            value: Value::new(Change::<VR> { new, old: None }),
            timestamp_ms: record.timestamp_ms,
            headers: record.headers,
        })
    }
}

pub(crate) fn resolve_factory<K: Data, V: Data, KO: Data, VO: Data, VR: Data>(
    serdes: Arc<FkSerdes<K, V, KO>>,
    left_store: String,
    left_join: bool,
    joiner: Joiner<V, VO, VR>,
) -> NodeFactory {
    Arc::new(move || {
        Box::new(ResolveNode::<K, V, KO, VO, VR> {
            serdes: serdes.clone(),
            left_store: left_store.clone(),
            left: None,
            left_join,
            joiner: joiner.clone(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serdes::Serdes;

    #[test]
    fn wire_formats_round_trip_and_reject_garbage() {
        let subs = subscription_serde(Serdes::string());
        for (instruction, hash) in [
            (Instruction::DeleteAndPropagate, None),
            (Instruction::PropagateOnlyIfPresent, Some(u64::MAX)),
        ] {
            let s = Subscription {
                instruction,
                hash,
                pk: "k".to_string(),
            };
            let bytes = subs.serialize("t", &s).unwrap().unwrap();
            let back = subs.deserialize("t", Some(&bytes)).unwrap();
            assert_eq!(
                (back.instruction, back.hash, back.pk),
                (instruction, hash, "k".to_string())
            );
        }
        assert!(subs.deserialize("t", Some(&[0, 9, 0])).is_err());
        assert!(subs.deserialize("t", Some(&[0, 1, 1, 2])).is_err());
        let resp = response_serde(Serdes::string());
        for value in [None, Some(String::new()), Some("v".to_string())] {
            let r = Response {
                hash: Some(7),
                value: value.clone(),
            };
            let bytes = resp.serialize("t", &r).unwrap().unwrap();
            let back = resp.deserialize("t", Some(&bytes)).unwrap();
            assert_eq!((back.hash, back.value), (Some(7), value));
        }
        assert!(resp.deserialize("t", Some(&[0, 0, 0, 1])).is_err());
        assert!(resp.deserialize("t", Some(&[1])).is_err());
        assert_eq!(value_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(value_hash(b"a"), value_hash(b"b"));
    }
}
