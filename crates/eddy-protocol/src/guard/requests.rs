//! Request schemas of every API the broker serves, one block per API.
//!
//! Transcribed from Kafka's message specs (`clients/src/main/resources/common/message/
//! *Request.json`) as the `kafka-protocol` 0.18 crate generates its decoders from them:
//! field order, the versions each field is on the wire, nullability and tags are the
//! crate's, so the guard and the decoder walk the same bytes. The unit tests check every
//! table against the crate (`guard/tests.rs`); when the crate is upgraded, a version the
//! tables lack shows up there as a failing test, not as an unguarded decoder.
//!
//! Version ranges are inclusive; `ALL` means every version the API has. Struct names are
//! prefixed with their API because Kafka reuses names (`Cursor`, `TopicRequest`, ...).

use super::schema::Ty::{Array, Bool, Bytes, OptStruct, Str, Struct, Uuid, I16, I32, I64, I8};
use super::schema::{api, f, from, range, tagged, to, Api, Field, ALL, NEVER};

// Produce (key 0) v3-13, flexible from 9
const PRODUCE_REQUEST: &[Field] = &[
    f("transactional_id", Str, ALL).nullable(),
    f("acks", I16, ALL),
    f("timeout_ms", I32, ALL),
    f("topic_data", Array(&Struct(PRODUCE_TOPIC_PRODUCE_DATA)), ALL),
];
const PRODUCE_TOPIC_PRODUCE_DATA: &[Field] = &[
    f("name", Str, to(12)),
    f("topic_id", Uuid, from(13)),
    f("partition_data", Array(&Struct(PRODUCE_PARTITION_PRODUCE_DATA)), ALL),
];
const PRODUCE_PARTITION_PRODUCE_DATA: &[Field] = &[
    f("index", I32, ALL),
    f("records", Bytes, ALL).nullable(),
];

// Fetch (key 1) v4-18, flexible from 12
const FETCH_REQUEST: &[Field] = &[
    f("replica_id", I32, to(14)),
    f("max_wait_ms", I32, ALL),
    f("min_bytes", I32, ALL),
    f("max_bytes", I32, ALL),
    f("isolation_level", I8, ALL),
    f("session_id", I32, from(7)),
    f("session_epoch", I32, from(7)),
    f("topics", Array(&Struct(FETCH_TOPIC)), ALL),
    f("forgotten_topics_data", Array(&Struct(FETCH_FORGOTTEN_TOPIC)), from(7)),
    f("rack_id", Str, from(11)),
    tagged(0, "cluster_id", Str, from(12)).nullable(),
    tagged(1, "replica_state", Struct(FETCH_REPLICA_STATE), from(15)),
];
const FETCH_TOPIC: &[Field] = &[
    f("topic", Str, to(12)),
    f("topic_id", Uuid, from(13)),
    f("partitions", Array(&Struct(FETCH_PARTITION)), ALL),
];
const FETCH_PARTITION: &[Field] = &[
    f("partition", I32, ALL),
    f("current_leader_epoch", I32, from(9)),
    f("fetch_offset", I64, ALL),
    f("last_fetched_epoch", I32, from(12)),
    f("log_start_offset", I64, from(5)),
    f("partition_max_bytes", I32, ALL),
    tagged(0, "replica_directory_id", Uuid, from(17)),
    tagged(1, "high_watermark", I64, from(18)),
];
const FETCH_FORGOTTEN_TOPIC: &[Field] = &[
    f("topic", Str, range(7, 12)),
    f("topic_id", Uuid, from(13)),
    f("partitions", Array(&I32), from(7)),
];
const FETCH_REPLICA_STATE: &[Field] = &[
    f("replica_id", I32, from(15)),
    f("replica_epoch", I64, from(15)),
];

// ListOffsets (key 2) v1-10, flexible from 6
const LIST_OFFSETS_REQUEST: &[Field] = &[
    f("replica_id", I32, ALL),
    f("isolation_level", I8, from(2)),
    f("topics", Array(&Struct(LIST_OFFSETS_TOPIC)), ALL),
    f("timeout_ms", I32, from(10)),
];
const LIST_OFFSETS_TOPIC: &[Field] = &[
    f("name", Str, ALL),
    f("partitions", Array(&Struct(LIST_OFFSETS_PARTITION)), ALL),
];
const LIST_OFFSETS_PARTITION: &[Field] = &[
    f("partition_index", I32, ALL),
    f("current_leader_epoch", I32, from(4)),
    f("timestamp", I64, ALL),
];

// Metadata (key 3) v0-13, flexible from 9
const METADATA_REQUEST: &[Field] = &[
    f("topics", Array(&Struct(METADATA_REQUEST_TOPIC)), ALL).nullable(),
    f("allow_auto_topic_creation", Bool, from(4)),
    f("include_cluster_authorized_operations", Bool, range(8, 10)),
    f("include_topic_authorized_operations", Bool, from(8)),
];
const METADATA_REQUEST_TOPIC: &[Field] = &[
    f("topic_id", Uuid, from(10)),
    f("name", Str, ALL).nullable(),
];

// OffsetCommit (key 8) v2-9, flexible from 8
const OFFSET_COMMIT_REQUEST: &[Field] = &[
    f("group_id", Str, ALL),
    f("generation_id_or_member_epoch", I32, ALL),
    f("member_id", Str, ALL),
    f("group_instance_id", Str, from(7)).nullable(),
    f("retention_time_ms", I64, to(4)),
    f("topics", Array(&Struct(OFFSET_COMMIT_REQUEST_TOPIC)), ALL),
];
const OFFSET_COMMIT_REQUEST_TOPIC: &[Field] = &[
    f("name", Str, ALL),
    f("partitions", Array(&Struct(OFFSET_COMMIT_REQUEST_PARTITION)), ALL),
];
const OFFSET_COMMIT_REQUEST_PARTITION: &[Field] = &[
    f("partition_index", I32, ALL),
    f("committed_offset", I64, ALL),
    f("committed_leader_epoch", I32, from(6)),
    f("committed_metadata", Str, ALL).nullable(),
];

// OffsetFetch (key 9) v1-9, flexible from 6
const OFFSET_FETCH_REQUEST: &[Field] = &[
    f("group_id", Str, to(7)),
    f("topics", Array(&Struct(OFFSET_FETCH_REQUEST_TOPIC)), to(7)).nullable(),
    f("groups", Array(&Struct(OFFSET_FETCH_REQUEST_GROUP)), from(8)),
    f("require_stable", Bool, from(7)),
];
const OFFSET_FETCH_REQUEST_TOPIC: &[Field] = &[
    f("name", Str, to(7)),
    f("partition_indexes", Array(&I32), to(7)),
];
const OFFSET_FETCH_REQUEST_GROUP: &[Field] = &[
    f("group_id", Str, from(8)),
    f("member_id", Str, from(9)).nullable(),
    f("member_epoch", I32, from(9)),
    f("topics", Array(&Struct(OFFSET_FETCH_REQUEST_TOPICS)), from(8)).nullable(),
];
const OFFSET_FETCH_REQUEST_TOPICS: &[Field] = &[
    f("name", Str, from(8)),
    f("partition_indexes", Array(&I32), from(8)),
];

// FindCoordinator (key 10) v0-6, flexible from 3
const FIND_COORDINATOR_REQUEST: &[Field] = &[
    f("key", Str, to(3)),
    f("key_type", I8, from(1)),
    f("coordinator_keys", Array(&Str), from(4)),
];

// JoinGroup (key 11) v0-9, flexible from 6
const JOIN_GROUP_REQUEST: &[Field] = &[
    f("group_id", Str, ALL),
    f("session_timeout_ms", I32, ALL),
    f("rebalance_timeout_ms", I32, from(1)),
    f("member_id", Str, ALL),
    f("group_instance_id", Str, from(5)).nullable(),
    f("protocol_type", Str, ALL),
    f("protocols", Array(&Struct(JOIN_GROUP_REQUEST_PROTOCOL)), ALL),
    f("reason", Str, from(8)).nullable(),
];
const JOIN_GROUP_REQUEST_PROTOCOL: &[Field] = &[
    f("name", Str, ALL),
    f("metadata", Bytes, ALL),
];

// Heartbeat (key 12) v0-4, flexible from 4
const HEARTBEAT_REQUEST: &[Field] = &[
    f("group_id", Str, ALL),
    f("generation_id", I32, ALL),
    f("member_id", Str, ALL),
    f("group_instance_id", Str, from(3)).nullable(),
];

// LeaveGroup (key 13) v0-5, flexible from 4
const LEAVE_GROUP_REQUEST: &[Field] = &[
    f("group_id", Str, ALL),
    f("member_id", Str, to(2)),
    f("members", Array(&Struct(LEAVE_GROUP_MEMBER_IDENTITY)), from(3)),
];
const LEAVE_GROUP_MEMBER_IDENTITY: &[Field] = &[
    f("member_id", Str, from(3)),
    f("group_instance_id", Str, from(3)).nullable(),
    f("reason", Str, from(5)).nullable(),
];

// SyncGroup (key 14) v0-5, flexible from 4
const SYNC_GROUP_REQUEST: &[Field] = &[
    f("group_id", Str, ALL),
    f("generation_id", I32, ALL),
    f("member_id", Str, ALL),
    f("group_instance_id", Str, from(3)).nullable(),
    f("protocol_type", Str, from(5)).nullable(),
    f("protocol_name", Str, from(5)).nullable(),
    f("assignments", Array(&Struct(SYNC_GROUP_REQUEST_ASSIGNMENT)), ALL),
];
const SYNC_GROUP_REQUEST_ASSIGNMENT: &[Field] = &[
    f("member_id", Str, ALL),
    f("assignment", Bytes, ALL),
];

// DescribeGroups (key 15) v0-6, flexible from 5
const DESCRIBE_GROUPS_REQUEST: &[Field] = &[
    f("groups", Array(&Str), ALL),
    f("include_authorized_operations", Bool, from(3)),
];

// ListGroups (key 16) v0-5, flexible from 3
const LIST_GROUPS_REQUEST: &[Field] = &[
    f("states_filter", Array(&Str), from(4)),
    f("types_filter", Array(&Str), from(5)),
];

// SaslHandshake (key 17) v0-1, never flexible
const SASL_HANDSHAKE_REQUEST: &[Field] = &[
    f("mechanism", Str, ALL),
];

// ApiVersions (key 18) v0-4, flexible from 3
const API_VERSIONS_REQUEST: &[Field] = &[
    f("client_software_name", Str, from(3)),
    f("client_software_version", Str, from(3)),
];

// CreateTopics (key 19) v2-7, flexible from 5
const CREATE_TOPICS_REQUEST: &[Field] = &[
    f("topics", Array(&Struct(CREATE_TOPICS_CREATABLE_TOPIC)), ALL),
    f("timeout_ms", I32, ALL),
    f("validate_only", Bool, ALL),
];
const CREATE_TOPICS_CREATABLE_TOPIC: &[Field] = &[
    f("name", Str, ALL),
    f("num_partitions", I32, ALL),
    f("replication_factor", I16, ALL),
    f("assignments", Array(&Struct(CREATE_TOPICS_CREATABLE_REPLICA_ASSIGNMENT)), ALL),
    f("configs", Array(&Struct(CREATE_TOPICS_CREATABLE_TOPIC_CONFIG)), ALL),
];
const CREATE_TOPICS_CREATABLE_REPLICA_ASSIGNMENT: &[Field] = &[
    f("partition_index", I32, ALL),
    f("broker_ids", Array(&I32), ALL),
];
const CREATE_TOPICS_CREATABLE_TOPIC_CONFIG: &[Field] = &[
    f("name", Str, ALL),
    f("value", Str, ALL).nullable(),
];

// DeleteTopics (key 20) v1-6, flexible from 4
const DELETE_TOPICS_REQUEST: &[Field] = &[
    f("topics", Array(&Struct(DELETE_TOPICS_DELETE_TOPIC_STATE)), from(6)),
    f("topic_names", Array(&Str), to(5)),
    f("timeout_ms", I32, ALL),
];
const DELETE_TOPICS_DELETE_TOPIC_STATE: &[Field] = &[
    f("name", Str, from(6)).nullable(),
    f("topic_id", Uuid, from(6)),
];

// DeleteRecords (key 21) v0-2, flexible from 2
const DELETE_RECORDS_REQUEST: &[Field] = &[
    f("topics", Array(&Struct(DELETE_RECORDS_TOPIC)), ALL),
    f("timeout_ms", I32, ALL),
];
const DELETE_RECORDS_TOPIC: &[Field] = &[
    f("name", Str, ALL),
    f("partitions", Array(&Struct(DELETE_RECORDS_PARTITION)), ALL),
];
const DELETE_RECORDS_PARTITION: &[Field] = &[
    f("partition_index", I32, ALL),
    f("offset", I64, ALL),
];

// InitProducerId (key 22) v0-5, flexible from 2
const INIT_PRODUCER_ID_REQUEST: &[Field] = &[
    f("transactional_id", Str, ALL).nullable(),
    f("transaction_timeout_ms", I32, ALL),
    f("producer_id", I64, from(3)),
    f("producer_epoch", I16, from(3)),
];

// OffsetForLeaderEpoch (key 23) v2-4, flexible from 4
const OFFSET_FOR_LEADER_EPOCH_REQUEST: &[Field] = &[
    f("replica_id", I32, from(3)),
    f("topics", Array(&Struct(OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_TOPIC)), ALL),
];
const OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_TOPIC: &[Field] = &[
    f("topic", Str, ALL),
    f("partitions", Array(&Struct(OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_PARTITION)), ALL),
];
const OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_PARTITION: &[Field] = &[
    f("partition", I32, ALL),
    f("current_leader_epoch", I32, ALL),
    f("leader_epoch", I32, ALL),
];

// AddPartitionsToTxn (key 24) v0-5, flexible from 3
const ADD_PARTITIONS_TO_TXN_REQUEST: &[Field] = &[
    f("transactions", Array(&Struct(ADD_PARTITIONS_TO_TXN_TRANSACTION)), from(4)),
    f("v3_and_below_transactional_id", Str, to(3)),
    f("v3_and_below_producer_id", I64, to(3)),
    f("v3_and_below_producer_epoch", I16, to(3)),
    f("v3_and_below_topics", Array(&Struct(ADD_PARTITIONS_TO_TXN_TOPIC)), to(3)),
];
const ADD_PARTITIONS_TO_TXN_TRANSACTION: &[Field] = &[
    f("transactional_id", Str, from(4)),
    f("producer_id", I64, from(4)),
    f("producer_epoch", I16, from(4)),
    f("verify_only", Bool, from(4)),
    f("topics", Array(&Struct(ADD_PARTITIONS_TO_TXN_TOPIC)), from(4)),
];
const ADD_PARTITIONS_TO_TXN_TOPIC: &[Field] = &[
    f("name", Str, ALL),
    f("partitions", Array(&I32), ALL),
];

// AddOffsetsToTxn (key 25) v0-4, flexible from 3
const ADD_OFFSETS_TO_TXN_REQUEST: &[Field] = &[
    f("transactional_id", Str, ALL),
    f("producer_id", I64, ALL),
    f("producer_epoch", I16, ALL),
    f("group_id", Str, ALL),
];

// EndTxn (key 26) v0-5, flexible from 3
const END_TXN_REQUEST: &[Field] = &[
    f("transactional_id", Str, ALL),
    f("producer_id", I64, ALL),
    f("producer_epoch", I16, ALL),
    f("committed", Bool, ALL),
];

// WriteTxnMarkers (key 27) v1, flexible from 0
const WRITE_TXN_MARKERS_REQUEST: &[Field] = &[
    f("markers", Array(&Struct(WRITE_TXN_MARKERS_WRITABLE_TXN_MARKER)), ALL),
];
const WRITE_TXN_MARKERS_WRITABLE_TXN_MARKER: &[Field] = &[
    f("producer_id", I64, ALL),
    f("producer_epoch", I16, ALL),
    f("transaction_result", Bool, ALL),
    f("topics", Array(&Struct(WRITE_TXN_MARKERS_WRITABLE_TXN_MARKER_TOPIC)), ALL),
    f("coordinator_epoch", I32, ALL),
];
const WRITE_TXN_MARKERS_WRITABLE_TXN_MARKER_TOPIC: &[Field] = &[
    f("name", Str, ALL),
    f("partition_indexes", Array(&I32), ALL),
];

// TxnOffsetCommit (key 28) v0-5, flexible from 3
const TXN_OFFSET_COMMIT_REQUEST: &[Field] = &[
    f("transactional_id", Str, ALL),
    f("group_id", Str, ALL),
    f("producer_id", I64, ALL),
    f("producer_epoch", I16, ALL),
    f("generation_id", I32, from(3)),
    f("member_id", Str, from(3)),
    f("group_instance_id", Str, from(3)).nullable(),
    f("topics", Array(&Struct(TXN_OFFSET_COMMIT_REQUEST_TOPIC)), ALL),
];
const TXN_OFFSET_COMMIT_REQUEST_TOPIC: &[Field] = &[
    f("name", Str, ALL),
    f("partitions", Array(&Struct(TXN_OFFSET_COMMIT_REQUEST_PARTITION)), ALL),
];
const TXN_OFFSET_COMMIT_REQUEST_PARTITION: &[Field] = &[
    f("partition_index", I32, ALL),
    f("committed_offset", I64, ALL),
    f("committed_leader_epoch", I32, from(2)),
    f("committed_metadata", Str, ALL).nullable(),
];

// DescribeConfigs (key 32) v1-4, flexible from 4
const DESCRIBE_CONFIGS_REQUEST: &[Field] = &[
    f("resources", Array(&Struct(DESCRIBE_CONFIGS_RESOURCE)), ALL),
    f("include_synonyms", Bool, ALL),
    f("include_documentation", Bool, from(3)),
];
const DESCRIBE_CONFIGS_RESOURCE: &[Field] = &[
    f("resource_type", I8, ALL),
    f("resource_name", Str, ALL),
    f("configuration_keys", Array(&Str), ALL).nullable(),
];

// AlterConfigs (key 33) v0-2, flexible from 2
const ALTER_CONFIGS_REQUEST: &[Field] = &[
    f("resources", Array(&Struct(ALTER_CONFIGS_RESOURCE)), ALL),
    f("validate_only", Bool, ALL),
];
const ALTER_CONFIGS_RESOURCE: &[Field] = &[
    f("resource_type", I8, ALL),
    f("resource_name", Str, ALL),
    f("configs", Array(&Struct(ALTER_CONFIGS_ALTERABLE_CONFIG)), ALL),
];
const ALTER_CONFIGS_ALTERABLE_CONFIG: &[Field] = &[
    f("name", Str, ALL),
    f("value", Str, ALL).nullable(),
];

// SaslAuthenticate (key 36) v0-2, flexible from 2
const SASL_AUTHENTICATE_REQUEST: &[Field] = &[
    f("auth_bytes", Bytes, ALL),
];

// CreatePartitions (key 37) v0-3, flexible from 2
const CREATE_PARTITIONS_REQUEST: &[Field] = &[
    f("topics", Array(&Struct(CREATE_PARTITIONS_TOPIC)), ALL),
    f("timeout_ms", I32, ALL),
    f("validate_only", Bool, ALL),
];
const CREATE_PARTITIONS_TOPIC: &[Field] = &[
    f("name", Str, ALL),
    f("count", I32, ALL),
    f("assignments", Array(&Struct(CREATE_PARTITIONS_ASSIGNMENT)), ALL).nullable(),
];
const CREATE_PARTITIONS_ASSIGNMENT: &[Field] = &[
    f("broker_ids", Array(&I32), ALL),
];

// DeleteGroups (key 42) v0-2, flexible from 2
const DELETE_GROUPS_REQUEST: &[Field] = &[
    f("groups_names", Array(&Str), ALL),
];

// IncrementalAlterConfigs (key 44) v0-1, flexible from 1
const INCREMENTAL_ALTER_CONFIGS_REQUEST: &[Field] = &[
    f("resources", Array(&Struct(INCREMENTAL_ALTER_CONFIGS_ALTER_CONFIGS_RESOURCE)), ALL),
    f("validate_only", Bool, ALL),
];
const INCREMENTAL_ALTER_CONFIGS_ALTER_CONFIGS_RESOURCE: &[Field] = &[
    f("resource_type", I8, ALL),
    f("resource_name", Str, ALL),
    f("configs", Array(&Struct(INCREMENTAL_ALTER_CONFIGS_ALTERABLE_CONFIG)), ALL),
];
const INCREMENTAL_ALTER_CONFIGS_ALTERABLE_CONFIG: &[Field] = &[
    f("name", Str, ALL),
    f("config_operation", I8, ALL),
    f("value", Str, ALL).nullable(),
];

// OffsetDelete (key 47) v0, never flexible
const OFFSET_DELETE_REQUEST: &[Field] = &[
    f("group_id", Str, ALL),
    f("topics", Array(&Struct(OFFSET_DELETE_REQUEST_TOPIC)), ALL),
];
const OFFSET_DELETE_REQUEST_TOPIC: &[Field] = &[
    f("name", Str, ALL),
    f("partitions", Array(&Struct(OFFSET_DELETE_REQUEST_PARTITION)), ALL),
];
const OFFSET_DELETE_REQUEST_PARTITION: &[Field] = &[
    f("partition_index", I32, ALL),
];

// DescribeCluster (key 60) v0-2, flexible from 0
const DESCRIBE_CLUSTER_REQUEST: &[Field] = &[
    f("include_cluster_authorized_operations", Bool, ALL),
    f("endpoint_type", I8, from(1)),
    f("include_fenced_brokers", Bool, from(2)),
];

// DescribeProducers (key 61) v0, flexible from 0
const DESCRIBE_PRODUCERS_REQUEST: &[Field] = &[
    f("topics", Array(&Struct(DESCRIBE_PRODUCERS_TOPIC_REQUEST)), ALL),
];
const DESCRIBE_PRODUCERS_TOPIC_REQUEST: &[Field] = &[
    f("name", Str, ALL),
    f("partition_indexes", Array(&I32), ALL),
];

// DescribeTransactions (key 65) v0, flexible from 0
const DESCRIBE_TRANSACTIONS_REQUEST: &[Field] = &[
    f("transactional_ids", Array(&Str), ALL),
];

// ListTransactions (key 66) v0-2, flexible from 0
const LIST_TRANSACTIONS_REQUEST: &[Field] = &[
    f("state_filters", Array(&Str), ALL),
    f("producer_id_filters", Array(&I64), ALL),
    f("duration_filter", I64, from(1)),
    f("transactional_id_pattern", Str, from(2)).nullable(),
];

// ConsumerGroupHeartbeat (key 68) v0-1, flexible from 0
const CONSUMER_GROUP_HEARTBEAT_REQUEST: &[Field] = &[
    f("group_id", Str, ALL),
    f("member_id", Str, ALL),
    f("member_epoch", I32, ALL),
    f("instance_id", Str, ALL).nullable(),
    f("rack_id", Str, ALL).nullable(),
    f("rebalance_timeout_ms", I32, ALL),
    f("subscribed_topic_names", Array(&Str), ALL).nullable(),
    f("subscribed_topic_regex", Str, from(1)).nullable(),
    f("server_assignor", Str, ALL).nullable(),
    f("topic_partitions", Array(&Struct(CONSUMER_GROUP_HEARTBEAT_TOPIC_PARTITIONS)), ALL).nullable(),
];
const CONSUMER_GROUP_HEARTBEAT_TOPIC_PARTITIONS: &[Field] = &[
    f("topic_id", Uuid, ALL),
    f("partitions", Array(&I32), ALL),
];

// ConsumerGroupDescribe (key 69) v0-1, flexible from 0
const CONSUMER_GROUP_DESCRIBE_REQUEST: &[Field] = &[
    f("group_ids", Array(&Str), ALL),
    f("include_authorized_operations", Bool, ALL),
];

// DescribeTopicPartitions (key 75) v0, flexible from 0
const DESCRIBE_TOPIC_PARTITIONS_REQUEST: &[Field] = &[
    f("topics", Array(&Struct(DESCRIBE_TOPIC_PARTITIONS_TOPIC_REQUEST)), ALL),
    f("response_partition_limit", I32, ALL),
    f("cursor", OptStruct(DESCRIBE_TOPIC_PARTITIONS_CURSOR), ALL).nullable(),
];
const DESCRIBE_TOPIC_PARTITIONS_TOPIC_REQUEST: &[Field] = &[
    f("name", Str, ALL),
];
const DESCRIBE_TOPIC_PARTITIONS_CURSOR: &[Field] = &[
    f("topic_name", Str, ALL),
    f("partition_index", I32, ALL),
];

/// Every API the guard knows, by key.
pub(super) const APIS: &[Api] = &[
    api(0, "Produce", 3, 13, 9, PRODUCE_REQUEST),
    api(1, "Fetch", 4, 18, 12, FETCH_REQUEST),
    api(2, "ListOffsets", 1, 10, 6, LIST_OFFSETS_REQUEST),
    api(3, "Metadata", 0, 13, 9, METADATA_REQUEST),
    api(8, "OffsetCommit", 2, 9, 8, OFFSET_COMMIT_REQUEST),
    api(9, "OffsetFetch", 1, 9, 6, OFFSET_FETCH_REQUEST),
    api(10, "FindCoordinator", 0, 6, 3, FIND_COORDINATOR_REQUEST),
    api(11, "JoinGroup", 0, 9, 6, JOIN_GROUP_REQUEST),
    api(12, "Heartbeat", 0, 4, 4, HEARTBEAT_REQUEST),
    api(13, "LeaveGroup", 0, 5, 4, LEAVE_GROUP_REQUEST),
    api(14, "SyncGroup", 0, 5, 4, SYNC_GROUP_REQUEST),
    api(15, "DescribeGroups", 0, 6, 5, DESCRIBE_GROUPS_REQUEST),
    api(16, "ListGroups", 0, 5, 3, LIST_GROUPS_REQUEST),
    api(17, "SaslHandshake", 0, 1, NEVER, SASL_HANDSHAKE_REQUEST),
    api(18, "ApiVersions", 0, 4, 3, API_VERSIONS_REQUEST),
    api(19, "CreateTopics", 2, 7, 5, CREATE_TOPICS_REQUEST),
    api(20, "DeleteTopics", 1, 6, 4, DELETE_TOPICS_REQUEST),
    api(21, "DeleteRecords", 0, 2, 2, DELETE_RECORDS_REQUEST),
    api(22, "InitProducerId", 0, 5, 2, INIT_PRODUCER_ID_REQUEST),
    api(23, "OffsetForLeaderEpoch", 2, 4, 4, OFFSET_FOR_LEADER_EPOCH_REQUEST),
    api(24, "AddPartitionsToTxn", 0, 5, 3, ADD_PARTITIONS_TO_TXN_REQUEST),
    api(25, "AddOffsetsToTxn", 0, 4, 3, ADD_OFFSETS_TO_TXN_REQUEST),
    api(26, "EndTxn", 0, 5, 3, END_TXN_REQUEST),
    api(27, "WriteTxnMarkers", 1, 1, 0, WRITE_TXN_MARKERS_REQUEST),
    api(28, "TxnOffsetCommit", 0, 5, 3, TXN_OFFSET_COMMIT_REQUEST),
    api(32, "DescribeConfigs", 1, 4, 4, DESCRIBE_CONFIGS_REQUEST),
    api(33, "AlterConfigs", 0, 2, 2, ALTER_CONFIGS_REQUEST),
    api(36, "SaslAuthenticate", 0, 2, 2, SASL_AUTHENTICATE_REQUEST),
    api(37, "CreatePartitions", 0, 3, 2, CREATE_PARTITIONS_REQUEST),
    api(42, "DeleteGroups", 0, 2, 2, DELETE_GROUPS_REQUEST),
    api(44, "IncrementalAlterConfigs", 0, 1, 1, INCREMENTAL_ALTER_CONFIGS_REQUEST),
    api(47, "OffsetDelete", 0, 0, NEVER, OFFSET_DELETE_REQUEST),
    api(60, "DescribeCluster", 0, 2, 0, DESCRIBE_CLUSTER_REQUEST),
    api(61, "DescribeProducers", 0, 0, 0, DESCRIBE_PRODUCERS_REQUEST),
    api(65, "DescribeTransactions", 0, 0, 0, DESCRIBE_TRANSACTIONS_REQUEST),
    api(66, "ListTransactions", 0, 2, 0, LIST_TRANSACTIONS_REQUEST),
    api(68, "ConsumerGroupHeartbeat", 0, 1, 0, CONSUMER_GROUP_HEARTBEAT_REQUEST),
    api(69, "ConsumerGroupDescribe", 0, 1, 0, CONSUMER_GROUP_DESCRIBE_REQUEST),
    api(75, "DescribeTopicPartitions", 0, 0, 0, DESCRIBE_TOPIC_PARTITIONS_REQUEST),
];

/// The schema of `api_key`, `None` when the guard does not cover it.
pub(super) fn find(api_key: i16) -> Option<&'static Api> {
    APIS.iter().find(|api| api.key == api_key)
}
