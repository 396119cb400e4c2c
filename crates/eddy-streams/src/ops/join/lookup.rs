//! KStream-KTable joins: each stream record looks its key up in the table's store and
//! joins the row it finds there now (inner: only when there is one). Table updates only
//! change the store; they never produce output. Both read the store in one task, which is
//! what puts the stream and the table in one sub-topology (co-partitioned).

use std::sync::Arc;

use crate::error::Result;
use crate::ops::join::Joiner;
use crate::processor::{Context, Node};
use crate::record::Record;
use crate::state::KeyValueStore;
use crate::topology::NodeFactory;
use crate::value::{Data, Value};

struct LookupJoinNode<K, V, VT, VR> {
    table_store: String,
    table: Option<KeyValueStore<K, VT>>,
    /// Left join: a record without a row joins `None`.
    left: bool,
    joiner: Joiner<V, VT, VR>,
}

impl<K: Data, V: Data, VT: Data, VR: Data> Node for LookupJoinNode<K, V, VT, VR> {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.table = Some(ctx.key_value_store(&self.table_store)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let table = self.table.as_ref().expect("initialized");
        let row = table.get(record.key.get::<K>())?;
        if row.is_none() && !self.left {
            return Ok(());
        }
        let value: V = record.value.take();
        ctx.forward(Record {
            key: record.key,
            value: Value::new((self.joiner)(Some(&value), row.as_ref())),
            timestamp_ms: record.timestamp_ms,
            headers: record.headers,
        })
    }
}

pub(crate) fn factory<K: Data, V: Data, VT: Data, VR: Data>(
    table_store: String,
    left: bool,
    joiner: Joiner<V, VT, VR>,
) -> NodeFactory {
    Arc::new(move || {
        Box::new(LookupJoinNode::<K, V, VT, VR> {
            table_store: table_store.clone(),
            table: None,
            left,
            joiner: joiner.clone(),
        })
    })
}
