//! `eddy produce TOPIC`: one record per line of stdin, kcat style.

use std::collections::VecDeque;

use anyhow::Context;
use bytes::Bytes;
use eddy_client::{Acks, Compression, DeliveryFuture, Producer, ProducerConfig, ProducerRecord};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::{parse_key_value, BootstrapArgs};

/// Delivery reports awaited at once; past this, reading stdin waits for the oldest.
const REPORTS_IN_FLIGHT_MAX: usize = 10_000;
/// Longest line read from stdin.
const LINE_BYTES_MAX: usize = 16 * 1024 * 1024;

#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// Split each line at the first SEP into key and value; a line without SEP gets no key.
    #[arg(short = 'K', long = "key-separator", value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header added to every record (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Send every record to this partition instead of partitioning by key.
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: Acks,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, short = 'z', default_value = "none")]
    pub compression: Compression,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let client = args.bootstrap.connect().await?;
    let config = ProducerConfig {
        acks: args.acks,
        compression: args.compression,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client.clone(), config).await?;
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    let mut reports: VecDeque<DeliveryFuture> = VecDeque::new();
    let (mut sent, mut failed) = (0u64, 0u64);
    loop {
        line.clear();
        let read = (&mut stdin)
            .take(LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
            .context("read stdin")?;
        if read == 0 {
            break;
        }
        if line.len() > LINE_BYTES_MAX {
            anyhow::bail!("line {} is longer than {LINE_BYTES_MAX} bytes", sent + 1);
        }
        let record = to_record(&args, trim_newline(&line));
        reports.push_back(producer.send(record).await?);
        sent += 1;
        if reports.len() >= REPORTS_IN_FLIGHT_MAX {
            failed += report(reports.pop_front().expect("not empty")).await;
        }
    }
    producer.flush().await;
    for delivery in reports {
        failed += report(delivery).await;
    }
    producer.close().await;
    client.close().await;
    eprintln!(
        "produced {} record(s) to {}{}",
        sent - failed,
        args.topic,
        if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        }
    );
    if failed > 0 {
        anyhow::bail!("{failed} of {sent} record(s) were not delivered");
    }
    Ok(())
}

/// 1 if the delivery failed (and says why on stderr), else 0.
async fn report(delivery: DeliveryFuture) -> u64 {
    match delivery.await {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn to_record(args: &ProduceArgs, line: &[u8]) -> ProducerRecord {
    let (key, value) = match &args.key_separator {
        Some(sep) => split_key(line, sep.as_bytes()),
        None => (None, line),
    };
    let mut record = ProducerRecord::new(&args.topic, Bytes::copy_from_slice(value));
    record.key = key.map(Bytes::copy_from_slice);
    record.partition = args.partition;
    for (k, v) in &args.headers {
        record = record.with_header(k, Bytes::copy_from_slice(v.as_bytes()));
    }
    record
}

/// `key SEP value` -> (key, value); no SEP -> (None, line).
fn split_key<'a>(line: &'a [u8], sep: &[u8]) -> (Option<&'a [u8]>, &'a [u8]) {
    if sep.is_empty() {
        return (None, line);
    }
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(at) => (Some(&line[..at]), &line[at + sep.len()..]),
        None => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_at_the_first_separator() {
        assert_eq!(split_key(b"k:v:w", b":"), (Some(&b"k"[..]), &b"v:w"[..]));
        assert_eq!(split_key(b"k::v", b"::"), (Some(&b"k"[..]), &b"v"[..]));
        assert_eq!(split_key(b":v", b":"), (Some(&b""[..]), &b"v"[..]));
        assert_eq!(split_key(b"novalue", b":"), (None, &b"novalue"[..]));
    }

    #[test]
    fn newlines_are_trimmed_once() {
        assert_eq!(trim_newline(b"a\r\n"), b"a");
        assert_eq!(trim_newline(b"a\n"), b"a");
        assert_eq!(trim_newline(b"a\n\n"), b"a\n");
        assert_eq!(trim_newline(b"a"), b"a");
    }
}
