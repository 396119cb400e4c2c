//! `KGroupedStream`: a stream grouped by key, for aggregation into a table.

use std::sync::Arc;

use crate::builder::BuilderState;
use crate::kstream::KStream;
use crate::ktable::KTable;
use crate::ops;
use crate::params::Materialized;
use crate::serdes::{SerdeRef, Serdes};
use crate::topology::{StoreKind, StoreSpec};
use crate::value::Data;

#[derive(Clone)]
pub struct KGroupedStream<K, V> {
    stream: KStream<K, V>,
    key: Option<SerdeRef<K>>,
    value: Option<SerdeRef<V>>,
    name: Option<String>,
    repartition: bool,
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    pub(crate) fn new(
        stream: KStream<K, V>,
        key: Option<SerdeRef<K>>,
        value: Option<SerdeRef<V>>,
        name: Option<String>,
        repartition: bool,
    ) -> Self {
        KGroupedStream {
            stream,
            key,
            value,
            name,
            repartition,
        }
    }

    /// Number of records per key.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        let m = Materialized {
            value: materialized.value.clone().or(Some(Serdes::i64())),
            ..materialized
        };
        self.aggregate_with(
            "KSTREAM-AGGREGATE",
            Arc::new(|_: &K, _: V, n: Option<i64>| n.unwrap_or(0) + 1),
            m,
        )
    }

    /// Combines the values of each key with `f`; the first value starts it.
    pub fn reduce(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let m = Materialized {
            value: materialized.value.clone().or(self.value.clone()),
            ..materialized
        };
        let add = move |_: &K, v: V, acc: Option<V>| match acc {
            Some(a) => f(a, v),
            None => v,
        };
        self.aggregate_with("KSTREAM-REDUCE", Arc::new(add), m)
    }

    /// Folds the values of each key into an aggregate, starting from `init()`.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        add: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<K, A> {
        let add = move |k: &K, v: V, acc: Option<A>| add(k, v, acc.unwrap_or_else(&init));
        self.aggregate_with("KSTREAM-AGGREGATE", Arc::new(add), materialized)
    }

    fn aggregate_with<A: Data>(
        &self,
        prefix: &str,
        add: ops::aggregate::Adder<K, V, A>,
        materialized: Materialized<K, A>,
    ) -> KTable<K, A> {
        let state = self.stream.state.clone();
        let mut st = state.borrow_mut();
        let Some(plan) = self.plan(&mut st, prefix, &materialized) else {
            return KTable::new(state.clone(), self.stream.node, None, None, None);
        };
        st.add_store(StoreSpec {
            name: plan.store.clone(),
            kind: StoreKind::KeyValue,
            persistent: materialized.persistent,
            logged: materialized.logged,
            serdes: Arc::new((plan.key.clone(), plan.agg.clone())),
        });
        let factory = ops::aggregate::factory::<K, V, A>(plan.store.clone(), add);
        let node = st.processor(prefix, factory, plan.parent, vec![plan.store.clone()]);
        drop(st);
        KTable::new(
            state,
            node,
            Some(plan.store),
            Some(plan.key),
            Some(plan.agg),
        )
    }

    /// Names the store, checks the serdes, and repartitions by the grouping key when the
    /// key changed; `None` (with the error recorded for `build()`) when serdes are missing.
    pub(crate) fn plan<A: Data>(
        &self,
        st: &mut BuilderState,
        prefix: &str,
        materialized: &Materialized<K, A>,
    ) -> Option<Plan<K, A>> {
        let store = materialized
            .name
            .clone()
            .unwrap_or_else(|| st.name(&format!("{prefix}-STATE-STORE")));
        let key = materialized.key.clone().or(self.key.clone());
        let (Some(key), Some(agg)) = (key, materialized.value.clone()) else {
            st.error(format!(
                "aggregation into store {store:?} needs key and aggregate serdes: give them with Grouped::with / Materialized::with_value_serde"
            ));
            return None;
        };
        let mut parent = self.stream.node;
        if self.repartition {
            let Some(value) = self.value.clone() else {
                st.error(format!(
                    "grouping for store {store:?} repartitions by the new key and needs a value serde: give it with Grouped::with"
                ));
                return None;
            };
            let topic = self.name.clone().unwrap_or_else(|| store.clone());
            parent = st.repartition(parent, &topic, key.clone(), value, None);
        }
        Some(Plan {
            store,
            key,
            agg,
            parent,
        })
    }

    pub(crate) fn shared(&self) -> crate::builder::Shared {
        self.stream.state.clone()
    }

    pub(crate) fn value_serde(&self) -> Option<SerdeRef<V>> {
        self.value.clone()
    }
}

/// Where an aggregation goes: its store, serdes, and the node it reads from.
pub(crate) struct Plan<K, A> {
    pub store: String,
    pub key: SerdeRef<K>,
    pub agg: SerdeRef<A>,
    pub parent: usize,
}
