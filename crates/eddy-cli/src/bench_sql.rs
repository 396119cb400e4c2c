//! `eddy bench sql`: the latencies of the SQL engine's queries over its REST API, against a
//! running `eddy start`.
//!
//! - push: a push query (`/query-stream`, `EMIT CHANGES`) is open while records are produced
//!   at `--rate` for `--seconds`; each record carries its send time, and the latency of a row
//!   is the time from the producer's send to the row's arrival at the client (produce →
//!   broker → push query → HTTP). The server's CPU-seconds per million rows come from its
//!   /metrics.
//! - pull: a table materialized by a persistent query over the same records, then `--pulls`
//!   key lookups (`SELECT * FROM t WHERE id = k`) one after another on one connection.
//!
//! Everything it creates is dropped at the end.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use eddy_client::{Client, ClientConfig, Producer, ProducerConfig, ProducerRecord};
use hdrhistogram::Histogram;
use serde_json::{json, Value as Json};

use crate::http_client::HttpClient;
use crate::BootstrapArgs;

#[derive(Debug, clap::Args)]
pub struct SqlBench {
    /// The SQL server (`eddy start`'s --http-addr).
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub server: String,
    /// Records per second produced while the push query runs.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u64,
    /// How long records are produced.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Pull queries (key lookups) run one after another.
    #[arg(long, default_value_t = 5_000)]
    pub pulls: u64,
    /// Distinct keys of the records (and of the pulled table).
    #[arg(long, default_value_t = 1_000)]
    pub keys: u64,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds are valid")
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

async fn ksql(client: &mut HttpClient, text: &str, earliest: bool) -> anyhow::Result<Json> {
    let props = if earliest {
        json!({"auto.offset.reset": "earliest"})
    } else {
        json!({})
    };
    let (status, body) = client
        .post_json("/ksql", &json!({"ksql": text, "streamsProperties": props}))
        .await?;
    if status != 200 {
        bail!("{text}: {status} {}", body["message"]);
    }
    Ok(body)
}

pub async fn run(args: SqlBench) -> anyhow::Result<()> {
    let suffix = format!("{}_{}", std::process::id(), now_us() % 1_000_000);
    let stream = format!("BENCH_SQL_{suffix}");
    let table = format!("BENCH_SQL_T_{suffix}");
    let topic = format!("bench-sql-{suffix}");
    let mut control = HttpClient::connect(&args.server).await?;
    ksql(&mut control, &format!("CREATE STREAM {stream} (id BIGINT KEY, sent_us BIGINT, v STRING) WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='JSON', PARTITIONS=4);"), false).await?;
    let result = measure(&args, &mut control, &stream, &table, &topic).await;
    // Clean up whatever was made.
    if let Ok(body) = ksql(&mut control, "SHOW QUERIES;", false).await {
        for q in body[0]["queries"].as_array().into_iter().flatten() {
            if q["sinks"][0] == Json::String(table.clone()) {
                let id = q["id"].as_str().unwrap_or_default();
                let _ = ksql(&mut control, &format!("TERMINATE {id};"), false).await;
            }
        }
    }
    let _ = ksql(
        &mut control,
        &format!("DROP TABLE IF EXISTS {table} DELETE TOPIC;"),
        false,
    )
    .await;
    let _ = ksql(
        &mut control,
        &format!("DROP STREAM IF EXISTS {stream} DELETE TOPIC;"),
        false,
    )
    .await;
    result
}

async fn measure(
    args: &SqlBench,
    control: &mut HttpClient,
    stream: &str,
    table: &str,
    topic: &str,
) -> anyhow::Result<()> {
    // The push query, open before anything is produced.
    let mut push = HttpClient::connect(&args.server).await?;
    let (status, mut lines) = push
        .post(
            "/query-stream",
            &json!({"sql": format!("SELECT ID, SENT_US FROM {stream} EMIT CHANGES;"), "properties": {}}),
        )
        .await?;
    let header = lines.next_line().await?.unwrap_or_default();
    if status != 200 {
        bail!("push query: {status} {header}");
    }
    let total = args.rate * args.seconds;
    let reader = tokio::spawn(async move {
        let mut h = histogram();
        let mut first_row: Option<Instant> = None;
        while h.len() < total {
            let Ok(Some(line)) = lines.next_line().await else {
                break;
            };
            let Ok(Json::Array(row)) = serde_json::from_str::<Json>(&line) else {
                continue;
            };
            let sent = row.get(1).and_then(Json::as_i64).unwrap_or(0);
            first_row.get_or_insert_with(Instant::now);
            let _ = h.record((now_us() - sent).max(1) as u64);
        }
        h
    });

    let client = Client::connect(ClientConfig::new(&args.bootstrap.bootstrap)).await?;
    let producer = Producer::new(
        client.clone(),
        ProducerConfig {
            linger_ms: 0,
            ..ProducerConfig::default()
        },
    )
    .await?;
    let server_http = crate::http_client::authority(&args.server);
    let cpu_before = crate::broker_metrics::cpu_seconds(&server_http).await.ok();
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let mut deliveries = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = started + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let id = (i % args.keys) as i64;
        let value = json!({"SENT_US": now_us(), "V": format!("v{i}")}).to_string();
        let record = ProducerRecord::new(topic, value).with_key(id.to_be_bytes().to_vec());
        deliveries.push(producer.send(record).await?);
    }
    for d in deliveries {
        d.await?;
    }
    let produced_s = started.elapsed().as_secs_f64();
    let h = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .map_err(|_| anyhow!("the push query did not deliver every row within 60 s"))??;
    let cpu_after = crate::broker_metrics::cpu_seconds(&server_http).await.ok();
    drop(push);
    println!(
        "push query: {} rows at {} rows/s over {produced_s:.1} s",
        h.len(),
        args.rate
    );
    println!(
        "  produce-to-row latency ms: p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        ms(&h, 0.5),
        ms(&h, 0.99),
        ms(&h, 0.999),
        h.max() as f64 / 1000.0
    );
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        println!(
            "  server CPU: {:.2} s, {:.1} CPU-s per million rows (broker and SQL engine together)",
            b - a,
            (b - a) / h.len().max(1) as f64 * 1e6
        );
    }
    if h.len() < total {
        bail!("the push query delivered {} of {total} rows", h.len());
    }

    // Pull queries on a table of the same records.
    ksql(
        control,
        &format!("CREATE TABLE {table} AS SELECT id, LATEST_BY_OFFSET(v) AS v, COUNT(*) AS n FROM {stream} GROUP BY id;"),
        true,
    )
    .await?;
    // Caught up when every key is there with its full count.
    let keys = args.keys.min(total);
    let per_key = total / args.keys.max(1);
    let caught_up = Instant::now();
    loop {
        let (_, body) = control
            .post_json(
                "/query",
                &json!({"ksql": format!("SELECT N FROM {table} WHERE N = {per_key};")}),
            )
            .await?;
        let rows = body.as_array().map_or(0, |a| a.len().saturating_sub(1)) as u64;
        if rows == keys {
            break;
        }
        if caught_up.elapsed() > Duration::from_secs(120) {
            bail!("the table did not catch up within 120 s: {rows} of {keys} keys complete");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut pulls = histogram();
    let mut found = 0u64;
    let started = Instant::now();
    for i in 0..args.pulls {
        let key = (i * 7919) % keys.max(1);
        let t = Instant::now();
        let (status, body) = control
            .post_json(
                "/query",
                &json!({"ksql": format!("SELECT * FROM {table} WHERE ID = {key};")}),
            )
            .await?;
        let _ = pulls.record(t.elapsed().as_micros().max(1) as u64);
        if status == 200 && body.as_array().is_some_and(|a| a.len() == 2) {
            found += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "pull query: {} key lookups in {elapsed:.1} s ({:.0}/s), {found} found",
        args.pulls,
        args.pulls as f64 / elapsed
    );
    println!(
        "  latency ms: p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        ms(&pulls, 0.5),
        ms(&pulls, 0.99),
        ms(&pulls, 0.999),
        pulls.max() as f64 / 1000.0
    );
    if found != args.pulls {
        bail!("{} of {} lookups found their key", found, args.pulls);
    }
    Ok(())
}
