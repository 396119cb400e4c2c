//! Operator parameters, as Kafka Streams names them: `Consumed`, `Produced`, `Grouped`,
//! `Materialized`, `Repartitioned`.

use crate::serdes::SerdeRef;
use crate::topology::TimestampExtractor;
use crate::value::{Data, Value};

/// How a source topic is read.
pub struct Consumed<K, V> {
    pub(crate) key: SerdeRef<K>,
    pub(crate) value: SerdeRef<V>,
    pub(crate) timestamp: Option<TimestampExtractor>,
    pub(crate) name: Option<String>,
}

impl<K: Data, V: Data> Consumed<K, V> {
    pub fn with(key: SerdeRef<K>, value: SerdeRef<V>) -> Self {
        Consumed {
            key,
            value,
            timestamp: None,
            name: None,
        }
    }

    /// Event time from the record itself: `f(record timestamp, key, value)`.
    pub fn with_timestamp_extractor(
        mut self,
        f: impl Fn(i64, &K, &V) -> i64 + Send + Sync + 'static,
    ) -> Self {
        self.timestamp = Some(std::sync::Arc::new(move |ts, k: &Value, v: &Value| {
            f(ts, k.get::<K>(), v.get::<V>())
        }));
        self
    }

    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }
}

/// How records are written to a topic.
pub struct Produced<K, V> {
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V>>,
}

impl<K: Data, V: Data> Produced<K, V> {
    pub fn with(key: SerdeRef<K>, value: SerdeRef<V>) -> Self {
        Produced {
            key: Some(key),
            value: Some(value),
        }
    }
    /// The stream's own serdes (an error at build time where it has none).
    pub fn inherit() -> Self {
        Produced {
            key: None,
            value: None,
        }
    }
}

/// Serdes and name for a grouping (and the repartition topic it may need).
pub struct Grouped<K, V> {
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V>>,
    pub(crate) name: Option<String>,
}

impl<K: Data, V: Data> Grouped<K, V> {
    pub fn with(key: SerdeRef<K>, value: SerdeRef<V>) -> Self {
        Grouped {
            key: Some(key),
            value: Some(value),
            name: None,
        }
    }
    pub fn inherit() -> Self {
        Grouped {
            key: None,
            value: None,
            name: None,
        }
    }
    /// Names the repartition topic `<application.id>-<name>-repartition`.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }
}

/// Where a table's state lives.
#[derive(Clone)]
pub struct Materialized<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V>>,
    pub(crate) persistent: bool,
    pub(crate) logged: bool,
}

impl<K: Data, V: Data> Materialized<K, V> {
    /// A store with a generated name, persistent and logged (Kafka's defaults).
    pub fn new() -> Self {
        Materialized {
            name: None,
            key: None,
            value: None,
            persistent: true,
            logged: true,
        }
    }
    /// A named store: queryable under this name, changelog `<application.id>-<name>-changelog`.
    pub fn named(name: &str) -> Self {
        Materialized {
            name: Some(name.to_owned()),
            ..Self::new()
        }
    }
    pub fn with_key_serde(mut self, s: SerdeRef<K>) -> Self {
        self.key = Some(s);
        self
    }
    pub fn with_value_serde(mut self, s: SerdeRef<V>) -> Self {
        self.value = Some(s);
        self
    }
    pub fn in_memory(mut self) -> Self {
        self.persistent = false;
        self
    }
    pub fn with_logging_disabled(mut self) -> Self {
        self.logged = false;
        self
    }
}

impl<K: Data, V: Data> Default for Materialized<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// An explicit repartition (`KStream::repartition`).
pub struct Repartitioned<K, V> {
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V>>,
    pub(crate) name: Option<String>,
    pub(crate) partitions: Option<i32>,
}

impl<K: Data, V: Data> Repartitioned<K, V> {
    pub fn with(key: SerdeRef<K>, value: SerdeRef<V>) -> Self {
        Repartitioned {
            key: Some(key),
            value: Some(value),
            name: None,
            partitions: None,
        }
    }
    pub fn inherit() -> Self {
        Repartitioned {
            key: None,
            value: None,
            name: None,
            partitions: None,
        }
    }
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }
    pub fn with_partitions(mut self, n: i32) -> Self {
        self.partitions = Some(n);
        self
    }
}
