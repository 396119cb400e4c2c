//! Stream processing in the spirit of Kafka Streams, on Eddy's own Kafka client: it runs
//! against Eddy or any Kafka-protocol broker.
//!
//! # Layout
//!
//! - [`builder`]: `StreamsBuilder`, where a topology is declared with the DSL;
//!   [`kstream`], [`ktable`], [`kgrouped`]: the DSL's handles; [`params`]: `Consumed`,
//!   `Produced`, `Grouped`, `Materialized`, `Repartitioned`.
//! - [`windows`], [`windowed`]: time and session windows, windowed aggregation;
//!   [`joins`]: stream-stream, stream-table, table-table and foreign-key joins.
//! - [`topology`]: the built graph, split into sub-topologies (parts joined only through
//!   topics), with its state stores and internal topics.
//! - [`processor`]: the Processor API (typed [`Processor`], and the erased `Node` every
//!   operator is), and the context processors run in; `ops`: the DSL's operators.
//! - [`task`]: one sub-topology instance per input partition: decoding, stream time,
//!   punctuation, error handlers; sans-io.
//! - [`state`]: state stores as tasks hold them (engines from eddy-store) with typed handles.
//! - [`serdes`]: Kafka-compatible serdes; [`value`]: type erasure between nodes.
//! - [`driver`]: `TopologyTestDriver`, running a topology without a broker.
//! - [`runtime`]: `KafkaStreams`, running a topology against a broker as a consumer group.
//!   Interactive queries of its stores, and where a key lives, through `KafkaStreams` or a
//!   [`QueryHandle`]; `runtime::http` (feature `http`) serves them over HTTP.
//! - [`config`]: `StreamsConfig`, with Kafka Streams' names.

pub mod builder;
pub mod config;
pub mod driver;
pub mod error;
pub mod joins;
pub mod kgrouped;
pub mod kgrouped_table;
pub mod kstream;
pub mod ktable;
mod ops;
pub mod params;
pub mod processor;
pub mod record;
pub mod runtime;
pub mod serdes;
pub mod state;
pub mod task;
pub mod topology;
pub mod value;
pub mod windowed;
pub mod windows;

pub use builder::StreamsBuilder;
pub use config::{
    ErrorHandler, ErrorHandling, ProcessingGuarantee, RestoreEvent, RestoreListener, StreamsConfig,
};
pub use driver::TopologyTestDriver;
pub use error::{Result, StreamsError};
pub use joins::{GlobalKTable, JoinWindows, Joined, StreamJoined};
pub use kgrouped::KGroupedStream;
pub use kgrouped_table::{KGroupedTable, TableOp};
pub use kstream::{BranchedKStream, KStream};
pub use ktable::{Change, KTable};
pub use params::{Consumed, Grouped, Materialized, Produced, Repartitioned};
pub use processor::{Processor, ProcessorContext, PunctuationType, TypedRecord};
pub use runtime::{KafkaStreams, KeyQueryMetadata, QueryHandle, StreamsMetadata, StreamsState};
pub use serdes::{Serde, SerdeError, SerdeRef, Serdes};
pub use state::{KeyValueStore, SessionStore, WindowStore};
pub use task::TaskId;
pub use topology::Topology;
pub use windowed::{SessionWindowedKStream, SlidingWindowedKStream, TimeWindowedKStream};
pub use windows::{EmitStrategy, SessionWindows, SlidingWindows, TimeWindows, Window, Windowed};
