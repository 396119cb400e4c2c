//! Interactive queries against a real broker (EDDY_TEST_BOOTSTRAP; skipped without it): two
//! instances of one application, each with an `application.server` serving the HTTP helper.
//! Key metadata agrees between them and points at the instance whose stores hold the key;
//! range and window queries equal a reference; every key answers over HTTP from either
//! instance (the other one's keys are fetched from it); bad requests get clear errors.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eddy_client::{
    Admin, Client, ClientConfig, NewTopic, Producer, ProducerConfig, ProducerRecord,
};
use eddy_streams::windows::TimeWindows;
use eddy_streams::{
    Consumed, Grouped, KafkaStreams, Materialized, Serdes, StreamsBuilder, StreamsState,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod runtime_common;
use runtime_common::*;

const WINDOW_MS: i64 = 10_000;
const BASE_MS: i64 = 1_800_000_000_000;

fn topology(input: &str) -> StreamsBuilder {
    let builder = StreamsBuilder::new();
    let words = builder
        .stream(&[input], Consumed::with(Serdes::unit(), Serdes::string()))
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .group_by(
            |_, w: &String| w.clone(),
            Grouped::with(Serdes::string(), Serdes::string()),
        );
    words.count(Materialized::named("counts"));
    words
        // A day's grace: the store keeps (size + grace) of windows, as Kafka's does.
        .windowed_by(TimeWindows::of_size_and_grace(WINDOW_MS, 86_400_000))
        .count(Materialized::named("windowed"));
    builder
}

/// Line i is stamped BASE_MS + i * 1000 ms.
async fn produce_stamped(client: &Client, topic: &str, lines: &[String]) {
    let p = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let r = ProducerRecord::new(topic, l.clone()).with_timestamp(BASE_MS + i as i64 * 1_000);
        acks.push(p.send(r).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
    p.close().await;
}

/// word → window start → count
fn window_reference(lines: &[String]) -> BTreeMap<String, BTreeMap<i64, i64>> {
    let mut m: BTreeMap<String, BTreeMap<i64, i64>> = BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        let ts = BASE_MS + i as i64 * 1_000;
        let start = ts - ts.rem_euclid(WINDOW_MS);
        for w in l.split_whitespace() {
            *m.entry(w.to_owned()).or_default().entry(start).or_insert(0) += 1;
        }
    }
    m
}

/// GET over HTTP/1.1: (status, JSON body).
async fn http_get(host: &str, path: &str) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null);
    (status, body)
}

struct Instance {
    streams: KafkaStreams,
    host: String,
    server: tokio::task::JoinHandle<()>,
}

async fn instance(app: &str, bootstrap: &str, input: &str) -> Instance {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let mut config = config(app, bootstrap);
    config.application_server = Some(host.clone());
    let mut streams = KafkaStreams::new(topology(input).build().unwrap(), config);
    let router =
        eddy_streams::runtime::http::router::<String, i64>(streams.query(), Serdes::string());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    streams.start();
    Instance {
        streams,
        host,
        server,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_answer_for_every_key() {
    let Some(bootstrap) = bootstrap("two_instances_answer_for_every_key") else {
        return;
    };
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .unwrap();
    let (input, app) = (unique("iq-in"), unique("iq-app"));
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new(&input, 4)])
        .await
        .unwrap();
    let text = lines(600, 0);
    produce_stamped(&client, &input, &text).await;
    let want = reference(&text);
    let want_windows = window_reference(&text);

    let a = instance(&app, &bootstrap, &input).await;
    let b = instance(&app, &bootstrap, &input).await;
    // Both run tasks, and the counts are complete (summed over the two instances).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let both = a.streams.state() == StreamsState::Running
            && b.streams.state() == StreamsState::Running
            && !a.streams.tasks().is_empty()
            && !b.streams.tasks().is_empty()
            && a.streams.query().all_metadata().len() == 2;
        let mut seen: BTreeMap<String, i64> = a
            .streams
            .all("counts")
            .unwrap_or_default()
            .into_iter()
            .collect();
        seen.extend(b.streams.all::<String, i64>("counts").unwrap_or_default());
        if both && seen == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all counts after 60 s: {} of {} keys",
            seen.len(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (qa, qb) = (a.streams.query(), b.streams.query());
    let mut on = BTreeMap::<String, usize>::new();
    for (word, count) in &want {
        let ma = qa
            .metadata_for_key("counts", word, &Serdes::string())
            .unwrap();
        let mb = qb
            .metadata_for_key("counts", word, &Serdes::string())
            .unwrap();
        assert_eq!(ma, mb, "both instances place {word:?} alike");
        let owner = ma.active_host.clone().unwrap();
        let (mine, other) = if owner == a.host {
            (&qa, &qb)
        } else {
            (&qb, &qa)
        };
        assert_eq!(
            mine.get::<String, i64>("counts", word).unwrap(),
            Some(*count),
            "{word:?} on its owner"
        );
        assert_eq!(
            other.get::<String, i64>("counts", word).unwrap(),
            None,
            "{word:?} not on the other"
        );
        // The windowed store's key goes with the same task.
        let windows = mine
            .fetch::<String, i64>("windowed", word, i64::MIN, i64::MAX)
            .unwrap();
        let want_w: Vec<(i64, i64)> = want_windows[word].iter().map(|(s, c)| (*s, *c)).collect();
        assert_eq!(windows, want_w, "windows of {word:?}");
        *on.entry(owner).or_default() += 1;
    }
    assert_eq!(on.len(), 2, "keys live on both instances: {on:?}");

    // Range over both instances equals the reference's range, bounds included.
    let (from, to) = ("w1".to_string(), "w3".to_string());
    let mut got: Vec<(String, i64)> = qa.range("counts", Some(&from), Some(&to)).unwrap();
    got.extend(
        qb.range::<String, i64>("counts", Some(&from), Some(&to))
            .unwrap(),
    );
    got.sort();
    let expected: Vec<(String, i64)> = want
        .range(from.clone()..=to.clone())
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(got, expected);
    assert!(expected.iter().any(|(k, _)| *k == from) && expected.iter().any(|(k, _)| *k == to));

    // fetch_all of one window over both instances.
    let start = BASE_MS - BASE_MS.rem_euclid(WINDOW_MS);
    let mut in_window: Vec<(String, i64)> = qa
        .fetch_all::<String, i64>("windowed", start, start)
        .unwrap()
        .into_iter()
        .chain(
            qb.fetch_all::<String, i64>("windowed", start, start)
                .unwrap(),
        )
        .map(|(w, c)| {
            assert_eq!(w.window.end_ms - w.window.start_ms, WINDOW_MS);
            (w.key, c)
        })
        .collect();
    in_window.sort();
    let expected: Vec<(String, i64)> = want_windows
        .iter()
        .filter_map(|(k, ws)| ws.get(&start).map(|c| (k.clone(), *c)))
        .collect();
    assert_eq!(in_window, expected);

    // Over HTTP, from either instance, every key.
    for host in [&a.host, &b.host] {
        for (word, count) in &want {
            let (status, body) = http_get(host, &format!("/stores/counts/keys/{word}")).await;
            assert_eq!(status, 200, "{word} from {host}: {body}");
            assert_eq!(body["value"], *count, "{word} from {host}");
            let (status, body) = http_get(host, &format!("/stores/windowed/windows/{word}")).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body.as_array().unwrap().len(), want_windows[word].len());
        }
    }
    let (status, body) = http_get(&a.host, "/stores/counts/metadata/common").await;
    assert_eq!(status, 200);
    assert!(body["active_host"] == a.host.as_str() || body["active_host"] == b.host.as_str());
    let (status, body) = http_get(&a.host, "/metadata").await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(2)));

    // Errors a person can act on.
    let (status, body) = http_get(&a.host, "/stores/nope/keys/common").await;
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no state store \"nope\""),
        "{body}"
    );
    let (status, body) = http_get(&a.host, "/stores/windowed/windows/common?from=yesterday").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("from=\"yesterday\""),
        "{body}"
    );
    let (status, _) = http_get(&a.host, "/stores/counts/keys/no-such-word").await;
    assert_eq!(status, 404);
    let err = qa
        .fetch::<String, i64>("counts", &"common".to_string(), 0, 1)
        .unwrap_err();
    assert!(err.to_string().contains("not a window store"), "{err}");

    for i in [a, b] {
        i.server.abort();
        i.streams.close().await.unwrap();
    }
}
