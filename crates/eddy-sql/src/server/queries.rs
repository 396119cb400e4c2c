//! Queries: persistent ones (eddy-streams applications writing a stream or table), pull
//! queries (a table's current rows, read from the state store of the query that writes
//! it) and push queries (rows as they arrive, read from the source's topic).
//!
//! A table written by a persistent query is pull-queryable: the query also materializes
//! its own output topic into a store named after the table (reading committed output
//! only, so a pull query never sees what a crash will roll back).

use std::collections::BTreeMap;
use std::sync::Arc;

use eddy_client::{
    Admin, Consumer, ConsumerConfig, IsolationLevel, OffsetSpec, Producer, ProducerRecord, SeekTo,
};
use eddy_streams::windows::{session_windowed_serde, time_windowed_serde};
use eddy_streams::{
    Consumed, KafkaStreams, Materialized, SerdeRef, StreamsBuilder, StreamsConfig, Topology,
    Windowed,
};
use tokio::sync::{mpsc, watch};

use super::select;
use super::{Engine, EngineConfig, Kafka, StatementError};
use crate::ast::{Query, SourceKind, Statement};
use crate::catalog::{Catalog, Source};
use crate::compile::row_serde;
use crate::value::Value;

type Result<T> = std::result::Result<T, StatementError>;

/// A persistent query that runs.
pub struct Persistent {
    pub id: String,
    pub statement: String,
    pub sink: Source,
    pub source_names: Vec<String>,
    pub application_id: String,
    /// The store a pull query on the sink reads (tables only).
    pub pull_store: Option<String>,
    streams: KafkaStreams,
    state_dir: std::path::PathBuf,
}

impl Persistent {
    pub fn state(&self) -> String {
        match self.streams.state() {
            eddy_streams::StreamsState::Running => "RUNNING".into(),
            eddy_streams::StreamsState::Rebalancing => "REBALANCING".into(),
            eddy_streams::StreamsState::Error(_) => "ERROR".into(),
            other => format!("{other:?}").to_uppercase(),
        }
    }

    pub fn topology_text(&self) -> String {
        self.streams.topology().describe()
    }

    /// Stops processing; state and offsets stay, so the query can resume.
    pub async fn stop(self) {
        if let Err(e) = self.streams.close().await {
            tracing::warn!(query = %self.id, error = %e, "query did not close cleanly");
        }
    }

    /// TERMINATE: stops, and the query's consumer group and local state go.
    pub async fn terminate(self, admin: &Admin) {
        let (application_id, state_dir) = (self.application_id.clone(), self.state_dir.clone());
        self.stop().await;
        if let Err(e) = admin.delete_groups(&[application_id.as_str()]).await {
            tracing::warn!(group = %application_id, error = %e, "could not delete the query's consumer group");
        }
        let _ = std::fs::remove_dir_all(state_dir.join(&application_id));
    }
}

/// A persistent query planned and built, not yet started.
pub struct Planned {
    pub catalog: Catalog,
    pub sink: Source,
    pub source_topics: Vec<String>,
    id: String,
    statement: String,
    source_names: Vec<String>,
    topology: Topology,
    config: StreamsConfig,
    pull_store: Option<String>,
}

impl Planned {
    pub fn start(self) -> std::result::Result<Persistent, String> {
        let state_dir = self.config.state_dir.clone();
        let application_id = self.config.application_id.clone();
        let mut streams = KafkaStreams::new(self.topology, self.config);
        streams.start();
        Ok(Persistent {
            id: self.id,
            statement: self.statement,
            sink: self.sink,
            source_names: self.source_names,
            application_id,
            pull_store: self.pull_store,
            streams,
            state_dir,
        })
    }
}

/// Plans, and builds the topology of, `CREATE .. AS SELECT` or `INSERT INTO .. SELECT`.
pub fn plan_persistent(
    config: &EngineConfig,
    bootstrap: &str,
    catalog: &Catalog,
    statement: &Statement,
    text: &str,
    query_id: &str,
    properties: &BTreeMap<String, String>,
) -> Result<Planned> {
    let bad = |m: String| StatementError::bad(m, text);
    let mut catalog = catalog.clone();
    let builder = StreamsBuilder::new();
    crate::compile::apply(&mut catalog, &builder, statement).map_err(|e| bad(e.to_string()))?;
    let (sink_name, query) = match statement {
        Statement::CreateAsSelect { name, query, .. } => (&name.name, query),
        Statement::InsertSelect { target, query } => (&target.name, query),
        _ => return Err(bad("not a persistent query".into())),
    };
    let sink = catalog
        .get(sink_name)
        .cloned()
        .ok_or_else(|| bad(format!("{sink_name} was not created")))?;
    let mut source_names = vec![query.from.source.name.name.clone()];
    source_names.extend(query.from.joins.iter().map(|j| j.source.name.name.clone()));
    let source_topics = source_names
        .iter()
        .filter_map(|n| catalog.get(n).map(|s| s.topic.clone()))
        .collect();
    let pull_store = match statement {
        Statement::CreateAsSelect {
            kind: SourceKind::Table,
            ..
        } => Some(materialize(&builder, &sink)),
        _ => None,
    };
    let topology = builder
        .build()
        .map_err(|e| StatementError::server(e, text))?;
    let mut streams = StreamsConfig::new(&config.query_application_id(query_id), bootstrap)
        .with_guarantee(config.processing_guarantee);
    streams.state_dir = config.state_dir.clone();
    // A static member (KIP-345): after a restart, or a crash, the query takes its tasks back
    // at once instead of waiting out the old member's session.
    streams.group_instance_id = Some(format!("{}-0", streams.application_id));
    streams.auto_offset_reset_earliest = earliest(properties);
    Ok(Planned {
        catalog,
        sink,
        source_topics,
        id: query_id.to_owned(),
        statement: text.to_owned(),
        source_names,
        topology,
        config: streams,
        pull_store,
    })
}

/// `auto.offset.reset`: latest unless set to earliest (ksqlDB's default).
pub(super) fn earliest(properties: &BTreeMap<String, String>) -> bool {
    properties.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("auto.offset.reset") && v.eq_ignore_ascii_case("earliest")
    })
}

/// Adds a store of `table`'s rows, read from its topic, to the query that writes it.
fn materialize(builder: &StreamsBuilder, table: &Source) -> String {
    let store = format!("{}-PULL", table.name);
    let key = row_serde(table.key_format, &table.key_columns);
    let value = row_serde(table.value_format, &table.value_columns);
    match table.window.map(|w| (w, w.size_ms())) {
        None => {
            builder.table(
                &table.topic,
                Consumed::with(key, value),
                Materialized::named(&store),
            );
        }
        Some((_, Some(size))) => {
            builder.table(
                &table.topic,
                Consumed::with(time_windowed_serde(key, size), value),
                Materialized::named(&store),
            );
        }
        Some((_, None)) => {
            builder.table(
                &table.topic,
                Consumed::with(session_windowed_serde(key), value),
                Materialized::named(&store),
            );
        }
    }
    store
}

/// What a query endpoint answers.
pub enum QueryResult {
    Pull(PullResult),
    Push(PushQuery),
}

pub struct PullResult {
    pub id: String,
    pub names: Vec<String>,
    pub schema: String,
    pub types: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// A pull query: the rows of a materialized table that match, now.
pub fn pull(
    catalog: &Catalog,
    queries: &BTreeMap<String, Persistent>,
    query: &Query,
    text: &str,
) -> Result<PullResult> {
    let bad = |m: String| StatementError::bad(m, text);
    let name = &query.from.source.name;
    let source = catalog.get(&name.name).ok_or_else(|| {
        bad(format!(
            "{} does not exist (line {}, column {})",
            name.name, name.pos.line, name.pos.column
        ))
    })?;
    if source.kind == SourceKind::Stream {
        return Err(bad(format!(
            "{} is a stream: a pull query reads a table; to read a stream as it grows, add EMIT CHANGES",
            source.name
        )));
    }
    let Some((_, writer)) = queries
        .iter()
        .find(|(_, q)| q.sink.name == source.name && q.pull_store.is_some())
    else {
        return Err(bad(format!(
            "table {} is not materialized: pull queries read tables made by CREATE TABLE .. AS SELECT (or push-query it with EMIT CHANGES)",
            source.name
        )));
    };
    let selection = select::plan(query, source).map_err(|e| bad(e.to_string()))?;
    let store = writer.pull_store.as_deref().unwrap_or_default();
    let handle = writer.streams.query();
    let not_ready = |e: eddy_streams::StreamsError| {
        StatementError::new(
            super::codes::NOT_READY,
            format!("table {} cannot be read yet: {e}", source.name),
            text,
        )
    };
    let mut matched = Vec::new();
    let mut push_row = |key: Vec<Value>, value: Vec<Value>, window: Option<(i64, i64)>| {
        let mut row = key;
        row.extend(value);
        // ROWTIME, ROWPARTITION, ROWOFFSET: the store keeps values only.
        row.extend(crate::compile::PSEUDO.map(|_| Value::Null));
        if let Some((s, e)) = window {
            row.push(Value::Bigint(s));
            row.push(Value::Bigint(e));
        }
        if let Some(out) = selection.apply(&row) {
            matched.push(out);
        }
    };
    if selection.windowed {
        let rows: Vec<(Windowed<Vec<Value>>, Vec<Value>)> = handle.all(store).map_err(not_ready)?;
        for (k, v) in rows {
            push_row(k.key, v, Some((k.window.start_ms, k.window.end_ms)));
        }
    } else if let Some(key) = select::key_lookup(query.filter.as_ref(), source) {
        if let Some(v) = handle
            .get::<Vec<Value>, Vec<Value>>(store, &key)
            .map_err(not_ready)?
        {
            push_row(key, v, None);
        }
    } else {
        let rows: Vec<(Vec<Value>, Vec<Value>)> = handle.all(store).map_err(not_ready)?;
        for (k, v) in rows {
            push_row(k, v, None);
        }
    }
    if let Some(limit) = query.limit {
        matched.truncate(limit as usize);
    }
    Ok(PullResult {
        id: format!("query_{}", uuid::Uuid::new_v4().simple()),
        schema: selection.schema(),
        types: selection.types.iter().map(|t| t.to_string()).collect(),
        names: selection.names,
        rows: matched,
    })
}

/// A push query running: its rows arrive on `rows`; dropping it stops the query.
pub struct PushQuery {
    pub id: String,
    pub names: Vec<String>,
    pub types: Vec<String>,
    pub schema: String,
    pub rows: mpsc::Receiver<QueryRow>,
    stop: watch::Sender<bool>,
}

impl Drop for PushQuery {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A row of a push query, or the error that ended it.
pub enum QueryRow {
    Row(Vec<Value>),
    Error(String),
}

/// Rows a push query may have in flight to a slow client before reading pauses.
const PUSH_BUFFER: usize = 10_000;

/// Starts a push query over one stream or table: a consumer of its topic (every
/// partition, from the end unless `auto.offset.reset` is earliest, committed records only)
/// — no consumer group, so the first row can come at once. A push query that needs state
/// (a join, an aggregation) runs as a transient query first ([`super::transient`]).
pub(super) async fn start_push(
    engine: &Arc<Engine>,
    catalog: &Catalog,
    kafka: &Kafka,
    query: &Query,
    text: &str,
    properties: &BTreeMap<String, String>,
) -> Result<PushQuery> {
    let bad = |m: String| StatementError::bad(m, text);
    let name = &query.from.source.name;
    let source = catalog.get(&name.name).cloned().ok_or_else(|| {
        bad(format!(
            "{} does not exist (line {}, column {})",
            name.name, name.pos.line, name.pos.column
        ))
    })?;
    if !query.from.joins.is_empty() || !query.group_by.is_empty() || query.window.is_some() {
        return super::transient::start(engine, catalog, kafka, query, text, properties).await;
    }
    let selection = select::plan(query, &source).map_err(|e| bad(e.to_string()))?;
    let from = if earliest(properties) {
        SeekTo::Earliest
    } else {
        SeekTo::Latest
    };
    let id = format!(
        "transient_{}_{}",
        source.name,
        uuid::Uuid::new_v4().simple()
    );
    spawn_reader(
        engine,
        kafka,
        &source,
        selection,
        from,
        query.limit,
        id,
        text,
        None,
    )
    .await
}

/// What a push query does when it ends (stop a query it started, delete its topics).
pub(super) type OnEnd = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Reads `source`'s topic from `from` and sends the rows `selection` makes, until the
/// client goes, the query is closed, or `limit` rows were sent; then runs `on_end`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn spawn_reader(
    engine: &Arc<Engine>,
    kafka: &Kafka,
    source: &Source,
    selection: select::Selection,
    from: SeekTo,
    limit: Option<u64>,
    id: String,
    text: &str,
    on_end: Option<OnEnd>,
) -> Result<PushQuery> {
    let mut consumer = Consumer::new(
        kafka.client.clone(),
        ConsumerConfig {
            fetch_max_wait_ms: 200,
            auto_offset_reset: Some(OffsetSpec::Latest),
            isolation_level: IsolationLevel::ReadCommitted,
            ..ConsumerConfig::default()
        },
    );
    let assigned = async {
        consumer.assign(&source.topic, None).await?;
        consumer.seek_all(from).await
    }
    .await;
    if let Err(e) = assigned {
        if let Some(end) = on_end {
            end.await;
        }
        return Err(StatementError::server(e, text));
    }
    let (tx, rows) = mpsc::channel(PUSH_BUFFER);
    let (stop, mut stopped) = watch::channel(false);
    engine.register_push(&id, stop.clone());
    let push = PushQuery {
        id: id.clone(),
        schema: selection.schema(),
        types: selection.types.iter().map(|t| t.to_string()).collect(),
        names: selection.names.clone(),
        rows,
        stop,
    };
    let decoder = Decoder::new(source);
    let engine = engine.clone();
    tokio::spawn(async move {
        let mut sent = 0u64;
        'run: loop {
            let records = tokio::select! {
                r = consumer.poll() => r,
                _ = stopped.wait_for(|s| *s) => break 'run,
            };
            let records = match records {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(QueryRow::Error(e.to_string())).await;
                    break;
                }
            };
            for record in records {
                let row = match decoder.row(&record) {
                    Ok(Some(row)) => row,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, error = %e, "push query: a record that does not decode is skipped");
                        continue;
                    }
                };
                let Some(out) = selection.apply(&row) else {
                    continue;
                };
                if tx.send(QueryRow::Row(out)).await.is_err() {
                    break 'run;
                }
                sent += 1;
                if limit.is_some_and(|l| sent >= l) {
                    break 'run;
                }
            }
        }
        engine.unregister_push(&id);
        if let Some(end) = on_end {
            end.await;
        }
    });
    Ok(push)
}

/// Records of a source's topic as rows (key columns, value columns, ROWTIME, and the
/// window of a windowed table).
struct Decoder {
    key: SerdeRef<Vec<Value>>,
    windowed_key: Option<SerdeRef<Windowed<Vec<Value>>>>,
    value: SerdeRef<Vec<Value>>,
}

impl Decoder {
    fn new(source: &Source) -> Decoder {
        let key = row_serde(source.key_format, &source.key_columns);
        Decoder {
            windowed_key: source.window.map(|w| match w.size_ms() {
                Some(size) => time_windowed_serde(key.clone(), size),
                None => session_windowed_serde(key.clone()),
            }),
            key,
            value: row_serde(source.value_format, &source.value_columns),
        }
    }

    /// The row, or None for a tombstone.
    fn row(
        &self,
        record: &eddy_client::ConsumerRecord,
    ) -> std::result::Result<Option<Vec<Value>>, eddy_streams::SerdeError> {
        let (topic, key) = (record.topic.as_str(), record.key.as_deref());
        let Some(value) = record.value.as_deref() else {
            return Ok(None);
        };
        let (mut row, window) = match &self.windowed_key {
            Some(serde) => {
                let k = serde.deserialize(topic, key)?;
                (k.key, Some((k.window.start_ms, k.window.end_ms)))
            }
            None => (self.key.deserialize(topic, key)?, None),
        };
        row.extend(self.value.deserialize(topic, Some(value))?);
        row.push(Value::Bigint(record.timestamp_ms));
        row.push(Value::Int(record.partition));
        row.push(Value::Bigint(record.offset));
        if let Some((s, e)) = window {
            row.push(Value::Bigint(s));
            row.push(Value::Bigint(e));
        }
        Ok(Some(row))
    }
}

/// `INSERT INTO s [(columns)] VALUES (..)`: one record, written with the source's formats.
pub async fn insert_values(
    catalog: &Catalog,
    producer: &Producer,
    statement: &Statement,
    text: &str,
) -> Result<()> {
    let bad = |m: String| StatementError::bad(m, text);
    let Statement::InsertValues {
        target,
        columns,
        values,
    } = statement
    else {
        return Err(bad("not INSERT .. VALUES".into()));
    };
    let source = catalog.get(&target.name).ok_or_else(|| {
        bad(format!(
            "INSERT INTO {}: no such stream or table (line {}, column {})",
            target.name, target.pos.line, target.pos.column
        ))
    })?;
    let all: Vec<(String, crate::value::Type)> = source
        .key_columns
        .iter()
        .chain(&source.value_columns)
        .cloned()
        .collect();
    let names: Vec<String> = match columns {
        Some(c) => c.iter().map(|i| i.name.clone()).collect(),
        None => all.iter().map(|(n, _)| n.clone()).collect(),
    };
    if names.len() != values.len() {
        return Err(bad(format!(
            "INSERT INTO {} names {} columns but gives {} values",
            source.name,
            names.len(),
            values.len()
        )));
    }
    let empty = crate::expr::Scope {
        columns: Vec::new(),
    };
    let mut given: BTreeMap<String, Value> = BTreeMap::new();
    let mut timestamp = None;
    for (n, e) in names.iter().zip(values) {
        let v = crate::expr::compile(e, &empty)
            .map_err(|e| bad(e.to_string()))?
            .eval(&[]);
        if n == "ROWTIME" {
            timestamp = v.as_i64();
            continue;
        }
        let Some((_, ty)) = all.iter().find(|(c, _)| c == n) else {
            return Err(bad(format!(
                "{} has no column {n}; its columns are {}",
                source.name,
                all.iter()
                    .map(|(c, _)| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        given.insert(n.clone(), crate::expr::cast(v, ty));
    }
    let pick = |cols: &[(String, crate::value::Type)]| -> Vec<Value> {
        cols.iter()
            .map(|(n, _)| given.get(n).cloned().unwrap_or(Value::Null))
            .collect()
    };
    encode_and_send(
        producer,
        source,
        pick(&source.key_columns),
        pick(&source.value_columns),
        timestamp,
    )
    .await
    .map_err(bad)
}

/// Writes one row to `source`'s topic; the error says which column did not fit.
pub async fn encode_and_send(
    producer: &Producer,
    source: &Source,
    key: Vec<Value>,
    value: Vec<Value>,
    timestamp_ms: Option<i64>,
) -> std::result::Result<(), String> {
    let key_bytes = row_serde(source.key_format, &source.key_columns)
        .serialize(&source.topic, &key)
        .map_err(|e| e.detail)?;
    let value_bytes = row_serde(source.value_format, &source.value_columns)
        .serialize(&source.topic, &value)
        .map_err(|e| e.detail)?;
    let mut record = ProducerRecord::new(&source.topic, bytes::Bytes::new());
    record.value = value_bytes;
    record.key = key_bytes;
    record.timestamp_ms = timestamp_ms;
    let delivered = producer.send(record).await.map_err(|e| e.to_string())?;
    delivered.await.map_err(|e| e.to_string())?;
    Ok(())
}
