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
    /// HTTP listener (GET /health, GET /metrics).
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub http_addr: String,
    /// A server.properties file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Any broker setting, by its Kafka name: --set num.partitions=3 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
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
    eddy_broker::run(eddy_broker::Options {
        data_dir: args.data_dir,
        kafka_addr: args.kafka_addr,
        http_addr: args.http_addr,
        config,
    })
}
