//! Eddy's own Kafka client: async (tokio), over the `kafka-protocol` codecs. Used by the
//! `eddy` CLI, and by tests against Eddy or any Kafka-compatible broker.
//!
//! # Layout
//!
//! - [`frame`]: request/response framing, sans-io.
//! - [`connection`]: one broker connection; pipelined requests matched by correlation id,
//!   API versions negotiated at connect.
//! - [`client`]: bootstrap, connection pool, Metadata cache; routes by partition leader.
//! - [`admin`]: create/delete/list/describe topics, describe and alter configs.
//! - [`group_admin`]: consumer groups: list, describe, committed offsets, reset, delete.
//! - [`txn_admin`]: transactions: list, describe, and producers per partition.
//! - [`offsets`]: ListOffsets (earliest, latest, by timestamp).
//! - [`partitioner`]: murmur2 like the Java client; sticky or round-robin for unkeyed records.
//! - `accumulator`: the producer's per-partition batches, sans-io.
//! - [`producer`]: batching, compression, acks, idempotence, in-flight pipelining,
//!   transactions (`transactional.id`: init, begin, send offsets, commit, abort).
//! - [`consumer`]: group-less consumer: assign, seek, Fetch long polls, read_committed.
//! - [`group_consumer`]: consumer-group member (classic protocol): join, assignors,
//!   heartbeats, committed offsets.
//! - [`record`]: records going in and coming out.
//! - [`error`]: the error type, with Kafka's error names.
//!
//! Every queue and buffer has a bound, named after Kafka's config: `buffer.memory`,
//! `batch.size`, `max.request.size`, `max.in.flight.requests.per.connection`,
//! `fetch.max.bytes`, `max.partition.fetch.bytes`, and a cap on response frames.
//!
//! # Example
//!
//! ```no_run
//! use eddy_client::{Admin, Client, ClientConfig, Consumer, ConsumerConfig, NewTopic};
//! use eddy_client::{Producer, ProducerConfig, ProducerRecord, SeekTo};
//!
//! # async fn example() -> eddy_client::Result<()> {
//! let client = Client::connect(ClientConfig::new("127.0.0.1:9092")).await?;
//! Admin::new(client.clone())
//!     .create_topics(&[NewTopic::new("greetings", 3)])
//!     .await?;
//!
//! let producer = Producer::new(client.clone(), ProducerConfig::default()).await?;
//! let record = ProducerRecord::new("greetings", "hello").with_key("alice");
//! let delivered = producer.send(record).await?.await?;
//! println!("written at {}-{}", delivered.partition, delivered.offset);
//! producer.close().await;
//!
//! let mut consumer = Consumer::new(client, ConsumerConfig::default());
//! consumer.assign("greetings", None).await?;
//! consumer.seek_all(SeekTo::Earliest).await?;
//! for record in consumer.poll().await? {
//!     println!("{} {:?}", record.offset, record.value);
//! }
//! consumer.client().close().await; // ends connections gracefully before exit
//! # Ok(())
//! # }
//! ```

mod accumulator;
pub mod admin;
pub mod client;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod frame;
pub mod group_admin;
pub mod group_consumer;
pub mod offsets;
pub mod partitioner;
pub mod producer;
pub mod record;
pub mod txn_admin;

pub use admin::{
    Admin, AlterConfigOp, ConfigEntry, ConfigResource, ConfigSource, NewTopic,
    PartitionDescription, TopicDescription,
};
pub use client::{
    BrokerMetadata, Client, ClientConfig, ClusterMetadata, PartitionMetadata, TopicMetadata,
};
pub use connection::{Connection, ConnectionConfig};
pub use consumer::{Consumer, ConsumerConfig, IsolationLevel, SeekTo};
pub use error::{Error, KafkaCode, Result};
pub use group_admin::{GroupDescription, GroupListing, GroupOffset, MemberDescription};
pub use group_consumer::{
    is_membership_lost, Assignor, AutoOffsetReset, GroupConsumer, GroupConsumerConfig, GroupEvent,
    MemberAssignment, MemberSubscription, RangeAssignor,
};
pub use offsets::{ListedOffset, OffsetSpec};
pub use partitioner::{murmur2, partition_for_key, Partitioner};
pub use producer::{Acks, Compression, DeliveryFuture, Producer, ProducerConfig};
pub use record::{
    ConsumerGroupMetadata, ConsumerRecord, Header, ProducerRecord, RecordMetadata, TimestampType,
    TopicPartition,
};
pub use txn_admin::{
    ProducerDescription, TransactionDescription, TransactionFilter, TransactionListing,
};
