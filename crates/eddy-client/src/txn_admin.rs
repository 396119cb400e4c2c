//! Transaction administration, as `kafka-transactions` does it: ListTransactions (asked of
//! every broker, since each coordinator knows only its own transactional ids),
//! DescribeTransactions (asked of the transaction coordinator, found with FindCoordinator
//! key type 1) and DescribeProducers (asked of the partition leader, which keeps producer
//! state per partition).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeTransactionsRequest, FindCoordinatorRequest,
    ListTransactionsRequest, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::client::topic_name;
use crate::connection::Connection;
use crate::error::{Error, KafkaCode, Result};

/// TRANSACTIONAL_ID_NOT_FOUND: the coordinator has no state for this transactional id.
pub const TRANSACTIONAL_ID_NOT_FOUND: KafkaCode = KafkaCode(105);
/// FindCoordinator's key type for transaction coordinators (0 is groups).
const KEY_TYPE_TRANSACTION: i8 = 1;

/// A transaction as ListTransactions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    pub transactional_id: String,
    /// The node id of the broker that answered: the transaction's coordinator.
    pub coordinator: i32,
    pub producer_id: i64,
    /// Kafka's state names: `Empty`, `Ongoing`, `PrepareCommit`, `PrepareAbort`,
    /// `CompleteCommit`, `CompleteAbort`, `Dead`, `PrepareEpochFence`.
    pub state: String,
}

/// A transaction as DescribeTransactions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    pub coordinator: i32,
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub state: String,
    pub timeout_ms: i32,
    /// When the current transaction began (ms since the epoch); `None` when none is open.
    pub start_time_ms: Option<i64>,
    /// The partitions in the current transaction, sorted.
    pub partitions: Vec<(String, i32)>,
}

/// One producer's state on a partition, as DescribeProducers shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerDescription {
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
    /// The coordinator epoch of the last transaction marker; `None` before any.
    pub coordinator_epoch: Option<i32>,
    /// First offset of the producer's open transaction; `None` when none is open.
    pub current_txn_start_offset: Option<i64>,
}

/// Which transactions [`Admin::list_transactions`] returns; the default is all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionFilter {
    /// Only these states (empty: any).
    pub states: Vec<String>,
    /// Only these producer ids (empty: any).
    pub producer_ids: Vec<i64>,
    /// Only transactions open longer than this (ListTransactions v1+).
    pub duration_min_ms: Option<i64>,
}

/// Kafka's -1 for "absent" as an `Option`.
fn present<T: PartialEq + From<i8>>(value: T) -> Option<T> {
    (value != T::from(-1)).then_some(value)
}

impl Admin {
    /// The transaction coordinator of `transactional_id`: its node id and a connection to
    /// it. Retries (bounded) while the coordinator is loading or not yet available.
    pub async fn transaction_coordinator(
        &self,
        transactional_id: &str,
    ) -> Result<(i32, Arc<Connection>)> {
        let client = self.client();
        let mut attempt = 0;
        loop {
            let conn = client.any_connection().await?;
            let version = conn.version(ApiKey::FindCoordinator)?;
            if version < 1 {
                // v0 has no key type: it would find a group coordinator.
                return Err(Error::UnsupportedVersion {
                    addr: conn.addr().to_owned(),
                    api: "FindCoordinator for transactions".to_owned(),
                    broker_min: 0,
                    broker_max: 0,
                    client_min: 1,
                    client_max: version,
                });
            }
            let mut request = FindCoordinatorRequest::default().with_key_type(KEY_TYPE_TRANSACTION);
            if version >= 4 {
                request.coordinator_keys = vec![text(transactional_id)];
            } else {
                request.key = text(transactional_id);
            }
            let response = conn.dispatch(&request, version).await?.wait().await?;
            let (code, node, addr, message) = match response.coordinators.first() {
                Some(c) if version >= 4 => (
                    c.error_code,
                    c.node_id.0,
                    format!("{}:{}", c.host, c.port),
                    c.error_message.clone(),
                ),
                _ => (
                    response.error_code,
                    response.node_id.0,
                    format!("{}:{}", response.host, response.port),
                    response.error_message.clone(),
                ),
            };
            let code = KafkaCode(code);
            if code.is_ok() {
                return Ok((node, client.connection(&addr).await?));
            }
            if !code.is_retriable() || attempt >= client.config().metadata_retries {
                let context = format!("find the transaction coordinator of {transactional_id:?}");
                code.check_with_message(context, message.as_deref())?;
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(client.config().retry_backoff_ms)).await;
        }
    }

    /// The transactions of every broker that pass `filter`, sorted by transactional id.
    pub async fn list_transactions(
        &self,
        filter: &TransactionFilter,
    ) -> Result<Vec<TransactionListing>> {
        let metadata = self.client().metadata(Some(&[])).await?;
        let mut out = Vec::new();
        for broker in &metadata.brokers {
            let conn = self.client().broker(broker.node_id).await?;
            let version = conn.version(ApiKey::ListTransactions)?;
            let mut request = ListTransactionsRequest::default()
                .with_state_filters(filter.states.iter().map(|s| text(s)).collect())
                .with_producer_id_filters(filter.producer_ids.iter().map(|&p| p.into()).collect());
            if let Some(ms) = filter.duration_min_ms {
                if version < 1 {
                    return Err(Error::Config(format!(
                        "broker {} cannot filter transactions by duration (ListTransactions v{version})",
                        conn.addr()
                    )));
                }
                request.duration_filter = ms;
            }
            let response = conn.dispatch(&request, version).await?.wait().await?;
            KafkaCode(response.error_code)
                .check(format!("list transactions of node {}", broker.node_id))?;
            out.extend(
                response
                    .transaction_states
                    .into_iter()
                    .map(|t| TransactionListing {
                        transactional_id: t.transactional_id.0.to_string(),
                        coordinator: broker.node_id,
                        producer_id: t.producer_id.0,
                        state: t.transaction_state.to_string(),
                    }),
            );
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }

    /// State, producer and partitions of `transactional_id`'s transaction. An id the
    /// coordinator does not know is a TRANSACTIONAL_ID_NOT_FOUND error.
    pub async fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription> {
        let (coordinator, conn) = self.transaction_coordinator(transactional_id).await?;
        let request = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(text(transactional_id))]);
        let response = conn.send(&request).await?;
        let Some(t) = response
            .transaction_states
            .into_iter()
            .find(|t| t.transactional_id.0.as_str() == transactional_id)
        else {
            return Err(Error::Decode {
                what: "DescribeTransactions response".to_owned(),
                detail: "the transactional id is missing".to_owned(),
            });
        };
        KafkaCode(t.error_code).check(format!("describe transaction {transactional_id:?}"))?;
        let mut partitions: Vec<(String, i32)> = t
            .topics
            .iter()
            .flat_map(|topic| {
                let name = topic.topic.0.to_string();
                topic.partitions.iter().map(move |&p| (name.clone(), p))
            })
            .collect();
        partitions.sort();
        Ok(TransactionDescription {
            coordinator,
            transactional_id: transactional_id.to_owned(),
            producer_id: t.producer_id.0,
            producer_epoch: t.producer_epoch,
            state: t.transaction_state.to_string(),
            timeout_ms: t.transaction_timeout_ms,
            start_time_ms: present(t.transaction_start_time_ms),
            partitions,
        })
    }

    /// The producers with state on `topic`-`partition`, asked of its leader, by producer id.
    pub async fn describe_producers(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<ProducerDescription>> {
        let conn = self.client().leader(topic, partition).await?;
        let request = DescribeProducersRequest::default()
            .with_topics(vec![TopicRequest::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(vec![partition])]);
        let response = conn.send(&request).await?;
        let found = response
            .topics
            .into_iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition);
        let Some(p) = found else {
            return Err(Error::Decode {
                what: "DescribeProducers response".to_owned(),
                detail: format!("partition {topic}-{partition} is missing"),
            });
        };
        KafkaCode(p.error_code).check_with_message(
            format!("describe producers of {topic}-{partition}"),
            p.error_message.as_deref(),
        )?;
        let mut producers: Vec<ProducerDescription> = p
            .active_producers
            .into_iter()
            .map(|s| ProducerDescription {
                producer_id: s.producer_id.0,
                producer_epoch: s.producer_epoch,
                last_sequence: s.last_sequence,
                last_timestamp_ms: s.last_timestamp,
                coordinator_epoch: present(s.coordinator_epoch),
                current_txn_start_offset: present(s.current_txn_start_offset),
            })
            .collect();
        producers.sort_by_key(|p| p.producer_id);
        Ok(producers)
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_one_means_absent() {
        assert_eq!(present(-1i64), None);
        assert_eq!(present(0i64), Some(0));
        assert_eq!(present(1_700_000_000_000i64), Some(1_700_000_000_000));
        assert_eq!(present(-1i32), None);
        assert_eq!(present(7i32), Some(7));
    }
}
