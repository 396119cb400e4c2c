//! The SQL engine as a server (feature `server`): statements run against a Kafka cluster
//! (Eddy's own broker when `eddy start` serves it), persistent queries as eddy-streams
//! applications, and the REST API of ksqlDB ([`rest`]).
//!
//! As in ksqlDB, every statement that changes what runs (CREATE, CREATE AS SELECT, INSERT
//! INTO .. SELECT, DROP, TERMINATE) is first written to the command topic
//! ([`commands`]); at start the engine replays that topic, so the streams, tables and
//! persistent queries of the last run come back. A persistent query's application id is
//! derived from its command's offset, so after a restart (or a crash) it resumes from its
//! committed offsets and state; queries run exactly-once (`exactly_once_v2`).
//!
//! # Layout
//!
//! - this module: the engine, statement by statement.
//! - [`commands`]: the command topic.
//! - [`entities`]: what `SHOW`, `DESCRIBE`, `EXPLAIN` answer, as ksqlDB's JSON.
//! - [`queries`]: persistent queries, pull queries, push queries.
//! - [`select`]: the select list of a pull or push query over one source.
//! - [`transient`]: push queries over joins and aggregations.
//! - [`rest`]: the HTTP endpoints.

pub mod commands;
pub mod entities;
pub mod queries;
pub mod rest;
pub mod select;
pub mod transient;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex as SyncMutex};

use eddy_client::{Admin, Client, ClientConfig, NewTopic, Producer, ProducerConfig};
use eddy_streams::ProcessingGuarantee;
use serde_json::{json, Value as Json};

use crate::ast::{SourceKind, Statement};
use crate::catalog::{Catalog, Create, Source};

pub use queries::{PushQuery, QueryRow};

/// ksqlDB's error codes, as its REST API sends them.
pub mod codes {
    pub const BAD_REQUEST: u32 = 40000;
    pub const BAD_STATEMENT: u32 = 40001;
    pub const QUERY_ENDPOINT: u32 = 40002;
    pub const NOT_FOUND: u32 = 40400;
    pub const SERVER_ERROR: u32 = 50000;
    pub const NOT_READY: u32 = 50300;
}

/// A statement that failed: ksqlDB's `statement_error`.
#[derive(Debug, Clone)]
pub struct StatementError {
    pub code: u32,
    pub message: String,
    pub statement: String,
}

impl StatementError {
    pub fn new(code: u32, message: impl Into<String>, statement: &str) -> StatementError {
        StatementError {
            code,
            message: message.into(),
            statement: statement.to_owned(),
        }
    }

    fn bad(message: impl Into<String>, statement: &str) -> StatementError {
        StatementError::new(codes::BAD_STATEMENT, message, statement)
    }

    fn server(message: impl std::fmt::Display, statement: &str) -> StatementError {
        StatementError::new(codes::SERVER_ERROR, message.to_string(), statement)
    }

    /// The HTTP status ksqlDB answers with.
    pub fn http_status(&self) -> u16 {
        (self.code / 100) as u16
    }
}

type Result<T> = std::result::Result<T, StatementError>;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub bootstrap_servers: String,
    /// Where persistent queries keep their state stores.
    pub state_dir: PathBuf,
    /// `ksql.service.id`: names the command topic and prefixes query application ids.
    pub service_id: String,
    pub processing_guarantee: ProcessingGuarantee,
}

impl EngineConfig {
    pub fn new(bootstrap_servers: &str, state_dir: PathBuf) -> EngineConfig {
        EngineConfig {
            bootstrap_servers: bootstrap_servers.to_owned(),
            state_dir,
            service_id: "default_".into(),
            processing_guarantee: ProcessingGuarantee::ExactlyOnceV2,
        }
    }

    /// `_confluent-ksql-<service id>_command_topic`, as ksqlDB names it.
    pub fn command_topic(&self) -> String {
        format!("_confluent-ksql-{}_command_topic", self.service_id)
    }

    fn query_application_id(&self, query_id: &str) -> String {
        format!("_confluent-ksql-{}query_{query_id}", self.service_id)
    }
}

/// Connections to the cluster, made at start.
struct Kafka {
    client: Client,
    admin: Admin,
    producer: Producer,
}

/// What statements change, under one lock: statements run one at a time.
struct State {
    catalog: Catalog,
    queries: BTreeMap<String, queries::Persistent>,
    /// The command topic's offset the next command gets (ksqlDB's command sequence number).
    next_command: i64,
}

pub struct Engine {
    config: EngineConfig,
    kafka: tokio::sync::OnceCell<Kafka>,
    state: tokio::sync::Mutex<State>,
    /// Push queries running now, by id (for `/close-query`).
    push: SyncMutex<BTreeMap<String, tokio::sync::watch::Sender<bool>>>,
    cluster_id: SyncMutex<Option<String>>,
    /// The bootstrap servers queries use (set at start).
    bootstrap: std::sync::OnceLock<String>,
}

/// What a statement says back: one entity of ksqlDB's `/ksql` answer.
pub type Entity = Json;

impl Engine {
    pub fn new(config: EngineConfig) -> Arc<Engine> {
        Arc::new(Engine {
            config,
            kafka: tokio::sync::OnceCell::new(),
            state: tokio::sync::Mutex::new(State {
                catalog: Catalog::default(),
                queries: BTreeMap::new(),
                next_command: 0,
            }),
            push: SyncMutex::default(),
            cluster_id: SyncMutex::default(),
            bootstrap: std::sync::OnceLock::new(),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Connects, and replays the command topic: the streams, tables and persistent queries
    /// of earlier runs come back. Until it returns the REST API answers 503.
    pub async fn start(&self) -> anyhow::Result<()> {
        self.start_with(&self.config.bootstrap_servers.clone())
            .await
    }

    /// [`Engine::start`] against `bootstrap` (the broker's bound address, when the engine
    /// runs beside it).
    pub async fn start_with(&self, bootstrap: &str) -> anyhow::Result<()> {
        let _ = self.bootstrap.set(bootstrap.to_owned());
        let client = Client::connect(ClientConfig::new(bootstrap)).await?;
        let admin = Admin::new(client.clone());
        let topic = self.config.command_topic();
        let producer = Producer::new(
            client.clone(),
            ProducerConfig {
                linger_ms: 0,
                ..ProducerConfig::default()
            },
        )
        .await?;
        let meta = client.metadata(None).await?;
        *self.cluster_id.lock().unwrap_or_else(|p| p.into_inner()) = meta.cluster_id.clone();
        // The command topic is made by the first command, so a broker never given a
        // statement has no topic of the engine's.
        let commands = if client.topic(&topic).await.is_ok() {
            commands::read_all(&client, &topic).await?
        } else {
            Vec::new()
        };
        let _ = self.kafka.set(Kafka {
            client,
            admin,
            producer,
        });
        let mut state = self.state.lock().await;
        for command in commands {
            state.next_command = command.offset + 1;
            if let Err(e) = self.replay(&mut state, &command).await {
                tracing::warn!(offset = command.offset, statement = %command.statement, error = %e.message, "a command of the command topic did not replay; skipped");
            }
        }
        tracing::info!(
            streams_and_tables = state.catalog.sources().count(),
            queries = state.queries.len(),
            "SQL engine ready"
        );
        Ok(())
    }

    /// The bootstrap servers queries connect to.
    pub(crate) fn bootstrap(&self) -> String {
        self.bootstrap
            .get()
            .cloned()
            .unwrap_or_else(|| self.config.bootstrap_servers.clone())
    }

    pub fn is_ready(&self) -> bool {
        self.kafka.initialized()
    }

    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn kafka(&self, statement: &str) -> Result<&Kafka> {
        self.kafka.get().ok_or_else(|| {
            StatementError::new(
                codes::NOT_READY,
                "the SQL engine is starting (replaying its command topic); try again shortly",
                statement,
            )
        })
    }

    /// Stops every query (their state stays: they resume at the next start).
    pub async fn shutdown(&self) {
        let mut state = self.state.lock().await;
        for (_, q) in std::mem::take(&mut state.queries) {
            q.stop().await;
        }
        for (_, stop) in std::mem::take(&mut *self.push.lock().unwrap_or_else(|p| p.into_inner())) {
            let _ = stop.send(true);
        }
    }

    /// Runs the statements of `text` in order, as `POST /ksql` does: each one's entity, or
    /// the first error (with the entities of the statements before it).
    pub async fn execute(
        &self,
        text: &str,
        properties: &BTreeMap<String, String>,
    ) -> std::result::Result<Vec<Entity>, (StatementError, Vec<Entity>)> {
        let statements = crate::parse_with_text(text)
            .map_err(|e| (StatementError::bad(format!("{e}"), text.trim()), Vec::new()))?;
        let mut properties = properties.clone();
        let mut out = Vec::new();
        for (statement, own_text) in statements {
            match self
                .execute_one(&statement, &own_text, &mut properties)
                .await
            {
                Ok(Some(entity)) => out.push(entity),
                Ok(None) => {}
                Err(e) => return Err((e, out)),
            }
        }
        Ok(out)
    }

    async fn execute_one(
        &self,
        statement: &Statement,
        text: &str,
        properties: &mut BTreeMap<String, String>,
    ) -> Result<Option<Entity>> {
        let kafka = self.kafka(text)?;
        match statement {
            Statement::Set { name, value } => {
                properties.insert(name.clone(), value.clone());
                Ok(None)
            }
            Statement::Unset { name } => {
                properties.remove(name);
                Ok(None)
            }
            Statement::Query(_) => Err(StatementError::new(
                codes::QUERY_ENDPOINT,
                "SELECT statements run on the query endpoints: POST /query or POST /query-stream",
                text,
            )),
            Statement::RunScript { .. } => Err(StatementError::bad(
                "RUN SCRIPT is run by the shell (eddy sql), which reads the file and sends its statements",
                text,
            )),
            Statement::Show { .. } | Statement::Describe { .. } | Statement::Explain(_) => {
                let state = self.state.lock().await;
                entities::describe(self, &state, kafka, statement, text)
                    .await
                    .map(Some)
            }
            Statement::InsertValues { .. } => {
                let state = self.state.lock().await;
                queries::insert_values(&state.catalog, &kafka.producer, statement, text).await?;
                Ok(None)
            }
            _ => {
                let mut state = self.state.lock().await;
                // Checked in full before the command is written; run after.
                self.run_command(&mut state, statement, text, properties, None)
                    .await?;
                commands::create_topic(&kafka.admin, &self.config.command_topic())
                    .await
                    .map_err(|e| StatementError::server(e, text))?;
                let offset = commands::write(
                    &kafka.producer,
                    &self.config.command_topic(),
                    text,
                    properties,
                )
                .await
                .map_err(|e| StatementError::server(e, text))?;
                state.next_command = offset + 1;
                self.run_command(&mut state, statement, text, properties, Some(offset))
                    .await
                    .map(Some)
            }
        }
    }

    async fn replay(&self, state: &mut State, command: &commands::Command) -> Result<()> {
        let statement = crate::parse_statement(&command.statement)
            .map_err(|e| StatementError::bad(e.to_string(), &command.statement))?;
        self.run_command(
            state,
            &statement,
            &command.statement,
            &command.properties,
            Some(command.offset),
        )
        .await
        .map(|_| ())
    }

    /// Checks (`offset` None) or runs (`offset`: the command's place in the command topic)
    /// a statement that changes the catalog or the queries.
    async fn run_command(
        &self,
        state: &mut State,
        statement: &Statement,
        text: &str,
        properties: &BTreeMap<String, String>,
        offset: Option<i64>,
    ) -> Result<Entity> {
        let kafka = self.kafka(text)?;
        let plan_error = |e: crate::expr::PlanError| StatementError::bad(e.to_string(), text);
        match statement {
            Statement::CreateSource { kind, name, .. } => {
                let Create::Add(source) =
                    state.catalog.plan_create(statement).map_err(plan_error)?
                else {
                    return Ok(status(
                        text,
                        offset,
                        &format!("{} {} already exists", kind_word(*kind), name.name),
                        "",
                    ));
                };
                if offset.is_none() {
                    ensure_topic(kafka, &source, None, text).await?;
                    return Ok(Json::Null);
                }
                let message = format!("{} created", kind_word(*kind));
                state.catalog.insert(source);
                Ok(status(text, offset, &message, &name.name))
            }
            Statement::CreateAsSelect { name, .. }
            | Statement::InsertSelect { target: name, .. } => {
                let query_id = match statement {
                    Statement::CreateAsSelect {
                        kind: SourceKind::Stream,
                        ..
                    } => format!(
                        "CSAS_{}_{}",
                        name.name,
                        offset.unwrap_or(state.next_command)
                    ),
                    Statement::CreateAsSelect { .. } => {
                        format!(
                            "CTAS_{}_{}",
                            name.name,
                            offset.unwrap_or(state.next_command)
                        )
                    }
                    _ => format!("INSERTQUERY_{}", offset.unwrap_or(state.next_command)),
                };
                let planned = queries::plan_persistent(
                    &self.config,
                    self.bootstrap
                        .get()
                        .map_or(&self.config.bootstrap_servers, |b| b),
                    &state.catalog,
                    statement,
                    text,
                    &query_id,
                    properties,
                )?;
                if let Statement::CreateAsSelect {
                    if_not_exists: true,
                    ..
                } = statement
                {
                    if state.catalog.get(&name.name).is_some() {
                        return Ok(status(text, offset, "already exists", &name.name));
                    }
                }
                if offset.is_none() {
                    return Ok(Json::Null);
                }
                let sink = planned.sink.clone();
                let source_partitions = partitions_of(kafka, &planned.source_topics[0]).await;
                ensure_topic(kafka, &sink, source_partitions, text).await?;
                let catalog = planned.catalog.clone();
                let query = planned
                    .start()
                    .map_err(|e| StatementError::server(e, text))?;
                state.catalog = catalog;
                state.queries.insert(query_id.clone(), query);
                Ok(status(
                    text,
                    offset,
                    &format!("Created query with ID {query_id}"),
                    &sink.name,
                ))
            }
            Statement::Drop {
                name, delete_topic, ..
            } => {
                let Some(source) = state
                    .catalog
                    .plan_drop(statement)
                    .map_err(plan_error)?
                    .cloned()
                else {
                    return Ok(status(text, offset, "does not exist", &name.name));
                };
                let writers: Vec<&String> = state
                    .queries
                    .iter()
                    .filter(|(_, q)| q.sink.name == source.name)
                    .map(|(id, _)| id)
                    .collect();
                if !writers.is_empty() {
                    return Err(StatementError::bad(
                        format!(
                            "cannot drop {}: the queries {writers:?} write into it; TERMINATE them first",
                            source.name
                        ),
                        text,
                    ));
                }
                let readers: Vec<&String> = state
                    .queries
                    .iter()
                    .filter(|(_, q)| q.source_names.contains(&source.name))
                    .map(|(id, _)| id)
                    .collect();
                if !readers.is_empty() {
                    return Err(StatementError::bad(
                        format!(
                            "cannot drop {}: the queries {readers:?} read from it; TERMINATE them first",
                            source.name
                        ),
                        text,
                    ));
                }
                if offset.is_none() {
                    return Ok(Json::Null);
                }
                state.catalog.remove(&source.name);
                if *delete_topic {
                    if let Err(e) = kafka.admin.delete_topics(&[source.topic.as_str()]).await {
                        tracing::warn!(topic = %source.topic, error = %e, "DROP .. DELETE TOPIC: the topic was not deleted");
                    }
                }
                Ok(status(
                    text,
                    offset,
                    &format!(
                        "Source `{}` (topic: {}) was dropped.",
                        source.name, source.topic
                    ),
                    &source.name,
                ))
            }
            Statement::Terminate { query } => {
                let ids: Vec<String> = match query {
                    None => state.queries.keys().cloned().collect(),
                    Some(id) => {
                        let key = state
                            .queries
                            .keys()
                            .find(|k| k.eq_ignore_ascii_case(&id.name))
                            .cloned();
                        match key {
                            Some(k) => vec![k],
                            None => {
                                return Err(StatementError::bad(
                                    format!(
                                        "unknown query id {}; the running queries are {:?} (SHOW QUERIES)",
                                        id.name,
                                        state.queries.keys().collect::<Vec<_>>()
                                    ),
                                    text,
                                ))
                            }
                        }
                    }
                };
                if offset.is_none() {
                    return Ok(Json::Null);
                }
                for id in &ids {
                    if let Some(q) = state.queries.remove(id) {
                        q.terminate(&kafka.admin).await;
                    }
                }
                Ok(status(text, offset, "Query terminated.", ""))
            }
            _ => Err(StatementError::bad("not a statement the engine runs", text)),
        }
    }

    /// Registers a push query so `/close-query` can stop it.
    pub(crate) fn register_push(&self, id: &str, stop: tokio::sync::watch::Sender<bool>) {
        self.push
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), stop);
    }

    pub(crate) fn unregister_push(&self, id: &str) {
        self.push
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Stops push query `id`; false when no such query runs.
    pub fn close_push(&self, id: &str) -> bool {
        match self
            .push
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
        {
            Some(stop) => {
                let _ = stop.send(true);
                true
            }
            None => false,
        }
    }

    /// Runs a query: a pull query's rows, or a push query's stream of rows.
    pub async fn query(
        self: &Arc<Self>,
        text: &str,
        properties: &BTreeMap<String, String>,
    ) -> Result<queries::QueryResult> {
        let statement = crate::parse_statement(text)
            .map_err(|e| StatementError::bad(e.to_string(), text.trim()))?;
        let Statement::Query(query) = statement else {
            return Err(StatementError::bad(
                "the query endpoints run SELECT statements; other statements go to POST /ksql",
                text,
            ));
        };
        let kafka = self.kafka(text)?;
        let state = self.state.lock().await;
        if query.emit.is_some() {
            let push =
                queries::start_push(self, &state.catalog, kafka, &query, text, properties).await?;
            Ok(queries::QueryResult::Push(push))
        } else {
            queries::pull(&state.catalog, &state.queries, &query, text)
                .map(queries::QueryResult::Pull)
        }
    }

    /// The catalog's source `name`, for `/inserts-stream`.
    pub async fn source(&self, name: &str) -> Option<Source> {
        self.state.lock().await.catalog.get(name).cloned()
    }

    pub(crate) fn producer(&self) -> Option<&Producer> {
        self.kafka.get().map(|k| &k.producer)
    }
}

fn kind_word(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Stream => "Stream",
        SourceKind::Table => "Table",
    }
}

/// ksqlDB's `currentStatus` entity.
fn status(text: &str, offset: Option<i64>, message: &str, name: &str) -> Entity {
    json!({
        "@type": "currentStatus",
        "statementText": text,
        "commandId": format!("`{name}`"),
        "commandStatus": {"status": "SUCCESS", "message": message},
        "commandSequenceNumber": offset.unwrap_or(-1),
        "warnings": [],
    })
}

async fn partitions_of(kafka: &Kafka, topic: &str) -> Option<i32> {
    kafka
        .client
        .topic(topic)
        .await
        .ok()
        .map(|t| t.partitions.len() as i32)
}

/// Creates `source`'s topic if it does not exist: with its PARTITIONS, else `default`
/// (a query's sink: its source's partition count). A declared source whose topic does
/// not exist and has no PARTITIONS is an error, as in ksqlDB.
async fn ensure_topic(
    kafka: &Kafka,
    source: &Source,
    default: Option<i32>,
    text: &str,
) -> Result<()> {
    if partitions_of(kafka, &source.topic).await.is_some() {
        return Ok(());
    }
    let Some(partitions) = source.partitions.or(default) else {
        return Err(StatementError::bad(
            format!(
                "topic '{}' does not exist; to create it, give the number of partitions: WITH (KAFKA_TOPIC='{}', PARTITIONS=1, ..)",
                source.topic, source.topic
            ),
            text,
        ));
    };
    let mut topic = NewTopic::new(&source.topic, partitions);
    if let Some(r) = source.replicas {
        topic.replication_factor = r;
    }
    match kafka.admin.create_topics(&[topic]).await {
        Ok(()) => Ok(()),
        Err(e) if e.to_string().contains("TOPIC_ALREADY_EXISTS") => Ok(()),
        Err(e) => Err(StatementError::server(
            format!("cannot create topic {}: {e}", source.topic),
            text,
        )),
    }
}
