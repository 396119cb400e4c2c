//! The `eddy` binary: a thin clap front over Eddy's crates.

mod start;

use clap::{Parser, Subcommand};

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Start(args) => start::run(args),
    }
}
