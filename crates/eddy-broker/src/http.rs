//! The HTTP listener: `GET /health` and `GET /metrics` (Prometheus text), and the routes of
//! a sidecar service (the SQL engine's REST API).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::broker::Broker;

pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    extra: Option<Router>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(broker);
    if let Some(extra) = extra {
        app = app.merge(extra);
    }
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

async fn health(State(broker): State<Arc<Broker>>) -> impl IntoResponse {
    let body = serde_json::json!({"status": "ok", "cluster_id": broker.cluster_id, "node_id": broker.node_id});
    (StatusCode::OK, axum::Json(body))
}

/// CPU seconds of this process (user + system, all threads), from
/// /proc/self/stat. Linux reports them in clock ticks of 1/100 s
/// (USER_HZ, fixed at 100 on every mainstream architecture).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

async fn metrics(State(broker): State<Arc<Broker>>) -> impl IntoResponse {
    let mut out = String::new();
    if let Some(cpu) = process_cpu_seconds() {
        out.push_str(
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n",
        );
        out.push_str("# TYPE process_cpu_seconds_total counter\n");
        out.push_str(&format!("process_cpu_seconds_total {cpu}\n"));
    }
    out.push_str("# HELP eddy_partition_log_end_offset Next offset to be written.\n# TYPE eddy_partition_log_end_offset gauge\n");
    let mut offsets: Vec<_> = broker.offsets().into_iter().collect();
    offsets.sort();
    for ((topic, partition), (_start, end, _hw)) in &offsets {
        out.push_str(&format!(
            "eddy_partition_log_end_offset{{topic=\"{topic}\",partition=\"{partition}\"}} {end}\n"
        ));
    }
    out.push_str("# HELP eddy_partition_high_watermark Offset below which records are visible.\n# TYPE eddy_partition_high_watermark gauge\n");
    for ((topic, partition), (_start, _end, hw)) in &offsets {
        out.push_str(&format!(
            "eddy_partition_high_watermark{{topic=\"{topic}\",partition=\"{partition}\"}} {hw}\n"
        ));
    }
    broker.cleaner.render(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
