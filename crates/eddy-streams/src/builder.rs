//! `StreamsBuilder`: where a topology is declared with the DSL.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::error::{Result, StreamsError};
use crate::kstream::KStream;
use crate::ktable::KTable;
use crate::params::{Consumed, Materialized};
use crate::processor::{Processor, TypedNode};
use crate::serdes::SerdeRef;
use crate::topology::{
    Decoder, Encoder, GlobalStore, NodeFactory, NodeKind, NodeSpec, SinkSpec, SourceSpec,
    StoreKind, StoreSpec, TopicName, Topology,
};
use crate::value::{Data, Value};

/// The topology under construction, shared by the builder and the DSL handles it gave out.
pub(crate) struct BuilderState {
    nodes: Vec<NodeSpec>,
    stores: BTreeMap<String, StoreSpec>,
    global_stores: BTreeMap<String, GlobalStore>,
    repartition: Vec<(TopicName, Option<i32>)>,
    /// Kafka's naming counter: `KSTREAM-MAP-0000000003`.
    index: usize,
    errors: Vec<String>,
}

pub(crate) type Shared = Rc<RefCell<BuilderState>>;

impl BuilderState {
    pub fn name(&mut self, prefix: &str) -> String {
        let n = format!("{prefix}-{:010}", self.index);
        self.index += 1;
        n
    }

    /// Adds a node below `parents`; returns its index.
    pub fn add(
        &mut self,
        name: String,
        kind: NodeKind,
        parents: &[usize],
        stores: Vec<String>,
    ) -> usize {
        let id = self.nodes.len();
        self.nodes.push(NodeSpec {
            name,
            kind,
            children: Vec::new(),
            stores,
            global_stores: Vec::new(),
        });
        for &p in parents {
            self.nodes[p].children.push(id);
        }
        id
    }

    /// Lets node `node` read global store `store`.
    pub fn connect_global(&mut self, node: usize, store: &str) {
        self.nodes[node].global_stores.push(store.to_owned());
    }

    pub fn processor(
        &mut self,
        prefix: &str,
        factory: NodeFactory,
        parent: usize,
        stores: Vec<String>,
    ) -> usize {
        let name = self.name(prefix);
        self.add(name, NodeKind::Processor(factory), &[parent], stores)
    }

    pub fn add_store(&mut self, spec: StoreSpec) {
        if self.stores.contains_key(&spec.name) {
            self.errors
                .push(format!("two state stores are named {:?}", spec.name));
        }
        self.stores.insert(spec.name.clone(), spec);
    }

    pub fn error(&mut self, message: String) {
        self.errors.push(message);
    }

    /// A sink to `topic` below `parent`.
    pub fn sink(&mut self, parent: usize, topic: TopicName, encode: Encoder) -> usize {
        let name = self.name("KSTREAM-SINK");
        self.add(
            name,
            NodeKind::Sink(SinkSpec { topic, encode }),
            &[parent],
            Vec::new(),
        )
    }

    /// A source of `topics`.
    pub fn source(
        &mut self,
        topics: Vec<TopicName>,
        key: Decoder,
        value: Decoder,
        timestamp: Option<crate::topology::TimestampExtractor>,
    ) -> usize {
        let name = self.name("KSTREAM-SOURCE");
        self.add(
            name,
            NodeKind::Source(SourceSpec {
                topics,
                key,
                value,
                timestamp,
            }),
            &[],
            Vec::new(),
        )
    }

    /// Routes `parent`'s records through the internal topic `<name>-repartition`; returns
    /// the source node that reads them back (in another sub-topology).
    pub fn repartition<K: Data, V: Data>(
        &mut self,
        parent: usize,
        name: &str,
        key: SerdeRef<K>,
        value: SerdeRef<V>,
        partitions: Option<i32>,
    ) -> usize {
        let topic = TopicName::Internal(format!("{name}-repartition"));
        if self.repartition.iter().any(|(t, _)| *t == topic) {
            self.errors.push(format!(
                "two repartition topics are named {topic}; name the groupings apart"
            ));
        }
        self.repartition.push((topic.clone(), partitions));
        self.sink(parent, topic.clone(), encoder(key.clone(), value.clone()));
        self.source(vec![topic], decoder(key), decoder(value), None)
    }
}

pub(crate) fn decoder<T: Data>(serde: SerdeRef<T>) -> Decoder {
    Arc::new(move |topic, data| Ok(Value::new(serde.deserialize(topic, data)?)))
}

pub(crate) fn encoder<K: Data, V: Data>(key: SerdeRef<K>, value: SerdeRef<V>) -> Encoder {
    Arc::new(move |topic, r| {
        Ok((
            key.serialize(topic, r.key.get::<K>())?,
            value.serialize(topic, r.value.get::<V>())?,
        ))
    })
}

/// Declares a topology.
///
/// ```
/// use eddy_streams::{Consumed, Materialized, Produced, Serdes, StreamsBuilder, Grouped};
///
/// let builder = StreamsBuilder::new();
/// builder
///     .stream(&["text"], Consumed::with(Serdes::unit(), Serdes::string()))
///     .flat_map_values(|line: String| {
///         line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>()
///     })
///     .group_by(|_, word| word.clone(), Grouped::with(Serdes::string(), Serdes::string()))
///     .count(Materialized::named("counts"))
///     .to_stream()
///     .to("word-counts", Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())));
/// let topology = builder.build().unwrap();
/// assert_eq!(topology.subtopologies().len(), 2);
/// ```
pub struct StreamsBuilder {
    state: Shared,
}

impl Default for StreamsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamsBuilder {
    pub fn new() -> StreamsBuilder {
        StreamsBuilder {
            state: Rc::new(RefCell::new(BuilderState {
                nodes: Vec::new(),
                stores: BTreeMap::new(),
                global_stores: BTreeMap::new(),
                repartition: Vec::new(),
                index: 0,
                errors: Vec::new(),
            })),
        }
    }

    /// A stream of the records of `topics`.
    pub fn stream<K: Data, V: Data>(
        &self,
        topics: &[&str],
        consumed: Consumed<K, V>,
    ) -> KStream<K, V> {
        let topics = topics
            .iter()
            .map(|t| TopicName::External(t.to_string()))
            .collect();
        let node = self.state.borrow_mut().source(
            topics,
            decoder(consumed.key.clone()),
            decoder(consumed.value.clone()),
            consumed.timestamp.clone(),
        );
        KStream::new(
            self.state.clone(),
            node,
            Some(consumed.key),
            Some(consumed.value),
            false,
        )
    }

    /// A table of the latest value per key of `topic`; a null value deletes the key.
    pub fn table<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let mut st = self.state.borrow_mut();
        let source = st.source(
            vec![TopicName::External(topic.to_owned())],
            decoder(consumed.key.clone()),
            decoder(crate::serdes::Serdes::nullable(consumed.value.clone())),
            consumed.timestamp.clone(),
        );
        let store = materialized
            .name
            .clone()
            .unwrap_or_else(|| st.name(&format!("{topic}-STATE-STORE")));
        st.add_store(StoreSpec {
            name: store.clone(),
            kind: StoreKind::KeyValue,
            persistent: materialized.persistent,
            logged: materialized.logged,
            serdes: Arc::new((
                materialized.key.clone().unwrap_or(consumed.key.clone()),
                materialized.value.clone().unwrap_or(consumed.value.clone()),
            )),
        });
        let node = st.processor(
            "KTABLE-SOURCE",
            crate::ops::table::source::<K, V>(store.clone()),
            source,
            vec![store.clone()],
        );
        drop(st);
        KTable::new(
            self.state.clone(),
            node,
            Some(store),
            Some(consumed.key),
            Some(consumed.value),
        )
    }

    /// A global table (Kafka's `GlobalKTable`): every partition of `topic`, kept in an
    /// in-memory store on every instance and updated as the topic is written; the topic is
    /// its own changelog. Streams join it with [`KStream::join_global`] on a key they
    /// compute, with no co-partitioning needed. A null value deletes the key.
    pub fn global_table<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> crate::joins::GlobalKTable<K, V> {
        let mut st = self.state.borrow_mut();
        let store = materialized
            .name
            .clone()
            .unwrap_or_else(|| st.name(&format!("{topic}-STATE-STORE")));
        let spec = StoreSpec {
            name: store.clone(),
            kind: StoreKind::KeyValue,
            persistent: false,
            logged: false,
            serdes: Arc::new((
                materialized.key.clone().unwrap_or(consumed.key.clone()),
                materialized.value.clone().unwrap_or(consumed.value.clone()),
            )),
        };
        if st.stores.contains_key(&store) || st.global_stores.contains_key(&store) {
            st.error(format!("state store {store:?} is declared twice"));
        }
        st.global_stores.insert(
            store.clone(),
            GlobalStore {
                topic: topic.to_owned(),
                spec,
            },
        );
        crate::joins::GlobalKTable::new(store)
    }

    /// Declares a key-value store for processors added with [`KStream::process`].
    pub fn add_key_value_store<K: Data, V: Data>(
        &self,
        name: &str,
        key: SerdeRef<K>,
        value: SerdeRef<V>,
        persistent: bool,
        logged: bool,
    ) {
        self.state.borrow_mut().add_store(StoreSpec {
            name: name.to_owned(),
            kind: StoreKind::KeyValue,
            persistent,
            logged,
            serdes: Arc::new((key, value)),
        });
    }

    /// Checks and freezes the topology.
    pub fn build(self) -> Result<Topology> {
        // DSL handles may still hold the shared state; the topology gets a copy.
        let state = self.state.borrow();
        if !state.errors.is_empty() {
            return Err(StreamsError::Config(state.errors.join("; ")));
        }
        for n in &state.nodes {
            for s in &n.global_stores {
                if !state.global_stores.contains_key(s) {
                    return Err(StreamsError::Config(format!(
                        "processor {:?} reads global store {s:?}, which was never added",
                        n.name
                    )));
                }
            }
            for s in &n.stores {
                if !state.stores.contains_key(s) {
                    return Err(StreamsError::Config(format!(
                        "processor {:?} is connected to state store {s:?}, which was never added",
                        n.name
                    )));
                }
            }
        }
        Ok(Topology::new(
            state.nodes.clone(),
            state.stores.clone(),
            state.global_stores.clone(),
            state.repartition.clone(),
        ))
    }

    pub(crate) fn typed_processor<K, V, KO, VO, P>(
        supplier: impl Fn() -> P + Send + Sync + 'static,
    ) -> NodeFactory
    where
        P: Processor<K, V, KO, VO> + 'static,
        K: Data,
        V: Data,
        KO: Data,
        VO: Data,
    {
        Arc::new(move || {
            Box::new(TypedNode {
                processor: supplier(),
                _types: std::marker::PhantomData,
            })
        })
    }
}
