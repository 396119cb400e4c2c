//! What `SHOW`, `LIST`, `DESCRIBE` and `EXPLAIN` answer, in the JSON shapes of ksqlDB's
//! REST API (`@type` streams, tables, queries, kafka_topics, properties,
//! sourceDescription, queryDescription).

use serde_json::{json, Value as Json};

use super::{Engine, Kafka, State, StatementError};
use crate::ast::{DescribeTarget, ExplainTarget, ShowKind, SourceKind, Statement};
use crate::catalog::Source;
use crate::format::Format;
use crate::value::Type;

type Result<T> = std::result::Result<T, StatementError>;

pub(super) async fn describe(
    engine: &Engine,
    state: &State,
    kafka: &Kafka,
    statement: &Statement,
    text: &str,
) -> Result<Json> {
    match statement {
        Statement::Show { what, extended } => show(engine, state, kafka, *what, *extended, text).await,
        Statement::Describe { target, extended } => match target {
            DescribeTarget::Source(name) => {
                let source = state.catalog.get(&name.name).ok_or_else(|| {
                    StatementError::bad(
                        format!(
                            "could not find STREAM/TABLE '{}' (line {}, column {})",
                            name.name, name.pos.line, name.pos.column
                        ),
                        text,
                    )
                })?;
                Ok(json!({
                    "@type": "sourceDescription",
                    "statementText": text,
                    "sourceDescription": source_description(state, kafka, source, *extended).await,
                    "warnings": [],
                }))
            }
            DescribeTarget::Streams | DescribeTarget::Tables => {
                let kind = if matches!(target, DescribeTarget::Streams) {
                    SourceKind::Stream
                } else {
                    SourceKind::Table
                };
                let mut descriptions = Vec::new();
                for s in state.catalog.sources().filter(|s| s.kind == kind) {
                    descriptions.push(source_description(state, kafka, s, *extended).await);
                }
                Ok(json!({
                    "@type": "source_descriptions",
                    "statementText": text,
                    "sourceDescriptions": descriptions,
                    "warnings": [],
                }))
            }
            DescribeTarget::Function(name) => Err(StatementError::bad(
                format!("DESCRIBE FUNCTION {}: function descriptions are not available; docs/sql.md lists the functions", name.name),
                text,
            )),
        },
        Statement::Explain(target) => {
            let id = match target {
                ExplainTarget::QueryId(id) => id,
                ExplainTarget::Statement(_) => {
                    return Err(StatementError::bad(
                        "EXPLAIN takes the id of a running query (SHOW QUERIES lists them)",
                        text,
                    ))
                }
            };
            let Some(q) = state
                .queries
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&id.name))
                .map(|(_, q)| q)
            else {
                return Err(StatementError::bad(
                    format!("unknown query id {}; SHOW QUERIES lists the running queries", id.name),
                    text,
                ));
            };
            Ok(json!({
                "@type": "queryDescription",
                "statementText": text,
                "queryDescription": {
                    "id": q.id,
                    "statementText": q.statement,
                    "windowType": null,
                    "fields": fields(&q.sink),
                    "sources": q.source_names,
                    "sinks": [q.sink.name],
                    "topology": q.topology_text(),
                    "executionPlan": q.statement,
                    "overriddenProperties": {},
                    "ksqlHostQueryStatus": {},
                    "queryType": "PERSISTENT",
                    "state": q.state(),
                },
                "warnings": [],
            }))
        }
        _ => Err(StatementError::bad("not a SHOW, DESCRIBE or EXPLAIN", text)),
    }
}

async fn show(
    engine: &Engine,
    state: &State,
    kafka: &Kafka,
    what: ShowKind,
    extended: bool,
    text: &str,
) -> Result<Json> {
    Ok(match what {
        ShowKind::Streams | ShowKind::Tables => {
            let kind = if what == ShowKind::Streams {
                SourceKind::Stream
            } else {
                SourceKind::Table
            };
            let list: Vec<Json> = state
                .catalog
                .sources()
                .filter(|s| s.kind == kind)
                .map(|s| {
                    json!({
                        "type": if kind == SourceKind::Stream { "STREAM" } else { "TABLE" },
                        "name": s.name,
                        "topic": s.topic,
                        "keyFormat": format_name(s.key_format),
                        "valueFormat": format_name(s.value_format),
                        "isWindowed": s.window.is_some(),
                    })
                })
                .collect();
            let (tag, field) = if kind == SourceKind::Stream {
                ("streams", "streams")
            } else {
                ("tables", "tables")
            };
            json!({"@type": tag, "statementText": text, field: list, "warnings": []})
        }
        ShowKind::Queries => {
            let list: Vec<Json> = state
                .queries
                .values()
                .map(|q| {
                    let s = q.state();
                    json!({
                        "queryString": q.statement,
                        "sinks": [q.sink.name],
                        "sinkKafkaTopics": [q.sink.topic],
                        "id": q.id,
                        "statusCount": {s.clone(): 1},
                        "queryType": "PERSISTENT",
                        "state": s,
                    })
                })
                .collect();
            json!({"@type": "queries", "statementText": text, "queries": list, "warnings": []})
        }
        ShowKind::Topics => {
            let meta = kafka
                .client
                .metadata(None)
                .await
                .map_err(|e| StatementError::server(e, text))?;
            let mut topics: Vec<_> = meta
                .topics
                .iter()
                .filter(|t| extended || !t.name.starts_with('_'))
                .map(|t| {
                    json!({
                        "name": t.name,
                        "replicaInfo": t.partitions.iter().map(|p| p.replicas.len()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            topics.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            json!({"@type": "kafka_topics", "statementText": text, "topics": topics, "warnings": []})
        }
        ShowKind::Properties => {
            let c = engine.config();
            let props = [
                ("ksql.service.id", c.service_id.clone()),
                ("bootstrap.servers", c.bootstrap_servers.clone()),
                ("ksql.streams.state.dir", c.state_dir.display().to_string()),
                (
                    "ksql.streams.processing.guarantee",
                    match c.processing_guarantee {
                        eddy_streams::ProcessingGuarantee::ExactlyOnceV2 => {
                            "exactly_once_v2".into()
                        }
                        eddy_streams::ProcessingGuarantee::AtLeastOnce => "at_least_once".into(),
                    },
                ),
                ("ksql.streams.auto.offset.reset", "latest".into()),
                ("ksql.command.topic", c.command_topic()),
            ];
            let list: Vec<Json> = props
                .iter()
                .map(|(n, v)| json!({"name": n, "scope": "KSQL", "value": v}))
                .collect();
            json!({"@type": "properties", "statementText": text, "properties": list, "overwrittenProperties": [], "defaultProperties": [], "warnings": []})
        }
        ShowKind::Functions => {
            let mut names: Vec<&str> = crate::expr::AGGREGATES.to_vec();
            names.extend(crate::functions::SCALAR.iter().copied());
            names.extend(crate::datetime::FUNCTIONS.iter().copied());
            names.sort_unstable();
            names.dedup();
            let list: Vec<Json> = names
                .iter()
                .map(|n| {
                    let aggregate = crate::expr::AGGREGATES.contains(n);
                    json!({"name": n, "type": if aggregate { "AGGREGATE" } else { "SCALAR" }, "category": ""})
                })
                .collect();
            json!({"@type": "function_names", "statementText": text, "functions": list, "warnings": []})
        }
    })
}

async fn source_description(state: &State, kafka: &Kafka, s: &Source, extended: bool) -> Json {
    let reads: Vec<&str> = state
        .queries
        .values()
        .filter(|q| q.source_names.contains(&s.name))
        .map(|q| q.id.as_str())
        .collect();
    let writes: Vec<&str> = state
        .queries
        .values()
        .filter(|q| q.sink.name == s.name)
        .map(|q| q.id.as_str())
        .collect();
    let partitions = kafka
        .client
        .topic(&s.topic)
        .await
        .map(|t| t.partitions.len())
        .unwrap_or(0);
    json!({
        "name": s.name,
        "windowType": s.window.map(|w| w.name()),
        "readQueries": reads.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        "writeQueries": writes.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        "fields": fields(s),
        "type": if s.kind == SourceKind::Stream { "STREAM" } else { "TABLE" },
        "timestamp": s.timestamp.as_ref().map_or(String::new(), |(c, _)| c.clone()),
        "statistics": "",
        "errorStats": "",
        "extended": extended,
        "keyFormat": format_name(s.key_format),
        "valueFormat": format_name(s.value_format),
        "topic": s.topic,
        "partitions": partitions,
        "replication": 1,
        "statement": "",
    })
}

/// A source's columns as ksqlDB describes them: name, schema, and KEY/PRIMARY for keys.
fn fields(s: &Source) -> Vec<Json> {
    let key_type = if s.kind == SourceKind::Stream {
        "KEY"
    } else {
        "PRIMARY"
    };
    let mut out: Vec<Json> = s
        .key_columns
        .iter()
        .map(|(n, t)| json!({"name": n, "schema": schema(t), "type": key_type}))
        .collect();
    out.extend(
        s.value_columns
            .iter()
            .map(|(n, t)| json!({"name": n, "schema": schema(t)})),
    );
    out
}

fn schema(t: &Type) -> Json {
    match t {
        Type::Array(item) => json!({"type": "ARRAY", "fields": null, "memberSchema": schema(item)}),
        Type::Map(_, v) => json!({"type": "MAP", "fields": null, "memberSchema": schema(v)}),
        Type::Struct(fields) => json!({
            "type": "STRUCT",
            "fields": fields.iter().map(|(n, t)| json!({"name": n, "schema": schema(t)})).collect::<Vec<_>>(),
            "memberSchema": null,
        }),
        Type::Decimal(p, s) => {
            json!({"type": "DECIMAL", "fields": null, "memberSchema": null, "parameters": {"precision": p, "scale": s}})
        }
        other => json!({"type": other.to_string(), "fields": null, "memberSchema": null}),
    }
}

pub fn format_name(f: Format) -> &'static str {
    match f {
        Format::Json { .. } => "JSON",
        Format::Delimited => "DELIMITED",
        Format::Kafka => "KAFKA",
    }
}
