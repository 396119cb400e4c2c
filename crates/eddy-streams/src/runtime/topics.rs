//! Internal topics: repartition topics and changelogs, created at start with the partition
//! counts the topology needs (Kafka Streams' InternalTopicManager).

use std::collections::BTreeMap;

use eddy_client::{Admin, Client, KafkaCode, NewTopic};

use crate::error::{Result, StreamsError};
use crate::topology::{TopicName, Topology};

/// Partition count of every source topic, internal ones included.
pub async fn prepare(
    client: &Client,
    topology: &Topology,
    application_id: &str,
) -> Result<BTreeMap<String, i32>> {
    let mut counts = BTreeMap::new();
    let internal: BTreeMap<&TopicName, &crate::topology::InternalTopic> = topology
        .internal_topics()
        .iter()
        .map(|t| (&t.name, t))
        .collect();
    for s in topology.subtopologies() {
        for t in &s.source_topics {
            if let TopicName::External(name) = t {
                let meta = client.topic(name).await.map_err(|e| {
                    StreamsError::Config(format!(
                        "source topic {name:?} is missing ({e}); create it before starting the application"
                    ))
                })?;
                counts.insert(name.clone(), meta.partitions.len() as i32);
            }
        }
    }
    // Sub-topology widths, then repartition topics as wide as their writers, until stable.
    let width = |counts: &BTreeMap<String, i32>, sub: usize| {
        topology.subtopologies()[sub]
            .source_topics
            .iter()
            .filter_map(|t| counts.get(&t.resolve(application_id)).copied())
            .max()
    };
    // A repartition topic read beside external topics (a join's side repartitioned to
    // meet the other) takes their partition count, so that equal keys meet in one task
    // (Kafka's co-partitioning enforcer).
    let mut copartitioned: BTreeMap<String, i32> = BTreeMap::new();
    for s in topology.subtopologies() {
        let external = s
            .source_topics
            .iter()
            .filter_map(|t| match t {
                TopicName::External(n) => counts.get(n).copied(),
                _ => None,
            })
            .max();
        let Some(n) = external else { continue };
        for t in &s.source_topics {
            if !matches!(t, TopicName::External(_)) {
                copartitioned.insert(t.resolve(application_id), n);
            }
        }
    }
    for _ in 0..=topology.subtopologies().len() {
        for t in internal.values().filter(|t| !t.compacted) {
            let name = t.name.resolve(application_id);
            let n = t
                .partitions
                .or_else(|| copartitioned.get(&name).copied())
                .or_else(|| width(&counts, t.subtopology));
            if let Some(n) = n {
                counts.insert(name, n);
            }
        }
    }
    check_copartitioning(topology, application_id, &counts)?;
    let admin = Admin::new(client.clone());
    for t in internal.values() {
        let name = t.name.resolve(application_id);
        let partitions = if t.compacted {
            width(&counts, t.subtopology)
        } else {
            counts.get(&name).copied()
        };
        let Some(partitions) = partitions else {
            return Err(StreamsError::Config(format!(
                "cannot size internal topic {name:?}"
            )));
        };
        let policy = if t.compacted { "compact" } else { "delete" };
        let topic = NewTopic::new(&name, partitions).with_config("cleanup.policy", policy);
        match admin.create_topics(&[topic]).await {
            Ok(()) => tracing::info!(topic = %name, partitions, "created internal topic"),
            Err(e) if e.kafka_code() == Some(KafkaCode::TOPIC_ALREADY_EXISTS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(counts)
}

/// Topics read by one sub-topology should have equal partition counts (co-partitioning).
fn check_copartitioning(
    topology: &Topology,
    application_id: &str,
    counts: &BTreeMap<String, i32>,
) -> Result<()> {
    for s in topology.subtopologies() {
        let widths: BTreeMap<String, i32> = s
            .source_topics
            .iter()
            .map(|t| t.resolve(application_id))
            .filter_map(|t| counts.get(&t).map(|c| (t, *c)))
            .collect();
        let distinct: std::collections::BTreeSet<i32> = widths.values().copied().collect();
        if distinct.len() > 1 {
            // Fine for a merge; a join of these would miss matches (Kafka refuses joins of
            // topics that are not co-partitioned).
            tracing::warn!(
                ?widths,
                "topics read by one sub-topology have different partition counts"
            );
        }
    }
    Ok(())
}
