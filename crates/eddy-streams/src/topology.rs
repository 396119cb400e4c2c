//! A built topology: processor nodes, their edges, state stores, and how they split into
//! sub-topologies (parts connected only through topics: each runs as its own tasks).
//!
//! Built by [`crate::StreamsBuilder`] (the DSL) or by hand through
//! [`crate::KStream::process`]; instantiated once per task.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::processor::Node;
use crate::record::Record;
use crate::serdes::SerdeError;
use crate::value::Value;

/// Makes a fresh instance of a node for one task.
pub(crate) type NodeFactory = Arc<dyn Fn() -> Box<dyn Node> + Send + Sync>;
/// Bytes of a topic record → a key or value.
pub(crate) type Decoder =
    Arc<dyn Fn(&str, Option<&[u8]>) -> Result<Value, SerdeError> + Send + Sync>;
/// A record → key and value bytes for a topic.
pub(crate) type Encoder =
    Arc<dyn Fn(&str, &Record) -> Result<(Option<Bytes>, Option<Bytes>), SerdeError> + Send + Sync>;
/// The timestamp of a consumed record: (record timestamp, key, value) → ms.
pub type TimestampExtractor = Arc<dyn Fn(i64, &Value, &Value) -> i64 + Send + Sync>;

/// A topic as the topology names it: internal topics get the application id in front at
/// run time (`<application.id>-<name>`), as Kafka Streams names its repartition and
/// changelog topics.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TopicName {
    External(String),
    Internal(String),
}

impl TopicName {
    pub fn resolve(&self, application_id: &str) -> String {
        match self {
            TopicName::External(t) => t.clone(),
            TopicName::Internal(t) => format!("{application_id}-{t}"),
        }
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicName::External(t) => f.write_str(t),
            TopicName::Internal(t) => write!(f, "<application.id>-{t}"),
        }
    }
}

#[derive(Clone)]
pub(crate) struct SourceSpec {
    pub topics: Vec<TopicName>,
    pub key: Decoder,
    pub value: Decoder,
    pub timestamp: Option<TimestampExtractor>,
}

#[derive(Clone)]
pub(crate) struct SinkSpec {
    pub topic: TopicName,
    pub encode: Encoder,
}

#[derive(Clone)]
pub(crate) enum NodeKind {
    Source(SourceSpec),
    Processor(NodeFactory),
    Sink(SinkSpec),
}

#[derive(Clone)]
pub(crate) struct NodeSpec {
    pub name: String,
    pub kind: NodeKind,
    pub children: Vec<usize>,
    /// State stores the node reads or writes.
    pub stores: Vec<String>,
    /// Global stores the node reads (they tie it to no sub-topology).
    pub global_stores: Vec<String>,
}

/// A global table's store: every partition of `topic`, on every instance, in memory.
#[derive(Clone)]
pub struct GlobalStore {
    pub topic: String,
    pub spec: StoreSpec,
}

/// What kind of state a store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    KeyValue,
    /// Windows of `size_ms`, kept for `retention_ms` of stream time.
    Window {
        size_ms: i64,
        retention_ms: i64,
    },
    Session {
        retention_ms: i64,
    },
}

/// A state store as the topology declares it.
#[derive(Clone)]
pub struct StoreSpec {
    pub name: String,
    pub kind: StoreKind,
    pub persistent: bool,
    /// Backed by a compacted changelog topic `<application.id>-<name>-changelog`.
    pub logged: bool,
    /// The typed serdes, `(SerdeRef<K>, SerdeRef<V>)`, for typed access to the store.
    pub(crate) serdes: Arc<dyn Any + Send + Sync>,
}

impl StoreSpec {
    pub fn changelog(&self) -> TopicName {
        TopicName::Internal(format!("{}-changelog", self.name))
    }
}

impl StoreKind {
    /// Windows or sessions starting (windows) or ending (sessions) before this time are
    /// past retention once the store has seen stream time `observed_ms`.
    pub fn expiry_cutoff(&self, observed_ms: i64) -> Option<i64> {
        match *self {
            StoreKind::KeyValue => None,
            StoreKind::Window { retention_ms, .. } => {
                Some(observed_ms.saturating_sub(retention_ms).saturating_add(1))
            }
            StoreKind::Session { retention_ms } => Some(observed_ms.saturating_sub(retention_ms)),
        }
    }
}

/// A topic the application creates: repartition topics and changelogs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopic {
    pub name: TopicName,
    /// Changelogs are compacted; repartition topics are deleted as they are consumed.
    pub compacted: bool,
    /// The sub-topology whose task count gives the partition count (changelogs: the
    /// store's own; repartition topics: the writer's, or `partitions` when set).
    pub subtopology: usize,
    pub partitions: Option<i32>,
}

/// One part of the topology connected only through topics.
#[derive(Debug, Clone)]
pub struct Subtopology {
    pub id: usize,
    pub(crate) nodes: Vec<usize>,
    pub source_topics: BTreeSet<TopicName>,
    pub stores: Vec<String>,
}

/// A built topology.
pub struct Topology {
    pub(crate) nodes: Vec<NodeSpec>,
    pub(crate) stores: BTreeMap<String, StoreSpec>,
    pub(crate) global_stores: BTreeMap<String, GlobalStore>,
    pub(crate) subtopologies: Vec<Subtopology>,
    pub(crate) internal_topics: Vec<InternalTopic>,
    /// For each node, its children, as the engine walks them.
    pub(crate) children: Arc<Vec<Vec<usize>>>,
}

impl Topology {
    pub(crate) fn new(
        nodes: Vec<NodeSpec>,
        stores: BTreeMap<String, StoreSpec>,
        global_stores: BTreeMap<String, GlobalStore>,
        repartition: Vec<(TopicName, Option<i32>)>,
    ) -> Topology {
        let subtopology_of = split(&nodes);
        let count = subtopology_of.iter().copied().max().map_or(0, |m| m + 1);
        let mut subtopologies: Vec<Subtopology> = (0..count)
            .map(|id| Subtopology {
                id,
                nodes: Vec::new(),
                source_topics: BTreeSet::new(),
                stores: Vec::new(),
            })
            .collect();
        for (i, n) in nodes.iter().enumerate() {
            let s = &mut subtopologies[subtopology_of[i]];
            s.nodes.push(i);
            if let NodeKind::Source(src) = &n.kind {
                s.source_topics.extend(src.topics.iter().cloned());
            }
            for store in &n.stores {
                if !s.stores.contains(store) {
                    s.stores.push(store.clone());
                }
            }
        }
        let mut internal_topics = Vec::new();
        for (topic, partitions) in repartition {
            let writer = nodes.iter().enumerate().find_map(|(i, n)| match &n.kind {
                NodeKind::Sink(s) if s.topic == topic => Some(subtopology_of[i]),
                _ => None,
            });
            internal_topics.push(InternalTopic {
                name: topic,
                compacted: false,
                subtopology: writer.unwrap_or(0),
                partitions,
            });
        }
        for s in &subtopologies {
            for store in &s.stores {
                if stores.get(store).is_some_and(|st| st.logged) {
                    internal_topics.push(InternalTopic {
                        name: stores[store].changelog(),
                        compacted: true,
                        subtopology: s.id,
                        partitions: None,
                    });
                }
            }
        }
        let children = Arc::new(nodes.iter().map(|n| n.children.clone()).collect());
        Topology {
            nodes,
            stores,
            global_stores,
            subtopologies,
            internal_topics,
            children,
        }
    }

    pub fn subtopologies(&self) -> &[Subtopology] {
        &self.subtopologies
    }

    /// Global tables' stores, by name.
    pub fn global_stores(&self) -> &BTreeMap<String, GlobalStore> {
        &self.global_stores
    }

    pub fn internal_topics(&self) -> &[InternalTopic] {
        &self.internal_topics
    }

    /// The sub-topology reading `topic` (resolved name), if any.
    pub fn subtopology_reading(&self, application_id: &str, topic: &str) -> Option<usize> {
        self.subtopologies.iter().find_map(|s| {
            s.source_topics
                .iter()
                .any(|t| t.resolve(application_id) == topic)
                .then_some(s.id)
        })
    }

    /// Kafka Streams' `Topology.describe()`, in its format.
    pub fn describe(&self) -> String {
        let mut out = String::from("Topologies:\n");
        for s in &self.subtopologies {
            out.push_str(&format!("   Sub-topology: {}\n", s.id));
            for &i in &s.nodes {
                let n = &self.nodes[i];
                let (what, extra) = match &n.kind {
                    NodeKind::Source(src) => (
                        "Source",
                        format!(
                            " (topics: [{}])",
                            src.topics
                                .iter()
                                .map(|t| t.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                    NodeKind::Processor(_) => {
                        ("Processor", format!(" (stores: [{}])", n.stores.join(", ")))
                    }
                    NodeKind::Sink(sink) => ("Sink", format!(" (topic: {})", sink.topic)),
                };
                out.push_str(&format!("    {what}: {}{extra}\n", n.name));
                let names: Vec<&str> = n
                    .children
                    .iter()
                    .map(|&c| self.nodes[c].name.as_str())
                    .collect();
                if !names.is_empty() {
                    out.push_str(&format!("      --> {}\n", names.join(", ")));
                }
            }
        }
        out
    }
}

/// Sub-topology of each node: nodes joined by an edge or by a shared store are in one
/// (union-find), numbered in order of their first node.
fn split(nodes: &[NodeSpec]) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let union = |parent: &mut Vec<usize>, a: usize, b: usize| {
        let (ra, rb) = (find(parent, a), find(parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    };
    let mut store_owner: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for &c in &n.children {
            union(&mut parent, i, c);
        }
        for s in &n.stores {
            match store_owner.get(s.as_str()) {
                Some(&o) => union(&mut parent, i, o),
                None => {
                    store_owner.insert(s, i);
                }
            }
        }
    }
    let mut numbering = BTreeMap::new();
    (0..nodes.len())
        .map(|i| {
            let root = find(&mut parent, i);
            let next = numbering.len();
            *numbering.entry(root).or_insert(next)
        })
        .collect()
}
