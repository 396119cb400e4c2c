//! `KTable`: a changelog stream, the latest value per key. Its updates travel between
//! operators as [`Change`]s.

use crate::builder::{encoder, Shared};
use crate::kstream::KStream;
use crate::ops;
use crate::params::Produced;
use crate::serdes::{SerdeRef, Serdes};
use crate::value::Data;

/// An update of a table row: the value after and before it (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<V> {
    pub new: Option<V>,
    pub old: Option<V>,
}

pub struct KTable<K, V> {
    pub(crate) state: Shared,
    pub(crate) node: usize,
    /// The store holding the table, when it is materialized.
    pub(crate) store: Option<String>,
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V>>,
}

impl<K, V> Clone for KTable<K, V> {
    fn clone(&self) -> Self {
        KTable {
            state: self.state.clone(),
            node: self.node,
            store: self.store.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
        }
    }
}

impl<K: Data, V: Data> KTable<K, V> {
    pub(crate) fn new(
        state: Shared,
        node: usize,
        store: Option<String>,
        key: Option<SerdeRef<K>>,
        value: Option<SerdeRef<V>>,
    ) -> Self {
        KTable {
            state,
            node,
            store,
            key,
            value,
        }
    }

    /// The store a materialized table lives in (for interactive queries).
    pub fn store_name(&self) -> Option<&str> {
        self.store.as_deref()
    }

    /// Keeps the rows for which `predicate` holds; a row that stops matching is deleted
    /// downstream (a tombstone), as Kafka's KTable#filter does.
    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KTable<K, V> {
        let f = ops::table::map_change::<K, V, V>(move |k, v| predicate(k, &v).then_some(v));
        self.derive("KTABLE-FILTER", f, self.value.clone())
    }

    /// A new value for every row.
    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(&K, V) -> V2 + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        let f = ops::table::map_change::<K, V, V2>(move |k, v| Some(f(k, v)));
        self.derive(
            "KTABLE-MAPVALUES",
            f,
            crate::kstream::same_serde(&self.value),
        )
    }

    fn derive<V2: Data>(
        &self,
        prefix: &str,
        factory: crate::topology::NodeFactory,
        value: Option<SerdeRef<V2>>,
    ) -> KTable<K, V2> {
        let node = self
            .state
            .borrow_mut()
            .processor(prefix, factory, self.node, Vec::new());
        KTable::new(self.state.clone(), node, None, self.key.clone(), value)
    }

    /// The table's updates as a stream: `Some(value)` for an upsert, `None` for a delete.
    pub fn to_stream(&self) -> KStream<K, Option<V>> {
        let node = self.state.borrow_mut().processor(
            "KTABLE-TOSTREAM",
            ops::table::to_stream::<V>(),
            self.node,
            Vec::new(),
        );
        KStream::new(
            self.state.clone(),
            node,
            self.key.clone(),
            self.value.clone().map(Serdes::nullable),
            false,
        )
    }

    /// Writes the table's updates to `topic` (deletes as tombstones).
    pub fn to(&self, topic: &str, produced: Produced<K, V>) {
        let (Some(k), Some(v)) = (
            produced.key.or(self.key.clone()),
            produced.value.or(self.value.clone()),
        ) else {
            self.state.borrow_mut().error(format!(
                "writing to topic {topic:?} needs key and value serdes: give them with Produced::with"
            ));
            return;
        };
        let stream = self.to_stream();
        let mut st = self.state.borrow_mut();
        st.sink(
            stream.node,
            crate::topology::TopicName::External(topic.to_owned()),
            encoder(k, Serdes::nullable(v)),
        );
    }
}
