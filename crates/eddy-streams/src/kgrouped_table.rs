//! `KGroupedTable`: a table re-grouped by a new key, for aggregation with an adder and a
//! subtractor (Kafka's `KTable.groupBy(..).aggregate(init, adder, subtractor)`).
//!
//! Each change of a row becomes up to two records keyed by the new key: the old value, to be
//! subtracted from its group, then the new value, to be added to its group. They travel
//! through a repartition topic (so every group meets in one task, the subtraction before
//! the addition) and are folded by an ordinary stream aggregation.

use std::sync::Arc;

use bytes::Bytes;

use crate::kgrouped::KGroupedStream;
use crate::kstream::KStream;
use crate::ktable::{Change, KTable};
use crate::params::{Grouped, Materialized};
use crate::record::Record;
use crate::serdes::{Serde, SerdeError, SerdeRef};
use crate::value::{Data, Value};

/// A value to add to, or subtract from, its group.
#[derive(Debug, Clone, PartialEq)]
pub struct TableOp<V> {
    pub value: V,
    pub add: bool,
}

/// A [`TableOp`] on the wire: a flag byte (1 add, 0 subtract), then the value's bytes.
struct TableOpSerde<V> {
    inner: SerdeRef<V>,
}

impl<V: Data> Serde<TableOp<V>> for TableOpSerde<V> {
    fn serialize(&self, topic: &str, op: &TableOp<V>) -> Result<Option<Bytes>, SerdeError> {
        let mut out = vec![u8::from(op.add)];
        if let Some(b) = self.inner.serialize(topic, &op.value)? {
            out.extend_from_slice(&b);
        }
        Ok(Some(Bytes::from(out)))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<TableOp<V>, SerdeError> {
        let Some((flag, rest)) = data.and_then(<[u8]>::split_first) else {
            return Err(SerdeError {
                serde: "table-op",
                topic: topic.to_owned(),
                detail: "an empty record where a table update was expected".into(),
            });
        };
        let value = self
            .inner
            .deserialize(topic, (!rest.is_empty()).then_some(rest))?;
        Ok(TableOp {
            value,
            add: *flag == 1,
        })
    }
}

pub struct KGroupedTable<K, V> {
    grouped: KGroupedStream<K, TableOp<V>>,
}

impl<K: Data, V: Data> KTable<K, V> {
    /// Groups the table's rows by a new key (`selector` gives each row's new key and value).
    /// Needs the new key's and value's serdes: the updates are repartitioned.
    pub fn group_by<K2: Data, V2: Data>(
        &self,
        selector: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
        grouped: Grouped<K2, V2>,
    ) -> KGroupedTable<K2, V2> {
        let step = crate::ops::stateless::factory(move |ctx, record: Record| {
            let key: K = record.key.get::<K>().clone();
            let change: Change<V> = record.value.take();
            let ops = [(change.old, false), (change.new, true)];
            for (v, add) in ops {
                let Some(v) = v else { continue };
                let (k2, v2) = selector(&key, &v);
                ctx.forward(Record {
                    key: Value::new(k2),
                    value: Value::new(TableOp { value: v2, add }),
                    timestamp_ms: record.timestamp_ms,
                    headers: record.headers.clone(),
                })?;
            }
            Ok(())
        });
        let node = self
            .state
            .borrow_mut()
            .processor("KTABLE-SELECT", step, self.node, Vec::new());
        let op_serde: Option<SerdeRef<TableOp<V2>>> = grouped
            .value
            .clone()
            .map(|inner| Arc::new(TableOpSerde { inner }) as SerdeRef<TableOp<V2>>);
        let stream: KStream<K2, TableOp<V2>> = KStream::new(
            self.state.clone(),
            node,
            grouped.key.clone(),
            op_serde.clone(),
            true,
        );
        KGroupedTable {
            grouped: KGroupedStream::new(stream, grouped.key, op_serde, grouped.name, true),
        }
    }
}

impl<K: Data, V: Data> KGroupedTable<K, V> {
    /// Folds each group: `add` for a row that joins it, `subtract` for a row that leaves it
    /// (changed or deleted), starting from `init()`.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        add: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        subtract: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        materialized: Materialized<K, A>,
    ) -> KTable<K, A> {
        self.grouped.aggregate(
            init,
            move |k, op: TableOp<V>, acc| {
                if op.add {
                    add(k, op.value, acc)
                } else {
                    subtract(k, op.value, acc)
                }
            },
            materialized,
        )
    }

    /// Rows per group.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        let m = Materialized {
            value: materialized
                .value
                .clone()
                .or(Some(crate::serdes::Serdes::i64())),
            ..materialized
        };
        self.aggregate(|| 0, |_, _, n| n + 1, |_, _, n| n - 1, m)
    }
}
