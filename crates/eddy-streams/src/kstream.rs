//! `KStream`: a record stream. Every record is an independent event.

use std::collections::BTreeMap;

use crate::builder::{encoder, Shared};
use crate::kgrouped::KGroupedStream;
use crate::ops::stateless;
use crate::params::{Grouped, Produced, Repartitioned};
use crate::processor::Processor;
use crate::record::Record;
use crate::serdes::SerdeRef;
use crate::topology::TopicName;
use crate::value::{Data, Value};
use crate::StreamsBuilder;

pub struct KStream<K, V> {
    pub(crate) state: Shared,
    pub(crate) node: usize,
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V>>,
    /// The key was changed since the last partitioning: grouping or joining must
    /// repartition first, as Kafka Streams does.
    pub(crate) repartition_required: bool,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream {
            state: self.state.clone(),
            node: self.node,
            key: self.key.clone(),
            value: self.value.clone(),
            repartition_required: self.repartition_required,
        }
    }
}

/// A serde of `A` as one of `B` when they are the same type: an operator that keeps the
/// type (a `map_values` from `i64` to `i64`) keeps the serde.
pub(crate) fn same_serde<A: Data, B: Data>(s: &Option<SerdeRef<A>>) -> Option<SerdeRef<B>> {
    let any: Box<dyn std::any::Any> = Box::new(s.clone());
    any.downcast::<Option<SerdeRef<B>>>().ok().and_then(|b| *b)
}

impl<K: Data, V: Data> KStream<K, V> {
    pub(crate) fn new(
        state: Shared,
        node: usize,
        key: Option<SerdeRef<K>>,
        value: Option<SerdeRef<V>>,
        repartition_required: bool,
    ) -> Self {
        KStream {
            state,
            node,
            key,
            value,
            repartition_required,
        }
    }

    fn derive<K2: Data, V2: Data>(
        &self,
        prefix: &str,
        factory: crate::topology::NodeFactory,
        key: Option<SerdeRef<K2>>,
        value: Option<SerdeRef<V2>>,
        key_changed: bool,
    ) -> KStream<K2, V2> {
        let node = self
            .state
            .borrow_mut()
            .processor(prefix, factory, self.node, Vec::new());
        KStream::new(
            self.state.clone(),
            node,
            key,
            value,
            self.repartition_required || key_changed,
        )
    }

    /// Keeps the records for which `predicate` holds.
    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<K, V> {
        let f = stateless::factory(move |ctx, r: Record| {
            if predicate(r.key.get::<K>(), r.value.get::<V>()) {
                ctx.forward(r)?;
            }
            Ok(())
        });
        self.derive(
            "KSTREAM-FILTER",
            f,
            self.key.clone(),
            self.value.clone(),
            false,
        )
    }

    /// Drops the records for which `predicate` holds.
    pub fn filter_not(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<K, V> {
        self.filter(move |k, v| !predicate(k, v))
    }

    /// A new key and value for each record (marks the stream for repartitioning).
    pub fn map<K2: Data, V2: Data>(
        &self,
        f: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let step = stateless::factory(move |ctx, r: Record| {
            let (k, v) = f(r.key.take(), r.value.take());
            ctx.forward(Record {
                key: Value::new(k),
                value: Value::new(v),
                timestamp_ms: r.timestamp_ms,
                headers: r.headers,
            })
        });
        let (key, value) = (same_serde(&self.key), same_serde(&self.value));
        self.derive("KSTREAM-MAP", step, key, value, true)
    }

    /// A new value for each record; the key stays (no repartitioning).
    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        self.map_values_with_key(move |_, v| f(v))
    }

    pub fn map_values_with_key<V2: Data>(
        &self,
        f: impl Fn(&K, V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        let step = stateless::factory(move |ctx, r: Record| {
            let v = f(r.key.get::<K>(), r.value.take());
            ctx.forward(Record {
                key: r.key,
                value: Value::new(v),
                timestamp_ms: r.timestamp_ms,
                headers: r.headers,
            })
        });
        self.derive(
            "KSTREAM-MAPVALUES",
            step,
            self.key.clone(),
            same_serde(&self.value),
            false,
        )
    }

    /// Zero or more records for each record (marks the stream for repartitioning).
    pub fn flat_map<K2: Data, V2: Data, I>(
        &self,
        f: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)>,
    {
        let step = stateless::factory(move |ctx, r: Record| {
            for (k, v) in f(r.key.take(), r.value.take()) {
                ctx.forward(Record {
                    key: Value::new(k),
                    value: Value::new(v),
                    timestamp_ms: r.timestamp_ms,
                    headers: r.headers.clone(),
                })?;
            }
            Ok(())
        });
        let (key, value) = (same_serde(&self.key), same_serde(&self.value));
        self.derive("KSTREAM-FLATMAP", step, key, value, true)
    }

    /// Zero or more values for each record, under the same key.
    pub fn flat_map_values<V2: Data, I>(
        &self,
        f: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> KStream<K, V2>
    where
        I: IntoIterator<Item = V2>,
    {
        let step = stateless::factory(move |ctx, r: Record| {
            let key = r.key;
            for v in f(r.value.take()) {
                ctx.forward(Record {
                    key: key.clone(),
                    value: Value::new(v),
                    timestamp_ms: r.timestamp_ms,
                    headers: r.headers.clone(),
                })?;
            }
            Ok(())
        });
        self.derive(
            "KSTREAM-FLATMAPVALUES",
            step,
            self.key.clone(),
            same_serde(&self.value),
            false,
        )
    }

    /// A new key computed from each record (marks the stream for repartitioning).
    pub fn select_key<K2: Data>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<K2, V> {
        let step = stateless::factory(move |ctx, r: Record| {
            let k = f(r.key.get::<K>(), r.value.get::<V>());
            ctx.forward(Record {
                key: Value::new(k),
                ..r
            })
        });
        self.derive(
            "KSTREAM-KEY-SELECT",
            step,
            same_serde(&self.key),
            self.value.clone(),
            true,
        )
    }

    /// Calls `f` on each record and passes it on unchanged.
    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        let step = stateless::factory(move |ctx, r: Record| {
            f(r.key.get::<K>(), r.value.get::<V>());
            ctx.forward(r)
        });
        self.derive(
            "KSTREAM-PEEK",
            step,
            self.key.clone(),
            self.value.clone(),
            false,
        )
    }

    /// Calls `f` on each record (terminal).
    pub fn foreach(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) {
        let step = stateless::factory(move |_, r: Record| {
            f(r.key.get::<K>(), r.value.get::<V>());
            Ok(())
        });
        let _ = self.derive::<K, V>("KSTREAM-FOREACH", step, None, None, false);
    }

    /// The records of both streams, in processing order.
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        let mut st = self.state.borrow_mut();
        let name = st.name("KSTREAM-MERGE");
        let node = st.add(
            name,
            crate::topology::NodeKind::Processor(stateless::factory(|ctx, r| ctx.forward(r))),
            &[self.node, other.node],
            Vec::new(),
        );
        drop(st);
        KStream::new(
            self.state.clone(),
            node,
            self.key.clone(),
            self.value.clone(),
            self.repartition_required || other.repartition_required,
        )
    }

    /// Splits the stream: each record goes to the first branch whose predicate holds
    /// (Kafka's `split().branch(..).defaultBranch()`).
    pub fn split(&self) -> BranchedKStream<K, V> {
        BranchedKStream {
            parent: self.clone(),
            branches: Vec::new(),
        }
    }

    /// Writes the stream to `topic`.
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
        self.state.borrow_mut().sink(
            self.node,
            TopicName::External(topic.to_owned()),
            encoder(k, v),
        );
    }

    /// Sends the stream through an internal topic `<application.id>-<name>-repartition`,
    /// partitioned by the current key.
    pub fn repartition(&self, r: Repartitioned<K, V>) -> KStream<K, V> {
        let mut st = self.state.borrow_mut();
        let (Some(k), Some(v)) = (r.key.or(self.key.clone()), r.value.or(self.value.clone()))
        else {
            st.error(
                "repartition needs key and value serdes: give them with Repartitioned::with".into(),
            );
            return self.clone();
        };
        let name = r.name.unwrap_or_else(|| st.name("KSTREAM-REPARTITION"));
        let node = st.repartition(self.node, &name, k.clone(), v.clone(), r.partitions);
        drop(st);
        KStream::new(self.state.clone(), node, Some(k), Some(v), false)
    }

    /// Runs a custom [`Processor`] made by `supplier` for each task, connected to `stores`.
    pub fn process<KO: Data, VO: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<KO, VO>
    where
        P: Processor<K, V, KO, VO> + 'static,
    {
        let factory = StreamsBuilder::typed_processor::<K, V, KO, VO, P>(supplier);
        let node = self.state.borrow_mut().processor(
            "KSTREAM-PROCESSOR",
            factory,
            self.node,
            stores.iter().map(|s| s.to_string()).collect(),
        );
        KStream::new(self.state.clone(), node, None, None, true)
    }

    /// As [`Self::process`], for a processor that keeps each record's key (Kafka's
    /// `processValues`): the stream keeps its key serde and is not marked for
    /// repartitioning. The processor must forward records with the key it was given.
    pub fn process_values<VO: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<K, VO>
    where
        P: Processor<K, V, K, VO> + 'static,
    {
        let factory = StreamsBuilder::typed_processor::<K, V, K, VO, P>(supplier);
        let node = self.state.borrow_mut().processor(
            "KSTREAM-PROCESSVALUES",
            factory,
            self.node,
            stores.iter().map(|s| s.to_string()).collect(),
        );
        KStream::new(
            self.state.clone(),
            node,
            self.key.clone(),
            None,
            self.repartition_required,
        )
    }

    /// Groups by the current key, for aggregation.
    pub fn group_by_key(&self, grouped: Grouped<K, V>) -> KGroupedStream<K, V> {
        KGroupedStream::new(
            self.clone(),
            grouped.key.or(self.key.clone()),
            grouped.value.or(self.value.clone()),
            grouped.name,
            self.repartition_required,
        )
    }

    /// Groups by a new key computed from each record (through a repartition topic).
    pub fn group_by<K2: Data>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        grouped: Grouped<K2, V>,
    ) -> KGroupedStream<K2, V> {
        let keyed = self.select_key(f);
        KGroupedStream::new(
            keyed,
            grouped.key,
            grouped.value.or(self.value.clone()),
            grouped.name,
            true,
        )
    }
}

/// A stream being split into branches.
type Predicate<K, V> = Box<dyn Fn(&K, &V) -> bool + Send + Sync>;

pub struct BranchedKStream<K, V> {
    parent: KStream<K, V>,
    branches: Vec<(String, Predicate<K, V>)>,
}

impl<K: Data, V: Data> BranchedKStream<K, V> {
    pub fn branch(
        mut self,
        name: &str,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.branches.push((name.to_owned(), Box::new(predicate)));
        self
    }

    /// The branches by name; with `default_branch`, records no predicate took go to it.
    pub fn build(self, default_branch: Option<&str>) -> BTreeMap<String, KStream<K, V>> {
        let mut st = self.parent.state.borrow_mut();
        let split_name = st.name("KSTREAM-BRANCH");
        let names: Vec<String> = self
            .branches
            .iter()
            .map(|(n, _)| format!("{split_name}-{n}"))
            .chain(default_branch.map(|d| format!("{split_name}-{d}")))
            .collect();
        let preds: Vec<_> = self.branches.into_iter().map(|(_, p)| p).collect();
        let child_names = names.clone();
        let has_default = default_branch.is_some();
        let step = stateless::factory(move |ctx, r: Record| {
            let pick = preds
                .iter()
                .position(|p| p(r.key.get::<K>(), r.value.get::<V>()))
                .or(has_default.then_some(preds.len()));
            match pick {
                Some(i) => ctx.forward_to(&child_names[i], r),
                None => Ok(()),
            }
        });
        let split = st.add(
            split_name.clone(),
            crate::topology::NodeKind::Processor(step),
            &[self.parent.node],
            Vec::new(),
        );
        let mut out = BTreeMap::new();
        let labels = names.iter().map(|n| n[split_name.len() + 1..].to_owned());
        for (name, label) in names.iter().zip(labels) {
            let node = st.add(
                name.clone(),
                crate::topology::NodeKind::Processor(stateless::factory(|ctx, r| ctx.forward(r))),
                &[split],
                Vec::new(),
            );
            out.insert(
                label,
                KStream::new(
                    self.parent.state.clone(),
                    node,
                    self.parent.key.clone(),
                    self.parent.value.clone(),
                    self.parent.repartition_required,
                ),
            );
        }
        out
    }
}
