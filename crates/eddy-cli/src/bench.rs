//! `eddy bench produce|consume` (and `streams`, in bench_streams.rs): throughput, latency percentiles and the broker's CPU cost.
//!
//! Produce latency is send -> acknowledgement of each record, taken in the producer's
//! delivery callback. Consume latency is the round trip of each poll. The broker's
//! CPU-seconds per GB come from `process_cpu_seconds_total` on its `/metrics`, read before
//! and after the run; the figure is left out when that endpoint cannot be read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use eddy_client::{
    Acks, Admin, Client, Compression, Consumer, ConsumerConfig, Error, NewTopic, Producer,
    ProducerConfig, ProducerRecord, RecordMetadata, SeekTo,
};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use crate::broker_metrics;
use crate::BootstrapArgs;

/// Latencies above this (µs) are recorded as this.
const LATENCY_MAX_US: u64 = 60_000_000;
/// Random payload that record values are sliced from.
const PAYLOAD_POOL_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Produce records as fast as the producer allows.
    Produce(ProduceBench),
    /// Consume records from the beginning of a topic.
    Consume(ConsumeBench),
    /// An eddy-streams application (stateless map/filter, or a windowed count).
    Streams(crate::bench_streams::StreamsBench),
    /// SQL push-query (produce-to-row) and pull-query latencies over the REST API.
    Sql(crate::bench_sql::SqlBench),
}

#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    #[arg(long)]
    pub topic: String,
    /// Records to produce or consume.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// The broker's HTTP listener, for CPU time from /metrics.
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub broker_http: String,
    /// Print the figures as one JSON line on stdout (the summary goes to stderr).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

#[derive(Debug, clap::Args)]
pub struct ProduceBench {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Value bytes per record (random letters, about as compressible as text).
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: Acks,
    /// Partitions, if the topic has to be created.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: Compression,
    /// batch.size in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub batch_size: usize,
    /// linger.ms.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// max.in.flight.requests.per.connection.
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
    /// enable.idempotence (needs --acks all).
    #[arg(long)]
    pub idempotence: bool,
    /// Records per second to offer (0: as fast as possible). Latency at full speed is mostly
    /// time queued in buffer.memory; a fixed rate below the maximum shows the broker's own.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
}

#[derive(Debug, clap::Args)]
pub struct ConsumeBench {
    #[command(flatten)]
    pub common: CommonArgs,
    /// fetch.max.bytes.
    #[arg(long, default_value_t = 50 * 1024 * 1024)]
    pub fetch_max_bytes: i32,
    /// max.partition.fetch.bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_partition_fetch_bytes: i32,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Produce(args) => produce(args).await,
        BenchCommand::Consume(args) => consume(args).await,
        BenchCommand::Streams(args) => crate::bench_streams::run(args).await,
        BenchCommand::Sql(args) => crate::bench_sql::run(args).await,
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq)]
struct Figures {
    mode: &'static str,
    topic: String,
    records: u64,
    errors: u64,
    bytes: u64,
    elapsed_s: f64,
    latency_label: &'static str,
    latency_ms: Option<[f64; 4]>,
    cpu_seconds_per_gb: Result<f64, String>,
    settings: serde_json::Value,
}

async fn produce(args: ProduceBench) -> anyhow::Result<()> {
    let common = &args.common;
    let mut config = common.bootstrap.client_config();
    config.connection.max_in_flight_requests = args.max_in_flight;
    let client = Client::connect(config).await?;
    ensure_topic(&client, &common.topic, args.partitions).await?;
    let producer_config = ProducerConfig {
        acks: args.acks,
        compression: args.compression,
        batch_size_bytes: args.batch_size,
        max_request_size_bytes: args.batch_size.max(1024 * 1024),
        linger_ms: args.linger_ms,
        enable_idempotence: args.idempotence,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client.clone(), producer_config).await?;
    let deliveries = Deliveries::new(common.records);
    let cpu_before = broker_metrics::cpu_seconds(&common.broker_http).await;
    let elapsed = send_all(&producer, &args, &deliveries).await?;
    producer.close().await;
    client.close().await;
    deliveries.progress.finish_and_clear();
    let cpu_after = broker_metrics::cpu_seconds(&common.broker_http).await;

    if let Some(e) = deliveries.first_error.lock().unwrap().take() {
        eprintln!("first delivery error: {e}");
    }
    let errors = deliveries.errors.load(Ordering::Relaxed);
    let bytes = (common.records - errors) * args.record_size as u64;
    let figures = Figures {
        mode: "produce",
        topic: common.topic.clone(),
        records: common.records,
        errors,
        bytes,
        elapsed_s: elapsed.as_secs_f64(),
        latency_label: if args.acks == Acks::None {
            "send -> written (acks=0)"
        } else {
            "send -> ack"
        },
        latency_ms: percentiles_ms(&deliveries.latencies.lock().unwrap()),
        cpu_seconds_per_gb: cpu_per_gb(cpu_before, cpu_after, bytes, &common.broker_http),
        settings: serde_json::json!({
            "record_size": args.record_size,
            "acks": match args.acks { Acks::None => "0", Acks::Leader => "1", Acks::All => "all" },
            "compression": args.compression.to_string(),
            "batch_size": args.batch_size,
            "linger_ms": args.linger_ms,
            "max_in_flight": args.max_in_flight,
            "idempotence": args.idempotence,
            "rate": args.rate,
        }),
    };
    report(&figures, common.json);
    if errors > 0 {
        anyhow::bail!("{errors} of {} records failed", common.records);
    }
    Ok(())
}

/// What the producer's delivery callbacks record.
#[derive(Clone)]
struct Deliveries {
    latencies: Arc<Mutex<Histogram<u64>>>,
    errors: Arc<AtomicU64>,
    first_error: Arc<Mutex<Option<Error>>>,
    progress: ProgressBar,
}

impl Deliveries {
    fn new(records: u64) -> Deliveries {
        Deliveries {
            latencies: Arc::new(Mutex::new(histogram())),
            errors: Arc::default(),
            first_error: Arc::default(),
            progress: progress_bar(records),
        }
    }

    /// A callback for one record sent now.
    fn callback(&self) -> impl FnOnce(Result<RecordMetadata, Error>) + Send + 'static {
        let deliveries = self.clone();
        let sent_at = Instant::now();
        move |result| {
            let micros = sent_at.elapsed().as_micros() as u64;
            if let Err(e) = result {
                deliveries.errors.fetch_add(1, Ordering::Relaxed);
                deliveries.first_error.lock().unwrap().get_or_insert(e);
            }
            let mut latencies = deliveries.latencies.lock().unwrap();
            latencies.saturating_record(micros.max(1));
            deliveries.progress.inc(1);
        }
    }
}

/// Sends every record and waits for the last acknowledgement; returns the time taken.
async fn send_all(
    producer: &Producer,
    args: &ProduceBench,
    deliveries: &Deliveries,
) -> anyhow::Result<std::time::Duration> {
    let common = &args.common;
    let pool = random_letters(PAYLOAD_POOL_BYTES + args.record_size);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    for i in 0..common.records {
        pace(started, i, args.rate).await;
        let at = (rng.next() as usize) % PAYLOAD_POOL_BYTES;
        let record = ProducerRecord::new(&common.topic, pool.slice(at..at + args.record_size));
        producer
            .send_with_callback(record, deliveries.callback())
            .await?;
    }
    producer.flush().await;
    Ok(started.elapsed())
}

async fn consume(args: ConsumeBench) -> anyhow::Result<()> {
    let common = &args.common;
    let client = common.bootstrap.connect().await?;
    let config = ConsumerConfig {
        fetch_max_bytes: args.fetch_max_bytes,
        max_partition_fetch_bytes: args.max_partition_fetch_bytes,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(client, config);
    consumer.assign(&common.topic, None).await?;
    consumer.seek_all(SeekTo::Earliest).await?;
    let mut latencies = histogram();
    let progress = progress_bar(common.records);
    let cpu_before = broker_metrics::cpu_seconds(&common.broker_http).await;

    let started = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < common.records {
        let polled_at = Instant::now();
        let batch = consumer.poll().await?;
        latencies.saturating_record((polled_at.elapsed().as_micros() as u64).max(1));
        for r in &batch {
            bytes += (r.key.as_ref().map_or(0, Bytes::len) + r.value.as_ref().map_or(0, Bytes::len))
                as u64;
        }
        records += batch.len() as u64;
        progress.inc(batch.len() as u64);
        if batch.is_empty() && consumer.at_end() {
            eprintln!(
                "{} holds only {records} records; stopping at its end",
                common.topic
            );
            break;
        }
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    let cpu_after = broker_metrics::cpu_seconds(&common.broker_http).await;
    let figures = Figures {
        mode: "consume",
        topic: common.topic.clone(),
        records,
        errors: 0,
        bytes,
        elapsed_s: elapsed.as_secs_f64(),
        latency_label: "poll round trip",
        latency_ms: percentiles_ms(&latencies),
        cpu_seconds_per_gb: cpu_per_gb(cpu_before, cpu_after, bytes, &common.broker_http),
        settings: serde_json::json!({
            "fetch_max_bytes": args.fetch_max_bytes,
            "max_partition_fetch_bytes": args.max_partition_fetch_bytes,
        }),
    };
    report(&figures, common.json);
    Ok(())
}

/// Sleeps until record `i` is due at `rate` records per second (checked every 100 records,
/// so pacing costs nothing per record).
async fn pace(started: Instant, i: u64, rate: u64) {
    if rate == 0 || !i.is_multiple_of(100) {
        return;
    }
    let due = started + std::time::Duration::from_secs_f64(i as f64 / rate as f64);
    tokio::time::sleep_until(due.into()).await;
}

/// Uses `topic` if it exists, else creates it with `partitions`.
async fn ensure_topic(client: &Client, topic: &str, partitions: i32) -> anyhow::Result<()> {
    match client.topic(topic).await {
        Ok(existing) => {
            if existing.partitions.len() != partitions as usize {
                eprintln!(
                    "note: {topic} exists with {} partition(s); --partitions applies only to new topics",
                    existing.partitions.len()
                );
            }
            Ok(())
        }
        Err(Error::UnknownTopic(_)) => {
            let admin = Admin::new(client.clone());
            admin
                .create_topics(&[NewTopic::new(topic, partitions)])
                .await?;
            eprintln!("created {topic} with {partitions} partition(s)");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("static bounds are valid")
}

/// p50, p99, p99.9 and max, in ms.
fn percentiles_ms(h: &Histogram<u64>) -> Option<[f64; 4]> {
    if h.is_empty() {
        return None;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Some([
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
    ])
}

fn cpu_per_gb(
    before: anyhow::Result<f64>,
    after: anyhow::Result<f64>,
    bytes: u64,
    http: &str,
) -> Result<f64, String> {
    let unreachable =
        |e: anyhow::Error| format!("broker metrics at http://{http}/metrics unreachable: {e:#}");
    let (before, after) = (before.map_err(unreachable)?, after.map_err(unreachable)?);
    if bytes == 0 {
        return Err("no bytes moved".into());
    }
    Ok((after - before).max(0.0) / (bytes as f64 / 1e9))
}

fn progress_bar(len: u64) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{bar:40.cyan/blue} {human_pos}/{human_len} records {per_sec} eta {eta}",
    )
    .expect("static template is valid");
    ProgressBar::new(len).with_style(style)
}

/// Uppercase letters, like Kafka's perf tool: compressible about as much as text is.
fn random_letters(len: usize) -> Bytes {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    (0..len)
        .map(|_| b'A' + (rng.next() % 26) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// A tiny deterministic generator: the payload, not a secret.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn report(f: &Figures, json: bool) {
    let secs = f.elapsed_s.max(f64::EPSILON);
    let records_per_sec = (f.records - f.errors) as f64 / secs;
    let mb_per_sec = f.bytes as f64 / 1e6 / secs;
    let mut lines = vec![
        format!(
            "{}: {} records ({:.1} MB) in {:.2} s",
            f.mode,
            f.records - f.errors,
            f.bytes as f64 / 1e6,
            f.elapsed_s
        ),
        format!("  {records_per_sec:.0} records/s, {mb_per_sec:.1} MB/s"),
    ];
    if let Some([p50, p99, p999, max]) = f.latency_ms {
        lines.push(format!(
            "  latency ({}) ms: p50 {p50:.2}  p99 {p99:.2}  p99.9 {p999:.2}  max {max:.2}",
            f.latency_label
        ));
    }
    lines.push(match &f.cpu_seconds_per_gb {
        Ok(cpu) => format!("  broker CPU: {cpu:.2} CPU-seconds per GB"),
        Err(why) => format!("  broker CPU: not measured ({why})"),
    });
    if f.errors > 0 {
        lines.push(format!("  errors: {}", f.errors));
    }
    for line in &lines {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    if json {
        println!("{}", figures_json(f, records_per_sec, mb_per_sec));
    }
}

fn figures_json(f: &Figures, records_per_sec: f64, mb_per_sec: f64) -> serde_json::Value {
    let latency = f.latency_ms.map(|[p50, p99, p999, max]| {
        serde_json::json!({ "p50": p50, "p99": p99, "p99_9": p999, "max": max })
    });
    serde_json::json!({
        "mode": f.mode,
        "topic": f.topic,
        "records": f.records - f.errors,
        "errors": f.errors,
        "bytes": f.bytes,
        "elapsed_s": f.elapsed_s,
        "records_per_sec": records_per_sec,
        "mb_per_sec": mb_per_sec,
        "latency_kind": f.latency_label,
        "latency_ms": latency,
        "broker_cpu_seconds_per_gb": f.cpu_seconds_per_gb.as_ref().ok(),
        "broker_cpu_error": f.cpu_seconds_per_gb.as_ref().err(),
        "settings": f.settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_gb_needs_both_scrapes() {
        let gb = 2_000_000_000;
        assert_eq!(cpu_per_gb(Ok(10.0), Ok(13.0), gb, "h:1"), Ok(1.5));
        let err = cpu_per_gb(Err(anyhow::anyhow!("refused")), Ok(1.0), gb, "h:1").unwrap_err();
        assert!(
            err.contains("http://h:1/metrics unreachable: refused"),
            "{err}"
        );
        assert!(cpu_per_gb(Ok(1.0), Ok(2.0), 0, "h:1").is_err());
    }

    #[test]
    fn json_line_has_every_figure() {
        let mut h = histogram();
        for us in 1..=1000 {
            h.saturating_record(us * 10);
        }
        let f = Figures {
            mode: "produce",
            topic: "t".into(),
            records: 1000,
            errors: 0,
            bytes: 1_024_000,
            elapsed_s: 2.0,
            latency_label: "send -> ack",
            latency_ms: percentiles_ms(&h),
            cpu_seconds_per_gb: Err("unreachable".into()),
            settings: serde_json::json!({"acks": "all"}),
        };
        let v = figures_json(&f, 500.0, 0.512);
        let line = v.to_string();
        assert!(!line.contains('\n'));
        assert_eq!(v["records_per_sec"], 500.0);
        // hdrhistogram keeps 3 significant digits.
        assert!((v["latency_ms"]["p50"].as_f64().unwrap() - 5.0).abs() < 0.01);
        assert!(v["latency_ms"]["p99_9"].as_f64().unwrap() >= 9.98);
        assert!(v["broker_cpu_seconds_per_gb"].is_null());
        assert_eq!(v["broker_cpu_error"], "unreachable");
    }

    #[test]
    fn payload_is_letters() {
        let p = random_letters(10_000);
        assert!(p.iter().all(u8::is_ascii_uppercase));
        assert!(p.iter().filter(|&&b| b == b'A').count() > 100);
    }
}
