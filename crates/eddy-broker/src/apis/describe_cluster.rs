//! DescribeCluster: this one node.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};
use kafka_protocol::messages::BrokerId;

use super::text;
use crate::broker::Broker;

pub fn handle(broker: &Arc<Broker>, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let (host, port) = broker.advertised.clone();
    let node = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.node_id))
        .with_host(text(host))
        .with_port(port);
    DescribeClusterResponse::default()
        .with_endpoint_type(req.endpoint_type)
        .with_cluster_id(text(&broker.cluster_id))
        .with_controller_id(BrokerId(broker.node_id))
        .with_brokers(vec![node])
}
