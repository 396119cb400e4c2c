//! `eddy txn` against the real `eddy` binary: a transaction opened with raw protocol
//! requests (InitProducerId with a transactional id, AddPartitionsToTxn) shows up in
//! `eddy txn list` and `describe` as Ongoing with its partitions, then as CompleteAbort after
//! EndTxn, and is still known after a SIGKILL and restart of the broker (its state lives in
//! `__transaction_state`). `describe-producers` shows an idempotent producer's state.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_client::{
    Admin, Client, ClientConfig, Connection, NewTopic, Producer, ProducerConfig, ProducerRecord,
};
use eddy_protocol::kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use eddy_protocol::kafka_protocol::messages::{
    AddPartitionsToTxnRequest, ApiKey, EndTxnRequest, InitProducerIdRequest, ProducerId, TopicName,
    TransactionalId,
};
use eddy_protocol::kafka_protocol::protocol::StrBytes;

const EDDY: &str = env!("CARGO_BIN_EXE_eddy");
const START_TIMEOUT: Duration = Duration::from_secs(60);
const TXN_ID: &str = "cli-txn";
const TXN_TIMEOUT_MS: i32 = 60_000;
/// The newest AddPartitionsToTxn a client sends; v4+ is the brokers' batched form.
const ADD_PARTITIONS_CLIENT_VERSION_MAX: i16 = 3;

struct Broker {
    child: Option<Child>,
    data_dir: PathBuf,
    kafka_port: u16,
    http_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Broker {
    fn start(data_dir: &Path) -> Broker {
        let mut b = Broker {
            child: None,
            data_dir: data_dir.to_owned(),
            kafka_port: free_port(),
            http_port: free_port(),
        };
        b.spawn();
        b
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .unwrap();
        let child = Command::new(EDDY)
            .arg("start")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--kafka-addr", &self.bootstrap()])
            .args(["--http-addr", &format!("127.0.0.1:{}", self.http_port)])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start eddy");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.healthy() {
            assert!(Instant::now() < deadline, "broker not healthy in time");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn healthy(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.http_port)) else {
            return false;
        };
        let _ = s.write_all(b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
    }

    fn kill9_and_restart(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `eddy txn <args> -b <bootstrap>`: (success, stdout, stderr).
fn eddy_txn(bootstrap: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(EDDY)
        .arg("txn")
        .args(args)
        .args(["-b", bootstrap])
        .output()
        .expect("run eddy txn");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The rows of a successful `eddy txn` table, its header checked and dropped.
fn table(bootstrap: &str, args: &[&str], header: &[&str]) -> Vec<Vec<String>> {
    let (success, stdout, stderr) = eddy_txn(bootstrap, args);
    assert!(success, "eddy txn {args:?} failed: {stderr}");
    let mut lines = stdout.lines();
    let head: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(head, header, "in {stdout}");
    lines
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

const LIST: &[&str] = &[
    "TransactionalId",
    "Coordinator",
    "ProducerId",
    "TransactionState",
];
const DESCRIBE: &[&str] = &[
    "CoordinatorId",
    "TransactionalId",
    "ProducerId",
    "ProducerEpoch",
    "TransactionState",
    "TransactionTimeoutMs",
    "CurrentTransactionStartTimeMs",
    "TransactionDurationMs",
    "TopicPartitions",
];
const PRODUCERS: &[&str] = &[
    "ProducerId",
    "ProducerEpoch",
    "LatestCoordinatorEpoch",
    "LastSequence",
    "LastTimestamp",
    "CurrentTransactionStartOffset",
];

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// InitProducerId for [`TXN_ID`] at the transaction coordinator: (producer id, epoch).
async fn init_transactional(conn: &Connection) -> (i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(text(TXN_ID))))
        .with_transaction_timeout_ms(TXN_TIMEOUT_MS)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let response = conn.send(&request).await.unwrap();
    assert_eq!(response.error_code, 0, "InitProducerId");
    (response.producer_id.0, response.producer_epoch)
}

async fn add_partitions(conn: &Connection, pid: i64, epoch: i16, topic: &str, partitions: &[i32]) {
    let version = conn
        .version(ApiKey::AddPartitionsToTxn)
        .unwrap()
        .min(ADD_PARTITIONS_CLIENT_VERSION_MAX);
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(text(TXN_ID)))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(TopicName(text(topic)))
            .with_partitions(partitions.to_vec())]);
    let response = conn
        .dispatch(&request, version)
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    for t in response.results_by_topic_v3_and_below {
        for p in t.results_by_partition {
            assert_eq!(
                p.partition_error_code, 0,
                "AddPartitionsToTxn {topic}-{p:?}"
            );
        }
    }
}

async fn abort(conn: &Connection, pid: i64, epoch: i16) {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(text(TXN_ID)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(false);
    let response = conn.send(&request).await.unwrap();
    assert_eq!(response.error_code, 0, "EndTxn");
}

/// The described row of [`TXN_ID`], waiting (bounded) until its state is `state`.
fn describe_until(bootstrap: &str, state: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = table(bootstrap, &["describe", TXN_ID], DESCRIBE);
        assert_eq!(rows.len(), 1);
        if rows[0][4] == state || Instant::now() > deadline {
            return rows[0].clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn transaction_coordinator(client: &Client) -> Arc<Connection> {
    Admin::new(client.clone())
        .transaction_coordinator(TXN_ID)
        .await
        .unwrap()
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_is_listed_described_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(&dir.path().join("data"));
    let bootstrap = broker.bootstrap();
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .unwrap();
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new("t", 2)])
        .await
        .unwrap();

    let (success, _, stderr) = eddy_txn(&bootstrap, &["describe", TXN_ID]);
    assert!(!success && stderr.contains("not known"), "{stderr}");

    let conn = transaction_coordinator(&client).await;
    let (pid, epoch) = init_transactional(&conn).await;
    add_partitions(&conn, pid, epoch, "t", &[1, 0]).await;

    let listed = table(&bootstrap, &["list"], LIST);
    let mine: Vec<_> = listed.iter().filter(|r| r[0] == TXN_ID).collect();
    assert_eq!(mine.len(), 1, "{listed:?}");
    assert_eq!(mine[0][2], pid.to_string());
    assert_eq!(mine[0][3], "Ongoing");
    let ongoing = table(&bootstrap, &["list", "--state", "Ongoing"], LIST);
    assert!(ongoing.iter().any(|r| r[0] == TXN_ID));

    let row = describe_until(&bootstrap, "Ongoing");
    assert_eq!(
        row[1..6],
        [
            TXN_ID,
            &pid.to_string(),
            &epoch.to_string(),
            "Ongoing",
            "60000"
        ]
    );
    assert!(row[6].parse::<i64>().unwrap() > 0, "start time {row:?}");
    assert!(row[7].parse::<i64>().unwrap() >= 0, "duration {row:?}");
    assert_eq!(row[8], "t-0,t-1");

    abort(&conn, pid, epoch).await;
    let row = describe_until(&bootstrap, "CompleteAbort");
    assert_eq!(row[4], "CompleteAbort", "{row:?}");
    let ongoing = table(&bootstrap, &["list", "--state", "Ongoing"], LIST);
    assert!(!ongoing.iter().any(|r| r[0] == TXN_ID), "{ongoing:?}");

    broker.kill9_and_restart();
    let row = describe_until(&bootstrap, "CompleteAbort");
    assert_eq!(
        row[1..3],
        [TXN_ID, &pid.to_string()],
        "after restart: {row:?}"
    );
    assert_eq!(row[4], "CompleteAbort", "after restart: {row:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_producers_shows_an_idempotent_producer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"));
    let bootstrap = broker.bootstrap();
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .unwrap();
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new("p", 1)])
        .await
        .unwrap();
    let config = ProducerConfig {
        enable_idempotence: true,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client.clone(), config).await.unwrap();
    for i in 0..3 {
        let record = ProducerRecord::new("p", format!("v{i}")).with_partition(0);
        producer.send(record).await.unwrap().await.unwrap();
    }
    let (pid, epoch) = producer.producer_identity().unwrap();
    producer.close().await;

    let args = ["describe-producers", "--topic", "p", "--partition", "0"];
    let rows = table(&bootstrap, &args, PRODUCERS);
    let mine: Vec<_> = rows.iter().filter(|r| r[0] == pid.to_string()).collect();
    assert_eq!(mine.len(), 1, "{rows:?}");
    assert_eq!(mine[0][1], epoch.to_string());
    assert_eq!(mine[0][3], "2", "last sequence of three records");
    assert_eq!(mine[0][5], "None", "no open transaction");

    let (success, _, stderr) = eddy_txn(
        &bootstrap,
        &["describe-producers", "--topic", "nope", "--partition", "0"],
    );
    assert!(!success, "{stderr}");
}
