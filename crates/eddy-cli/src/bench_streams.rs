//! `eddy bench streams`: an eddy-streams application's throughput and CPU cost, from and to
//! Eddy (or any Kafka broker). The input is written first; then the application starts and
//! the clock runs until its group has committed the whole input. Figures: events/s, the
//! application's CPU-seconds per million events (this process, which also runs the
//! application), and the broker's (from its /metrics) when reachable.
//!
//! Workloads: `map` (stateless: mapValues then filter, half the records kept) and `window`
//! (a tumbling 1-second windowed count per key over 1,000 keys, every update emitted).

use std::time::{Duration, Instant};

use eddy_client::{
    Admin, Client, ClientConfig, NewTopic, Producer, ProducerConfig, ProducerRecord,
};
use eddy_streams::{
    Consumed, Grouped, KafkaStreams, Materialized, ProcessingGuarantee, Produced, Serdes,
    StreamsBuilder, StreamsConfig, TimeWindows,
};

use crate::broker_metrics;
use crate::BootstrapArgs;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Workload {
    Map,
    Window,
}

/// The windowed count's store.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Store {
    /// In memory, restored from its changelog.
    Memory,
    /// On disk (fjall) with checkpoints: Kafka Streams' default.
    Persistent,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Guarantee {
    AtLeastOnce,
    ExactlyOnceV2,
}

#[derive(Debug, clap::Args)]
pub struct StreamsBench {
    #[arg(long, value_enum, default_value = "map")]
    pub workload: Workload,
    /// Input records.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    #[arg(long, value_enum, default_value = "at-least-once")]
    pub guarantee: Guarantee,
    /// Store of the windowed count.
    #[arg(long, value_enum, default_value = "memory")]
    pub store: Store,
    /// The broker's HTTP listener, for its CPU time from /metrics.
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub broker_http: String,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

const KEYS: u64 = 1_000;

/// CPU seconds of this process (all threads), from /proc/self/stat (clock ticks of 10 ms).
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn topology(w: Workload, store: Store, input: &str, output: &str) -> StreamsBuilder {
    let b = StreamsBuilder::new();
    let s = b.stream(&[input], Consumed::with(Serdes::string(), Serdes::i64()));
    match w {
        Workload::Map => s
            .map_values(|v: i64| v * 3)
            .filter(|_, v| v % 2 == 0)
            .to(output, Produced::with(Serdes::string(), Serdes::i64())),
        Workload::Window => s
            .group_by_key(Grouped::inherit())
            .windowed_by(TimeWindows::of_size_and_grace(1_000, 0))
            .count(match store {
                Store::Memory => Materialized::new().in_memory(),
                Store::Persistent => Materialized::new(),
            })
            .to_stream()
            .map(|k, v| (k.key, v.unwrap_or(0)))
            .to(output, Produced::with(Serdes::string(), Serdes::i64())),
    }
    b
}

pub async fn run(args: StreamsBench) -> anyhow::Result<()> {
    let bootstrap = &args.bootstrap.bootstrap;
    let client = Client::connect(ClientConfig::new(bootstrap)).await?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let (input, output, app) = (
        format!("bench-streams-in-{nanos}"),
        format!("bench-streams-out-{nanos}"),
        format!("bench-streams-{nanos}"),
    );
    Admin::new(client.clone())
        .create_topics(&[
            NewTopic::new(&input, args.partitions),
            NewTopic::new(&output, args.partitions),
        ])
        .await?;
    eprintln!("writing {} input records to {input}", args.records);
    let producer = Producer::new(client.clone(), ProducerConfig::default()).await?;
    let base_ms = 1_800_000_000_000i64;
    let mut acks = Vec::new();
    for i in 0..args.records {
        let record = ProducerRecord::new(&input, (i as i64).to_be_bytes().to_vec())
            .with_key(format!("key-{}", i % KEYS))
            .with_timestamp(base_ms + i as i64);
        acks.push(producer.send(record).await?);
        if acks.len() >= 100_000 {
            for a in acks.drain(..) {
                a.await?;
            }
        }
    }
    for a in acks {
        a.await?;
    }
    producer.close().await;

    let mut config = StreamsConfig::new(&app, bootstrap);
    config.state_dir = std::env::temp_dir().join(&app);
    config = config.with_guarantee(match args.guarantee {
        Guarantee::AtLeastOnce => ProcessingGuarantee::AtLeastOnce,
        Guarantee::ExactlyOnceV2 => ProcessingGuarantee::ExactlyOnceV2,
    });
    config.commit_interval_ms = config.commit_interval_ms.min(1_000);
    let broker_before = broker_metrics::cpu_seconds(&args.broker_http).await;
    let cpu_before = own_cpu_seconds();
    let started = Instant::now();
    let mut streams = KafkaStreams::new(
        topology(args.workload, args.store, &input, &output).build()?,
        config,
    );
    streams.start();
    let admin = Admin::new(client.clone());
    let total = args.records as i64;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let eddy_streams::StreamsState::Error(e) = streams.state() {
            anyhow::bail!("the application failed: {e}");
        }
        let committed: i64 = admin
            .committed_offsets(&app, None)
            .await
            .map(|o| {
                o.iter()
                    .filter(|g| g.topic == input)
                    .map(|g| g.offset.max(0))
                    .sum()
            })
            .unwrap_or(0);
        if committed >= total {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = own_cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    let broker_after = broker_metrics::cpu_seconds(&args.broker_http).await;
    streams.close().await?;
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(&app));
    let millions = args.records as f64 / 1e6;
    println!(
        "streams {:?} ({:?}, {:?} store), {} events over {} partitions: {:.0} events/s, {:.2} s",
        args.workload,
        args.guarantee,
        args.store,
        args.records,
        args.partitions,
        args.records as f64 / elapsed,
        elapsed
    );
    match cpu {
        Some(c) => println!(
            "  application: {:.2} CPU-s per million events ({c:.2} CPU-s)",
            c / millions
        ),
        None => println!("  application CPU: /proc/self/stat unreadable"),
    }
    match (broker_before, broker_after) {
        (Ok(b), Ok(a)) => println!(
            "  broker: {:.2} CPU-s per million events",
            (a - b) / millions
        ),
        _ => println!(
            "  broker CPU: http://{}/metrics unreachable",
            args.broker_http
        ),
    }
    Ok(())
}
