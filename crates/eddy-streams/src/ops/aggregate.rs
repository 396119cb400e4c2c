//! Aggregation of a grouped stream into a table: count, reduce and aggregate are all
//! `aggregate` with different initializers and adders.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::error::Result;
use crate::ktable::Change;
use crate::processor::{Context, Node};
use crate::record::Record;
use crate::state::KeyValueStore;
use crate::topology::NodeFactory;
use crate::value::{Data, Value};

/// Folds a value into the key's aggregate (`None`: the key has none yet).
pub(crate) type Adder<K, V, A> = Arc<dyn Fn(&K, V, Option<A>) -> A + Send + Sync>;

struct AggregateNode<K, V, A> {
    store_name: String,
    store: Option<KeyValueStore<K, A>>,
    add: Adder<K, V, A>,
    _v: PhantomData<fn(V)>,
}

impl<K: Data, V: Data, A: Data> Node for AggregateNode<K, V, A> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.store = Some(ctx.key_value_store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let store = self.store.as_ref().expect("initialized");
        let key: K = record.key.take();
        let old = store.get(&key)?;
        let new = (self.add)(&key, record.value.take(), old.clone());
        store.put(&key, &new)?;
        ctx.forward(Record {
            key: Value::new(key),
            value: Value::new(Change {
                new: Some(new),
                old,
            }),
            timestamp_ms: record.timestamp_ms,
            headers: record.headers,
        })
    }
}

pub(crate) fn factory<K: Data, V: Data, A: Data>(
    store_name: String,
    add: Adder<K, V, A>,
) -> NodeFactory {
    Arc::new(move || {
        Box::new(AggregateNode::<K, V, A> {
            store_name: store_name.clone(),
            store: None,
            add: add.clone(),
            _v: PhantomData,
        })
    })
}
