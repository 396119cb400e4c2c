//! Standby replicas against a real broker (EDDY_TEST_BOOTSTRAP; skipped without it): with
//! `num.standby.replicas` = 1, each instance keeps the other's count stores warm, so when one
//! leaves, the other takes its tasks over restoring a handful of changelog records instead
//! of the whole changelog, and the counts stay exact.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eddy_client::{Admin, ClientConfig, IsolationLevel, NewTopic, OffsetSpec};
use eddy_streams::{KafkaStreams, ProcessingGuarantee, TaskId};

mod runtime_common;
use runtime_common::*;

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn standby_takeover(guarantee: ProcessingGuarantee, prefix: &str) {
    let Some(bootstrap) = bootstrap(prefix) else {
        return;
    };
    let client = eddy_client::Client::connect(ClientConfig::new(&bootstrap))
        .await
        .unwrap();
    let (input, output, app) = (
        unique(&format!("{prefix}-in")),
        unique(&format!("{prefix}-out")),
        unique(&format!("{prefix}-app")),
    );
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new(&input, 2), NewTopic::new(&output, 2)])
        .await
        .unwrap();
    let make = || {
        let mut c = config(&app, &bootstrap).with_guarantee(guarantee);
        c.commit_interval_ms = 200;
        c.num_standby_replicas = 1;
        recording(c)
    };
    let (config_a, _) = make();
    let (config_b, events_b) = make();
    let isolation = match guarantee {
        ProcessingGuarantee::AtLeastOnce => IsolationLevel::ReadUncommitted,
        ProcessingGuarantee::ExactlyOnceV2 => IsolationLevel::ReadCommitted,
    };

    let mut a = KafkaStreams::new(
        word_count(&input, &output).build().unwrap(),
        config_a.clone(),
    );
    let mut b = KafkaStreams::new(
        word_count(&input, &output).build().unwrap(),
        config_b.clone(),
    );
    a.start();
    b.start();
    // Two count tasks (sub-topology 1): one active on each instance, its standby on the
    // other. The stateless tasks (sub-topology 0) get no standbys.
    let counts = |ids: Vec<TaskId>| ids.into_iter().filter(|t| t.subtopology == 1).count();
    wait_until(
        "each instance runs a count task and keeps the other's standby",
        || {
            counts(a.tasks()) == 1
                && counts(b.tasks()) == 1
                && counts(a.standby_tasks()) == 1
                && counts(b.standby_tasks()) == 1
        },
    )
    .await;
    assert!(a.standby_tasks().iter().all(|t| t.subtopology == 1));
    let a_count_task = a.tasks().into_iter().find(|t| t.subtopology == 1).unwrap();
    assert_eq!(
        b.standby_tasks(),
        vec![a_count_task],
        "B's standby is A's count task"
    );

    let text = lines(3_000, 0);
    produce(&client, &input, &text).await;
    let want = reference(&text);
    assert_eq!(
        await_counts_with(&client, &output, &want, isolation).await,
        want
    );

    // The changelog of A's count task, and how much of it B's standby has seen: wait until
    // B's copy of A's store is complete (it answers no queries, so give it a moment).
    let changelog = format!("{app}-counts-changelog");
    let end = eddy_client::offsets::list_offsets_with_isolation(
        &client,
        &changelog,
        &[a_count_task.partition],
        OffsetSpec::Latest,
        isolation,
    )
    .await
    .unwrap()[&a_count_task.partition]
        .offset
        .unwrap();
    assert!(end > 1_000, "the changelog holds every update: {end}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // A leaves; B takes A's count task over from its standby.
    events_b.lock().unwrap().clear();
    a.close().await.unwrap();
    wait_until("B runs both count tasks", || counts(b.tasks()) == 2).await;
    let restored: BTreeMap<TaskId, u64> = events_b
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.store == "counts")
        .map(|e| (e.task, e.records))
        .collect();
    let taken_over = restored.get(&a_count_task).copied();
    assert!(
        taken_over.is_some_and(|n| n < 50),
        "A's count task restored from B's standby: {taken_over:?} of {end} changelog records \
         replayed ({restored:?})"
    );

    let more = lines(1_000, 3_000);
    produce(&client, &input, &more).await;
    let all: Vec<String> = text.iter().chain(&more).cloned().collect();
    let want = reference(&all);
    assert_eq!(
        await_counts_with(&client, &output, &want, isolation).await,
        want
    );
    assert_eq!(
        b.get::<String, i64>("counts", &"common".to_string())
            .unwrap(),
        Some(4_000)
    );
    b.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&config_a.state_dir);
    let _ = std::fs::remove_dir_all(&config_b.state_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_takeover_restores_from_the_standby() {
    standby_takeover(ProcessingGuarantee::AtLeastOnce, "standby-alos").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_takeover_restores_from_the_standby() {
    standby_takeover(ProcessingGuarantee::ExactlyOnceV2, "standby-eos").await;
}
