//! `eddy group` against the real `eddy` binary: a broker started on free ports with a temp
//! data dir, records produced and partly consumed with eddy-client, and the CLI's describe,
//! reset-offsets, delete-offsets and delete checked by what the broker then holds, across a
//! SIGKILL and restart of the broker.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use eddy_client::{
    Admin, Client, ClientConfig, Consumer, ConsumerConfig, NewTopic, Producer, ProducerConfig,
    ProducerRecord, SeekTo,
};
use eddy_protocol::consumer_protocol::{encode_assignment, encode_subscription};
use eddy_protocol::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use eddy_protocol::kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use eddy_protocol::kafka_protocol::messages::{GroupId, JoinGroupRequest, SyncGroupRequest};
use eddy_protocol::kafka_protocol::protocol::StrBytes;

const EDDY: &str = env!("CARGO_BIN_EXE_eddy");
const PARTITIONS: i32 = 2;
const RECORDS_PER_PARTITION: i64 = 10;
/// The first half of each partition is stamped an hour before `boundary_ms`, the rest after.
const HOUR_MS: i64 = 3_600_000;
const START_TIMEOUT: Duration = Duration::from_secs(60);

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
            .args(["--set", "group.initial.rebalance.delay.ms=0"])
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

    /// SIGKILL, then start again on the same ports and data dir.
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

/// Runs `eddy group <args> -b <bootstrap>`: (success, stdout, stderr).
fn eddy_group(bootstrap: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(EDDY)
        .arg("group")
        .args(args)
        .args(["-b", bootstrap])
        .output()
        .expect("run eddy group");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(bootstrap: &str, args: &[&str]) -> String {
    let (success, stdout, stderr) = eddy_group(bootstrap, args);
    assert!(success, "eddy group {args:?} failed: {stderr}");
    stdout
}

/// The table's rows (header checked and dropped), split on whitespace.
fn rows(stdout: &str, header: &[&str]) -> Vec<Vec<String>> {
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

const DESCRIBE: &[&str] = &[
    "GROUP",
    "TOPIC",
    "PARTITION",
    "CURRENT-OFFSET",
    "LOG-END-OFFSET",
    "LAG",
    "CONSUMER-ID",
    "HOST",
    "CLIENT-ID",
];

/// (partition, current, end, lag) per row of `describe`.
fn describe(bootstrap: &str, group: &str) -> Vec<(String, String, String, String)> {
    rows(&ok(bootstrap, &["describe", group]), DESCRIBE)
        .into_iter()
        .map(|r| (r[2].clone(), r[3].clone(), r[4].clone(), r[5].clone()))
        .collect()
}

fn row(p: i32, current: i64, end: i64) -> (String, String, String, String) {
    (
        p.to_string(),
        current.to_string(),
        end.to_string(),
        (end - current).to_string(),
    )
}

/// (partition, new offset) per row of `reset-offsets`.
fn reset(bootstrap: &str, group: &str, args: &[&str]) -> Vec<(i32, i64)> {
    let mut all = vec!["reset-offsets", group];
    all.extend_from_slice(args);
    rows(
        &ok(bootstrap, &all),
        &["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
    )
    .into_iter()
    .map(|r| (r[2].parse().unwrap(), r[3].parse().unwrap()))
    .collect()
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:mm:SS.sss` (UTC).
fn datetime(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s, milli) = (
        rem / HOUR_MS,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}")
}

/// Produces the records; returns the boundary time between the two halves.
async fn produce(client: &Client, topic: &str) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let boundary_ms = now - HOUR_MS;
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    for p in 0..PARTITIONS {
        for i in 0..RECORDS_PER_PARTITION {
            let ts = if i < RECORDS_PER_PARTITION / 2 {
                boundary_ms - HOUR_MS + i
            } else {
                boundary_ms + i
            };
            let record = ProducerRecord::new(topic, format!("{p}-{i}"))
                .with_partition(p)
                .with_timestamp(ts);
            producer.send(record).await.unwrap().await.unwrap();
        }
    }
    producer.close().await;
    boundary_ms
}

/// Reads `wanted[p]` records of each partition from the start and commits the positions
/// for `group`, the way a consumer outside any group commits.
async fn consume_and_commit(client: &Client, topic: &str, group: &str, wanted: &[i64]) {
    let config = ConsumerConfig {
        fetch_max_wait_ms: 100,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(client.clone(), config);
    consumer.assign(topic, None).await.unwrap();
    consumer.seek_all(SeekTo::Earliest).await.unwrap();
    let mut seen = vec![0i64; wanted.len()];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !consumer.at_end() {
        assert!(Instant::now() < deadline);
        for r in consumer.poll().await.unwrap() {
            seen[r.partition as usize] += 1;
        }
    }
    assert_eq!(seen, vec![RECORDS_PER_PARTITION; wanted.len()]);
    let commits: Vec<(String, i32, i64)> = wanted
        .iter()
        .enumerate()
        .map(|(p, n)| (topic.to_owned(), p as i32, *n))
        .collect();
    Admin::new(client.clone())
        .commit_group_offsets(group, &commits)
        .await
        .unwrap();
}

/// A live member of `group` through JoinGroup/SyncGroup, assigned every partition.
async fn join_live_member(client: &Client, group: &str, topic: &str) {
    let conn = client.any_connection().await.unwrap();
    let protocol = JoinGroupRequestProtocol::default()
        .with_name(StrBytes::from_static_str("range"))
        .with_metadata(Bytes::from(encode_subscription(&[topic])));
    let mut join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_session_timeout_ms(120_000)
        .with_rebalance_timeout_ms(60_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![protocol]);
    let first = conn.send(&join).await.unwrap();
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    join.member_id = first.member_id.clone();
    let joined = conn.send(&join).await.unwrap();
    assert_eq!(joined.error_code, 0);
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_generation_id(joined.generation_id)
        .with_member_id(first.member_id.clone())
        .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
        .with_protocol_name(Some(StrBytes::from_static_str("range")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(first.member_id)
            .with_assignment(Bytes::from(encode_assignment(&[(topic, &[0, 1])])))]);
    assert_eq!(conn.send(&sync).await.unwrap().error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_reset_and_delete_groups_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(&dir.path().join("data"));
    let bs = broker.bootstrap();
    let client = Client::connect(ClientConfig::new(&bs)).await.unwrap();
    let topic = "clicks";
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new(topic, PARTITIONS)])
        .await
        .unwrap();
    let boundary_ms = produce(&client, topic).await;
    consume_and_commit(&client, topic, "reporting", &[4, 7]).await;
    consume_and_commit(&client, topic, "audit", &[1, 1]).await;

    let listed = ok(&bs, &["list"]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["audit", "reporting"]);
    let states = rows(&ok(&bs, &["list", "--state"]), &["GROUP", "STATE"]);
    assert_eq!(states[1], ["reporting", "Empty"]);
    assert_eq!(describe(&bs, "reporting"), [row(0, 4, 10), row(1, 7, 10)]);

    check_resets(&bs, boundary_ms);

    // A live member blocks resets and deletion of its group, and offset deletion of its topic.
    join_live_member(&client, "live", topic).await;
    let (success, _, stderr) = eddy_group(
        &bs,
        &[
            "reset-offsets",
            "live",
            "--all-topics",
            "--to-earliest",
            "--execute",
        ],
    );
    assert!(!success);
    assert!(stderr.contains("Assignments can only be reset if the group 'live' is inactive, but the current state is Stable."), "{stderr}");
    let (success, _, stderr) = eddy_group(&bs, &["delete", "live"]);
    assert!(!success && stderr.contains("NON_EMPTY_GROUP"), "{stderr}");
    let live = rows(&ok(&bs, &["describe", "live"]), DESCRIBE);
    assert_eq!(live.len(), 2, "both assigned partitions shown");
    assert!(live.iter().all(|r| r[3] == "-" && r[6] != "-"), "{live:?}");

    // delete-offsets of one partition, then delete the whole group.
    let deleted = rows(
        &ok(&bs, &["delete-offsets", "reporting", "--topic", "clicks:1"]),
        &["TOPIC", "PARTITION", "STATUS"],
    );
    assert_eq!(deleted, [["clicks", "1", "Successful"]]);
    assert_eq!(describe(&bs, "reporting"), [row(0, 0, 10)]);
    assert_eq!(
        ok(&bs, &["delete", "reporting"]).trim(),
        "deleted group reporting"
    );
    let (success, _, stderr) = eddy_group(&bs, &["describe", "reporting"]);
    assert!(!success && stderr.contains("does not exist"), "{stderr}");

    broker.kill9_and_restart();
    let listed = ok(&bs, &["list"]);
    assert!(
        !listed.contains("reporting"),
        "deleted group came back: {listed}"
    );
    assert!(listed.contains("audit"), "{listed}");
    assert_eq!(describe(&bs, "audit"), [row(0, 1, 10), row(1, 1, 10)]);
    let (success, _, stderr) = eddy_group(&bs, &["delete", "reporting"]);
    assert!(!success && stderr.contains("does not exist"), "{stderr}");
}

/// Every reset flavour on `reporting` (committed 4 and 7 of 10 records per partition).
fn check_resets(bs: &str, boundary_ms: i64) {
    let all = ["--topic", "clicks"];
    // A dry run prints the plan and changes nothing.
    let plan = reset(bs, "reporting", &[&all[..], &["--to-earliest"]].concat());
    assert_eq!(plan, [(0, 0), (1, 0)]);
    assert_eq!(describe(bs, "reporting"), [row(0, 4, 10), row(1, 7, 10)]);

    let shifted = reset(
        bs,
        "reporting",
        &[&all[..], &["--shift-by", "-2", "--execute"]].concat(),
    );
    assert_eq!(shifted, [(0, 2), (1, 5)]);
    assert_eq!(describe(bs, "reporting"), [row(0, 2, 10), row(1, 5, 10)]);

    let at = datetime(boundary_ms);
    let by_time = reset(
        bs,
        "reporting",
        &[&all[..], &["--to-datetime", &at, "--execute"]].concat(),
    );
    assert_eq!(by_time, [(0, 5), (1, 5)], "first records at or after {at}");

    let latest = reset(
        bs,
        "reporting",
        &["--all-topics", "--to-latest", "--execute"],
    );
    assert_eq!(latest, [(0, 10), (1, 10)]);
    assert_eq!(describe(bs, "reporting"), [row(0, 10, 10), row(1, 10, 10)]);

    let one = reset(
        bs,
        "reporting",
        &["--topic", "clicks:0", "--to-offset", "3", "--execute"],
    );
    assert_eq!(one, [(0, 3)]);
    let earliest = reset(
        bs,
        "reporting",
        &[&all[..], &["--to-earliest", "--execute"]].concat(),
    );
    assert_eq!(earliest, [(0, 0), (1, 0)]);
    assert_eq!(describe(bs, "reporting"), [row(0, 0, 10), row(1, 0, 10)]);
}
