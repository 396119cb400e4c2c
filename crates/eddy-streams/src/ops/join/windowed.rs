//! KStream-KStream joins: a record joins the other side's records of its key whose
//! timestamps lie within `[ts - before, ts + after]` (a left record; a right record looks
//! at `[ts - after, ts + before]`).
//!
//! Both inputs reach one node, tagged with their side by a small node under each input:
//! the join keeps one stream time for both sides (Kafka's shared time tracker) and one
//! store of records still waiting for a partner, so one node per task holds them.
//!
//! # Time
//!
//! Stream time is the highest timestamp the join has seen. A record's window closes once
//! stream time passes `ts + after + grace` (left records; right: `ts + before + grace`):
//! - a record whose window has already closed on arrival is late: dropped and counted
//!   (Kafka's `dropped-records`), neither joined nor buffered (KAFKA-16123);
//! - a record joins only the other side's records whose windows are still open, so a
//!   record already emitted as "no partner" never joins later;
//! - left/outer joins: a record that found no partner waits in the outer store and is
//!   emitted with `None` for the other side once its window closes, unless a partner
//!   arrived in between (KIP-633). Emission is checked whenever stream time advances.
//!
//! # Stores
//!
//! Each side's records sit in a window store keyed by (key, timestamp), one list per
//! timestamp. The outer store is a key-value store ordered by time:
//!
//! ```text
//! key:   i64 timestamp (big-endian, sign bit flipped) | side (0 right, 1 left) | key bytes
//! value: the list of that side's values at that timestamp
//! ```
//!
//! Time order lets emission read only entries old enough to be closed; right before left
//! at one timestamp is Kafka's `TimestampedKeyAndJoinSide` order.

use std::sync::Arc;

use bytes::{BufMut, Bytes};

use crate::error::Result;
use crate::joins::JoinWindows;
use crate::ops::join::Joiner;
use crate::ops::stateless;
use crate::processor::{Context, Node};
use crate::record::Record;
use crate::serdes::{SerdeError, SerdeRef};
use crate::state::{KeyValueStore, WindowStore};
use crate::topology::NodeFactory;
use crate::value::{Data, Value};

const RIGHT: u8 = 0;
const LEFT: u8 = 1;

/// A record as it reaches the join node: which input it came from.
#[derive(Debug, Clone)]
pub(crate) enum Sided<V1, V2> {
    Left(V1),
    Right(V2),
}

/// The node under the left input.
pub(crate) fn tag_left<V1: Data, V2: Data>() -> NodeFactory {
    stateless::factory(|ctx, r: Record| {
        let value = Value::new(Sided::<V1, V2>::Left(r.value.take()));
        ctx.forward(Record { value, ..r })
    })
}

/// The node under the right input.
pub(crate) fn tag_right<V1: Data, V2: Data>() -> NodeFactory {
    stateless::factory(|ctx, r: Record| {
        let value = Value::new(Sided::<V1, V2>::Right(r.value.take()));
        ctx.forward(Record { value, ..r })
    })
}

/// What a join node is built from.
pub(crate) struct WindowedJoin<K, V1, V2, VR> {
    pub left_store: String,
    pub right_store: String,
    /// Present for left and outer joins.
    pub outer_store: Option<String>,
    pub windows: JoinWindows,
    /// Left records without a partner are emitted (left and outer joins).
    pub left_outer: bool,
    /// Right records without a partner are emitted (outer joins).
    pub right_outer: bool,
    pub key: SerdeRef<K>,
    pub left_list: SerdeRef<Vec<V1>>,
    pub right_list: SerdeRef<Vec<V2>>,
    pub joiner: Joiner<V1, V2, VR>,
}

pub(crate) fn factory<K: Data, V1: Data, V2: Data, VR: Data>(
    spec: WindowedJoin<K, V1, V2, VR>,
) -> NodeFactory {
    assert_eq!(
        spec.outer_store.is_some(),
        spec.left_outer || spec.right_outer,
        "an outer store exactly when some side is emitted without a partner"
    );
    let spec = Arc::new(spec);
    Arc::new(move || {
        Box::new(WindowedJoinNode {
            spec: spec.clone(),
            left: None,
            right: None,
            outer: None,
            stream_time_ms: i64::MIN,
        })
    })
}

struct WindowedJoinNode<K, V1, V2, VR> {
    spec: Arc<WindowedJoin<K, V1, V2, VR>>,
    left: Option<WindowStore<K, Vec<V1>>>,
    right: Option<WindowStore<K, Vec<V2>>>,
    outer: Option<KeyValueStore<Bytes, Bytes>>,
    stream_time_ms: i64,
}

/// One side's view of the join: its records, the other side's, and how they pair up.
struct SideView<'a, K, VT, VO, VR> {
    tag: u8,
    this: &'a WindowStore<K, Vec<VT>>,
    other: &'a WindowStore<K, Vec<VO>>,
    this_list: &'a SerdeRef<Vec<VT>>,
    /// This side's records without a partner are emitted.
    this_outer: bool,
    /// The other side's records without a partner are emitted (they may be waiting).
    other_outer: bool,
    /// Other-side records this far before this record join it...
    look_back_ms: i64,
    /// ...and this far after it; also how long this record's own window stays open.
    look_ahead_ms: i64,
    /// The joiner with this side's value first.
    join: &'a dyn Fn(Option<&VT>, Option<&VO>) -> VR,
}

impl<K: Data, V1: Data, V2: Data, VR: Data> Node for WindowedJoinNode<K, V1, V2, VR> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let left = ctx.window_store::<K, Vec<V1>>(&self.spec.left_store)?;
        let right = ctx.window_store::<K, Vec<V2>>(&self.spec.right_store)?;
        // After a restore, stream time is where the changelogs left it.
        self.stream_time_ms = left.restored_time_ms().max(right.restored_time_ms());
        self.left = Some(left);
        self.right = Some(right);
        if let Some(name) = &self.spec.outer_store {
            self.outer = Some(ctx.key_value_store(name)?);
        }
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let ts = record.timestamp_ms;
        if ts > self.stream_time_ms {
            self.stream_time_ms = ts;
            self.emit_closed(ctx)?;
            self.expire()?;
        }
        let key: K = record.key.take();
        let left = self.left.as_ref().expect("initialized");
        let right = self.right.as_ref().expect("initialized");
        let w = self.spec.windows;
        match record.value.take::<Sided<V1, V2>>() {
            Sided::Left(value) => {
                let joiner = self.spec.joiner.clone();
                let view = SideView {
                    tag: LEFT,
                    this: left,
                    other: right,
                    this_list: &self.spec.left_list,
                    this_outer: self.spec.left_outer,
                    other_outer: self.spec.right_outer,
                    look_back_ms: w.before_ms,
                    look_ahead_ms: w.after_ms,
                    join: &*joiner,
                };
                self.join_record(ctx, &view, key, value, ts, record.headers)
            }
            Sided::Right(value) => {
                let joiner = self.spec.joiner.clone();
                let flipped = move |r: Option<&V2>, l: Option<&V1>| joiner(l, r);
                let view = SideView {
                    tag: RIGHT,
                    this: right,
                    other: left,
                    this_list: &self.spec.right_list,
                    this_outer: self.spec.right_outer,
                    other_outer: self.spec.left_outer,
                    look_back_ms: w.after_ms,
                    look_ahead_ms: w.before_ms,
                    join: &flipped,
                };
                self.join_record(ctx, &view, key, value, ts, record.headers)
            }
        }
    }
}

impl<K: Data, V1: Data, V2: Data, VR: Data> WindowedJoinNode<K, V1, V2, VR> {
    fn join_record<VT: Data, VO: Data>(
        &self,
        ctx: &mut Context<'_>,
        side: &SideView<'_, K, VT, VO, VR>,
        key: K,
        value: VT,
        ts: i64,
        headers: Vec<eddy_client::Header>,
    ) -> Result<()> {
        let now = self.stream_time_ms;
        let grace = self.spec.windows.grace_ms;
        if ts.saturating_add(side.look_ahead_ms).saturating_add(grace) < now {
            tracing::debug!(
                node = ctx.node_name(),
                ts,
                stream_time = now,
                "late record dropped by a join"
            );
            ctx.record_dropped();
            return Ok(());
        }
        let mut held = side.this.fetch(&key, ts)?.unwrap_or_default();
        held.push(value.clone());
        side.this.put(&key, ts, Some(&held))?;

        // The other side's records in this record's window whose own windows are open
        // (an other-side record at t closes at t + look_back + grace). Expiry keeps the
        // stores to open records anyway, except after a restore, which keeps Kafka's
        // longer retention (before + after + grace).
        let open_from = now.saturating_sub(side.look_back_ms).saturating_sub(grace);
        let from = ts.saturating_sub(side.look_back_ms).max(open_from);
        let to = ts.saturating_add(side.look_ahead_ms);
        let partners = side.other.fetch_range(&key, from, to)?;
        let key_bytes = self.key_bytes(&key)?;
        if partners.is_empty() {
            if side.this_outer {
                self.hold(side, &key_bytes, ts, value)?;
            }
            return Ok(());
        }
        for (other_ts, others) in partners {
            if side.other_outer {
                self.unhold(1 - side.tag, &key_bytes, other_ts)?;
            }
            for other in &others {
                ctx.forward(Record {
                    key: Value::new(key.clone()),
                    value: Value::new((side.join)(Some(&value), Some(other))),
                    timestamp_ms: ts.max(other_ts),
                    headers: headers.clone(),
                })?;
            }
        }
        Ok(())
    }

    fn key_bytes(&self, key: &K) -> Result<Bytes> {
        let topic = self
            .spec
            .outer_store
            .as_deref()
            .unwrap_or(&self.spec.left_store);
        Ok(self.spec.key.serialize(topic, key)?.unwrap_or_default())
    }

    /// Adds a record without a partner to the outer store.
    fn hold<VT: Data, VO: Data>(
        &self,
        side: &SideView<'_, K, VT, VO, VR>,
        key: &[u8],
        ts: i64,
        value: VT,
    ) -> Result<()> {
        let outer = self
            .outer
            .as_ref()
            .expect("a side emitted without a partner has an outer store");
        let store = self.spec.outer_store.as_deref().unwrap_or_default();
        let k = outer_key(ts, side.tag, key);
        let mut waiting = match outer.get(&k)? {
            Some(list) => side.this_list.deserialize(store, Some(&list))?,
            None => Vec::new(),
        };
        waiting.push(value);
        let list = side
            .this_list
            .serialize(store, &waiting)?
            .unwrap_or_default();
        outer.put(&k, &list)
    }

    /// A waiting record found its partner: it will not be emitted alone.
    fn unhold(&self, tag: u8, key: &[u8], ts: i64) -> Result<()> {
        let outer = self
            .outer
            .as_ref()
            .expect("a side emitted without a partner has an outer store");
        let k = outer_key(ts, tag, key);
        // Read first: a blind delete would write a changelog tombstone for every match.
        if outer.get(&k)?.is_some() {
            outer.delete(&k)?;
        }
        Ok(())
    }

    /// Emits the waiting records whose windows closed, oldest first.
    fn emit_closed(&self, ctx: &mut Context<'_>) -> Result<()> {
        let Some(outer) = self.outer.clone() else {
            return Ok(());
        };
        let w = self.spec.windows;
        let now = self.stream_time_ms;
        // Entries after `last` are open for both sides; before it, each side's own rule.
        let reach = w.before_ms.min(w.after_ms).saturating_add(w.grace_ms);
        let last = now.saturating_sub(reach).saturating_sub(1);
        let to = last
            .checked_add(1)
            .map(|t| Bytes::copy_from_slice(&time_prefix(t)));
        for (k, list) in outer.range(None, to.as_ref())? {
            let (ts, tag, key) = self.decode_outer_key(&k)?;
            let look_ahead = if tag == LEFT { w.after_ms } else { w.before_ms };
            if ts.saturating_add(look_ahead).saturating_add(w.grace_ms) >= now {
                continue;
            }
            let store = self.spec.outer_store.as_deref().unwrap_or_default();
            let key: K = self.spec.key.deserialize(store, Some(key))?;
            let results: Vec<VR> = if tag == LEFT {
                let values = self.spec.left_list.deserialize(store, Some(&list))?;
                values
                    .iter()
                    .map(|v| (self.spec.joiner)(Some(v), None))
                    .collect()
            } else {
                let values = self.spec.right_list.deserialize(store, Some(&list))?;
                values
                    .iter()
                    .map(|v| (self.spec.joiner)(None, Some(v)))
                    .collect()
            };
            for result in results {
                // The record's own timestamp; no headers: the triggering record is another.
                ctx.forward(Record {
                    key: Value::new(key.clone()),
                    value: Value::new(result),
                    timestamp_ms: ts,
                    headers: Vec::new(),
                })?;
            }
            outer.delete(&k)?;
        }
        Ok(())
    }

    /// Drops records whose windows closed: nothing can join them any more.
    fn expire(&self) -> Result<()> {
        let w = self.spec.windows;
        let now = self.stream_time_ms;
        let left = self.left.as_ref().expect("initialized");
        let right = self.right.as_ref().expect("initialized");
        left.expire(now.saturating_sub(w.after_ms).saturating_sub(w.grace_ms))?;
        right.expire(now.saturating_sub(w.before_ms).saturating_sub(w.grace_ms))
    }

    fn decode_outer_key<'k>(&self, k: &'k [u8]) -> Result<(i64, u8, &'k [u8])> {
        let bad = || SerdeError {
            serde: "outer-join key",
            topic: self.spec.outer_store.clone().unwrap_or_default(),
            detail: format!("{} bytes: shorter than a timestamp and a side", k.len()),
        };
        let (time, rest) = k.split_first_chunk::<8>().ok_or_else(bad)?;
        let (&tag, key) = rest.split_first().ok_or_else(bad)?;
        let ts = (u64::from_be_bytes(*time) ^ (1 << 63)) as i64;
        Ok((ts, tag, key))
    }
}

/// Timestamps in an order-keeping encoding: sign bit flipped, big-endian.
fn time_prefix(ts: i64) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

fn outer_key(ts: i64, tag: u8, key: &[u8]) -> Bytes {
    let mut k = Vec::with_capacity(9 + key.len());
    k.put_slice(&time_prefix(ts));
    k.put_u8(tag);
    k.put_slice(key);
    Bytes::from(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_keys_sort_by_time_then_right_before_left() {
        let mut keys = [
            outer_key(5, LEFT, b"a"),
            outer_key(-1, LEFT, b"z"),
            outer_key(5, RIGHT, b"b"),
            outer_key(300, RIGHT, b""),
            outer_key(4, LEFT, b"zz"),
        ];
        keys.sort();
        let order: Vec<(i64, u8)> = keys
            .iter()
            .map(|k| {
                let ts = (u64::from_be_bytes(k[..8].try_into().unwrap()) ^ (1 << 63)) as i64;
                (ts, k[8])
            })
            .collect();
        assert_eq!(
            order,
            [(-1, LEFT), (4, LEFT), (5, RIGHT), (5, LEFT), (300, RIGHT)]
        );
        assert!(time_prefix(6).as_slice() > outer_key(5, LEFT, &[0xff; 4]).as_ref());
    }
}
