//! Sliding-window aggregation (Kafka's KStreamSlidingWindowAggregate, KIP-450). The windows
//! a key has are those its records define: for a record at `t`, its left window
//! `[t - d, t]`, and its right window `[t + 1, t + 1 + d]` once a later record falls there
//! (`d` the time difference, both ends included). A record updates every existing window
//! that holds it and creates the windows it newly defines: its own left window, its right
//! window (a record that arrives out of order may already have later records there), and
//! the right window of the record just before it.
//!
//! Kafka derives a new window's aggregate from a neighbouring window's; here a new window
//! is folded from the key's input records in it, kept in a second window store
//! (`<store>-records`, logged like the aggregates) for as long as an open window may need
//! them. Existing windows are updated incrementally, as Kafka does.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::error::Result;
use crate::ktable::Change;
use crate::ops::aggregate::Adder;
use crate::ops::window_aggregate::{emit_closed, forward_change};
use crate::processor::{Context, Node};
use crate::record::Record;
use crate::state::{KeyValueStore, WindowStore};
use crate::topology::NodeFactory;
use crate::value::Data;
use crate::windows::{EmitStrategy, SlidingWindows, Window};

struct SlidingWindowNode<K, V, A> {
    store_name: String,
    records_store_name: String,
    emitted_store_name: String,
    windows: SlidingWindows,
    add: Adder<K, V, A>,
    emit: EmitStrategy,
    store: Option<WindowStore<K, A>>,
    /// The key's input records by timestamp (several at one timestamp: in arrival order).
    records: Option<WindowStore<K, Vec<V>>>,
    emitted: Option<KeyValueStore<String, i64>>,
    observed_ms: i64,
}

impl<K: Data, V: Data, A: Data> SlidingWindowNode<K, V, A> {
    /// The aggregate of `key`'s records in `[start, start + d]`, in time order (None: no
    /// record there).
    fn fold(&self, records: &WindowStore<K, Vec<V>>, key: &K, start: i64) -> Result<Option<A>> {
        let end = start.saturating_add(self.windows.time_difference_ms);
        let mut agg = None;
        for (_, values) in records.fetch_range(key, start, end)? {
            for v in values {
                agg = Some((self.add)(key, v, agg));
            }
        }
        Ok(agg)
    }
}

impl<K: Data, V: Data, A: Data> Node for SlidingWindowNode<K, V, A> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let store: WindowStore<K, A> = ctx.window_store(&self.store_name)?;
        let records: WindowStore<K, Vec<V>> = ctx.window_store(&self.records_store_name)?;
        if self.emit == EmitStrategy::OnWindowClose {
            self.emitted = Some(ctx.key_value_store(&self.emitted_store_name)?);
        }
        // After a restore, stream time is where the changelogs left it.
        self.observed_ms = store.restored_time_ms().max(records.restored_time_ms());
        self.store = Some(store);
        self.records = Some(records);
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let store = self.store.clone().expect("initialized");
        let records = self.records.clone().expect("initialized");
        let d = self.windows.time_difference_ms;
        let t = record.timestamp_ms;
        self.observed_ms = self.observed_ms.max(t);
        let close = self.observed_ms.saturating_sub(self.windows.grace_ms);
        // Even the record's right window has closed: it is late for every window.
        if t.saturating_add(1).saturating_add(d) <= close {
            tracing::debug!(
                node = ctx.node_name(),
                t,
                stream_time = self.observed_ms,
                "record for closed windows dropped"
            );
            ctx.record_dropped();
            return Ok(());
        }
        let key: K = record.key.take();
        let value: V = record.value.take();
        let mut at_t = records.fetch(&key, t)?.unwrap_or_default();
        at_t.push(value.clone());
        records.put(&key, t, Some(&at_t))?;

        // As Kafka: a window takes records while its end is at or after the close time (its
        // end is in it), though a record whose right window ends there is already dropped.
        let open = |start: i64| start.saturating_add(d) >= close;
        let emit_updates = self.emit == EmitStrategy::OnWindowUpdate;
        let forward = |ctx: &mut Context<'_>, start: i64, change: Change<A>| {
            if !emit_updates {
                return Ok(());
            }
            let window = Window {
                start_ms: start,
                end_ms: start.saturating_add(d),
            };
            forward_change(ctx, key.clone(), window, change, t)
        };

        // Windows that exist and hold t: the record joins their aggregates.
        let existing: BTreeSet<i64> = store
            .fetch_range(&key, t.saturating_sub(d), t.saturating_add(1))?
            .into_iter()
            .map(|(start, agg)| -> Result<i64> {
                if start <= t && open(start) {
                    let new = (self.add)(&key, value.clone(), Some(agg.clone()));
                    store.put(&key, start, Some(&new))?;
                    forward(
                        ctx,
                        start,
                        Change {
                            new: Some(new),
                            old: Some(agg),
                        },
                    )?;
                }
                Ok(start)
            })
            .collect::<Result<_>>()?;

        // Windows the record defines that do not exist yet.
        let mut new_starts = BTreeSet::new();
        // Its left window.
        new_starts.insert(t.saturating_sub(d));
        // Its right window, if a later record is already there (out of order).
        let later = records.fetch_range(
            &key,
            t.saturating_add(1),
            t.saturating_add(1).saturating_add(d),
        )?;
        if !later.is_empty() {
            new_starts.insert(t.saturating_add(1));
        }
        // The right window of the record just before it, which now holds this one.
        let before = records.fetch_range(
            &key,
            t.saturating_sub(d).saturating_sub(1),
            t.saturating_sub(1),
        )?;
        if let Some((p, _)) = before.last() {
            new_starts.insert(p.saturating_add(1));
        }
        for start in new_starts {
            if existing.contains(&start) || !open(start) {
                continue;
            }
            if let Some(agg) = self.fold(&records, &key, start)? {
                store.put(&key, start, Some(&agg))?;
                forward(
                    ctx,
                    start,
                    Change {
                        new: Some(agg),
                        old: None,
                    },
                )?;
            }
        }

        // Closed: windows ending before the close time.
        if let Some(emitted) = self.emitted.clone() {
            emit_closed(ctx, &store, &emitted, d, true, close.saturating_sub(1))?;
        }
        // Closed windows go; records go once no open window can hold them or need them for
        // a right window (ts < close - d - 1).
        store.expire(close.saturating_sub(d))?;
        records.expire(close.saturating_sub(d).saturating_sub(1))
    }
}

pub(crate) fn factory<K: Data, V: Data, A: Data>(
    store_name: String,
    windows: SlidingWindows,
    add: Adder<K, V, A>,
    emit: EmitStrategy,
) -> NodeFactory {
    Arc::new(move || {
        Box::new(SlidingWindowNode::<K, V, A> {
            records_store_name: records_store(&store_name),
            emitted_store_name: emitted_store(&store_name),
            store_name: store_name.clone(),
            windows,
            add: add.clone(),
            emit,
            store: None,
            records: None,
            emitted: None,
            observed_ms: i64::MIN,
        })
    })
}

pub(crate) fn records_store(store: &str) -> String {
    format!("{store}-records")
}

pub(crate) fn emitted_store(store: &str) -> String {
    format!("{store}-emitted")
}
