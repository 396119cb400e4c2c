//! Windowed grouped streams: `KGroupedStream::windowed_by` (time windows) and
//! `session_windowed_by` (sessions), aggregating into tables keyed by `Windowed<K>`.

use std::sync::Arc;

use crate::kgrouped::KGroupedStream;
use crate::ktable::KTable;
use crate::ops::{sliding_aggregate, window_aggregate};
use crate::params::Materialized;
use crate::serdes::{SerdeRef, Serdes};
use crate::topology::{StoreKind, StoreSpec};
use crate::value::Data;
use crate::windows::{
    session_windowed_serde, time_windowed_serde, EmitStrategy, SessionWindows, SlidingWindows,
    TimeWindows, Windowed,
};

impl<K: Data, V: Data> KGroupedStream<K, V> {
    /// Aggregates per key and time window.
    pub fn windowed_by(&self, windows: TimeWindows) -> TimeWindowedKStream<K, V> {
        TimeWindowedKStream {
            grouped: self.clone(),
            windows,
            emit: EmitStrategy::OnWindowUpdate,
        }
    }

    /// Aggregates per key and sliding window (KIP-450).
    pub fn sliding_windowed_by(&self, windows: SlidingWindows) -> SlidingWindowedKStream<K, V> {
        SlidingWindowedKStream {
            grouped: self.clone(),
            windows,
            emit: EmitStrategy::OnWindowUpdate,
        }
    }

    /// Aggregates per key and session.
    pub fn session_windowed_by(&self, windows: SessionWindows) -> SessionWindowedKStream<K, V> {
        SessionWindowedKStream {
            grouped: self.clone(),
            windows,
        }
    }
}

pub struct TimeWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: TimeWindows,
    emit: EmitStrategy,
}

impl<K: Data, V: Data> TimeWindowedKStream<K, V> {
    /// Every update (default), or each window's final value once it closes.
    pub fn emit_strategy(mut self, emit: EmitStrategy) -> Self {
        self.emit = emit;
        self
    }

    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let m = Materialized {
            value: materialized.value.clone().or(Some(Serdes::i64())),
            ..materialized
        };
        self.aggregate_with(
            Arc::new(|_: &K, _: V, n: Option<i64>| n.unwrap_or(0) + 1),
            m,
        )
    }

    pub fn reduce(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let m = Materialized {
            value: materialized.value.clone().or(self.grouped.value_serde()),
            ..materialized
        };
        let add = move |_: &K, v: V, acc: Option<V>| match acc {
            Some(a) => f(a, v),
            None => v,
        };
        self.aggregate_with(Arc::new(add), m)
    }

    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        add: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        let add = move |k: &K, v: V, acc: Option<A>| add(k, v, acc.unwrap_or_else(&init));
        self.aggregate_with(Arc::new(add), materialized)
    }

    fn aggregate_with<A: Data>(
        &self,
        add: crate::ops::aggregate::Adder<K, V, A>,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        let state = self.grouped.shared();
        let mut st = state.borrow_mut();
        let prefix = "KSTREAM-WINDOWED-AGGREGATE";
        let Some(plan) = self.grouped.plan(&mut st, prefix, &materialized) else {
            return KTable::new(state.clone(), 0, None, None, None);
        };
        let w = self.windows;
        st.add_store(StoreSpec {
            name: plan.store.clone(),
            kind: StoreKind::Window {
                size_ms: w.size_ms,
                retention_ms: w.size_ms + w.grace_ms,
            },
            persistent: materialized.persistent,
            logged: materialized.logged,
            serdes: Arc::new((plan.key.clone(), plan.agg.clone())),
        });
        let emitted = format!("{}-emitted", plan.store);
        let mut stores = vec![plan.store.clone()];
        if self.emit == EmitStrategy::OnWindowClose {
            st.add_store(StoreSpec {
                name: emitted.clone(),
                kind: StoreKind::KeyValue,
                persistent: materialized.persistent,
                logged: materialized.logged,
                serdes: Arc::new((Serdes::string(), Serdes::i64())),
            });
            stores.push(emitted.clone());
        }
        let factory = window_aggregate::time_window_factory::<K, V, A>(
            plan.store.clone(),
            emitted,
            w,
            add,
            self.emit,
        );
        let node = st.processor(prefix, factory, plan.parent, stores);
        drop(st);
        let key: SerdeRef<Windowed<K>> = time_windowed_serde(plan.key, w.size_ms);
        KTable::new(state, node, Some(plan.store), Some(key), Some(plan.agg))
    }
}

/// A grouped stream aggregated over sliding windows; its table's keys carry windows
/// `[start, start + time difference]`, both ends included.
pub struct SlidingWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SlidingWindows,
    emit: EmitStrategy,
}

impl<K: Data, V: Data> SlidingWindowedKStream<K, V> {
    /// Every update (default), or each window's final value once it closes.
    pub fn emit_strategy(mut self, emit: EmitStrategy) -> Self {
        self.emit = emit;
        self
    }

    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let m = Materialized {
            value: materialized.value.clone().or(Some(Serdes::i64())),
            ..materialized
        };
        self.aggregate_with(
            Arc::new(|_: &K, _: V, n: Option<i64>| n.unwrap_or(0) + 1),
            m,
        )
    }

    pub fn reduce(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let m = Materialized {
            value: materialized.value.clone().or(self.grouped.value_serde()),
            ..materialized
        };
        let add = move |_: &K, v: V, acc: Option<V>| match acc {
            Some(a) => f(a, v),
            None => v,
        };
        self.aggregate_with(Arc::new(add), m)
    }

    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        add: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        let add = move |k: &K, v: V, acc: Option<A>| add(k, v, acc.unwrap_or_else(&init));
        self.aggregate_with(Arc::new(add), materialized)
    }

    fn aggregate_with<A: Data>(
        &self,
        add: crate::ops::aggregate::Adder<K, V, A>,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        let state = self.grouped.shared();
        let mut st = state.borrow_mut();
        let prefix = "KSTREAM-SLIDINGWINDOWAGGREGATE";
        let Some(plan) = self.grouped.plan(&mut st, prefix, &materialized) else {
            return KTable::new(state.clone(), 0, None, None, None);
        };
        let Some(value_serde) = self.grouped.value_serde() else {
            st.error(format!(
                "sliding-window aggregation into {:?} keeps its input records and needs their \
                 value serde: give it with Grouped::with",
                plan.store
            ));
            return KTable::new(state.clone(), 0, None, None, None);
        };
        let w = self.windows;
        let kind = StoreKind::Window {
            size_ms: w.time_difference_ms,
            retention_ms: w.time_difference_ms + w.grace_ms,
        };
        let spec = |name: String, serdes: Arc<dyn std::any::Any + Send + Sync>| StoreSpec {
            name,
            kind,
            persistent: materialized.persistent,
            logged: materialized.logged,
            serdes,
        };
        st.add_store(spec(
            plan.store.clone(),
            Arc::new((plan.key.clone(), plan.agg.clone())),
        ));
        let records = sliding_aggregate::records_store(&plan.store);
        st.add_store(spec(
            records.clone(),
            Arc::new((plan.key.clone(), crate::ops::join::list_serde(value_serde))),
        ));
        let mut stores = vec![plan.store.clone(), records];
        if self.emit == EmitStrategy::OnWindowClose {
            let emitted = sliding_aggregate::emitted_store(&plan.store);
            st.add_store(StoreSpec {
                name: emitted.clone(),
                kind: StoreKind::KeyValue,
                persistent: materialized.persistent,
                logged: materialized.logged,
                serdes: Arc::new((Serdes::string(), Serdes::i64())),
            });
            stores.push(emitted);
        }
        let factory = sliding_aggregate::factory::<K, V, A>(plan.store.clone(), w, add, self.emit);
        let node = st.processor(prefix, factory, plan.parent, stores);
        drop(st);
        let key: SerdeRef<Windowed<K>> = time_windowed_serde(plan.key, w.time_difference_ms);
        KTable::new(state, node, Some(plan.store), Some(key), Some(plan.agg))
    }
}

pub struct SessionWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SessionWindows,
}

impl<K: Data, V: Data> SessionWindowedKStream<K, V> {
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let m = Materialized {
            value: materialized.value.clone().or(Some(Serdes::i64())),
            ..materialized
        };
        self.aggregate(|| 0, |_, _, n| n + 1, |_, a, b| a + b, m)
    }

    /// Folds values per session; `merge` combines two sessions' aggregates when a record
    /// joins them into one.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        add: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        merge: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<Windowed<K>, A> {
        let state = self.grouped.shared();
        let mut st = state.borrow_mut();
        let prefix = "KSTREAM-SESSION-WINDOWED-AGGREGATE";
        let Some(plan) = self.grouped.plan(&mut st, prefix, &materialized) else {
            return KTable::new(state.clone(), 0, None, None, None);
        };
        let w = self.windows;
        st.add_store(StoreSpec {
            name: plan.store.clone(),
            kind: StoreKind::Session {
                retention_ms: w.gap_ms + w.grace_ms,
            },
            persistent: materialized.persistent,
            logged: materialized.logged,
            serdes: Arc::new((plan.key.clone(), plan.agg.clone())),
        });
        let factory = window_aggregate::session_factory::<K, V, A>(
            plan.store.clone(),
            w,
            Arc::new(init),
            Arc::new(add),
            Arc::new(merge),
        );
        let node = st.processor(prefix, factory, plan.parent, vec![plan.store.clone()]);
        drop(st);
        let key = session_windowed_serde(plan.key);
        KTable::new(state, node, Some(plan.store), Some(key), Some(plan.agg))
    }
}
