//! ListTransactions (KIP-664), with the state, producer id and (v1+,
//! KIP-994) duration filters; an unknown state name is reported back.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use kafka_protocol::messages::list_transactions_response::{
    ListTransactionsResponse, TransactionState,
};
use kafka_protocol::messages::{ProducerId, TransactionalId};

use super::text;
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::group::consumer::pattern::Pattern;
use crate::txn::{codes, TxnState};

pub fn handle(
    broker: &Arc<Broker>,
    req: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    let mut states = BTreeSet::new();
    let mut unknown = Vec::new();
    for name in &req.state_filters {
        match TxnState::from_name(name) {
            Some(s) => {
                states.insert(s);
            }
            None => unknown.push(name.clone()),
        }
    }
    let producer_ids: BTreeSet<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let duration_ms = if version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    let pattern = match req
        .transactional_id_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) => match Pattern::compile(p) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::debug!(error = %e, "ListTransactions pattern refused");
                return ListTransactionsResponse::default()
                    .with_error_code(codes::INVALID_REQUEST)
                    .with_unknown_state_filters(unknown);
            }
        },
    };
    let listed = if !unknown.is_empty() && states.is_empty() {
        // Only unknown states asked for: nothing matches them.
        Vec::new()
    } else {
        broker
            .txns
            .list(&states, &producer_ids, duration_ms, now_ms())
    };
    let transaction_states = listed
        .into_iter()
        .filter(|m| {
            pattern
                .as_ref()
                .is_none_or(|p| p.matches(&m.transactional_id))
        })
        .map(|m| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(text(&m.transactional_id)))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(text(m.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(transaction_states)
}
