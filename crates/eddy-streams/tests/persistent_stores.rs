//! Persistent stores and checkpoints against a real broker (EDDY_TEST_BOOTSTRAP; skipped
//! without it): a restarted instance restores its persistent stores only from their
//! checkpoint on, where in-memory stores replay the whole changelog; under exactly-once a
//! checkpoint exists only after a clean close.

use std::time::Duration;

use eddy_client::{Admin, Client, ClientConfig, IsolationLevel, NewTopic};
use eddy_streams::{
    KafkaStreams, Materialized, ProcessingGuarantee, RestoreEvent, StreamsConfig, StreamsState,
};

mod runtime_common;
use runtime_common::*;

/// Checkpoint files under the application's state directory, with their text.
fn checkpoints(config: &StreamsConfig) -> Vec<(String, String)> {
    let dir = config.state_dir.join(&config.application_id);
    let mut out = Vec::new();
    for task in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = task.path().join(".checkpoint");
        if let Ok(text) = std::fs::read_to_string(&path) {
            out.push((task.file_name().to_string_lossy().into_owned(), text));
        }
    }
    out.sort();
    out
}

/// Runs the word count over `text` until its output is exact, then closes it cleanly.
/// Returns the restorations it made when it started.
async fn run_once(
    client: &Client,
    (input, output): (&str, &str),
    config: &StreamsConfig,
    store: Materialized<String, i64>,
    all_text: &[String],
) -> Vec<RestoreEvent> {
    let (config, events) = recording(config.clone());
    let eos = config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2;
    let mut app = KafkaStreams::new(
        word_count_into(input, output, store).build().unwrap(),
        config,
    );
    app.start();
    app.wait_for(StreamsState::Running, Duration::from_secs(30))
        .await
        .unwrap();
    let want = reference(all_text);
    let isolation = if eos {
        IsolationLevel::ReadCommitted
    } else {
        IsolationLevel::ReadUncommitted
    };
    assert_eq!(
        await_counts_with(client, output, &want, isolation).await,
        want
    );
    assert_eq!(
        app.get::<String, i64>("counts", &"common".to_string())
            .unwrap(),
        Some(all_text.len() as i64)
    );
    app.close().await.unwrap();
    let events = events.lock().unwrap().clone();
    events.into_iter().filter(|e| e.store == "counts").collect()
}

async fn setup(bootstrap: &str, prefix: &str) -> (Client, String, String, String) {
    let client = Client::connect(ClientConfig::new(bootstrap)).await.unwrap();
    let (input, output, app) = (
        unique(&format!("{prefix}-in")),
        unique(&format!("{prefix}-out")),
        unique(&format!("{prefix}-app")),
    );
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new(&input, 2), NewTopic::new(&output, 2)])
        .await
        .unwrap();
    (client, input, output, app)
}

/// Restarts the word count twice over more input and checks what each start restored.
async fn restarts_restore_from_the_checkpoint(guarantee: ProcessingGuarantee, prefix: &str) {
    let Some(bootstrap) = bootstrap(prefix) else {
        return;
    };
    let (client, input, output, app) = setup(&bootstrap, prefix).await;
    let config = config(&app, &bootstrap).with_guarantee(guarantee);
    let mut text = lines(1_200, 0);
    produce(&client, &input, &text).await;

    // First start: nothing to restore.
    let first = run_once(
        &client,
        (&input, &output),
        &config,
        Materialized::named("counts"),
        &text,
    )
    .await;
    assert_eq!(first.len(), 2, "one restoration per count task: {first:?}");
    assert!(
        first.iter().all(|e| e.records == 0 && e.from_offset == 0),
        "{first:?}"
    );
    // After a clean close every count task has a checkpoint at its changelog's end.
    let cps = checkpoints(&config);
    let count_tasks: Vec<_> = cps
        .iter()
        .filter(|(_, t)| t.contains("counts-changelog"))
        .collect();
    assert_eq!(count_tasks.len(), 2, "checkpoints: {cps:?}");

    // Second start over more input: the persistent store replays nothing (the checkpoint
    // is at the changelog's end) and still counts on from where it was.
    let more = lines(800, 1_200);
    produce(&client, &input, &more).await;
    text.extend(more);
    let second = run_once(
        &client,
        (&input, &output),
        &config,
        Materialized::named("counts"),
        &text,
    )
    .await;
    assert_eq!(second.len(), 2, "{second:?}");
    for e in &second {
        assert_eq!(e.records, 0, "restored from the checkpoint on: {e:?}");
        // From the checkpoint: the offset after the store's last write (under exactly-once
        // the transaction's commit marker follows it).
        assert!(
            e.from_offset > 0 && e.to_offset - e.from_offset <= 1,
            "{e:?}"
        );
    }

    // The same application with its store in memory (same changelog) replays the whole
    // changelog at start: more records than there are keys, from offset 0.
    let more = lines(300, 2_000);
    produce(&client, &input, &more).await;
    text.extend(more);
    let third = run_once(
        &client,
        (&input, &output),
        &config,
        Materialized::named("counts").in_memory(),
        &text,
    )
    .await;
    assert_eq!(third.len(), 2, "{third:?}");
    let replayed: u64 = third.iter().map(|e| e.records).sum();
    assert!(third.iter().all(|e| e.from_offset == 0), "{third:?}");
    assert!(
        replayed as usize > reference(&text).len(),
        "an in-memory store replays every changelog record ({replayed}), more than the {} keys",
        reference(&text).len()
    );
    let _ = std::fs::remove_dir_all(&config.state_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_restarts_restore_from_the_checkpoint() {
    restarts_restore_from_the_checkpoint(ProcessingGuarantee::AtLeastOnce, "ckpt-alos").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_restarts_restore_from_the_checkpoint() {
    restarts_restore_from_the_checkpoint(ProcessingGuarantee::ExactlyOnceV2, "ckpt-eos").await;
}

/// Under exactly-once, a running task has no checkpoint (a crash then wipes its stores);
/// under at-least-once the checkpoint follows the commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_while_running_follow_the_guarantee() {
    let Some(bootstrap) = bootstrap("checkpoints_while_running") else {
        return;
    };
    for (guarantee, prefix) in [
        (ProcessingGuarantee::AtLeastOnce, "run-alos"),
        (ProcessingGuarantee::ExactlyOnceV2, "run-eos"),
    ] {
        let (client, input, output, app) = setup(&bootstrap, prefix).await;
        let mut config = config(&app, &bootstrap).with_guarantee(guarantee);
        config.commit_interval_ms = 200;
        let text = lines(500, 0);
        produce(&client, &input, &text).await;
        let mut streams =
            KafkaStreams::new(word_count(&input, &output).build().unwrap(), config.clone());
        streams.start();
        streams
            .wait_for(StreamsState::Running, Duration::from_secs(30))
            .await
            .unwrap();
        let want = reference(&text);
        assert_eq!(
            await_counts_with(&client, &output, &want, IsolationLevel::ReadCommitted).await,
            want
        );
        // A few commit intervals.
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let running = checkpoints(&config);
        let counted = running
            .iter()
            .filter(|(_, t)| t.contains("counts-changelog"))
            .count();
        match guarantee {
            ProcessingGuarantee::AtLeastOnce => assert_eq!(counted, 2, "{running:?}"),
            ProcessingGuarantee::ExactlyOnceV2 => assert_eq!(counted, 0, "{running:?}"),
        }
        streams.close().await.unwrap();
        let closed = checkpoints(&config);
        let counted = closed
            .iter()
            .filter(|(_, t)| t.contains("counts-changelog"))
            .count();
        assert_eq!(counted, 2, "after a clean close: {closed:?}");
        let _ = std::fs::remove_dir_all(&config.state_dir);
    }
}
