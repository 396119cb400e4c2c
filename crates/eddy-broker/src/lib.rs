//! The Eddy broker: a Kafka-protocol broker over Eddy's own log.
//!
//! # Layout
//! - [`config`]: broker and topic settings by Kafka's names.
//! - [`broker`]: the state: topics, partitions, metadata, producer ids.
//! - [`topic`], [`partition`]: a topic's configs and partitions; a
//!   partition's log, producer state and watermarks.
//! - [`producer_state`]: idempotent-producer sequence checks, ongoing and
//!   aborted transactions, the last stable offset.
//! - [`txn`]: the transaction coordinator and `__transaction_state`.
//! - [`txn_markers`]: COMMIT/ABORT control batches written for the
//!   transaction coordinator.
//! - [`flusher`]: the dedicated fsync thread with group commit.
//! - [`cleaner`]: the log cleaner thread (compaction of compacted topics).
//! - [`fetch_session`]: incremental fetch sessions (KIP-227).
//! - [`group`]: the classic consumer group coordinator and committed offsets.
//! - [`consumer_offsets`]: the `__consumer_offsets` topic the coordinator
//!   writes its records to and reloads them from at start.
//! - `apis`: one module per Kafka API, routed in one place.
//! - [`server`], [`http`]: the Kafka and HTTP listeners (tokio glue).
//! - [`meta`]: durable metadata files.
//!
//! Start a broker with [`run`]; tests drive it over real sockets.

pub mod broker;
pub mod cleaner;
pub mod clock;
pub mod config;
pub mod consumer_offsets;
pub mod fetch_session;
pub mod flusher;
pub mod group;
pub mod http;
pub mod meta;
pub mod partition;
pub mod producer_state;
pub mod server;
pub mod topic;
pub mod txn;
pub mod txn_markers;

mod apis;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use broker::Broker;
pub use config::BrokerConfig;

/// What `eddy start` needs.
pub struct Options {
    pub data_dir: PathBuf,
    pub kafka_addr: String,
    pub http_addr: String,
    pub config: BrokerConfig,
    /// A service that runs beside the broker in the same process (the SQL engine).
    pub sidecar: Option<Sidecar>,
}

type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A service run beside the broker: its HTTP routes join the broker's listener; `start`
/// runs once the Kafka listener is up (given its address, as its bootstrap server) and
/// `stop` before the broker shuts down.
pub struct Sidecar {
    pub routes: axum::Router,
    pub start: Box<dyn FnOnce(String) -> BoxFuture + Send>,
    pub stop: Box<dyn FnOnce() -> BoxFuture + Send>,
}

/// Where Metadata sends clients: `advertised.listeners`, else the listener.
fn advertised(
    config: &BrokerConfig,
    kafka_addr: &std::net::SocketAddr,
) -> anyhow::Result<(String, i32)> {
    let configured = config.get("advertised.listeners");
    let Some(first) = configured.split(',').map(str::trim).find(|s| !s.is_empty()) else {
        return Ok((kafka_addr.ip().to_string(), kafka_addr.port() as i32));
    };
    let hostport = first.split_once("://").map_or(first, |(_, rest)| rest);
    let (host, port) = hostport.rsplit_once(':').ok_or_else(|| {
        anyhow::anyhow!("advertised.listeners entry '{first}' must look like PLAINTEXT://host:port")
    })?;
    let port: i32 = port
        .parse()
        .map_err(|_| anyhow::anyhow!("advertised.listeners port in '{first}' is not a number"))?;
    Ok((host.to_string(), port))
}

/// Runs the broker until SIGINT or SIGTERM, then shuts down cleanly:
/// listeners stop, in-flight requests are answered, logs are flushed and
/// closed.
pub fn run(options: Options) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("eddy-io")
        .build()?;
    runtime.block_on(async move {
        let kafka = TcpListener::bind(&options.kafka_addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on --kafka-addr {}: {e}", options.kafka_addr))?;
        let http = TcpListener::bind(&options.http_addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on --http-addr {}: {e}", options.http_addr))?;
        let advertised = advertised(&options.config, &kafka.local_addr()?)?;
        let broker = Broker::open(options.config, &options.data_dir, advertised)?;
        tracing::info!(kafka = %kafka.local_addr()?, http = %http.local_addr()?, data_dir = %options.data_dir.display(), "eddy started");
        let (stop_tx, stop_rx) = watch::channel(false);
        let retention = tokio::spawn(retention_loop(broker.clone(), stop_rx.clone()));
        let cleaner = cleaner::start(broker.clone());
        let kafka_addr = kafka.local_addr()?.to_string();
        let kafka_task = tokio::spawn(server::serve(broker.clone(), kafka, stop_rx.clone()));
        let (routes, sidecar) = match options.sidecar {
            Some(s) => (Some(s.routes), Some((s.start, s.stop))),
            None => (None, None),
        };
        let http_task = tokio::spawn(http::serve(broker.clone(), http, routes, stop_rx));
        let sidecar_stop = sidecar.map(|(start, stop)| {
            tokio::spawn(start(kafka_addr));
            stop
        });
        wait_for_signal().await;
        tracing::info!("shutting down");
        if let Some(stop) = sidecar_stop {
            stop().await;
        }
        let _ = stop_tx.send(true);
        let _ = kafka_task.await;
        let _ = http_task.await;
        retention.abort();
        if let Some(cleaner) = cleaner {
            tokio::task::spawn_blocking(move || cleaner.stop()).await?;
        }
        let b = broker.clone();
        tokio::task::spawn_blocking(move || b.shutdown()).await?;
        tracing::info!("stopped cleanly");
        anyhow::Ok(())
    })
}

async fn retention_loop(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_millis(
        broker
            .config
            .i64("log.retention.check.interval.ms")
            .max(100) as u64,
    );
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let b = broker.clone();
        let _ = tokio::task::spawn_blocking(move || b.enforce_retention()).await;
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install SIGTERM handler");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
