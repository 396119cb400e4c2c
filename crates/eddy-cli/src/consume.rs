//! `eddy consume TOPIC`: prints records through a kcat-style format string.

use std::io::Write;

use anyhow::Context;
use eddy_client::{Consumer, ConsumerConfig, OffsetSpec, SeekTo};

use crate::format::Format;
use crate::BootstrapArgs;

/// Where to start reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Beginning,
    End,
    /// An absolute offset.
    Offset(i64),
    /// This many records before the end (kcat's negative offsets).
    BeforeEnd(i64),
    /// The first record at or after this time, ms since the epoch.
    Timestamp(i64),
}

impl std::str::FromStr for From {
    type Err = String;
    fn from_str(s: &str) -> Result<From, String> {
        let bad = || format!("expected beginning, end, an offset, -N or @TIMESTAMP_MS, not {s:?}");
        match s {
            "beginning" => Ok(From::Beginning),
            "end" => Ok(From::End),
            _ if s.starts_with('@') => s[1..].parse().map(From::Timestamp).map_err(|_| bad()),
            _ => match s.parse::<i64>().map_err(|_| bad())? {
                n if n < 0 => Ok(From::BeforeEnd(-n)),
                n => Ok(From::Offset(n)),
            },
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    pub topic: String,
    /// beginning, end, an offset, -N (N before the end) or @TIMESTAMP_MS.
    #[arg(
        long,
        short = 'o',
        default_value = "beginning",
        allow_hyphen_values = true
    )]
    pub from: From,
    /// Read only these partitions (repeatable; all when omitted).
    #[arg(long, short = 'p')]
    pub partition: Vec<i32>,
    /// Output format: %k %v %p %o %T %t %h %K %S, \n \t escapes.
    #[arg(short = 'f', long = "format", default_value = "%v\\n")]
    pub format: Format,
    /// Exit once every partition is read to its end.
    #[arg(short = 'e', long = "exit-at-end")]
    pub exit_at_end: bool,
    /// Exit after this many records.
    #[arg(short = 'c', long = "count")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let client = args.bootstrap.connect().await?;
    let mut consumer = Consumer::new(client, ConsumerConfig::default());
    let only = (!args.partition.is_empty()).then_some(args.partition.as_slice());
    consumer.assign(&args.topic, only).await?;
    seek(&mut consumer, args.from).await?;
    let limit = args.count.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut stdout = std::io::stdout().lock();
    while printed < limit {
        if args.exit_at_end && consumer.at_end() {
            break;
        }
        let records = tokio::select! {
            records = consumer.poll() => records?,
            _ = tokio::signal::ctrl_c() => break,
        };
        buf.clear();
        for record in records.iter().take((limit - printed) as usize) {
            args.format.render(record, &mut buf);
            printed += 1;
        }
        match stdout.write_all(&buf).and_then(|()| stdout.flush()) {
            Ok(()) => {}
            // `eddy consume ... | head`: the reader is done, and so are we.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e).context("write stdout"),
        }
    }
    Ok(())
}

async fn seek(consumer: &mut Consumer, from: From) -> anyhow::Result<()> {
    match from {
        From::Beginning => consumer.seek_all(SeekTo::Earliest).await?,
        From::End => consumer.seek_all(SeekTo::Latest).await?,
        From::Offset(n) => consumer.seek_all(SeekTo::Offset(n)).await?,
        From::Timestamp(ms) => consumer.seek_all(SeekTo::Timestamp(ms)).await?,
        From::BeforeEnd(n) => {
            let client = consumer.client().clone();
            let admin = eddy_client::Admin::new(client);
            for (topic, partition) in consumer.assignment() {
                let partitions = [partition];
                let earliest = admin.list_offsets(&topic, &partitions, OffsetSpec::Earliest);
                let earliest = earliest.await?[&partition].offset.unwrap_or(0);
                let latest = admin.list_offsets(&topic, &partitions, OffsetSpec::Latest);
                let latest = latest.await?[&partition].offset.unwrap_or(0);
                let start = (latest - n).max(earliest);
                consumer
                    .seek(&topic, partition, SeekTo::Offset(start))
                    .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_parses_every_form() {
        assert_eq!("beginning".parse(), Ok(From::Beginning));
        assert_eq!("end".parse(), Ok(From::End));
        assert_eq!("42".parse(), Ok(From::Offset(42)));
        assert_eq!("-10".parse(), Ok(From::BeforeEnd(10)));
        assert_eq!(
            "@1700000000000".parse(),
            Ok(From::Timestamp(1_700_000_000_000))
        );
        assert!("@soon".parse::<From>().is_err());
        assert!("start".parse::<From>().is_err());
    }
}
