//! A small HTTP server for interactive queries, so that a running application's stores can
//! be read with curl. Keys come from the URL (as JSON, or as a plain string), values go out
//! as JSON. A key whose task runs on another instance is fetched from that instance's
//! `application.server` and passed on, so any instance answers for every key.
//!
//! ```text
//! GET /stores/{store}/keys/{key}                 {"key": .., "value": ..}   (404: no such key)
//! GET /stores/{store}/all                        [{"key": .., "value": ..}] (this instance's)
//! GET /stores/{store}/range?from=&to=            likewise, from <= key <= to (bounds optional)
//! GET /stores/{store}/windows/{key}?from=&to=    [{"start": .., "end": .., "value": ..}]
//! GET /stores/{store}/metadata/{key}             {"active_host", "standby_hosts", "partition"}
//! GET /metadata                                  every instance: host, stores, tasks
//! ```
//!
//! Errors are `{"error": "..."}`: 404 for an unknown store or key, 400 for a bad key or
//! parameter, 502 when the instance that holds a key cannot be reached.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::QueryHandle;
use crate::error::StreamsError;
use crate::serdes::SerdeRef;
use crate::value::Data;

/// Set on a request one instance passes to another, which then answers from its own stores
/// (no second hop, no loop).
const FORWARDED: &str = "x-eddy-forwarded";
/// A forwarded answer larger than this is refused.
const FORWARD_BYTES_MAX: usize = 16 * 1024 * 1024;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

struct Api<K, V> {
    query: QueryHandle,
    key_serde: SerdeRef<K>,
    _value: std::marker::PhantomData<fn() -> V>,
}

impl<K, V> Clone for Api<K, V> {
    fn clone(&self) -> Self {
        Api {
            query: self.query.clone(),
            key_serde: self.key_serde.clone(),
            _value: std::marker::PhantomData,
        }
    }
}

/// The routes, for stores whose keys are `K` (serialized with `key_serde`, as the
/// application writes them) and values `V`. Serve it with `axum::serve` on the address the
/// instance gives as `application.server`.
pub fn router<K, V>(query: QueryHandle, key_serde: SerdeRef<K>) -> Router
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    let api = Api::<K, V> {
        query,
        key_serde,
        _value: std::marker::PhantomData,
    };
    Router::new()
        .route("/metadata", get(all_metadata::<K, V>))
        .route("/stores/{store}/keys/{key}", get(get_key::<K, V>))
        .route("/stores/{store}/all", get(all::<K, V>))
        .route("/stores/{store}/range", get(range::<K, V>))
        .route("/stores/{store}/windows/{key}", get(windows::<K, V>))
        .route("/stores/{store}/metadata/{key}", get(key_metadata::<K, V>))
        .with_state(api)
}

/// An answer other than 200: its status and message.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError(status, message.into())
}

fn streams_error(e: StreamsError) -> ApiError {
    let status = match &e {
        StreamsError::InvalidStateStore(_) => StatusCode::NOT_FOUND,
        StreamsError::Serde(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

/// A key from the URL: JSON (`42`, `"a b"`, `{"id": 1}`), or else the text itself.
fn parse_key<K: DeserializeOwned>(raw: &str) -> Result<K, ApiError> {
    serde_json::from_str(raw)
        .or_else(|_| serde_json::from_value(Value::String(raw.to_owned())))
        .map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("key {raw:?} is not a key of this store: {e}"),
            )
        })
}

fn parse_time(params: &HashMap<String, String>, name: &str, default: i64) -> Result<i64, ApiError> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                format!("{name}={v:?} is not a time in milliseconds since the epoch"),
            )
        }),
    }
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

impl<K, V> Api<K, V>
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    /// The instance to ask for `key`, when it is not this one (and this request was not
    /// itself passed on).
    fn owner(&self, store: &str, key: &K, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
        if headers.contains_key(FORWARDED) {
            return Ok(None);
        }
        let md = self
            .query
            .metadata_for_key(store, key, &self.key_serde)
            .map_err(streams_error)?;
        Ok(md
            .active_host
            .filter(|h| Some(h.as_str()) != self.query.this_host()))
    }
}

async fn get_key<K, V>(
    State(api): State<Api<K, V>>,
    Path((store, raw)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    let key: K = match parse_key(&raw) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    match api.owner(&store, &key, &headers) {
        Ok(Some(owner)) => return forward(&owner, &uri).await,
        Ok(None) => {}
        Err(r) => return r.into_response(),
    }
    match api.query.get::<K, V>(&store, &key) {
        Ok(Some(v)) => Json(json!({ "key": to_json(&key), "value": to_json(&v) })).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("store {store:?} has no key {raw:?}"),
        )
        .into_response(),
        Err(e) => streams_error(e).into_response(),
    }
}

async fn all<K, V>(State(api): State<Api<K, V>>, Path(store): Path<String>) -> Response
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    entries(api.query.all::<K, V>(&store))
}

async fn range<K, V>(
    State(api): State<Api<K, V>>,
    Path(store): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    let bound = |name: &str| -> Result<Option<K>, ApiError> {
        params.get(name).map(|raw| parse_key(raw)).transpose()
    };
    let (from, to) = match (bound("from"), bound("to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    entries(api.query.range::<K, V>(&store, from.as_ref(), to.as_ref()))
}

fn entries<K: Serialize, V: Serialize>(result: crate::error::Result<Vec<(K, V)>>) -> Response {
    match result {
        Ok(list) => Json(Value::Array(
            list.iter()
                .map(|(k, v)| json!({ "key": to_json(k), "value": to_json(v) }))
                .collect(),
        ))
        .into_response(),
        Err(e) => streams_error(e).into_response(),
    }
}

async fn windows<K, V>(
    State(api): State<Api<K, V>>,
    Path((store, raw)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    let key: K = match parse_key(&raw) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let (from, to) = match (
        parse_time(&params, "from", i64::MIN),
        parse_time(&params, "to", i64::MAX),
    ) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    let size = match api.query.store_kind(&store) {
        Ok(crate::topology::StoreKind::Window { size_ms, .. }) => size_ms,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("store {store:?} is not a window store"),
            )
            .into_response()
        }
        Err(e) => return streams_error(e).into_response(),
    };
    match api.owner(&store, &key, &headers) {
        Ok(Some(owner)) => return forward(&owner, &uri).await,
        Ok(None) => {}
        Err(r) => return r.into_response(),
    }
    match api.query.fetch::<K, V>(&store, &key, from, to) {
        Ok(list) => Json(Value::Array(
            list.iter()
                .map(|(start, v)| {
                    json!({ "start": start, "end": start.saturating_add(size), "value": to_json(v) })
                })
                .collect(),
        ))
        .into_response(),
        Err(e) => streams_error(e).into_response(),
    }
}

async fn key_metadata<K, V>(
    State(api): State<Api<K, V>>,
    Path((store, raw)): Path<(String, String)>,
) -> Response
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    let key: K = match parse_key(&raw) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    match api.query.metadata_for_key(&store, &key, &api.key_serde) {
        Ok(md) => Json(json!({
            "active_host": md.active_host,
            "standby_hosts": md.standby_hosts,
            "partition": md.partition,
        }))
        .into_response(),
        Err(e) => streams_error(e).into_response(),
    }
}

async fn all_metadata<K, V>(State(api): State<Api<K, V>>) -> Response
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    let list: Vec<Value> = api
        .query
        .all_metadata()
        .into_iter()
        .map(|m| {
            json!({
                "host": m.host,
                "stores": m.stores,
                "tasks": m.tasks.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                "standby_tasks": m.standby_tasks.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(Value::Array(list)).into_response()
}

/// Asks `owner` (host:port) for the same path and passes its answer on.
async fn forward(owner: &str, uri: &Uri) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    match tokio::time::timeout(FORWARD_TIMEOUT, http_get(owner, path)).await {
        Ok(Ok((status, body))) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (
                status,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        Ok(Err(e)) => error(
            StatusCode::BAD_GATEWAY,
            format!("the key is held by {owner}, which did not answer: {e}"),
        )
        .into_response(),
        Err(_) => error(
            StatusCode::BAD_GATEWAY,
            format!("the key is held by {owner}, which did not answer within {FORWARD_TIMEOUT:?}"),
        )
        .into_response(),
    }
}

/// A GET over HTTP/1.1 with `Connection: close`: (status, body).
async fn http_get(host: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{FORWARDED}: 1\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    (&mut stream)
        .take(FORWARD_BYTES_MAX as u64 + 1)
        .read_to_end(&mut raw)
        .await?;
    if raw.len() > FORWARD_BYTES_MAX {
        return Err(bad("answer too large"));
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("headers not UTF-8"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("no status"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &raw[split + 4..];
    let body = if chunked {
        dechunk(body).ok_or_else(|| bad("malformed chunked body"))?
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_and_garbage_does_not_panic() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert!(dechunk(b"zz\r\nabc").is_none());
        assert!(dechunk(b"10\r\nabc").is_none());
        assert!(dechunk(b"").is_none());
    }

    #[test]
    fn keys_parse_as_json_or_as_text() {
        assert!(parse_key::<String>("plain words").is_ok_and(|k| k == "plain words"));
        assert!(parse_key::<String>("42").is_ok_and(|k| k == "42"));
        assert!(parse_key::<String>("\"quoted\"").is_ok_and(|k| k == "quoted"));
        assert!(parse_key::<i64>("42").is_ok_and(|k| k == 42));
        assert!(parse_key::<i64>("forty-two").is_err());
    }
}
