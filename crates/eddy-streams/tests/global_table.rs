//! Global tables and the stream-globaltable join: with the TopologyTestDriver (inner and
//! left joins on a computed key, tombstones, updates between stream records), and with the
//! runtime against a real broker (EDDY_TEST_BOOTSTRAP; skipped without it): the global
//! table's topic has more partitions than the stream's and joins need no co-partitioning.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use eddy_client::{
    Admin, Client, ClientConfig, Consumer, ConsumerConfig, NewTopic, OffsetSpec, Producer,
    ProducerConfig, ProducerRecord, SeekTo,
};
use eddy_streams::driver::TestTopic;
use eddy_streams::{
    Consumed, KafkaStreams, Materialized, Produced, Serdes, StreamsBuilder, StreamsState,
    TopologyTestDriver,
};

mod runtime_common;
use runtime_common::{bootstrap, config, unique};

/// orders (order id → user id) joined with the users global table (user id → name) into
/// `enriched` (inner) and `enriched-left` (left), both keyed by order id.
fn topology(orders: &str, users: &str, inner_out: &str, left_out: &str) -> StreamsBuilder {
    let builder = StreamsBuilder::new();
    let users = builder.global_table(
        users,
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::named("users"),
    );
    let orders = builder.stream(
        &[orders],
        Consumed::with(Serdes::string(), Serdes::string()),
    );
    orders
        .join_global(
            &users,
            |_order: &String, user: &String| user.clone(),
            |user: &String, name: &String| format!("{user}:{name}"),
        )
        .to(
            inner_out,
            Produced::with(Serdes::string(), Serdes::string()),
        );
    orders
        .left_join_global(
            &users,
            |_order: &String, user: &String| user.clone(),
            |user: &String, name: Option<&String>| format!("{user}:{}", name.map_or("-", |n| n)),
        )
        .to(left_out, Produced::with(Serdes::string(), Serdes::string()));
    builder
}

#[test]
fn inner_and_left_joins_with_a_global_table_in_the_driver() {
    let t = topology("orders", "users", "enriched", "enriched-left");
    // Three partitions: each task reads the one global store.
    let mut driver = TopologyTestDriver::with_partitions(t.build().unwrap(), 3);
    let orders = TestTopic::new("orders", Serdes::string(), Serdes::string());
    let users = TestTopic::new("users", Serdes::string(), Serdes::string());
    let inner = TestTopic::new("enriched", Serdes::string(), Serdes::string());
    let left = TestTopic::new("enriched-left", Serdes::string(), Serdes::string());
    let s = |x: &str| x.to_owned();

    // No user yet: inner nothing, left with none.
    driver.pipe(&orders, s("o1"), s("u1"), 1).unwrap();
    // The user arrives; a later order joins it.
    driver.pipe(&users, s("u1"), s("alice"), 2).unwrap();
    driver.pipe(&orders, s("o2"), s("u1"), 3).unwrap();
    // An update, then a tombstone: joins see the row as it is at that moment.
    driver.pipe(&users, s("u1"), s("alice2"), 4).unwrap();
    driver.pipe(&orders, s("o3"), s("u1"), 5).unwrap();
    driver
        .pipe_raw("users", Some(Bytes::from_static(b"u1")), None, 6)
        .unwrap();
    driver.pipe(&orders, s("o4"), s("u1"), 7).unwrap();
    driver.pipe(&users, s("u2"), s("bob"), 8).unwrap();
    driver.pipe(&orders, s("o5"), s("u2"), 9).unwrap();

    let got = |recs: Vec<eddy_streams::driver::TestRecord<String, String>>| {
        recs.into_iter()
            .map(|r| (r.key, r.value, r.timestamp_ms))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        got(driver.read(&inner).unwrap()),
        vec![
            (s("o2"), s("u1:alice"), 3),
            (s("o3"), s("u1:alice2"), 5),
            (s("o5"), s("u2:bob"), 9),
        ]
    );
    assert_eq!(
        got(driver.read(&left).unwrap()),
        vec![
            (s("o1"), s("u1:-"), 1),
            (s("o2"), s("u1:alice"), 3),
            (s("o3"), s("u1:alice2"), 5),
            (s("o4"), s("u1:-"), 7),
            (s("o5"), s("u2:bob"), 9),
        ]
    );
    assert_eq!(
        driver.key_value_store::<String, String>("users").unwrap(),
        vec![(s("u2"), s("bob"))]
    );
}

#[test]
fn a_global_join_on_an_undeclared_global_store_is_refused() {
    // Two builders: the table belongs to the other one's topology.
    let other = StreamsBuilder::new();
    let users = other.global_table(
        "users",
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::named("users"),
    );
    let builder = StreamsBuilder::new();
    builder
        .stream(
            &["orders"],
            Consumed::with(Serdes::string(), Serdes::string()),
        )
        .join_global(
            &users,
            |_: &String, u: &String| u.clone(),
            |a: &String, b: &String| format!("{a}{b}"),
        )
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let err = builder.build().err().expect("refused");
    assert!(err.to_string().contains("global store \"users\""), "{err}");
}

async fn produce(client: &Client, topic: &str, records: &[(String, Option<String>)]) {
    let p = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for (k, v) in records {
        // A None value is a tombstone.
        let mut r = ProducerRecord::new(topic, Bytes::new()).with_key(k.clone());
        r.value = v.clone().map(Bytes::from);
        acks.push(p.send(r).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
    p.close().await;
}

async fn read_until(
    client: &Client,
    topic: &str,
    want: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let config = ConsumerConfig {
        auto_offset_reset: Some(OffsetSpec::Earliest),
        ..ConsumerConfig::default()
    };
    let mut c = Consumer::new(client.clone(), config);
    c.assign(topic, None).await.unwrap();
    c.seek_all(SeekTo::Earliest).await.unwrap();
    let mut got = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while &got != want && Instant::now() < deadline {
        for r in c.poll().await.unwrap() {
            let k = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
            got.insert(k, v);
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_application_joins_a_global_table() {
    let Some(bootstrap) = bootstrap("a_running_application_joins_a_global_table") else {
        return;
    };
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .unwrap();
    let (orders, users, inner, left, app) = (
        unique("gt-orders"),
        unique("gt-users"),
        unique("gt-inner"),
        unique("gt-left"),
        unique("gt-app"),
    );
    Admin::new(client.clone())
        .create_topics(&[
            NewTopic::new(&orders, 2),
            NewTopic::new(&users, 3),
            NewTopic::new(&inner, 2),
            NewTopic::new(&left, 2),
        ])
        .await
        .unwrap();
    // 300 users before the start; user 0..9 deleted again.
    let mut before: Vec<(String, Option<String>)> = (0..300)
        .map(|i| (format!("u{i}"), Some(format!("name{i}"))))
        .collect();
    before.extend((0..10).map(|i| (format!("u{i}"), None)));
    produce(&client, &users, &before).await;

    let mut streams = KafkaStreams::new(
        topology(&orders, &users, &inner, &left).build().unwrap(),
        config(&app, &bootstrap),
    );
    streams.start();
    streams
        .wait_for(StreamsState::Running, Duration::from_secs(30))
        .await
        .unwrap();
    // Orders for users 0..400 (300..399 do not exist yet, 0..9 were deleted).
    let first: Vec<(String, Option<String>)> = (0..400)
        .map(|i| (format!("o{i}"), Some(format!("u{i}"))))
        .collect();
    produce(&client, &orders, &first).await;
    let mut want_inner: BTreeMap<String, String> = (10..300)
        .map(|i| (format!("o{i}"), format!("u{i}:name{i}")))
        .collect();
    let mut want_left: BTreeMap<String, String> = (0..400)
        .map(|i| {
            let name = if (10..300).contains(&i) {
                format!("name{i}")
            } else {
                "-".into()
            };
            (format!("o{i}"), format!("u{i}:{name}"))
        })
        .collect();
    assert_eq!(read_until(&client, &inner, &want_inner).await, want_inner);
    assert_eq!(read_until(&client, &left, &want_left).await, want_left);

    // Users written while the application runs reach the global store: later orders join.
    let late: Vec<(String, Option<String>)> = (300..400)
        .map(|i| (format!("u{i}"), Some(format!("late{i}"))))
        .collect();
    produce(&client, &users, &late).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while streams
        .get::<String, String>("users", &"u399".to_string())
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "global store never saw u399");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second: Vec<(String, Option<String>)> = (300..400)
        .map(|i| (format!("p{i}"), Some(format!("u{i}"))))
        .collect();
    produce(&client, &orders, &second).await;
    for i in 300..400 {
        want_inner.insert(format!("p{i}"), format!("u{i}:late{i}"));
        want_left.insert(format!("p{i}"), format!("u{i}:late{i}"));
    }
    assert_eq!(read_until(&client, &inner, &want_inner).await, want_inner);
    assert_eq!(read_until(&client, &left, &want_left).await, want_left);
    streams.close().await.unwrap();
}
