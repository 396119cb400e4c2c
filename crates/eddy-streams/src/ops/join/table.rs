//! KTable-KTable joins, as Kafka's `KTableKTable{Inner,Left,Outer}Join`: one node under
//! each table; an update of one side looks the other side's current row up and forwards
//! the join result before and after as a [`Change`]. A result that stops existing (a row
//! deleted, an inner partner gone) is a `Change` with `new: None`: a tombstone downstream.
//!
//! Also the node that materializes a derived table (filter, map_values, a join result)
//! into a key-value store, so that joins can look it up.

use std::sync::Arc;

use crate::error::Result;
use crate::ktable::Change;
use crate::processor::{Context, Node};
use crate::record::Record;
use crate::state::KeyValueStore;
use crate::topology::NodeFactory;
use crate::value::{Data, Value};

/// The joiner with this side's value first.
pub(crate) type SideJoiner<VT, VO, VR> = Arc<dyn Fn(Option<&VT>, Option<&VO>) -> VR + Send + Sync>;

struct TableJoinNode<K, VT, VO, VR> {
    other_store: String,
    other: Option<KeyValueStore<K, VO>>,
    /// A row of this side without a partner still has a result (left side of a left
    /// join, both sides of an outer join).
    this_outer: bool,
    /// A row of the other side without a partner has a result.
    other_outer: bool,
    join: SideJoiner<VT, VO, VR>,
}

impl<K: Data, VT: Data, VO: Data, VR: Data> TableJoinNode<K, VT, VO, VR> {
    /// The join result for this side's value `this` (before or after the update).
    fn result(&self, this: Option<&VT>, other: Option<&VO>) -> Option<VR> {
        let exists = match (this, other) {
            (Some(_), Some(_)) => true,
            (Some(_), None) => self.this_outer,
            (None, Some(_)) => self.other_outer,
            (None, None) => false,
        };
        exists.then(|| (self.join)(this, other))
    }
}

impl<K: Data, VT: Data, VO: Data, VR: Data> Node for TableJoinNode<K, VT, VO, VR> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.other = Some(ctx.key_value_store(&self.other_store)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let other = self.other.as_ref().expect("initialized");
        let row = other.get(record.key.get::<K>())?;
        let change: Change<VT> = record.value.take();
        let new = self.result(change.new.as_ref(), row.as_ref());
        let old = self.result(change.old.as_ref(), row.as_ref());
        // Neither before nor after is there a result (an inner join without a partner):
        // nothing changed downstream.
        if new.is_none() && old.is_none() {
            return Ok(());
        }
        ctx.forward(Record {
            key: record.key,
            value: Value::new(Change { new, old }),
            timestamp_ms: record.timestamp_ms,
            headers: record.headers,
        })
    }
}

pub(crate) fn join_factory<K: Data, VT: Data, VO: Data, VR: Data>(
    other_store: String,
    this_outer: bool,
    other_outer: bool,
    join: SideJoiner<VT, VO, VR>,
) -> NodeFactory {
    Arc::new(move || {
        Box::new(TableJoinNode::<K, VT, VO, VR> {
            other_store: other_store.clone(),
            other: None,
            this_outer,
            other_outer,
            join: join.clone(),
        })
    })
}

/// Writes a table's changes into its own store and passes them on.
struct MaterializeNode<K, V> {
    store_name: String,
    store: Option<KeyValueStore<K, V>>,
}

impl<K: Data, V: Data> Node for MaterializeNode<K, V> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.store = Some(ctx.key_value_store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let store = self.store.as_ref().expect("initialized");
        let key = record.key.get::<K>();
        let change = record.value.get::<Change<V>>();
        match &change.new {
            Some(v) => store.put(key, v)?,
            None if change.old.is_some() => store.delete(key)?,
            None => {}
        }
        ctx.forward(record)
    }
}

pub(crate) fn materialize_factory<K: Data, V: Data>(store_name: String) -> NodeFactory {
    Arc::new(move || {
        Box::new(MaterializeNode::<K, V> {
            store_name: store_name.clone(),
            store: None,
        })
    })
}
