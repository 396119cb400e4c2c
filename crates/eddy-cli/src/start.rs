//! `eddy start`: runs the broker on embedded storage.

use std::path::PathBuf;

use eddy_broker::BrokerConfig;

/// Arguments of `eddy start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Directory holding all data (created if absent).
    #[arg(long, default_value = "./eddy-data")]
    pub data_dir: PathBuf,
    /// Kafka protocol listener; also what Metadata advertises unless `advertised.listeners` is set.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub kafka_addr: String,
    /// HTTP listener: GET /health, GET /metrics, and the SQL engine's REST API (ksqlDB's:
    /// POST /ksql, /query, /query-stream, /close-query, /inserts-stream; GET /info, /healthcheck).
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub http_addr: String,
    /// A server.properties file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Any broker setting, by its Kafka name: --set num.partitions=3 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Do not run the SQL engine (persistent queries, REST API) beside the broker.
    #[arg(long)]
    pub no_sql: bool,
}

pub fn run(args: StartArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = BrokerConfig::default();
    if let Some(path) = &args.config {
        config.load_file(path)?;
    }
    for pair in &args.set {
        config.set_pair(pair)?;
    }
    let sidecar = (!args.no_sql).then(|| sql_engine(&args.data_dir, &args.kafka_addr));
    eddy_broker::run(eddy_broker::Options {
        data_dir: args.data_dir,
        kafka_addr: args.kafka_addr,
        http_addr: args.http_addr,
        config,
        sidecar,
    })
}

/// The SQL engine, run beside the broker against it; its state under `<data dir>/sql`.
fn sql_engine(data_dir: &std::path::Path, kafka_addr: &str) -> eddy_broker::Sidecar {
    use eddy_sql::server::{rest, Engine, EngineConfig};
    let engine = Engine::new(EngineConfig::new(kafka_addr, data_dir.join("sql")));
    let (starting, stopping) = (engine.clone(), engine.clone());
    eddy_broker::Sidecar {
        routes: rest::router(engine),
        start: Box::new(move |bootstrap| {
            Box::pin(async move {
                let mut delay = std::time::Duration::from_millis(100);
                loop {
                    match starting.start_with(&bootstrap).await {
                        Ok(()) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "the SQL engine could not start; retrying");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(std::time::Duration::from_secs(5));
                        }
                    }
                }
            })
        }),
        stop: Box::new(move || Box::pin(async move { stopping.shutdown().await })),
    }
}
