//! Interactive queries against a real broker (EDDY_TEST_BOOTSTRAP; skipped without it): two
//! instances of one application, each with an `application.server` serving the HTTP helper.
//! Key metadata agrees between them, is Kafka's default partitioner over the 4 input
//! partitions, and points at the instance whose stores hold the key; range, window and
//! session queries equal a reference; every key answers over HTTP from either instance (the
//! other one's keys are fetched from it, `all`/`range` gather both); bad requests get clear
//! errors.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eddy_client::{
    partition_for_key, Admin, Client, ClientConfig, NewTopic, Producer, ProducerConfig,
    ProducerRecord,
};
use eddy_streams::runtime::QueryHandle;
use eddy_streams::windows::{SessionWindows, TimeWindows};
use eddy_streams::{
    Consumed, Grouped, KafkaStreams, Materialized, Serdes, StreamsBuilder, StreamsState,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod runtime_common;
use runtime_common::*;

const PARTITIONS: i32 = 4;
const WINDOW_MS: i64 = 10_000;
const SESSION_GAP_MS: i64 = 15_000;
const BASE_MS: i64 = 1_800_000_000_000;
/// A day's grace: every window and session stays, as the stores keep (size + grace).
const GRACE_MS: i64 = 86_400_000;

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
        .windowed_by(TimeWindows::of_size_and_grace(WINDOW_MS, GRACE_MS))
        .count(Materialized::named("windowed"));
    words
        .session_windowed_by(SessionWindows::of_inactivity_gap_and_grace(
            SESSION_GAP_MS,
            GRACE_MS,
        ))
        .count(Materialized::named("sessions"));
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

/// word → its record timestamps, in order.
fn stamps(lines: &[String]) -> BTreeMap<String, Vec<i64>> {
    let mut m: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        for w in l.split_whitespace() {
            m.entry(w.to_owned())
                .or_default()
                .push(BASE_MS + i as i64 * 1_000);
        }
    }
    m
}

/// word → window start → count
fn window_reference(lines: &[String]) -> BTreeMap<String, BTreeMap<i64, i64>> {
    let mut m: BTreeMap<String, BTreeMap<i64, i64>> = BTreeMap::new();
    for (w, ts) in stamps(lines) {
        for t in ts {
            let start = t - t.rem_euclid(WINDOW_MS);
            *m.entry(w.clone()).or_default().entry(start).or_insert(0) += 1;
        }
    }
    m
}

/// word → its sessions (start, end, count): records at most the gap apart share one.
fn session_reference(lines: &[String]) -> BTreeMap<String, Vec<(i64, i64, i64)>> {
    let mut m = BTreeMap::new();
    for (w, ts) in stamps(lines) {
        let mut sessions: Vec<(i64, i64, i64)> = Vec::new();
        for t in ts {
            match sessions.last_mut() {
                Some(s) if t - s.1 <= SESSION_GAP_MS => {
                    s.1 = t;
                    s.2 += 1;
                }
                _ => sessions.push((t, t, 1)),
            }
        }
        m.insert(w, sessions);
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

/// Both instances run tasks, know of each other, and hold every count between them.
async fn await_complete(a: &Instance, b: &Instance, want: &BTreeMap<String, i64>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let both = a.streams.state() == StreamsState::Running
            && b.streams.state() == StreamsState::Running
            && !a.streams.tasks().is_empty()
            && !b.streams.tasks().is_empty()
            && a.streams.all_metadata().len() == 2
            && b.streams.all_metadata().len() == 2;
        let mut seen: BTreeMap<String, i64> = a
            .streams
            .all("counts")
            .unwrap_or_default()
            .into_iter()
            .collect();
        seen.extend(b.streams.all::<String, i64>("counts").unwrap_or_default());
        // Each aggregation has its own repartition topic, so the windowed and session
        // counts catch up on their own: wait until they hold every word too.
        let words: i64 = want.values().sum();
        let total = |store: &str| -> i64 {
            let windowed = |s: &Instance| {
                s.streams
                    .query()
                    .fetch_all::<String, i64>(store, i64::MIN, i64::MAX)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(_, n)| n)
                    .sum::<i64>()
            };
            windowed(a) + windowed(b)
        };
        let sessions: i64 = want
            .keys()
            .map(|w| {
                [a, b]
                    .iter()
                    .flat_map(|s| {
                        s.streams
                            .fetch_sessions::<String, i64>("sessions", w)
                            .unwrap_or_default()
                    })
                    .map(|(_, n)| n)
                    .sum::<i64>()
            })
            .sum();
        if both && &seen == want && total("windowed") == words && sessions == words {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not all counts after 60 s: {} of {} keys; states {:?} / {:?}, tasks {:?} / {:?}, \
             hosts {:?}",
            seen.len(),
            want.len(),
            a.streams.state(),
            b.streams.state(),
            a.streams.tasks(),
            b.streams.tasks(),
            a.streams.all_metadata(),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
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
        .create_topics(&[NewTopic::new(&input, PARTITIONS)])
        .await
        .unwrap();
    let text = lines(600, 0);
    produce_stamped(&client, &input, &text).await;
    let want = reference(&text);

    let a = instance(&app, &bootstrap, &input).await;
    let b = instance(&app, &bootstrap, &input).await;
    await_complete(&a, &b, &want).await;

    keys_live_where_their_metadata_says(&a, &b, &text);
    local_queries_equal_the_reference(&a, &b, &text);
    every_key_answers_over_http_from_either_instance(&a, &b, &text).await;
    bad_requests_get_clear_errors(&a).await;

    for i in [a, b] {
        i.server.abort();
        i.streams.close().await.unwrap();
    }
}

/// Metadata agrees between the instances, is murmur2 of the serialized key over the input
/// partitions, and names the instance whose local stores hold the key (each aggregation
/// has a repartition topic of its own, so each store is placed on its own).
fn keys_live_where_their_metadata_says(a: &Instance, b: &Instance, text: &[String]) {
    let (want, want_windows, want_sessions) = (
        reference(text),
        window_reference(text),
        session_reference(text),
    );
    let (qa, qb) = (a.streams.query(), b.streams.query());
    // The instance whose metadata names it as `word`'s owner in `store`, and the other.
    let owner = |store: &str, word: &String| -> (String, &QueryHandle, &QueryHandle) {
        let ma = a
            .streams
            .metadata_for_key(store, word, &Serdes::string())
            .unwrap();
        let mb = qb.metadata_for_key(store, word, &Serdes::string()).unwrap();
        assert_eq!(ma, mb, "both instances place {word:?} of {store} alike");
        let bytes = Serdes::string().serialize("t", word).unwrap().unwrap();
        assert_eq!(ma.partition, partition_for_key(&bytes, PARTITIONS as usize));
        assert!(ma.standby_hosts.is_empty(), "no standbys configured");
        let host = ma.active_host.unwrap();
        if host == a.host {
            (host, &qa, &qb)
        } else {
            assert_eq!(host, b.host);
            (host, &qb, &qa)
        }
    };
    let mut on = BTreeMap::<String, usize>::new();
    for (word, count) in &want {
        let (host, mine, other) = owner("counts", word);
        assert_eq!(mine.get("counts", word).unwrap(), Some(*count), "{word:?}");
        assert_eq!(other.get::<String, i64>("counts", word).unwrap(), None);
        *on.entry(host).or_default() += 1;

        let (_, mine, other) = owner("windowed", word);
        let windows = mine
            .fetch::<String, i64>("windowed", word, i64::MIN, i64::MAX)
            .unwrap();
        let want_w: Vec<(i64, i64)> = want_windows[word].iter().map(|(s, c)| (*s, *c)).collect();
        assert_eq!(windows, want_w, "windows of {word:?}");
        let elsewhere = other.fetch::<String, i64>("windowed", word, i64::MIN, i64::MAX);
        assert!(elsewhere.unwrap().is_empty());

        let (_, mine, other) = owner("sessions", word);
        let sessions: Vec<(i64, i64, i64)> = mine
            .fetch_sessions::<String, i64>("sessions", word)
            .unwrap()
            .into_iter()
            .map(|(w, c)| {
                assert_eq!(&w.key, word);
                (w.window.start_ms, w.window.end_ms, c)
            })
            .collect();
        assert_eq!(sessions, want_sessions[word], "sessions of {word:?}");
        let elsewhere = other.fetch_sessions::<String, i64>("sessions", word);
        assert!(elsewhere.unwrap().is_empty());
    }
    assert_eq!(on.len(), 2, "keys live on both instances: {on:?}");
    // Each instance lists both, with the stores of the tasks it runs.
    for q in [&qa, &qb] {
        let all = q.all_metadata();
        let hosts: Vec<&str> = all.iter().map(|m| m.host.as_str()).collect();
        let mut both = vec![a.host.as_str(), b.host.as_str()];
        both.sort();
        assert_eq!(hosts, both);
        for m in &all {
            assert_eq!(m.stores, ["counts", "sessions", "windowed"], "{m:?}");
        }
        assert_eq!(q.streams_metadata_for_store("windowed").unwrap(), all);
    }
}

/// Range (inclusive bounds), all, fetch_all and the entry count, gathered over both
/// instances, equal the reference.
fn local_queries_equal_the_reference(a: &Instance, b: &Instance, text: &[String]) {
    let (want, want_windows) = (reference(text), window_reference(text));
    let (from, to) = ("w1".to_string(), "w3".to_string());
    let mut got: Vec<(String, i64)> = a.streams.range("counts", Some(&from), Some(&to)).unwrap();
    got.extend(
        b.streams
            .range::<String, i64>("counts", Some(&from), Some(&to))
            .unwrap(),
    );
    got.sort();
    let expected: Vec<(String, i64)> = want
        .range(from.clone()..=to.clone())
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(got, expected);
    assert!(expected.iter().any(|(k, _)| *k == from) && expected.iter().any(|(k, _)| *k == to));
    let open_start: Vec<(String, i64)> = a.streams.range("counts", None, Some(&to)).unwrap();
    assert!(open_start.iter().all(|(k, _)| *k <= to) && !open_start.is_empty());
    let none: Vec<(String, i64)> = a.streams.range("counts", Some(&to), Some(&from)).unwrap();
    assert!(none.is_empty(), "from above to: nothing, as Kafka");

    for i in [a, b] {
        let local: Vec<(String, i64)> = i.streams.all("counts").unwrap();
        let mut sorted = local.clone();
        sorted.sort();
        assert_eq!(local, sorted, "all() is in serialized-key order");
        // Persistent stores estimate, counting overwritten entries not yet compacted.
        let n = i.streams.approximate_num_entries("counts").unwrap();
        assert!(
            n >= local.len() as u64,
            "{n} entries estimated, {}",
            local.len()
        );
    }

    let start = BASE_MS - BASE_MS.rem_euclid(WINDOW_MS);
    let mut in_window: Vec<(String, i64)> = Vec::new();
    for i in [a, b] {
        for (w, c) in i
            .streams
            .fetch_all::<String, i64>("windowed", start, start)
            .unwrap()
        {
            assert_eq!(w.window.start_ms, start);
            assert_eq!(w.window.end_ms - w.window.start_ms, WINDOW_MS);
            in_window.push((w.key, c));
        }
    }
    in_window.sort();
    let expected: Vec<(String, i64)> = want_windows
        .iter()
        .filter_map(|(k, ws)| ws.get(&start).map(|c| (k.clone(), *c)))
        .collect();
    assert_eq!(in_window, expected);
}

async fn every_key_answers_over_http_from_either_instance(
    a: &Instance,
    b: &Instance,
    text: &[String],
) {
    let (want, want_windows, want_sessions) = (
        reference(text),
        window_reference(text),
        session_reference(text),
    );
    let entries = |m: &mut dyn Iterator<Item = (&String, &i64)>| -> Value {
        Value::Array(m.map(|(k, v)| json!({"key": k, "value": v})).collect())
    };
    for host in [&a.host, &b.host] {
        for (word, count) in &want {
            let (status, body) = http_get(host, &format!("/stores/counts/keys/{word}")).await;
            assert_eq!(
                (status, &body),
                (200, &json!({"key": word, "value": count}))
            );
            let (status, body) = http_get(host, &format!("/stores/windowed/windows/{word}")).await;
            let windows: Vec<Value> = want_windows[word]
                .iter()
                .map(|(s, c)| json!({"start": s, "end": s + WINDOW_MS, "value": c}))
                .collect();
            assert_eq!((status, body), (200, Value::Array(windows)), "{word}");
            let (status, body) = http_get(host, &format!("/stores/sessions/sessions/{word}")).await;
            let sessions: Vec<Value> = want_sessions[word]
                .iter()
                .map(|(s, e, c)| json!({"start": s, "end": e, "value": c}))
                .collect();
            assert_eq!((status, body), (200, Value::Array(sessions)), "{word}");
        }
        // all and range gather both instances, in key order.
        let (status, body) = http_get(host, "/stores/counts/all").await;
        assert_eq!((status, body), (200, entries(&mut want.iter())));
        let (status, body) = http_get(host, "/stores/counts/range?from=w1&to=w3").await;
        let expected = entries(&mut want.range("w1".to_string()..="w3".to_string()));
        assert_eq!((status, body), (200, expected));
        // scope=local: this instance's own.
        let (status, body) = http_get(host, "/stores/counts/all?scope=local").await;
        let mine = if host == &a.host { a } else { b };
        let local: Vec<(String, i64)> = mine.streams.all("counts").unwrap();
        assert_eq!(
            (status, body),
            (200, entries(&mut local.iter().map(|(k, v)| (k, v))))
        );
        // Key metadata over HTTP is the API's.
        let (status, body) = http_get(host, "/stores/counts/metadata/common").await;
        let md = mine
            .streams
            .metadata_for_key("counts", &"common".to_string(), &Serdes::string())
            .unwrap();
        let expected = json!({
            "active_host": md.active_host,
            "standby_hosts": md.standby_hosts,
            "partition": md.partition,
        });
        assert_eq!((status, body), (200, expected));
        let (status, body) = http_get(host, "/metadata").await;
        assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(2)));
    }
}

/// Errors a person can act on: what was wrong, in a JSON message, with the right status.
async fn bad_requests_get_clear_errors(a: &Instance) {
    let cases: &[(&str, u16, &str)] = &[
        ("/stores/nope/keys/common", 404, "no state store \"nope\""),
        ("/stores/nope/all", 404, "no state store \"nope\""),
        (
            "/stores/nope/windows/common",
            404,
            "no state store \"nope\"",
        ),
        (
            "/stores/nope/metadata/common",
            404,
            "no state store \"nope\"",
        ),
        ("/stores/counts/keys/no-such-word", 404, "has no key"),
        ("/stores/windowed/keys/common", 400, "not a key-value store"),
        ("/stores/counts/windows/common", 400, "not a window store"),
        ("/stores/counts/sessions/common", 400, "not a session store"),
        (
            "/stores/windowed/windows/common?from=yesterday",
            400,
            "from=\"yesterday\"",
        ),
        (
            "/stores/counts/range?form=w1",
            400,
            "unknown parameter \"form\"",
        ),
        (
            "/stores/counts/all?scope=everywhere",
            400,
            "scope=\"everywhere\"",
        ),
        ("/stores/counts/keys/%FF", 400, "bad path"),
    ];
    for (path, status, message) in cases {
        let (got, body) = http_get(&a.host, path).await;
        assert_eq!(got, *status, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{path}: {body}");
    }
    let err = a
        .streams
        .fetch::<String, i64>("counts", &"common".to_string(), 0, 1)
        .unwrap_err();
    assert!(err.to_string().contains("not a window store"), "{err}");
    let err = a.streams.all::<String, i64>("nope").unwrap_err();
    assert!(err.to_string().contains("its stores are"), "{err}");
}
