//! A small HTTP server for interactive queries (feature `http`), so that a running
//! application's stores can be read with curl. Keys come from the URL (as JSON, or as a
//! plain string), values go out as JSON. Any instance answers for every key: a key whose
//! task runs on another instance is fetched from that instance's `application.server` and
//! passed on, and `all`/`range` gather every instance's entries.
//!
//! ```text
//! GET /stores/{store}/keys/{key}                 {"key": .., "value": ..}   (404: no such key)
//! GET /stores/{store}/all                        [{"key": .., "value": ..}] by serialized key
//! GET /stores/{store}/range?from=&to=            likewise, from <= key <= to (bounds optional)
//! GET /stores/{store}/windows/{key}?from=&to=    [{"start": .., "end": .., "value": ..}]
//! GET /stores/{store}/sessions/{key}             [{"start": .., "end": .., "value": ..}]
//! GET /stores/{store}/metadata/{key}             {"active_host", "standby_hosts", "partition"}
//! GET /metadata                                  every instance: host, stores, tasks
//! ```
//!
//! `all` and `range` take `scope=local` for this instance's entries only. Errors are
//! `{"error": "..."}`: 404 for an unknown store or key, 400 for a bad key or parameter or a
//! store of the wrong kind, 503 while the group has not assigned the store's tasks yet, 502
//! when the instance that holds a key cannot be reached.
//!
//! Why forward rather than redirect (307 or 421 with the owner's address): a client then
//! needs to know nothing of the instances, curl and browsers work without options, and the
//! owner's address can be one only the instances reach. The cost is one extra hop, bounded:
//! a passed-on request carries a header that makes the owner answer from its own stores,
//! so a stale host map never makes two instances bounce a request between them.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::QueryHandle;
use crate::error::StreamsError;
use crate::serdes::SerdeRef;
use crate::topology::StoreKind;
use crate::value::Data;

/// Set on a request one instance passes to another, which then answers from its own stores
/// (no second hop, no loop).
const FORWARDED: &str = "x-eddy-forwarded";
/// A forwarded answer larger than this is refused.
const FORWARD_BYTES_MAX: usize = 16 * 1024 * 1024;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers share: the query handle and the key serde (for key metadata and for
/// ordering merged results by serialized key).
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
        .route("/stores/{store}/all", get(range::<K, V>))
        .route("/stores/{store}/range", get(range::<K, V>))
        .route("/stores/{store}/windows/{key}", get(windows::<K, V>))
        .route("/stores/{store}/sessions/{key}", get(sessions::<K, V>))
        .route("/stores/{store}/metadata/{key}", get(key_metadata::<K, V>))
        .with_state(api)
}

/// Serves [`router`] on `addr` (this instance's `application.server`) until the task is
/// dropped or the listener fails.
pub async fn serve<K, V>(
    addr: &str,
    query: QueryHandle,
    key_serde: SerdeRef<K>,
) -> std::io::Result<()>
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, router::<K, V>(query, key_serde)).await
}

/// An answer other than 200: its status and message.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

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

fn respond(result: ApiResult<Value>) -> Response {
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A key from the URL: JSON (`42`, `"a b"`, `{"id": 1}`), or else the text itself.
fn parse_key<K: DeserializeOwned>(raw: &str) -> ApiResult<K> {
    serde_json::from_str(raw)
        .or_else(|_| serde_json::from_value(Value::String(raw.to_owned())))
        .map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("key {raw:?} is not a key of this store: {e}"),
            )
        })
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> ApiResult<T> {
    p.map(|Path(p)| p).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("bad path: {}", e.body_text()),
        )
    })
}

/// The query parameters, refusing any but `allowed` (a misspelt bound would otherwise be
/// silently ignored, and the answer look right).
fn params(
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
    allowed: &[&str],
) -> ApiResult<HashMap<String, String>> {
    let Query(params) = q.map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("bad query string: {}", e.body_text()),
        )
    })?;
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("unknown parameter {k:?}; this endpoint takes {allowed:?}"),
        )),
        None => Ok(params),
    }
}

fn parse_time(params: &HashMap<String, String>, name: &str, default: i64) -> ApiResult<i64> {
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

/// Where a key's query is answered.
enum Route {
    Here,
    /// The `application.server` of the instance running the key's task.
    There(String),
}

impl<K, V> Api<K, V>
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    /// `store`'s kind if `ok` accepts it: 404 for an unknown store, 400 for another kind.
    fn kind(&self, store: &str, want: &str, ok: fn(&StoreKind) -> bool) -> ApiResult<StoreKind> {
        let kind = self.query.store_kind(store).map_err(streams_error)?;
        if ok(&kind) {
            Ok(kind)
        } else {
            Err(error(
                StatusCode::BAD_REQUEST,
                format!("store {store:?} is not a {want} store"),
            ))
        }
    }

    /// Where to answer for `key`: here when this instance runs its task, when this request
    /// was passed on by another instance, or when the owner gives no address.
    fn route(&self, store: &str, key: &K, headers: &HeaderMap) -> ApiResult<Route> {
        if headers.contains_key(FORWARDED) {
            return Ok(Route::Here);
        }
        let md = self
            .query
            .metadata_for_key(store, key, &self.key_serde)
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        Ok(match md.active_host {
            Some(h) if Some(h.as_str()) != self.query.this_host() => Route::There(h),
            _ => Route::Here,
        })
    }

    /// Entries as JSON objects with their serialized keys, for ordering merged results.
    fn keyed(&self, store: &str, list: Vec<(K, V)>) -> ApiResult<Vec<(Bytes, Value)>> {
        list.into_iter()
            .map(|(k, v)| {
                let bytes = self.key_serde.serialize(store, &k).map_err(|e| {
                    error(StatusCode::INTERNAL_SERVER_ERROR, format!("key serde: {e}"))
                })?;
                let entry = json!({ "key": to_json(&k), "value": to_json(&v) });
                Ok((bytes.unwrap_or_default(), entry))
            })
            .collect()
    }

    /// Another instance's entries (`all`/`range` passed on), keyed as [`Api::keyed`].
    async fn remote_entries(
        &self,
        store: &str,
        host: &str,
        uri: &Uri,
    ) -> ApiResult<Vec<(Bytes, Value)>> {
        let (status, body) = fetch(host, uri).await?;
        let bad = |detail: String| {
            error(
                StatusCode::BAD_GATEWAY,
                format!("instance {host} answered {status}: {detail}"),
            )
        };
        if status != 200 {
            return Err(bad(String::from_utf8_lossy(&body).into_owned()));
        }
        let entries: Vec<Value> =
            serde_json::from_slice(&body).map_err(|e| bad(format!("not a JSON list: {e}")))?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let key: K = serde_json::from_value(entry["key"].clone())
                .map_err(|e| bad(format!("an entry without a key of this store: {e}")))?;
            let bytes = self
                .key_serde
                .serialize(store, &key)
                .map_err(|e| bad(format!("key serde: {e}")))?;
            out.push((bytes.unwrap_or_default(), entry));
        }
        Ok(out)
    }
}

async fn get_key<K, V>(
    State(api): State<Api<K, V>>,
    p: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Response
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    let answer = async {
        let (store, raw) = path(p)?;
        params(q, &[])?;
        api.kind(&store, "key-value", |k| matches!(k, StoreKind::KeyValue))?;
        let key: K = parse_key(&raw)?;
        if let Route::There(owner) = api.route(&store, &key, &headers)? {
            return Ok(forward(&owner, &uri).await);
        }
        match api.query.get::<K, V>(&store, &key).map_err(streams_error)? {
            Some(v) => {
                Ok(Json(json!({ "key": to_json(&key), "value": to_json(&v) })).into_response())
            }
            None => Err(error(
                StatusCode::NOT_FOUND,
                format!("store {store:?} has no key {raw:?}"),
            )),
        }
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// `all` and `range`: this instance's entries, and unless `scope=local` (or passed on by
/// another instance) those of every other instance running the store, by serialized key.
async fn range<K, V>(
    State(api): State<Api<K, V>>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Response
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    let answer = async {
        let store = path(p)?;
        let params = params(q, &["from", "to", "scope"])?;
        api.kind(&store, "key-value", |k| matches!(k, StoreKind::KeyValue))?;
        let local_only = match params.get("scope").map(String::as_str) {
            None | Some("all") => headers.contains_key(FORWARDED),
            Some("local") => true,
            Some(other) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    format!("scope={other:?}: expected \"local\" or \"all\""),
                ))
            }
        };
        let bound = |name: &str| params.get(name).map(|raw| parse_key::<K>(raw)).transpose();
        let (from, to) = (bound("from")?, bound("to")?);
        let local = api
            .query
            .range::<K, V>(&store, from.as_ref(), to.as_ref())
            .map_err(streams_error)?;
        let mut entries = api.keyed(&store, local)?;
        // A global store is whole on every instance: asking the others would repeat it.
        if !local_only && !api.query.is_global_store(&store) {
            let others = api
                .query
                .streams_metadata_for_store(&store)
                .map_err(streams_error)?;
            for m in others {
                if Some(m.host.as_str()) != api.query.this_host() {
                    entries.extend(api.remote_entries(&store, &m.host, &uri).await?);
                }
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(Value::Array(entries.into_iter().map(|(_, e)| e).collect()))
    };
    respond(answer.await)
}

async fn windows<K, V>(
    State(api): State<Api<K, V>>,
    p: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Response
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    let answer = async {
        let (store, raw) = path(p)?;
        let params = params(q, &["from", "to"])?;
        api.kind(&store, "window", |k| matches!(k, StoreKind::Window { .. }))?;
        let size = api.query.window_size_ms(&store).map_err(streams_error)?;
        let key: K = parse_key(&raw)?;
        let from = parse_time(&params, "from", i64::MIN)?;
        let to = parse_time(&params, "to", i64::MAX)?;
        if let Route::There(owner) = api.route(&store, &key, &headers)? {
            return Ok(forward(&owner, &uri).await);
        }
        let list = api
            .query
            .fetch::<K, V>(&store, &key, from, to)
            .map_err(streams_error)?;
        let list = list.iter().map(|(start, v)| {
            json!({ "start": start, "end": start.saturating_add(size), "value": to_json(v) })
        });
        Ok::<_, ApiError>(Json(Value::Array(list.collect())).into_response())
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

async fn sessions<K, V>(
    State(api): State<Api<K, V>>,
    p: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Response
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    let answer = async {
        let (store, raw) = path(p)?;
        params(q, &[])?;
        api.kind(&store, "session", |k| {
            matches!(k, StoreKind::Session { .. })
        })?;
        let key: K = parse_key(&raw)?;
        if let Route::There(owner) = api.route(&store, &key, &headers)? {
            return Ok(forward(&owner, &uri).await);
        }
        let list = api
            .query
            .fetch_sessions::<K, V>(&store, &key)
            .map_err(streams_error)?;
        let list = list.iter().map(|(w, v)| {
            json!({ "start": w.window.start_ms, "end": w.window.end_ms, "value": to_json(v) })
        });
        Ok::<_, ApiError>(Json(Value::Array(list.collect())).into_response())
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

async fn key_metadata<K, V>(
    State(api): State<Api<K, V>>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Response
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    let answer = || -> ApiResult<Value> {
        let (store, raw) = path(p)?;
        api.query.store_kind(&store).map_err(streams_error)?;
        let key: K = parse_key(&raw)?;
        let md = api
            .query
            .metadata_for_key(&store, &key, &api.key_serde)
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        Ok(json!({
            "active_host": md.active_host,
            "standby_hosts": md.standby_hosts,
            "partition": md.partition,
        }))
    };
    respond(answer())
}

async fn all_metadata<K, V>(State(api): State<Api<K, V>>) -> Response
where
    K: Data + Sync + Serialize + DeserializeOwned,
    V: Data + Sync + Serialize,
{
    let ids = |t: &[crate::task::TaskId]| t.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    let list: Vec<Value> = api
        .query
        .all_metadata()
        .into_iter()
        .map(|m| {
            json!({
                "host": m.host,
                "stores": m.stores,
                "tasks": ids(&m.tasks),
                "standby_stores": m.standby_stores,
                "standby_tasks": ids(&m.standby_tasks),
            })
        })
        .collect();
    Json(Value::Array(list)).into_response()
}

/// Asks `owner` (host:port) for the same path and query, marked as passed on.
async fn fetch(owner: &str, uri: &Uri) -> ApiResult<(u16, Vec<u8>)> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    match tokio::time::timeout(FORWARD_TIMEOUT, http_get(owner, path)).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(error(
            StatusCode::BAD_GATEWAY,
            format!("instance {owner} holds part of the answer but did not answer: {e}"),
        )),
        Err(_) => Err(error(
            StatusCode::BAD_GATEWAY,
            format!(
                "instance {owner} holds part of the answer but did not answer within \
                 {FORWARD_TIMEOUT:?}"
            ),
        )),
    }
}

/// Asks `owner` for the same request and passes its answer on as it is.
async fn forward(owner: &str, uri: &Uri) -> Response {
    match fetch(owner, uri).await {
        Ok((status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (
                status,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// A GET over HTTP/1.1 with `Connection: close`: (status, body).
async fn http_get(host: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
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
        return Err(invalid(&format!("answer over {FORWARD_BYTES_MAX} bytes")));
    }
    parse_response(&raw)
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

/// An HTTP/1.1 response read to its end: (status, body), chunked or not.
fn parse_response(raw: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| invalid("headers not UTF-8"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid("no status"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &raw[split + 4..];
    let body = if chunked {
        dechunk(body).ok_or_else(|| invalid("malformed chunked body"))?
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
        body = body.get(size.checked_add(2)?..)?;
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
        assert!(dechunk(b"ffffffffffffffff\r\nabc").is_none());
        assert!(dechunk(b"").is_none());
    }

    #[test]
    fn responses_parse_and_garbage_is_an_error() {
        let plain = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain).unwrap(), (404, b"{}".to_vec()));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (200, b"[]".to_vec()));
        for garbage in [
            &b""[..],
            b"HTTP/1.1\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
            b"no headers",
        ] {
            assert!(parse_response(garbage).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn keys_parse_as_json_or_as_text() {
        assert!(parse_key::<String>("plain words").is_ok_and(|k| k == "plain words"));
        assert!(parse_key::<String>("42").is_ok_and(|k| k == "42"));
        assert!(parse_key::<String>("\"quoted\"").is_ok_and(|k| k == "quoted"));
        assert!(parse_key::<i64>("42").is_ok_and(|k| k == 42));
        assert!(parse_key::<i64>("forty-two").is_err());
    }

    #[test]
    fn unknown_parameters_are_refused_by_name() {
        let q = |pairs: &[(&str, &str)]| {
            Ok(Query(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ))
        };
        assert!(params(q(&[("from", "a")]), &["from", "to"]).is_ok());
        let Err(ApiError(status, message)) = params(q(&[("form", "a")]), &["from", "to"]) else {
            panic!("a misspelt parameter passed");
        };
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("\"form\""), "{message}");
    }
}
