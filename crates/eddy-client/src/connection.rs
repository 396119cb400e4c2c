//! One TCP connection to one broker: framed, pipelined requests matched to responses by
//! correlation id, with API versions negotiated once at connect.
//!
//! Two tasks own the socket halves. The writer task takes whole frames from a bounded channel,
//! so a caller that is cancelled mid-request can never leave half a frame on the wire. The
//! reader task splits frames off the socket and hands each to the waiter registered under its
//! correlation id. A semaphore bounds the requests in flight
//! (`max.in.flight.requests.per.connection`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Request, StrBytes, VersionRange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::error::{Error, KafkaCode, Result};
use crate::frame;

/// Limits and identity of a connection. Names follow Kafka's client configs.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// `client.id`, sent in every request header.
    pub client_id: String,
    /// `socket.connection.setup.timeout.ms`.
    pub connect_timeout_ms: u64,
    /// `request.timeout.ms`: how long to wait for one response.
    pub request_timeout_ms: u64,
    /// `max.in.flight.requests.per.connection`.
    pub max_in_flight_requests: usize,
    /// Largest response frame accepted; a bigger announced size closes the connection.
    pub response_max_bytes: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: "eddy".to_owned(),
            connect_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_in_flight_requests: 5,
            response_max_bytes: 128 * 1024 * 1024,
        }
    }
}

/// The versions this client can speak, per API: the codec's range, capped where a newer
/// version changes semantics we have not implemented.
pub fn client_versions(key: ApiKey) -> VersionRange {
    let codec = key.valid_versions();
    let max = match key {
        // Produce v13 and Fetch v13+ name topics by id only (KIP-516); we address by name.
        ApiKey::Produce => 12,
        ApiKey::Fetch => 12,
        _ => codec.max,
    };
    VersionRange {
        min: codec.min,
        max: max.min(codec.max),
    }
}

type Waiter = oneshot::Sender<Result<Bytes>>;

/// What the writer task is given: a whole frame (and who to tell once it is on the
/// socket), or the order to end the stream.
enum Outgoing {
    Frame {
        frame: Bytes,
        written: Option<oneshot::Sender<()>>,
    },
    Shutdown,
}

/// Requests waiting for their response, and why the connection died if it did.
/// std Mutex, not tokio's: it is never held across an await.
struct Pending {
    addr: String,
    waiters: HashMap<i32, Waiter>,
    /// Set once the connection must not take new requests: the socket died, or a request
    /// timed out and left the stream in a state we cannot trust.
    closed: Option<String>,
}

impl Pending {
    fn fail_all(&mut self, reason: String) {
        for (_, waiter) in self.waiters.drain() {
            let _ = waiter.send(Err(Error::Io {
                addr: self.addr.clone(),
                cause: std::io::Error::other(reason.clone()),
            }));
        }
        self.closed.get_or_insert(reason);
    }

    fn give_up_on(&mut self, correlation_id: i32) {
        self.waiters.remove(&correlation_id);
        self.closed
            .get_or_insert_with(|| "a request timed out".to_owned());
    }
}

/// A negotiated connection to one broker. Cheap to share behind an `Arc`; every method takes
/// `&self` so many tasks can pipeline requests over it.
pub struct Connection {
    addr: String,
    config: ConnectionConfig,
    client_id: StrBytes,
    frames: mpsc::Sender<Outgoing>,
    pending: Arc<Mutex<Pending>>,
    in_flight: Arc<Semaphore>,
    next_correlation_id: AtomicI32,
    broker_versions: HashMap<i16, VersionRange>,
    tasks: [JoinHandle<()>; 2],
    /// Becomes true when the reader task has ended (end of stream or error).
    reader_done: watch::Receiver<bool>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A request that is on its way to the broker; [`PendingResponse::wait`] gives its response.
/// Holding it holds one in-flight slot of the connection.
pub struct PendingResponse<R: Request> {
    rx: oneshot::Receiver<Result<Bytes>>,
    version: i16,
    addr: String,
    timeout_ms: u64,
    pending: Arc<Mutex<Pending>>,
    correlation_id: i32,
    _permit: OwnedSemaphorePermit,
    _request: std::marker::PhantomData<fn() -> R>,
}

impl<R: Request> PendingResponse<R> {
    /// Waits for the response, at most `request.timeout.ms`.
    pub async fn wait(self) -> Result<R::Response> {
        let timeout = Duration::from_millis(self.timeout_ms);
        let payload = match tokio::time::timeout(timeout, self.rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_dropped)) => {
                return Err(Error::ConnectionClosed {
                    addr: self.addr,
                    in_flight: true,
                })
            }
            Err(_elapsed) => {
                lock(&self.pending).give_up_on(self.correlation_id);
                return Err(Error::Timeout {
                    what: format!("{} request to {}", frame::api_name(R::KEY), self.addr),
                    timeout_ms: self.timeout_ms,
                });
            }
        };
        frame::decode_response::<R>(payload, self.version)
    }
}

fn lock(pending: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    // A panic while holding this lock is a bug elsewhere; the map itself stays consistent.
    pending
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Connection {
    /// Connects to `addr` (`host:port`) and negotiates API versions.
    pub async fn connect(addr: &str, config: ConnectionConfig) -> Result<Connection> {
        if config.max_in_flight_requests == 0 {
            return Err(Error::Config(
                "max.in.flight.requests.per.connection must be at least 1".into(),
            ));
        }
        let timeout = Duration::from_millis(config.connect_timeout_ms);
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(cause)) => {
                return Err(Error::Connect {
                    addr: addr.to_owned(),
                    cause,
                })
            }
            Err(_) => {
                return Err(Error::Timeout {
                    what: format!("connecting to {addr}"),
                    timeout_ms: config.connect_timeout_ms,
                })
            }
        };
        // Requests are whole frames written at once; Nagle would only add latency.
        let _ = stream.set_nodelay(true);
        let (read_half, write_half) = stream.into_split();
        let pending = Arc::new(Mutex::new(Pending {
            addr: addr.to_owned(),
            waiters: HashMap::new(),
            closed: None,
        }));
        let (frames_tx, frames_rx) = mpsc::channel(config.max_in_flight_requests);
        let (done_tx, reader_done) = watch::channel(false);
        let reader = tokio::spawn(read_loop(
            read_half,
            pending.clone(),
            config.response_max_bytes,
            done_tx,
        ));
        let writer = tokio::spawn(write_loop(write_half, frames_rx, pending.clone()));
        let mut conn = Connection {
            addr: addr.to_owned(),
            client_id: StrBytes::from_string(config.client_id.clone()),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight_requests)),
            config,
            frames: frames_tx,
            pending,
            next_correlation_id: AtomicI32::new(0),
            broker_versions: HashMap::new(),
            tasks: [reader, writer],
            reader_done,
        };
        conn.broker_versions = conn.negotiate().await?;
        Ok(conn)
    }

    /// Asks the broker which versions it speaks. We open with our newest ApiVersions; a broker
    /// that does not know it answers UNSUPPORTED_VERSION in v0 format with its own range, and
    /// we ask once more at the highest version we share.
    async fn negotiate(&self) -> Result<HashMap<i16, VersionRange>> {
        let mut version = client_versions(ApiKey::ApiVersions).max;
        for _attempt in 0..2 {
            let request = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("eddy-client"))
                .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
            let payload = self.round_trip_raw(&request, version).await?;
            let response = decode_api_versions(payload, version)?;
            let code = KafkaCode(response.error_code);
            let ranges: HashMap<i16, VersionRange> = response
                .api_keys
                .iter()
                .map(|k| {
                    let range = VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    };
                    (k.api_key, range)
                })
                .collect();
            if code == KafkaCode::UNSUPPORTED_VERSION {
                let theirs = ranges.get(&(ApiKey::ApiVersions as i16)).copied();
                let shared = theirs.map(|r| r.intersect(&client_versions(ApiKey::ApiVersions)));
                match shared {
                    Some(r) if !r.is_empty() && r.max < version => {
                        version = r.max;
                        continue;
                    }
                    _ => break,
                }
            }
            code.check(format!("ApiVersions with {}", self.addr))?;
            return Ok(ranges);
        }
        Err(Error::UnsupportedApi {
            addr: self.addr.clone(),
            api: "ApiVersions".into(),
        })
    }

    /// Sends ApiVersions and returns the raw payload: its response may come back in an older
    /// version than asked, so decoding is the caller's.
    async fn round_trip_raw(&self, request: &ApiVersionsRequest, version: i16) -> Result<Bytes> {
        let (_permit, correlation_id, rx) = self.enqueue(request, version, true, None).await?;
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        match tokio::time::timeout(timeout, rx.expect("asked for a response")).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::ConnectionClosed {
                addr: self.addr.clone(),
                in_flight: true,
            }),
            Err(_) => {
                lock(&self.pending).give_up_on(correlation_id);
                Err(Error::Timeout {
                    what: format!("ApiVersions with {}", self.addr),
                    timeout_ms: self.config.request_timeout_ms,
                })
            }
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the socket died or a request timed out; such a connection should be replaced.
    pub fn is_broken(&self) -> bool {
        lock(&self.pending).closed.is_some()
    }

    /// Marks the connection unusable for new requests; those in flight still complete.
    pub fn mark_broken(&self, reason: &str) {
        lock(&self.pending)
            .closed
            .get_or_insert_with(|| reason.to_owned());
    }

    /// The version to use for API `key`: the highest both sides speak.
    pub fn version(&self, key: ApiKey) -> Result<i16> {
        let ours = client_versions(key);
        let Some(theirs) = self.broker_versions.get(&(key as i16)) else {
            return Err(Error::UnsupportedApi {
                addr: self.addr.clone(),
                api: format!("{key:?}"),
            });
        };
        let shared = ours.intersect(theirs);
        if shared.is_empty() {
            return Err(Error::UnsupportedVersion {
                addr: self.addr.clone(),
                api: format!("{key:?}"),
                broker_min: theirs.min,
                broker_max: theirs.max,
                client_min: ours.min,
                client_max: ours.max,
            });
        }
        Ok(shared.max)
    }

    /// Sends `request` at the negotiated version and waits for its response.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response> {
        let version = self.version(api_key::<R>())?;
        self.dispatch(request, version).await?.wait().await
    }

    /// Puts `request` on the wire (in call order) and returns a handle to its response, so one
    /// task can keep several requests in flight. Waits for an in-flight slot first.
    pub async fn dispatch<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<PendingResponse<R>> {
        let (permit, correlation_id, rx) = self.enqueue(request, version, true, None).await?;
        let result = PendingResponse {
            rx: rx.expect("asked for a response"),
            version,
            addr: self.addr.clone(),
            timeout_ms: self.config.request_timeout_ms,
            pending: self.pending.clone(),
            correlation_id,
            _permit: permit,
            _request: std::marker::PhantomData,
        };
        Ok(result)
    }

    /// Sends a request the broker will not answer (Produce with acks=0). Returns once the
    /// frame is on the socket: nothing else would ever tell the caller that it got there, and
    /// a process that exits before then loses it.
    pub async fn send_oneway<R: Request>(&self, request: &R, version: i16) -> Result<()> {
        let (written_tx, written_rx) = oneshot::channel();
        let (_permit, _, _) = self
            .enqueue(request, version, false, Some(written_tx))
            .await?;
        written_rx.await.map_err(|_| {
            let reason = lock(&self.pending).closed.clone().unwrap_or_default();
            self.closed_error(&reason)
        })
    }

    async fn enqueue<R: Request>(
        &self,
        request: &R,
        version: i16,
        expect_response: bool,
        written: Option<oneshot::Sender<()>>,
    ) -> Result<(
        OwnedSemaphorePermit,
        i32,
        Option<oneshot::Receiver<Result<Bytes>>>,
    )> {
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the in-flight semaphore is never closed");
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let mut buf = BytesMut::new();
        frame::encode_request(&mut buf, request, version, correlation_id, &self.client_id)?;
        let rx = if expect_response {
            let (tx, rx) = oneshot::channel();
            let mut pending = lock(&self.pending);
            if let Some(reason) = &pending.closed {
                return Err(self.closed_error(reason));
            }
            pending.waiters.insert(correlation_id, tx);
            Some(rx)
        } else {
            None
        };
        let outgoing = Outgoing::Frame {
            frame: buf.freeze(),
            written,
        };
        if self.frames.send(outgoing).await.is_err() {
            lock(&self.pending).waiters.remove(&correlation_id);
            let reason = lock(&self.pending).closed.clone().unwrap_or_default();
            return Err(self.closed_error(&reason));
        }
        Ok((permit, correlation_id, rx))
    }

    /// Ends the connection gracefully: frames already queued are written, then the broker
    /// sees end-of-stream, answers what it read, and closes its side; waits for that at most
    /// `request.timeout.ms`. Dropping a connection instead closes the socket at once, and if
    /// unread bytes (say, an unexpected response) are left in it, the kernel resets the
    /// connection and the broker may lose requests it had not read yet.
    pub async fn close(&self) {
        self.mark_broken("closed by the client");
        if self.frames.send(Outgoing::Shutdown).await.is_err() {
            return; // the writer already ended
        }
        let mut done = self.reader_done.clone();
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        let _ = tokio::time::timeout(timeout, done.wait_for(|&d| d)).await;
    }

    fn closed_error(&self, reason: &str) -> Error {
        Error::Io {
            addr: self.addr.clone(),
            cause: std::io::Error::other(reason.to_owned()),
        }
    }
}

fn api_key<R: Request>() -> ApiKey {
    ApiKey::try_from(R::KEY).expect("every generated request has a known api key")
}

/// ApiVersions answers an unsupported version in v0 format; try ours, then v0.
fn decode_api_versions(payload: Bytes, version: i16) -> Result<ApiVersionsResponse> {
    // Header v0 (correlation id only) for every ApiVersions version, so the body starts at 4.
    let mut body = payload.slice(4..);
    match ApiVersionsResponse::decode(&mut body.clone(), version) {
        Ok(r) if r.error_code != KafkaCode::UNSUPPORTED_VERSION.0 => Ok(r),
        _ => ApiVersionsResponse::decode(&mut body, 0).map_err(|e| Error::Decode {
            what: "ApiVersions response".into(),
            detail: e.to_string(),
        }),
    }
}

async fn read_loop(
    mut socket: OwnedReadHalf,
    pending: Arc<Mutex<Pending>>,
    max_bytes: usize,
    done: watch::Sender<bool>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let reason = loop {
        match frame::check(&buf, max_bytes) {
            Ok(Some(total)) => {
                let payload = frame::split_frame(&mut buf, total);
                let Some(correlation_id) = frame::peek_correlation_id(&payload) else {
                    break "response shorter than its header".to_owned();
                };
                let waiter = lock(&pending).waiters.remove(&correlation_id);
                match waiter {
                    Some(waiter) => {
                        let _ = waiter.send(Ok(payload));
                    }
                    // Its caller gave up (timeout); the response is no longer wanted.
                    None => tracing::debug!(correlation_id, "dropping unclaimed response"),
                }
                continue;
            }
            Ok(None) => {}
            Err(size) => break format!("response frame of {size} bytes is over {max_bytes}"),
        }
        match socket.read_buf(&mut buf).await {
            Ok(0) => break "closed by the broker".to_owned(),
            Ok(_) => {}
            Err(e) => break e.to_string(),
        }
    };
    lock(&pending).fail_all(reason);
    let _ = done.send(true);
}

async fn write_loop(
    mut socket: OwnedWriteHalf,
    mut frames: mpsc::Receiver<Outgoing>,
    pending: Arc<Mutex<Pending>>,
) {
    while let Some(outgoing) = frames.recv().await {
        let (frame, written) = match outgoing {
            Outgoing::Frame { frame, written } => (frame, written),
            Outgoing::Shutdown => {
                let _ = socket.shutdown().await;
                return;
            }
        };
        if let Err(e) = socket.write_all(&frame).await {
            lock(&pending).fail_all(e.to_string());
            return;
        }
        if let Some(written) = written {
            let _ = written.send(());
        }
    }
}
