//! The streams partition assignor: it assigns tasks, not partitions. A task's partitions
//! (partition p of every source topic of its sub-topology) always go to one member, so
//! co-partitioned topics are read together. Tasks go back to the members that had them
//! (stickiness lets them keep warm state), the rest to the least loaded.
//!
//! Subscription user data: the member's previous tasks and its `application.server`.
//! Assignment user data: which `application.server` holds which tasks (for interactive
//! query metadata). Both JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use eddy_client::group_consumer::{Assignor, MemberAssignment, MemberSubscription};
use eddy_client::TopicPartition;
use serde::{Deserialize, Serialize};

use crate::task::TaskId;
use crate::topology::Topology;

pub const PROTOCOL: &str = "eddy-streams";

#[derive(Debug, Default, Serialize, Deserialize)]
struct SubscriptionInfo {
    prev_tasks: Vec<String>,
    host: Option<String>,
}

/// Assignment user data: tasks by host.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HostMap {
    pub tasks_by_host: BTreeMap<String, Vec<String>>,
}

pub struct StreamsAssignor {
    pub topology: Arc<Topology>,
    pub application_id: String,
    pub host: Option<String>,
    pub prev_tasks: Arc<Mutex<Vec<TaskId>>>,
}

impl StreamsAssignor {
    /// Tasks of each sub-topology given source partition counts: as many as its widest
    /// source topic.
    pub fn tasks(&self, counts: &BTreeMap<String, i32>) -> Vec<TaskId> {
        let mut out = Vec::new();
        for s in self.topology.subtopologies() {
            let n = s
                .source_topics
                .iter()
                .filter_map(|t| counts.get(&t.resolve(&self.application_id)))
                .copied()
                .max()
                .unwrap_or(0);
            out.extend((0..n).map(|partition| TaskId {
                subtopology: s.id,
                partition,
            }));
        }
        out
    }

    /// The partitions task `t` reads.
    pub fn partitions_of(&self, t: TaskId, counts: &BTreeMap<String, i32>) -> Vec<TopicPartition> {
        self.topology.subtopologies()[t.subtopology]
            .source_topics
            .iter()
            .map(|n| n.resolve(&self.application_id))
            .filter(|n| counts.get(n).is_some_and(|c| t.partition < *c))
            .map(|n| TopicPartition::new(&n, t.partition))
            .collect()
    }
}

impl Assignor for StreamsAssignor {
    fn name(&self) -> &str {
        PROTOCOL
    }

    fn subscription_user_data(&self) -> Bytes {
        let prev = self.prev_tasks.lock().unwrap_or_else(|p| p.into_inner());
        let info = SubscriptionInfo {
            prev_tasks: prev.iter().map(|t| t.to_string()).collect(),
            host: self.host.clone(),
        };
        Bytes::from(serde_json::to_vec(&info).unwrap_or_default())
    }

    fn assign(
        &self,
        members: &[MemberSubscription],
        partition_counts: &BTreeMap<String, i32>,
    ) -> eddy_client::Result<BTreeMap<String, MemberAssignment>> {
        let tasks = self.tasks(partition_counts);
        let mut ids: Vec<&MemberSubscription> = members.iter().collect();
        ids.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        let infos: Vec<SubscriptionInfo> = ids
            .iter()
            .map(|m| serde_json::from_slice(&m.user_data).unwrap_or_default())
            .collect();
        let owned = assign_tasks(&tasks, &infos);
        let mut hosts = HostMap::default();
        for (i, info) in infos.iter().enumerate() {
            if let Some(h) = &info.host {
                let list = hosts.tasks_by_host.entry(h.clone()).or_default();
                list.extend(owned[i].iter().map(|t| t.to_string()));
            }
        }
        let user_data = Bytes::from(serde_json::to_vec(&hosts).unwrap_or_default());
        Ok(ids
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let partitions = owned[i]
                    .iter()
                    .flat_map(|t| self.partitions_of(*t, partition_counts))
                    .collect();
                (
                    m.member_id.clone(),
                    MemberAssignment {
                        partitions,
                        user_data: user_data.clone(),
                    },
                )
            })
            .collect())
    }
}

/// Tasks per member (in `infos` order): each member keeps its previous tasks up to an
/// even share; the rest go to the least loaded, lowest index first.
fn assign_tasks(tasks: &[TaskId], infos: &[SubscriptionInfo]) -> Vec<BTreeSet<TaskId>> {
    let mut out = vec![BTreeSet::new(); infos.len()];
    if infos.is_empty() {
        return out;
    }
    let cap = tasks.len().div_ceil(infos.len());
    let mut left: BTreeSet<TaskId> = tasks.iter().copied().collect();
    for (i, info) in infos.iter().enumerate() {
        for t in &info.prev_tasks {
            let Ok(t) = t.parse::<TaskId>() else { continue };
            if out[i].len() < cap && left.remove(&t) {
                out[i].insert(t);
            }
        }
    }
    for t in left {
        let i = (0..out.len())
            .min_by_key(|&i| (out[i].len(), i))
            .expect("members");
        out[i].insert(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: usize, p: i32) -> TaskId {
        TaskId {
            subtopology: s,
            partition: p,
        }
    }

    #[test]
    fn tasks_stay_with_their_owner_and_the_rest_spread_evenly() {
        let tasks: Vec<TaskId> = (0..6).map(|p| t(0, p)).collect();
        let a = SubscriptionInfo {
            prev_tasks: vec!["0_0".into(), "0_1".into(), "0_2".into(), "0_3".into()],
            host: None,
        };
        let b = SubscriptionInfo::default();
        let c = SubscriptionInfo {
            prev_tasks: vec!["0_5".into(), "junk".into()],
            host: None,
        };
        let out = assign_tasks(&tasks, &[a, b, c]);
        assert_eq!(out[0], [t(0, 0), t(0, 1)].into());
        assert!(out[2].contains(&t(0, 5)));
        assert_eq!(
            out.iter().map(BTreeSet::len).collect::<Vec<_>>(),
            vec![2, 2, 2]
        );
        let all: BTreeSet<TaskId> = out.into_iter().flatten().collect();
        assert_eq!(all.len(), 6);
    }
}
