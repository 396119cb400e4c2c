//! Windowed aggregations: time windows (tumbling, hopping) and sessions, each emitting
//! every update or, with [`EmitStrategy::OnWindowClose`], each window's final value once.

use std::sync::Arc;

use crate::error::Result;
use crate::ktable::Change;
use crate::ops::aggregate::Adder;
use crate::processor::{Context, Node};
use crate::record::Record;
use crate::state::{KeyValueStore, SessionStore, WindowStore};
use crate::topology::NodeFactory;
use crate::value::{Data, Value};
use crate::windows::{EmitStrategy, SessionWindows, TimeWindows, Window, Windowed};

/// Merges two session aggregates when a record bridges their sessions.
pub(crate) type Merger<K, A> = Arc<dyn Fn(&K, A, A) -> A + Send + Sync>;
pub(crate) type Init<A> = Arc<dyn Fn() -> A + Send + Sync>;
/// Folds a value into a session's aggregate.
pub(crate) type Fold<K, V, A> = Arc<dyn Fn(&K, V, A) -> A + Send + Sync>;

const EMITTED_KEY: &str = "last-emitted-close";

pub(crate) fn forward_change<K: Data, A: Data>(
    ctx: &mut Context<'_>,
    key: K,
    window: Window,
    change: Change<A>,
    timestamp_ms: i64,
) -> Result<()> {
    ctx.forward(Record {
        key: Value::new(Windowed { key, window }),
        value: Value::new(change),
        timestamp_ms,
        headers: Vec::new(),
    })
}

struct TimeWindowNode<K, V, A> {
    store_name: String,
    emitted_store_name: String,
    windows: TimeWindows,
    add: Adder<K, V, A>,
    emit: EmitStrategy,
    store: Option<WindowStore<K, A>>,
    /// Where emit-final stands: windows ending at or before this time were emitted. Kept
    /// in a logged store so a restart neither repeats nor skips windows.
    emitted: Option<KeyValueStore<String, i64>>,
    observed_ms: i64,
}

impl<K: Data, V: Data, A: Data> Node for TimeWindowNode<K, V, A> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.store = Some(ctx.window_store(&self.store_name)?);
        if self.emit == EmitStrategy::OnWindowClose {
            self.emitted = Some(ctx.key_value_store(&self.emitted_store_name)?);
        }
        // After a restore, stream time is where the store's changelog left it.
        self.observed_ms = self.store.as_ref().expect("set above").restored_time_ms();
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let store = self.store.clone().expect("initialized");
        let ts = record.timestamp_ms;
        self.observed_ms = self.observed_ms.max(ts);
        let close = self.observed_ms.saturating_sub(self.windows.grace_ms);
        let key: K = record.key.take();
        let value: V = record.value.take();
        let mut accepted = false;
        for start in self.windows.starts_for(ts) {
            let end = start + self.windows.size_ms;
            if end <= close {
                continue; // this window closed: the record is late for it
            }
            accepted = true;
            let old = store.fetch(&key, start)?;
            let new = (self.add)(&key, value.clone(), old.clone());
            store.put(&key, start, Some(&new))?;
            if self.emit == EmitStrategy::OnWindowUpdate {
                let window = Window {
                    start_ms: start,
                    end_ms: end,
                };
                forward_change(
                    ctx,
                    key.clone(),
                    window,
                    Change {
                        new: Some(new),
                        old,
                    },
                    ts,
                )?;
            }
        }
        if !accepted {
            tracing::debug!(
                node = ctx.node_name(),
                ts,
                stream_time = self.observed_ms,
                "record for closed windows dropped"
            );
            ctx.record_dropped();
        }
        if self.emit == EmitStrategy::OnWindowClose {
            self.emit_closed(ctx, &store, close)?;
        }
        // Windows whose end + grace is behind stream time can go.
        store.expire(close.saturating_sub(self.windows.size_ms).saturating_add(1))
    }
}

impl<K: Data, V: Data, A: Data> TimeWindowNode<K, V, A> {
    fn emit_closed(
        &mut self,
        ctx: &mut Context<'_>,
        store: &WindowStore<K, A>,
        close: i64,
    ) -> Result<()> {
        let emitted = self.emitted.clone().expect("emit-final has its store");
        emit_closed(ctx, store, &emitted, self.windows.size_ms, false, close)
    }
}

/// Emit-final: every window of `store` (all of size `size`; its end included in it when
/// `end_included`, as sliding windows' are) that closed since the last call, oldest first,
/// stamped with the last time in it; `emitted` keeps how far that went.
pub(crate) fn emit_closed<K: Data, A: Data>(
    ctx: &mut Context<'_>,
    store: &WindowStore<K, A>,
    emitted: &KeyValueStore<String, i64>,
    size: i64,
    end_included: bool,
    close: i64,
) -> Result<()> {
    let key = EMITTED_KEY.to_string();
    let last = emitted.get(&key)?.unwrap_or(i64::MIN);
    if close <= last {
        return Ok(());
    }
    // end in (last, close]  <=>  start in (last - size, close - size]
    let from = last.saturating_sub(size).saturating_add(1);
    let to = close.saturating_sub(size);
    if from <= to {
        for (k, start, value) in store.fetch_all(from, to)? {
            let window = Window {
                start_ms: start,
                end_ms: start + size,
            };
            let change = Change {
                new: Some(value),
                old: None,
            };
            let last_ms = if end_included {
                window.end_ms
            } else {
                window.end_ms - 1
            };
            forward_change(ctx, k, window, change, last_ms)?;
        }
    }
    emitted.put(&key, &close)
}

pub(crate) fn time_window_factory<K: Data, V: Data, A: Data>(
    store_name: String,
    emitted_store_name: String,
    windows: TimeWindows,
    add: Adder<K, V, A>,
    emit: EmitStrategy,
) -> NodeFactory {
    Arc::new(move || {
        Box::new(TimeWindowNode::<K, V, A> {
            store_name: store_name.clone(),
            emitted_store_name: emitted_store_name.clone(),
            windows,
            add: add.clone(),
            emit,
            store: None,
            emitted: None,
            observed_ms: i64::MIN,
        })
    })
}

struct SessionNode<K, V, A> {
    store_name: String,
    windows: SessionWindows,
    init: Init<A>,
    add: Fold<K, V, A>,
    merge: Merger<K, A>,
    store: Option<SessionStore<K, A>>,
    observed_ms: i64,
}

impl<K: Data, V: Data, A: Data> Node for SessionNode<K, V, A> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let store: SessionStore<K, A> = ctx.session_store(&self.store_name)?;
        self.observed_ms = store.restored_time_ms();
        self.store = Some(store);
        Ok(())
    }

    /// Kafka's KStreamSessionWindowAggregate: the record's session is every session of
    /// the key within `gap` of it, merged; the merged ones are retracted (tombstones) and
    /// the new one emitted.
    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let store = self.store.clone().expect("initialized");
        let ts = record.timestamp_ms;
        self.observed_ms = self.observed_ms.max(ts);
        let close = self.observed_ms.saturating_sub(self.windows.grace_ms);
        let key: K = record.key.take();
        let gap = self.windows.gap_ms;
        let overlapping =
            store.find_sessions(&key, ts.saturating_sub(gap), ts.saturating_add(gap))?;
        let (mut start, mut end) = (ts, ts);
        for (s, e, _) in &overlapping {
            start = start.min(*s);
            end = end.max(*e);
        }
        if end < close {
            tracing::debug!(
                node = ctx.node_name(),
                ts,
                stream_time = self.observed_ms,
                "record for a closed session dropped"
            );
            ctx.record_dropped();
        } else {
            let mut agg = (self.init)();
            for (s, e, v) in overlapping {
                agg = (self.merge)(&key, agg, v.clone());
                store.put(&key, s, e, None)?;
                let window = Window {
                    start_ms: s,
                    end_ms: e,
                };
                forward_change(
                    ctx,
                    key.clone(),
                    window,
                    Change {
                        new: None,
                        old: Some(v),
                    },
                    ts,
                )?;
            }
            let agg = (self.add)(&key, record.value.take(), agg);
            store.put(&key, start, end, Some(&agg))?;
            let window = Window {
                start_ms: start,
                end_ms: end,
            };
            forward_change(
                ctx,
                key,
                window,
                Change {
                    new: Some(agg),
                    old: None,
                },
                ts,
            )?;
        }
        store.expire(close.saturating_sub(gap))
    }
}

pub(crate) fn session_factory<K: Data, V: Data, A: Data>(
    store_name: String,
    windows: SessionWindows,
    init: Init<A>,
    add: Fold<K, V, A>,
    merge: Merger<K, A>,
) -> NodeFactory {
    Arc::new(move || {
        Box::new(SessionNode::<K, V, A> {
            store_name: store_name.clone(),
            windows,
            init: init.clone(),
            add: add.clone(),
            merge: merge.clone(),
            store: None,
            observed_ms: i64::MIN,
        })
    })
}
