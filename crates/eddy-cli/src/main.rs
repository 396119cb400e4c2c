//! The `eddy` binary: a thin clap front over Eddy's crates.
//!
//! # Layout
//!
//! - `start`: run the broker (and the SQL engine beside it).
//! - `sql_shell`: `eddy sql`, the SQL shell; `http_client`: its HTTP client.
//! - `topic`: create, list, describe, alter and delete topics.
//! - `group`: list, describe, reset offsets of and delete consumer groups.
//! - `txn`: list and describe transactions, and the producers of a partition.
//! - `produce` / `consume`: kcat-style line producer and formatting consumer.
//! - `format`: the consumer's kcat-style format strings.
//! - `bench`: produce and consume throughput and latency runs.
//! - `broker_metrics`: reads the broker's CPU time from its `/metrics` endpoint.

mod bench;
mod bench_sql;
mod bench_streams;
mod broker_metrics;
mod consume;
mod format;
mod group;
mod http_client;
mod produce;
mod sql_shell;
mod start;
mod topic;
mod txn;

use clap::{Parser, Subcommand};
use eddy_client::{Client, ClientConfig};

#[derive(Parser)]
#[command(name = "eddy", version, about = "Eddy: an event streaming platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker on embedded storage.
    Start(start::StartArgs),
    /// Create, list, describe, alter and delete topics.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// List, describe, reset offsets of and delete consumer groups.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// List and describe transactions, and the producers of a partition.
    #[command(subcommand)]
    Txn(txn::TxnCommand),
    /// Produce the lines of stdin as records.
    Produce(produce::ProduceArgs),
    /// Print records of a topic.
    Consume(consume::ConsumeArgs),
    /// A SQL shell (ksqlDB's dialect) talking to `eddy start`'s REST API.
    Sql(sql_shell::SqlArgs),
    /// Measure produce or consume throughput and latency.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Where the cluster is; every client command takes it.
#[derive(Debug, Clone, clap::Args)]
pub struct BootstrapArgs {
    /// Kafka address(es) of the cluster, `host:port[,host:port...]`.
    #[arg(
        long,
        short = 'b',
        env = "EDDY_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: String,
}

impl BootstrapArgs {
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(&self.bootstrap)
    }

    pub async fn connect(&self) -> anyhow::Result<Client> {
        Ok(Client::connect(self.client_config()).await?)
    }
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `eddy topic list | head`: the reader has what it wanted.
        Err(e) if is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` puts the whole cause chain on one line; no backtrace for a user's error.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Start(args) => start::run(args),
        Command::Topic(cmd) => block_on(topic::run(cmd)),
        Command::Group(cmd) => block_on(group::run(cmd)),
        Command::Txn(cmd) => block_on(txn::run(cmd)),
        Command::Produce(args) => block_on(produce::run(args)),
        Command::Consume(args) => block_on(consume::run(args)),
        Command::Sql(args) => block_on(sql_shell::run(args)),
        Command::Bench(cmd) => block_on(bench::run(cmd)),
    }
}

/// Runs a client command on a tokio runtime of its own.
fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(command: F) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(command)
}

/// Parses `key=value` (the value may contain `=`), for `--config`, `--set` and `-H`.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_values_split_at_the_first_equals() {
        assert_eq!(
            parse_key_value("a=b=c"),
            Ok(("a".to_owned(), "b=c".to_owned()))
        );
        assert_eq!(parse_key_value("a="), Ok(("a".to_owned(), String::new())));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }
}
