//! ksqlDB's REST API: `POST /ksql` (statements), `POST /query` (chunked JSON),
//! `POST /query-stream` (HTTP/1.1 or HTTP/2; delimited rows or a JSON array),
//! `POST /close-query`, `POST /inserts-stream`, `GET /info`, `GET /healthcheck`.
//! Errors are ksqlDB's error JSON: `@type`, `error_code`, `message`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;

use super::queries::{PullResult, PushQuery, QueryResult, QueryRow};
use super::{codes, Engine, StatementError};
use crate::format::{from_json, to_json};
use crate::value::Value;

/// The routes, to merge into the server's HTTP listener.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/ksql", post(ksql))
        .route("/query", post(query))
        .route("/query-stream", post(query_stream))
        .route("/close-query", post(close_query))
        .route("/inserts-stream", post(inserts_stream))
        .route("/info", get(info))
        .route("/healthcheck", get(healthcheck))
        .with_state(engine)
}

const JSON_TYPE: &str = "application/json";
const DELIMITED_TYPE: &str = "application/vnd.ksqlapi.delimited.v1";

fn json_response(status: StatusCode, body: &Json) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, JSON_TYPE)],
        body.to_string(),
    )
        .into_response()
}

fn generic_error(code: u32, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16((code / 100) as u16).unwrap_or(StatusCode::BAD_REQUEST);
    json_response(
        status,
        &json!({"@type": "generic_error", "error_code": code, "message": message.into()}),
    )
}

fn statement_error(e: &StatementError, entities: Vec<Json>) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    json_response(
        status,
        &json!({
            "@type": "statement_error",
            "error_code": e.code,
            "message": e.message,
            "statementText": e.statement,
            "entities": entities,
        }),
    )
}

/// The request's JSON object, its statement text under `text_field`, and its properties
/// under `properties_field` (string values; others as their JSON text).
fn read_request(
    body: &[u8],
    text_field: &str,
    properties_field: &str,
) -> Result<(String, BTreeMap<String, String>), String> {
    let json: Json =
        serde_json::from_slice(body).map_err(|e| format!("the request body is not JSON: {e}"))?;
    let Some(text) = json.get(text_field).and_then(Json::as_str) else {
        return Err(format!(
            "the request needs a \"{text_field}\" field with the statement text"
        ));
    };
    let properties = json
        .get(properties_field)
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((text.to_owned(), properties))
}

async fn ksql(State(engine): State<Arc<Engine>>, body: Bytes) -> Response {
    let (text, properties) = match read_request(&body, "ksql", "streamsProperties") {
        Ok(r) => r,
        Err(m) => return generic_error(codes::BAD_REQUEST, m),
    };
    match engine.execute(&text, &properties).await {
        Ok(entities) => json_response(StatusCode::OK, &Json::Array(entities)),
        Err((e, entities)) => statement_error(&e, entities),
    }
}

fn row_json(values: &[Value]) -> Json {
    Json::Array(values.iter().map(to_json).collect())
}

/// Streams `push`'s rows as `frame(row)` chunks after `first`, until the query ends or the
/// client goes.
fn stream_rows(
    first: String,
    push: PushQuery,
    frame: fn(&Json) -> String,
    error_frame: fn(&str) -> String,
) -> Body {
    let head = futures_util::stream::once(async move { Ok::<_, Infallible>(Bytes::from(first)) });
    let rows = futures_util::stream::unfold(Some(push), move |push| async move {
        let mut push = push?;
        let chunk = match push.rows.recv().await? {
            QueryRow::Row(values) => frame(&row_json(&values)),
            QueryRow::Error(message) => {
                return Some((Ok(Bytes::from(error_frame(&message))), None));
            }
        };
        Some((Ok(Bytes::from(chunk)), Some(push)))
    });
    Body::from_stream(head.chain(rows))
}

/// `POST /query`: a JSON array written as it goes — a header, then `{"row": ..}` entries.
async fn query(State(engine): State<Arc<Engine>>, body: Bytes) -> Response {
    let (text, properties) = match read_request(&body, "ksql", "streamsProperties") {
        Ok(r) => r,
        Err(m) => return generic_error(codes::BAD_REQUEST, m),
    };
    match engine.query(&text, &properties).await {
        Err(e) => statement_error(&e, Vec::new()),
        Ok(QueryResult::Pull(pull)) => {
            let mut out = vec![json!({"header": {"queryId": pull.id, "schema": pull.schema}})];
            out.extend(
                pull.rows
                    .iter()
                    .map(|r| json!({"row": {"columns": row_json(r)}})),
            );
            json_response(StatusCode::OK, &Json::Array(out))
        }
        Ok(QueryResult::Push(push)) => {
            let first = format!(
                "[{},\n",
                json!({"header": {"queryId": push.id, "schema": push.schema}})
            );
            let body = stream_rows(
                first,
                push,
                |row| format!("{},\n", json!({"row": {"columns": row}})),
                |message| {
                    format!(
                        "{}]\n",
                        json!({"errorMessage": {"@type": "generic_error", "error_code": codes::SERVER_ERROR, "message": message}})
                    )
                },
            );
            ([(header::CONTENT_TYPE, JSON_TYPE)], body).into_response()
        }
    }
}

fn stream_header(id: &str, names: &[String], types: &[String]) -> Json {
    json!({"queryId": id, "columnNames": names, "columnTypes": types})
}

/// `POST /query-stream`: a header line then one JSON array per row (delimited, the
/// default), or one JSON array of them all (`Accept: application/json`).
async fn query_stream(
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (text, properties) = match read_request(&body, "sql", "properties") {
        Ok(r) => r,
        Err(m) => return generic_error(codes::BAD_REQUEST, m),
    };
    let as_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(JSON_TYPE) && !v.contains(DELIMITED_TYPE));
    let content_type = if as_json { JSON_TYPE } else { DELIMITED_TYPE };
    match engine.query(&text, &properties).await {
        Err(e) => statement_error(&e, Vec::new()),
        Ok(QueryResult::Pull(PullResult {
            id,
            names,
            types,
            rows,
            ..
        })) => {
            let header = stream_header(&id, &names, &types);
            let text = if as_json {
                let mut all = vec![header];
                all.extend(rows.iter().map(|r| row_json(r)));
                Json::Array(all).to_string()
            } else {
                let mut text = format!("{header}\n");
                for r in &rows {
                    text.push_str(&format!("{}\n", row_json(r)));
                }
                text
            };
            ([(header::CONTENT_TYPE, content_type)], text).into_response()
        }
        Ok(QueryResult::Push(push)) => {
            let header = stream_header(&push.id, &push.names, &push.types);
            let body = if as_json {
                stream_rows(
                    format!("[{header}"),
                    push,
                    |row| format!(",{row}"),
                    |message| {
                        format!(
                            ",{}]",
                            json!({"@type": "generic_error", "error_code": codes::SERVER_ERROR, "message": message})
                        )
                    },
                )
            } else {
                stream_rows(
                    format!("{header}\n"),
                    push,
                    |row| format!("{row}\n"),
                    |message| {
                        format!(
                            "{}\n",
                            json!({"@type": "generic_error", "error_code": codes::SERVER_ERROR, "message": message})
                        )
                    },
                )
            };
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
    }
}

/// `POST /close-query {"queryId": ..}`
async fn close_query(State(engine): State<Arc<Engine>>, body: Bytes) -> Response {
    let json: Json = match serde_json::from_slice(&body) {
        Ok(j) => j,
        Err(e) => {
            return generic_error(
                codes::BAD_REQUEST,
                format!("the request body is not JSON: {e}"),
            )
        }
    };
    let Some(id) = json.get("queryId").and_then(Json::as_str) else {
        return generic_error(codes::BAD_REQUEST, "the request needs a \"queryId\" field");
    };
    if engine.close_push(id) {
        (StatusCode::OK, "").into_response()
    } else {
        generic_error(codes::BAD_REQUEST, format!("no push query {id} is running"))
    }
}

/// `POST /inserts-stream`: the first line names the target (`{"target": "S"}`), each
/// following line is a row (an object by column name); each row is acknowledged on a line
/// of the response (`{"status": "ok", "seq": n}`) once written, or refused with its reason.
async fn inserts_stream(State(engine): State<Arc<Engine>>, body: Body) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    tokio::spawn(async move {
        let mut lines = LineReader::default();
        let mut body = body.into_data_stream();
        let mut target = None;
        let mut seq: i64 = 0;
        while let Some(line) = lines.next_from(&mut body).await {
            if line.trim().is_empty() {
                continue;
            }
            let reply = match &target {
                None => match parse_target(&engine, &line).await {
                    Ok(source) => {
                        target = Some(source);
                        continue;
                    }
                    Err(message) => {
                        let _ = tx.send(error_line(seq, codes::BAD_REQUEST, &message)).await;
                        break;
                    }
                },
                Some(source) => match insert_row(&engine, source, &line).await {
                    Ok(()) => Bytes::from(format!("{}\n", json!({"status": "ok", "seq": seq}))),
                    Err(message) => error_line(seq, codes::BAD_REQUEST, &message),
                },
            };
            seq += 1;
            if tx.send(reply).await.is_err() {
                break;
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    (
        [(header::CONTENT_TYPE, DELIMITED_TYPE)],
        Body::from_stream(body),
    )
        .into_response()
}

fn error_line(seq: i64, code: u32, message: &str) -> Bytes {
    Bytes::from(format!(
        "{}\n",
        json!({"status": "error", "seq": seq, "error_code": code, "message": message})
    ))
}

async fn parse_target(engine: &Engine, line: &str) -> Result<crate::catalog::Source, String> {
    let json: Json =
        serde_json::from_str(line).map_err(|e| format!("the first line is not JSON: {e}"))?;
    let name = json
        .get("target")
        .and_then(Json::as_str)
        .ok_or("the first line must name the stream: {\"target\": \"NAME\"}")?;
    // Names are upper-case unless quoted, as in SQL.
    match engine.source(name).await {
        Some(s) => Ok(s),
        None => match engine.source(&name.to_ascii_uppercase()).await {
            Some(s) => Ok(s),
            None => Err(format!("no stream or table named {name}")),
        },
    }
}

async fn insert_row(
    engine: &Engine,
    source: &crate::catalog::Source,
    line: &str,
) -> Result<(), String> {
    let json: Json = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Some(object) = json.as_object() else {
        return Err("a row is a JSON object of column names and values".into());
    };
    let find = |name: &str| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let known = |k: &str| {
        k.eq_ignore_ascii_case("ROWTIME")
            || source
                .key_columns
                .iter()
                .chain(&source.value_columns)
                .any(|(n, _)| n.eq_ignore_ascii_case(k))
    };
    if let Some(k) = object.keys().find(|k| !known(k)) {
        return Err(format!("{} has no column {k}", source.name));
    }
    let pick = |cols: &[(String, crate::value::Type)]| -> Result<Vec<Value>, String> {
        cols.iter()
            .map(|(n, t)| match find(n) {
                None => Ok(Value::Null),
                Some(v) => from_json(v, t, n).map_err(|e| e.0),
            })
            .collect()
    };
    let key = pick(&source.key_columns)?;
    let value = pick(&source.value_columns)?;
    let timestamp = find("ROWTIME").and_then(Json::as_i64);
    let producer = engine
        .producer()
        .ok_or("the SQL engine is starting; try again shortly")?;
    super::queries::encode_and_send(producer, source, key, value, timestamp).await
}

/// Splits a byte stream into lines.
#[derive(Default)]
struct LineReader {
    buffer: Vec<u8>,
}

impl LineReader {
    /// The next line, reading more of `body` as needed; the rest at its end.
    async fn next_from(
        &mut self,
        body: &mut (impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Unpin),
    ) -> Option<String> {
        loop {
            if let Some(line) = self.next_line() {
                return Some(line);
            }
            match body.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                _ => return self.rest(),
            }
        }
    }

    fn next_line(&mut self) -> Option<String> {
        let end = self.buffer.iter().position(|b| *b == b'\n')?;
        let line: Vec<u8> = self.buffer.drain(..=end).collect();
        Some(String::from_utf8_lossy(&line[..end]).into_owned())
    }

    /// What is left after the last newline, at the end of the body.
    fn rest(&mut self) -> Option<String> {
        if self.buffer.is_empty() {
            return None;
        }
        let line = String::from_utf8_lossy(&self.buffer).into_owned();
        self.buffer.clear();
        Some(line)
    }
}

async fn info(State(engine): State<Arc<Engine>>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"KsqlServerInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "kafkaClusterId": engine.cluster_id().unwrap_or_default(),
            "ksqlServiceId": engine.config().service_id,
            "serverStatus": if engine.is_ready() { "RUNNING" } else { "STARTING" },
        }}),
    )
}

async fn healthcheck(State(engine): State<Arc<Engine>>) -> Response {
    let ready = engine.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        &json!({
            "isHealthy": ready,
            "details": {
                "metastore": {"isHealthy": ready},
                "kafka": {"isHealthy": ready},
                "commandRunner": {"isHealthy": ready},
            },
        }),
    )
}
