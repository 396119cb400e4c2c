//! One module per Kafka API, registered in [`dispatch`].
//!
//! A handler does its synchronous work (validation, appends) before it
//! returns, in the order requests arrived on the connection, and hands back
//! a future for what must wait (fsync, long-poll): so pipelined produce
//! requests append in order while their fsyncs are grouped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use eddy_protocol::request::Request;
use kafka_protocol::messages::{RequestKind, ResponseKind};

use crate::broker::Broker;

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_configs;
mod api_versions;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_producers;
mod describe_topic_partitions;
mod describe_transactions;
mod end_txn;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
pub(crate) mod produce;
mod sync_group;
mod txn_offset_commit;

/// The answer to a request: `None` for acks=0 produce, which gets none.
pub type Reply = Pin<Box<dyn Future<Output = Option<ResponseKind>> + Send>>;

pub fn ready(r: ResponseKind) -> Reply {
    Box::pin(std::future::ready(Some(r)))
}

/// Routes a decoded request to its handler.
/// `client_host` is the peer's address as Kafka reports it (`/127.0.0.1`),
/// shown for group members.
pub fn dispatch(broker: &Arc<Broker>, request: Request, client_host: &str) -> Reply {
    let version = request.header.request_api_version;
    match request.body {
        RequestKind::ApiVersions(r) => {
            ready(ResponseKind::ApiVersions(api_versions::handle(r, version)))
        }
        RequestKind::Metadata(r) => {
            ready(ResponseKind::Metadata(metadata::handle(broker, r, version)))
        }
        RequestKind::Produce(r) => produce::handle(broker, r, version),
        RequestKind::Fetch(r) => fetch::handle(broker.clone(), r, version),
        RequestKind::FindCoordinator(r) => ready(ResponseKind::FindCoordinator(
            find_coordinator::handle(broker, r, version),
        )),
        RequestKind::ListOffsets(r) => ready(ResponseKind::ListOffsets(list_offsets::handle(
            broker, r, version,
        ))),
        RequestKind::OffsetForLeaderEpoch(r) => ready(ResponseKind::OffsetForLeaderEpoch(
            offset_for_leader_epoch::handle(broker, r),
        )),
        RequestKind::CreateTopics(r) => ready(ResponseKind::CreateTopics(create_topics::handle(
            broker, r, version,
        ))),
        RequestKind::DeleteTopics(r) => ready(ResponseKind::DeleteTopics(delete_topics::handle(
            broker, r, version,
        ))),
        RequestKind::CreatePartitions(r) => ready(ResponseKind::CreatePartitions(
            create_partitions::handle(broker, r),
        )),
        RequestKind::DescribeConfigs(r) => ready(ResponseKind::DescribeConfigs(
            describe_configs::handle(broker, r, version),
        )),
        RequestKind::AlterConfigs(r) => {
            ready(ResponseKind::AlterConfigs(alter_configs::handle(broker, r)))
        }
        RequestKind::IncrementalAlterConfigs(r) => ready(ResponseKind::IncrementalAlterConfigs(
            alter_configs::handle_incremental(broker, r),
        )),
        RequestKind::DeleteRecords(r) => ready(ResponseKind::DeleteRecords(
            delete_records::handle(broker, r),
        )),
        RequestKind::DescribeCluster(r) => ready(ResponseKind::DescribeCluster(
            describe_cluster::handle(broker, r),
        )),
        RequestKind::DescribeTopicPartitions(r) => ready(ResponseKind::DescribeTopicPartitions(
            describe_topic_partitions::handle(broker, r),
        )),
        RequestKind::InitProducerId(r) => init_producer_id::handle(broker, r, version),
        RequestKind::AddPartitionsToTxn(r) => add_partitions_to_txn::handle(broker, r, version),
        RequestKind::AddOffsetsToTxn(r) => add_offsets_to_txn::handle(broker, r, version),
        RequestKind::EndTxn(r) => end_txn::handle(broker, r, version),
        RequestKind::TxnOffsetCommit(r) => txn_offset_commit::handle(broker, r, version),
        RequestKind::DescribeProducers(r) => ready(ResponseKind::DescribeProducers(
            describe_producers::handle(broker, r),
        )),
        RequestKind::DescribeTransactions(r) => ready(ResponseKind::DescribeTransactions(
            describe_transactions::handle(broker, r),
        )),
        RequestKind::ListTransactions(r) => ready(ResponseKind::ListTransactions(
            list_transactions::handle(broker, r, version),
        )),
        RequestKind::JoinGroup(r) => {
            let client_id = request
                .header
                .client_id
                .as_deref()
                .unwrap_or("")
                .to_string();
            join_group::handle(broker, r, version, client_id, client_host.to_string())
        }
        RequestKind::SyncGroup(r) => sync_group::handle(broker, r, version),
        RequestKind::Heartbeat(r) => ready(ResponseKind::Heartbeat(heartbeat::handle(broker, r))),
        RequestKind::LeaveGroup(r) => ready(ResponseKind::LeaveGroup(leave_group::handle(
            broker, r, version,
        ))),
        RequestKind::OffsetCommit(r) => offset_commit::handle(broker, r, version),
        RequestKind::OffsetFetch(r) => ready(ResponseKind::OffsetFetch(offset_fetch::handle(
            broker, r, version,
        ))),
        RequestKind::DescribeGroups(r) => ready(ResponseKind::DescribeGroups(
            describe_groups::handle(broker, r, version),
        )),
        RequestKind::ListGroups(r) => ready(ResponseKind::ListGroups(list_groups::handle(
            broker, r, version,
        ))),
        RequestKind::DeleteGroups(r) => delete_groups::handle(broker, r),
        RequestKind::ConsumerGroupHeartbeat(r) => {
            let client_id = request
                .header
                .client_id
                .as_deref()
                .unwrap_or("")
                .to_string();
            ready(ResponseKind::ConsumerGroupHeartbeat(
                consumer_group_heartbeat::handle(
                    broker,
                    r,
                    version,
                    client_id,
                    client_host.to_string(),
                ),
            ))
        }
        RequestKind::ConsumerGroupDescribe(r) => ready(ResponseKind::ConsumerGroupDescribe(
            consumer_group_describe::handle(broker, r),
        )),
        RequestKind::OffsetDelete(r) => offset_delete::handle(broker, r),
        other => {
            // versions::SUPPORTED lists only what is routed above, so the
            // decoder never lets another API through.
            unreachable!("request kind not routed: {other:?}")
        }
    }
}

/// A nullable string field from a message.
pub fn text(s: impl AsRef<str>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.as_ref().to_string())
}
