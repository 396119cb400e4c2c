//! The Kafka listener: connections, framing, limits, pipelining.
//!
//! Each connection has a reader task and a writer task. The reader checks
//! each frame's size before buffering it (`socket.request.max.bytes`),
//! takes permits from the global in-flight byte budget
//! (`queued.max.request.bytes`), decodes, and dispatches in arrival order;
//! the writer awaits the replies in that same order, as Kafka requires.
//! Bad input closes only its own connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use eddy_protocol::request::{self, DecodeError};
use eddy_protocol::{frame, response};
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::apis::{self, Reply};
use crate::broker::Broker;

/// Requests one connection may have in flight (pipelined) at once.
const CONNECTION_INFLIGHT_REQUESTS_MAX: usize = 64;
/// Bytes read from the socket per read call at most.
const READ_CHUNK_BYTES: usize = 256 * 1024;

pub struct Limits {
    pub request_bytes_max: usize,
    pub idle_ms: u64,
    pub connections: Arc<Semaphore>,
    pub inflight_bytes: Arc<Semaphore>,
    pub inflight_bytes_max: usize,
}

impl Limits {
    pub fn from_broker(broker: &Broker) -> Arc<Limits> {
        let c = &broker.config;
        let inflight_bytes_max = c.i64("queued.max.request.bytes").clamp(1 << 20, 1 << 40) as usize;
        let request_bytes_max =
            (c.i64("socket.request.max.bytes").max(1024) as usize).min(inflight_bytes_max);
        Arc::new(Limits {
            request_bytes_max,
            idle_ms: c.i64("connections.max.idle.ms").max(1000) as u64,
            connections: Arc::new(Semaphore::new(
                c.i64("max.connections").clamp(1, 1 << 20) as usize
            )),
            inflight_bytes: Arc::new(Semaphore::new(
                inflight_bytes_max.min(Semaphore::MAX_PERMITS),
            )),
            inflight_bytes_max,
        })
    }
}

enum Outgoing {
    Reply {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        reply: Reply,
        _permit: OwnedSemaphorePermit,
    },
    Raw(Bytes),
}

/// Accepts connections until `shutdown` flips to true.
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = Limits::from_broker(&broker);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = limits.connections.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "max.connections reached; closing new connection");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (broker, limits, shutdown) = (broker.clone(), limits.clone(), shutdown.clone());
                tasks.spawn(async move {
                    connection(broker, stream, limits, shutdown).await;
                    drop(permit);
                });
            }
            _ = shutdown.changed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // Let in-flight requests finish and be answered.
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections still busy after 10 s; closing them");
    }
}

async fn connection(
    broker: Arc<Broker>,
    stream: TcpStream,
    limits: Arc<Limits>,
    mut shutdown: watch::Receiver<bool>,
) {
    let peer = stream.peer_addr().ok();
    let client_host = peer.map(|p| format!("/{}", p.ip())).unwrap_or_default();
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(CONNECTION_INFLIGHT_REQUESTS_MAX);
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let bytes = match out {
                Outgoing::Raw(b) => b,
                Outgoing::Reply {
                    api_key,
                    version,
                    correlation_id,
                    reply,
                    _permit,
                } => {
                    let Some(body) = reply.await else { continue };
                    if !matches!(api_key, ApiKey::Fetch | ApiKey::Produce) {
                        tracing::trace!(?api_key, correlation_id, ?peer, ?body, "response");
                    }
                    match response::encode(api_key, version, correlation_id, &body) {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::error!(?api_key, version, error = %e, "response encoding failed; closing connection");
                            return;
                        }
                    }
                }
            };
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let idle = Duration::from_millis(limits.idle_ms);
    'read: loop {
        // Hand out every complete frame already buffered.
        loop {
            let total = match frame::check(&buf, limits.request_bytes_max) {
                Ok(Some(total)) => total,
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(?peer, error = %e, "closing connection");
                    break 'read;
                }
            };
            let frame = buf.split_to(total).freeze().slice(frame::PREFIX_BYTES..);
            let Ok(permit) = limits
                .inflight_bytes
                .clone()
                .acquire_many_owned(total.min(limits.inflight_bytes_max) as u32)
                .await
            else {
                break 'read;
            };
            match handle_frame(&broker, frame, permit, &client_host) {
                Ok(out) => {
                    if tx.send(out).await.is_err() {
                        break 'read;
                    }
                }
                Err(e) => {
                    tracing::info!(?peer, error = %e, "bad request; closing connection");
                    break 'read;
                }
            }
        }
        // Once a frame's size is known, reserve it whole: growing the
        // buffer chunk by chunk would copy a large frame several times.
        // The size was checked against socket.request.max.bytes above.
        let want = if buf.len() >= frame::PREFIX_BYTES {
            let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]).max(0) as usize;
            (frame::PREFIX_BYTES + size)
                .saturating_sub(buf.len())
                .max(4096)
        } else {
            READ_CHUNK_BYTES
        };
        if buf.capacity() - buf.len() < want {
            buf.reserve(want.max(READ_CHUNK_BYTES));
        }
        tokio::select! {
            read = tokio::time::timeout(idle, rd.read_buf(&mut buf)) => match read {
                Ok(Ok(0)) => break,
                Ok(Ok(_)) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    tracing::debug!(?peer, "idle connection closed (connections.max.idle.ms)");
                    break;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(tx);
    let _ = writer.await;
}

fn handle_frame(
    broker: &Arc<Broker>,
    frame: Bytes,
    permit: OwnedSemaphorePermit,
    client_host: &str,
) -> Result<Outgoing, DecodeError> {
    match request::decode(frame) {
        Ok(req) => {
            let api_key = req.api_key;
            let version = req.header.request_api_version;
            let correlation_id = req.header.correlation_id;
            tracing::trace!(?api_key, version, correlation_id, client_host, "request");
            let reply = apis::dispatch(broker, req, client_host);
            Ok(Outgoing::Reply {
                api_key,
                version,
                correlation_id,
                reply,
                _permit: permit,
            })
        }
        Err(DecodeError::UnsupportedApiVersions { correlation_id, .. }) => Ok(Outgoing::Raw(
            response::unsupported_api_versions(correlation_id),
        )),
        Err(e) => Err(e),
    }
}
