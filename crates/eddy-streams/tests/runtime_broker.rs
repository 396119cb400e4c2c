//! The runtime against a real broker (the one in EDDY_TEST_BOOTSTRAP; skipped without it):
//! word count end to end, and two instances of one application sharing the work, one
//! handing its tasks over when it closes.

use std::time::{Duration, Instant};

use eddy_client::{Admin, Client, ClientConfig, NewTopic};
use eddy_streams::{KafkaStreams, StreamsState};

mod runtime_common;
use runtime_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_against_the_broker() {
    let Some(bootstrap) = bootstrap("word_count_against_the_broker") else {
        return;
    };
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .unwrap();
    let (input, output, app) = (unique("wc-in"), unique("wc-out"), unique("wc-app"));
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new(&input, 3), NewTopic::new(&output, 3)])
        .await
        .unwrap();
    let text = lines(2_000, 0);
    produce(&client, &input, &text).await;

    let mut app1 = KafkaStreams::new(
        word_count(&input, &output).build().unwrap(),
        config(&app, &bootstrap),
    );
    app1.start();
    app1.wait_for(StreamsState::Running, Duration::from_secs(30))
        .await
        .unwrap();
    let want = reference(&text);
    assert_eq!(await_counts(&client, &output, &want).await, want);
    // Interactive query of the count store.
    assert_eq!(
        app1.get::<String, i64>("counts", &"common".to_string())
            .unwrap(),
        Some(2_000)
    );

    // A second instance joins: the tasks are shared; more input; still exact.
    let mut app2 = KafkaStreams::new(
        word_count(&input, &output).build().unwrap(),
        config(&app, &bootstrap),
    );
    app2.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (app1.tasks().is_empty() || app2.tasks().is_empty()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (t1, t2) = (app1.tasks(), app2.tasks());
    assert!(
        !t1.is_empty() && !t2.is_empty(),
        "tasks not shared: {t1:?} / {t2:?}"
    );
    assert_eq!(
        t1.len() + t2.len(),
        6,
        "3 source tasks + 3 aggregation tasks: {t1:?} / {t2:?}"
    );
    let more = lines(1_000, 2_000);
    produce(&client, &input, &more).await;
    let all: Vec<String> = text.iter().chain(&more).cloned().collect();
    let want = reference(&all);
    assert_eq!(await_counts(&client, &output, &want).await, want);

    // The first closes (commits, leaves): the second takes every task, rebuilding the
    // stores from their changelogs, and goes on exactly.
    app1.close().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while app2.tasks().len() < 6 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app2.tasks().len(), 6);
    let last = lines(500, 3_000);
    produce(&client, &input, &last).await;
    let all: Vec<String> = all.iter().chain(&last).cloned().collect();
    let want = reference(&all);
    assert_eq!(await_counts(&client, &output, &want).await, want);
    assert_eq!(
        app2.get::<String, i64>("counts", &"common".to_string())
            .unwrap(),
        Some(3_500)
    );
    app2.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_exactly_once_reads_committed_and_survives_a_handover() {
    let Some(bootstrap) = bootstrap("word_count_exactly_once") else {
        return;
    };
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .unwrap();
    let (input, output, app) = (unique("eos-in"), unique("eos-out"), unique("eos-app"));
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new(&input, 2), NewTopic::new(&output, 2)])
        .await
        .unwrap();
    let eos = |app: &str| {
        config(app, &bootstrap).with_guarantee(eddy_streams::ProcessingGuarantee::ExactlyOnceV2)
    };
    let text = lines(1_500, 0);
    produce(&client, &input, &text).await;
    let mut a = KafkaStreams::new(word_count(&input, &output).build().unwrap(), eos(&app));
    a.start();
    a.wait_for(StreamsState::Running, Duration::from_secs(30))
        .await
        .unwrap();
    let want = reference(&text);
    assert_eq!(
        await_counts_with(
            &client,
            &output,
            &want,
            eddy_client::IsolationLevel::ReadCommitted
        )
        .await,
        want
    );
    let mut b = KafkaStreams::new(word_count(&input, &output).build().unwrap(), eos(&app));
    b.start();
    a.close().await.unwrap();
    let more = lines(700, 1_500);
    produce(&client, &input, &more).await;
    let all: Vec<String> = text.iter().chain(&more).cloned().collect();
    let want = reference(&all);
    assert_eq!(
        await_counts_with(
            &client,
            &output,
            &want,
            eddy_client::IsolationLevel::ReadCommitted
        )
        .await,
        want
    );
    assert_eq!(
        b.get::<String, i64>("counts", &"common".to_string())
            .unwrap(),
        Some(2_200)
    );
    b.close().await.unwrap();
}
