//! Where each assigned partition is, pausing and resuming, and fetching.
//!
//! The fetching itself is the group-less [`Consumer`]'s, holding exactly the assigned
//! partitions that are not paused. Pausing and resuming only note the change (they are not
//! async); the next poll rebuilds the fetcher with the partitions and positions it should
//! have, which costs a Metadata cache lookup per topic and happens only after a change.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{GroupConsumer, Step};
use crate::consumer::{Consumer, SeekTo};
use crate::error::{Error, Result};
use crate::offsets::list_offsets;
use crate::record::{ConsumerRecord, TopicPartition};

impl GroupConsumer {
    /// The partitions of the current generation (paused ones included), sorted. Empty
    /// outside a generation, and from Revoked until the next Assigned.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assigned.clone()
    }

    /// Next offset to be returned for `tp`, if assigned and known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        if let Some(position) = self.paused.get(tp).or_else(|| self.resumed.get(tp)) {
            return *position;
        }
        self.fetcher.position(&tp.topic, tp.partition)
    }

    /// Moves an assigned partition's position (paused or not).
    pub async fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        if let Some(position) = self.paused.get_mut(tp) {
            *position = Some(offset);
            return Ok(());
        }
        if let Some(position) = self.resumed.get_mut(tp) {
            *position = Some(offset);
            return Ok(());
        }
        if self.assigned.binary_search(tp).is_err() {
            return Err(Error::Config(format!(
                "cannot seek {tp}: it is not assigned to this member"
            )));
        }
        self.fetcher
            .seek(&tp.topic, tp.partition, SeekTo::Offset(offset))
            .await
    }

    /// Stops fetching `tps` (those assigned) until resumed; their positions stay. A rebalance
    /// forgets pauses, as Kafka's consumer does.
    pub fn pause(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            if self.assigned.binary_search(tp).is_err() || self.paused.contains_key(tp) {
                continue;
            }
            let position = match self.resumed.remove(tp) {
                Some(position) => position,
                None => self.fetcher.position(&tp.topic, tp.partition),
            };
            self.paused.insert(tp.clone(), position);
            self.fetcher_stale = true;
        }
    }

    /// Fetches paused `tps` again from their positions.
    pub fn resume(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            if let Some(position) = self.paused.remove(tp) {
                self.resumed.insert(tp.clone(), position);
                self.fetcher_stale = true;
            }
        }
    }

    /// The paused partitions, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.paused.keys().cloned().collect()
    }

    /// Positions of a new generation's partitions: the committed offset, else
    /// `auto.offset.reset`. Then a fetcher for all of them.
    pub(super) async fn look_up_positions(&mut self) -> Result<()> {
        let coordinator = self.coordinator().await?;
        let committed = match coordinator
            .committed(&self.id.group_id, &self.assigned)
            .await
        {
            Ok(committed) => committed,
            Err(e) => {
                if super::membership::next_step(&e) == Step::FindCoordinator {
                    self.coordinator = None;
                }
                return Err(e);
            }
        };
        let mut positions: BTreeMap<TopicPartition, Option<i64>> = BTreeMap::new();
        let mut missing: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (tp, offset) in committed {
            match offset {
                Some(offset) => {
                    positions.insert(tp, Some(offset));
                }
                None => missing.entry(tp.topic).or_default().push(tp.partition),
            }
        }
        let spec = self.config.auto_offset_reset.spec();
        for (topic, partitions) in missing {
            let found = list_offsets(&self.client, &topic, &partitions, spec).await?;
            for p in partitions {
                let Some(offset) = found.get(&p).and_then(|o| o.offset) else {
                    return Err(Error::Decode {
                        what: "ListOffsets response".into(),
                        detail: format!("no {spec:?} offset for {topic}-{p}"),
                    });
                };
                positions.insert(TopicPartition::new(&topic, p), Some(offset));
            }
        }
        tracing::debug!(group = %self.id.group_id, ?positions, "starting positions");
        // Partitions paused before Assigned (a poll in between failed) stay out.
        for (tp, paused) in self.paused.iter_mut() {
            if let Some(position) = positions.remove(tp) {
                *paused = paused.or(position);
            }
        }
        for (tp, position) in std::mem::take(&mut self.resumed) {
            if position.is_some() {
                positions.insert(tp, position); // sought while paused
            }
        }
        self.fetcher = self.new_fetcher(&positions).await?;
        self.fetcher_stale = false;
        Ok(())
    }

    /// A fetcher holding `positions`' partitions, at those positions.
    async fn new_fetcher(
        &self,
        positions: &BTreeMap<TopicPartition, Option<i64>>,
    ) -> Result<Consumer> {
        let mut fetcher = Consumer::new(self.client.clone(), self.config.fetch_config());
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in positions.keys() {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        for (topic, partitions) in &by_topic {
            fetcher.assign(topic, Some(partitions)).await?;
        }
        for (tp, position) in positions {
            if let Some(offset) = position {
                fetcher
                    .seek(&tp.topic, tp.partition, SeekTo::Offset(*offset))
                    .await?;
            }
        }
        Ok(fetcher)
    }

    /// Brings the fetcher in line with pauses and resumes since it was built.
    async fn refresh_fetcher(&mut self) -> Result<()> {
        if !self.fetcher_stale {
            return Ok(());
        }
        let mut positions: BTreeMap<TopicPartition, Option<i64>> = self
            .fetcher
            .assignment()
            .into_iter()
            .map(|(topic, partition)| {
                let position = self.fetcher.position(&topic, partition);
                (TopicPartition { topic, partition }, position)
            })
            .filter(|(tp, _)| !self.paused.contains_key(tp))
            .collect();
        positions.extend(self.resumed.clone());
        self.fetcher = self.new_fetcher(&positions).await?;
        self.resumed.clear();
        self.fetcher_stale = false;
        Ok(())
    }

    /// One round of fetches. With nothing to fetch, waits `fetch.max.wait.ms` (or until the
    /// heartbeat reports something) so that a poll loop does not spin.
    pub(super) async fn fetch(&mut self) -> Result<Vec<ConsumerRecord>> {
        self.refresh_fetcher().await?;
        if self.fetcher.assignment().is_empty() {
            let wait = Duration::from_millis(self.config.consumer.fetch_max_wait_ms);
            tokio::select! {
                _ = self.shared.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            return Ok(Vec::new());
        }
        self.fetcher.poll().await
    }
}
