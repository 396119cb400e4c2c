//! Global tables at run time (Kafka's global stream thread): before the stream thread
//! processes anything, every partition of every global table's topic is read from the
//! start to its end into the table's store; then a background task goes on reading, so
//! later writes reach the store. Global stores are in memory and rebuilt at each start.

use std::collections::HashMap;

use eddy_client::{Client, ConsumerConfig, IsolationLevel, OffsetSpec, SeekTo};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::state::StoreHandle;
use crate::topology::Topology;

pub(super) struct GlobalUpdater {
    stop: watch::Sender<bool>,
    handle: Option<JoinHandle<()>>,
}

impl GlobalUpdater {
    /// Fills the global stores (`stores`, from `StoreHandle::globals`) up to their topics'
    /// ends, then keeps them current in the background.
    pub async fn start(
        client: &Client,
        topology: &Topology,
        stores: &HashMap<String, StoreHandle>,
        read_committed: bool,
    ) -> Result<GlobalUpdater> {
        let (stop, stopped) = watch::channel(false);
        if stores.is_empty() {
            return Ok(GlobalUpdater { stop, handle: None });
        }
        let isolation = if read_committed {
            IsolationLevel::ReadCommitted
        } else {
            IsolationLevel::ReadUncommitted
        };
        let config = ConsumerConfig {
            auto_offset_reset: Some(OffsetSpec::Earliest),
            fetch_max_wait_ms: 200,
            isolation_level: isolation,
            ..ConsumerConfig::default()
        };
        let mut consumer = eddy_client::Consumer::new(client.clone(), config);
        // Topic → the stores it feeds.
        let mut feeds: HashMap<String, Vec<StoreHandle>> = HashMap::new();
        for (name, g) in topology.global_stores() {
            if let Some(h) = stores.get(name) {
                feeds.entry(g.topic.clone()).or_default().push(h.clone());
            }
        }
        let mut ends = Vec::new();
        for topic in feeds.keys() {
            let partitions = consumer.assign(topic, None).await?;
            let listed = eddy_client::offsets::list_offsets_with_isolation(
                client,
                topic,
                &partitions,
                OffsetSpec::Latest,
                isolation,
            )
            .await?;
            for p in partitions {
                consumer.seek(topic, p, SeekTo::Earliest).await?;
                let end = listed.get(&p).and_then(|o| o.offset).unwrap_or(0);
                ends.push((topic.clone(), p, end));
            }
        }
        // Bootstrap: to the listed ends and to the ends the fetches report.
        let mut records = 0u64;
        loop {
            for r in consumer.poll().await? {
                apply(&feeds, &r)?;
                records += 1;
            }
            let reached = ends
                .iter()
                .all(|(t, p, end)| consumer.position(t, *p).unwrap_or(0) >= *end);
            if reached && consumer.at_end() {
                break;
            }
        }
        tracing::info!(stores = ?stores.keys().collect::<Vec<_>>(), records, "global stores bootstrapped");
        let handle = tokio::spawn(async move {
            // Not a select on the stop signal: a poll cancelled halfway could lose records.
            while !*stopped.borrow() {
                let polled = match consumer.poll().await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "global store update failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        continue;
                    }
                };
                for r in polled {
                    if let Err(e) = apply(&feeds, &r) {
                        tracing::warn!(topic = %r.topic, offset = r.offset, error = %e, "a global table record could not be applied; skipped");
                    }
                }
            }
        });
        Ok(GlobalUpdater {
            stop,
            handle: Some(handle),
        })
    }

    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for GlobalUpdater {
    /// Also when the stream thread fails: the background task ends after its current poll.
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

fn apply(feeds: &HashMap<String, Vec<StoreHandle>>, r: &eddy_client::ConsumerRecord) -> Result<()> {
    for h in feeds.get(&r.topic).into_iter().flatten() {
        h.apply_global(
            r.key.as_deref().unwrap_or_default(),
            r.value.as_deref(),
            r.timestamp_ms,
        )?;
    }
    Ok(())
}
