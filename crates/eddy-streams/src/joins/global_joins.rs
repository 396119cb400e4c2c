//! Global tables and the stream-globaltable join (Kafka's `GlobalKTable` and
//! `KStream#join(GlobalKTable, KeyValueMapper, ValueJoiner)`). A global table holds every
//! partition of its topic on every instance, so a stream joins it on any key it computes
//! from its records, with no repartitioning and no co-partitioning; the price is a full
//! copy per instance. As in Kafka, the join is not time-synchronized: a record joins the
//! table as it is when the record is processed.

use std::marker::PhantomData;
use std::sync::Arc;

use super::{BOTH_SIDES, LEFT_SIDE};
use crate::error::Result;
use crate::kstream::KStream;
use crate::ops::join::Joiner;
use crate::processor::{Context, Node};
use crate::record::Record;
use crate::state::KeyValueStore;
use crate::topology::NodeKind;
use crate::value::{Data, Value};

/// A global table: see [`crate::StreamsBuilder::global_table`].
pub struct GlobalKTable<K, V> {
    pub(crate) store: String,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for GlobalKTable<K, V> {
    fn clone(&self) -> Self {
        GlobalKTable {
            store: self.store.clone(),
            _types: PhantomData,
        }
    }
}

impl<K, V> GlobalKTable<K, V> {
    pub(crate) fn new(store: String) -> Self {
        GlobalKTable {
            store,
            _types: PhantomData,
        }
    }

    /// The name of its store (queryable like any key-value store).
    pub fn store_name(&self) -> &str {
        &self.store
    }
}

type KeySelector<K, V, KG> = Arc<dyn Fn(&K, &V) -> KG + Send + Sync>;

impl<K: Data, V: Data> KStream<K, V> {
    /// Inner join with a global table: each record looks up `key_selector(key, value)` in
    /// `table` and joins the row it finds; a record without a row is dropped. The result
    /// keeps the stream's key.
    pub fn join_global<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        key_selector: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        joiner: impl Fn(&V, &VG) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        let joiner: Joiner<V, VG, VR> =
            Arc::new(move |l, r| joiner(l.expect(BOTH_SIDES), r.expect(BOTH_SIDES)));
        self.global_join(table, Arc::new(key_selector), joiner, false)
    }

    /// Left join with a global table: as [`KStream::join_global`], but a record without a
    /// row joins `None`.
    pub fn left_join_global<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        key_selector: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VG>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        let joiner: Joiner<V, VG, VR> = Arc::new(move |l, r| joiner(l.expect(LEFT_SIDE), r));
        self.global_join(table, Arc::new(key_selector), joiner, true)
    }

    fn global_join<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        key_selector: KeySelector<K, V, KG>,
        joiner: Joiner<V, VG, VR>,
        left: bool,
    ) -> KStream<K, VR> {
        let state = self.state.clone();
        let mut st = state.borrow_mut();
        let name = st.name(if left {
            "KSTREAM-LEFTJOIN"
        } else {
            "KSTREAM-JOIN"
        });
        let store = table.store.clone();
        let factory: crate::topology::NodeFactory = Arc::new(move || {
            Box::new(GlobalJoinNode::<K, V, KG, VG, VR> {
                store: store.clone(),
                table: None,
                key_selector: key_selector.clone(),
                joiner: joiner.clone(),
                left,
            })
        });
        let node = st.add(name, NodeKind::Processor(factory), &[self.node], Vec::new());
        st.connect_global(node, &table.store);
        drop(st);
        // No repartition happened: a key change before the join still needs one later.
        KStream::new(
            state,
            node,
            self.key.clone(),
            None,
            self.repartition_required,
        )
    }
}

struct GlobalJoinNode<K, V, KG, VG, VR> {
    store: String,
    table: Option<KeyValueStore<KG, VG>>,
    key_selector: KeySelector<K, V, KG>,
    joiner: Joiner<V, VG, VR>,
    left: bool,
}

impl<K: Data, V: Data, KG: Data, VG: Data, VR: Data> Node for GlobalJoinNode<K, V, KG, VG, VR> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.table = Some(ctx.key_value_store(&self.store)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let table = self.table.as_ref().expect("initialized");
        let value: V = record.value.take();
        let lookup = (self.key_selector)(record.key.get::<K>(), &value);
        let row = table.get(&lookup)?;
        if row.is_none() && !self.left {
            return Ok(());
        }
        ctx.forward(Record {
            key: record.key,
            value: Value::new((self.joiner)(Some(&value), row.as_ref())),
            timestamp_ms: record.timestamp_ms,
            headers: record.headers,
        })
    }
}
