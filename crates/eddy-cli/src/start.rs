//! `eddy start`: runs the broker on embedded storage.

use std::path::PathBuf;

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
    anyhow::bail!("eddy start is being wired up (args: {args:?})")
}
