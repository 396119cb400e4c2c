//! KTable operators. A table's updates travel as [`Change`]s (new and old value), so that
//! downstream operators can retract what the old value contributed.

use std::sync::Arc;

use crate::error::Result;
use crate::ktable::Change;
use crate::processor::{Context, Node};
use crate::record::Record;
use crate::state::KeyValueStore;
use crate::topology::NodeFactory;
use crate::value::{Data, Value};

/// Materializes a topic as a table: the latest value per key; a null value deletes.
struct TableSource<K, V> {
    store_name: String,
    store: Option<KeyValueStore<K, V>>,
}

impl<K: Data, V: Data> Node for TableSource<K, V> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.store = Some(ctx.key_value_store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let store = self.store.as_ref().expect("initialized");
        let key: K = record.key.take();
        let new: Option<V> = record.value.take();
        let old = store.get(&key)?;
        match &new {
            Some(v) => store.put(&key, v)?,
            None if old.is_some() => store.delete(&key)?,
            // A tombstone for a key the table does not have changes nothing.
            None => return Ok(()),
        }
        ctx.forward(Record {
            key: Value::new(key),
            value: Value::new(Change { new, old }),
            timestamp_ms: record.timestamp_ms,
            headers: record.headers,
        })
    }
}

pub(crate) fn source<K: Data, V: Data>(store_name: String) -> NodeFactory {
    Arc::new(move || {
        Box::new(TableSource::<K, V> {
            store_name: store_name.clone(),
            store: None,
        })
    })
}

/// Applies `f` to both sides of every change; forwards unless both come out empty.
pub(crate) fn map_change<K: Data, V: Data, V2: Data>(
    f: impl Fn(&K, V) -> Option<V2> + Send + Sync + 'static,
) -> NodeFactory {
    crate::ops::stateless::factory(move |ctx, record| {
        let key = record.key.get::<K>().clone();
        let change: Change<V> = record.value.take();
        let new = change.new.and_then(|v| f(&key, v));
        let old = change.old.and_then(|v| f(&key, v));
        if new.is_none() && old.is_none() {
            return Ok(());
        }
        ctx.forward(Record {
            key: record.key,
            value: Value::new(Change { new, old }),
            timestamp_ms: record.timestamp_ms,
            headers: record.headers,
        })
    })
}

/// A table's changes as a stream of its new values (`None`: the key was deleted).
pub(crate) fn to_stream<V: Data>() -> NodeFactory {
    crate::ops::stateless::factory(move |ctx, record| {
        let change: Change<V> = record.value.take();
        ctx.forward(Record {
            key: record.key,
            value: Value::new(change.new),
            timestamp_ms: record.timestamp_ms,
            headers: record.headers,
        })
    })
}
