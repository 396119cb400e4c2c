//! Push queries that need state — joins and aggregations (`SELECT page, COUNT(*) FROM pv
//! GROUP BY page EMIT CHANGES`) — run as ksqlDB runs them: a transient query, compiled like
//! a persistent one into a topic of its own, read by the push query's reader. When the
//! push query ends, the transient query stops and its consumer group, state and topics
//! (output, repartition, changelogs) are deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use eddy_client::{NewTopic, SeekTo};
use eddy_streams::{KafkaStreams, ProcessingGuarantee, StreamsBuilder, StreamsConfig, Topology};

use super::queries::{earliest, spawn_reader, PushQuery};
use super::{select, Engine, Kafka, StatementError};
use crate::ast::{Ident, Literal, Property, Query, SourceKind, Statement};
use crate::catalog::Catalog;
use crate::lexer::Pos;

type Result<T> = std::result::Result<T, StatementError>;

pub(super) async fn start(
    engine: &Arc<Engine>,
    catalog: &Catalog,
    kafka: &Kafka,
    query: &Query,
    text: &str,
    properties: &BTreeMap<String, String>,
) -> Result<PushQuery> {
    let bad = |m: String| StatementError::bad(m, text);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let config = engine.config();
    let application_id = format!("_confluent-ksql-{}transient_{id}", config.service_id);
    let topic = format!("{application_id}-output");
    let name = format!("TRANSIENT_{}", id.to_ascii_uppercase());
    let kind_of = |n: &str| catalog.get(n).map(|s| s.kind);
    let table_join = !query.from.joins.is_empty()
        && kind_of(&query.from.source.name.name) == Some(SourceKind::Table)
        && query
            .from
            .joins
            .iter()
            .all(|j| kind_of(&j.source.name.name) == Some(SourceKind::Table));
    let kind = if !query.group_by.is_empty() || table_join {
        SourceKind::Table
    } else {
        SourceKind::Stream
    };
    let prop = |n: &str, v: &str| Property {
        name: Ident {
            name: n.into(),
            pos: Pos::default(),
        },
        value: Literal::String(v.into()),
    };
    let statement = Statement::CreateAsSelect {
        kind,
        name: Ident {
            name: name.clone(),
            pos: Pos::default(),
        },
        or_replace: false,
        if_not_exists: false,
        properties: vec![
            prop("KAFKA_TOPIC", &topic),
            prop("KEY_FORMAT", "JSON"),
            prop("VALUE_FORMAT", "JSON"),
        ],
        query: Box::new(query.clone()),
    };
    let (catalog, topology) = build(catalog, &statement, text)?;
    let sink = catalog
        .get(&name)
        .cloned()
        .ok_or_else(|| bad("the query made no output".into()))?;
    let source_topic = catalog
        .get(&query.from.source.name.name)
        .map(|s| s.topic.clone())
        .unwrap_or_default();
    let partitions = kafka
        .client
        .topic(&source_topic)
        .await
        .map(|t| t.partitions.len() as i32)
        .unwrap_or(1);
    kafka
        .admin
        .create_topics(&[NewTopic::new(&topic, partitions)])
        .await
        .map_err(|e| StatementError::server(e, text))?;
    let mut streams_config = StreamsConfig::new(&application_id, &engine.bootstrap())
        .with_guarantee(ProcessingGuarantee::AtLeastOnce);
    streams_config.state_dir = config.state_dir.join("transient");
    streams_config.commit_interval_ms = 1_000;
    streams_config.auto_offset_reset_earliest = earliest(properties);
    let mut streams = KafkaStreams::new(topology, streams_config);
    streams.start();
    // Every row of the output: `SELECT *` over the transient query's sink.
    let all = crate::parse_statement(&format!("SELECT * FROM {name} EMIT CHANGES;"))
        .map_err(|e| StatementError::server(e, text))?;
    let Statement::Query(all) = all else {
        return Err(StatementError::server("not a query", text));
    };
    let selection = select::plan(&all, &sink).map_err(|e| bad(e.to_string()))?;
    let admin = kafka.admin.clone();
    let state_dir = config.state_dir.join("transient").join(&application_id);
    let on_end = Box::pin(async move {
        if let Err(e) = streams.close().await {
            tracing::warn!(query = %application_id, error = %e, "transient query did not close cleanly");
        }
        let _ = admin.delete_groups(&[application_id.as_str()]).await;
        let mut topics = vec![topic];
        if let Ok(all) = admin.list_topics().await {
            topics.extend(
                all.into_iter()
                    .map(|t| t.name)
                    .filter(|t| t.starts_with(&format!("{application_id}-"))),
            );
        }
        topics.sort();
        topics.dedup();
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        if let Err(e) = admin.delete_topics(&names).await {
            tracing::warn!(query = %application_id, error = %e, "could not delete a transient query's topics");
        }
        let _ = std::fs::remove_dir_all(state_dir);
    });
    spawn_reader(
        engine,
        kafka,
        &sink,
        selection,
        SeekTo::Earliest,
        query.limit,
        format!("transient_{name}"),
        text,
        Some(on_end),
    )
    .await
}

/// The topology of `statement` (a builder is not `Send`: it never lives across an await).
fn build(catalog: &Catalog, statement: &Statement, text: &str) -> Result<(Catalog, Topology)> {
    let mut catalog = catalog.clone();
    let builder = StreamsBuilder::new();
    crate::compile::apply(&mut catalog, &builder, statement)
        .map_err(|e| StatementError::bad(e.to_string(), text))?;
    let topology = builder
        .build()
        .map_err(|e| StatementError::server(e, text))?;
    Ok((catalog, topology))
}
