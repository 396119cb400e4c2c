//! The streams partition assignor: it assigns tasks, not partitions. A task's partitions
//! (partition p of every source topic of its sub-topology) always go to one member, so
//! co-partitioned topics are read together. Tasks go back to the members that had them
//! (stickiness lets them keep warm state), the rest to the least loaded.
//!
//! With `num.standby.replicas` = n, each task also gets up to n standby replicas on other
//! members (those that had it, active or standby, first; then the least loaded): they keep
//! a copy of its stores warm from the changelogs, so a takeover restores little.
//!
//! Subscription user data: the member's previous active and standby tasks and its
//! `application.server`. Assignment user data: which `application.server` holds which tasks
//! as active and as standby (for interactive query metadata), and the member's own standby
//! tasks. Both JSON.

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
    #[serde(default)]
    prev_standby_tasks: Vec<String>,
    host: Option<String>,
}

/// Assignment user data: tasks by host.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HostMap {
    pub tasks_by_host: BTreeMap<String, Vec<String>>,
    /// Standby replicas by host.
    #[serde(default)]
    pub standby_by_host: BTreeMap<String, Vec<String>>,
    /// Tasks (input partitions) per sub-topology id, for all members: a key's partition is
    /// computed over this count even when some members give no `application.server`.
    /// String keys: the map is flattened into `AssignmentInfo`, and serde's flatten cannot
    /// read integer map keys back.
    #[serde(default)]
    pub partitions_by_subtopology: BTreeMap<String, i32>,
}

/// One member's assignment user data: the host map, and its own standby tasks.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AssignmentInfo {
    #[serde(flatten)]
    pub hosts: HostMap,
    #[serde(default)]
    pub standby_tasks: Vec<String>,
}

impl AssignmentInfo {
    /// Parses a member's assignment user data (empty or unreadable: nothing).
    pub fn parse(user_data: &[u8]) -> AssignmentInfo {
        serde_json::from_slice(user_data).unwrap_or_default()
    }

    pub fn standby_tasks(&self) -> Vec<TaskId> {
        self.standby_tasks
            .iter()
            .filter_map(|t| t.parse().ok())
            .collect()
    }
}

pub struct StreamsAssignor {
    pub topology: Arc<Topology>,
    pub application_id: String,
    pub host: Option<String>,
    pub prev_tasks: Arc<Mutex<Vec<TaskId>>>,
    pub prev_standby_tasks: Arc<Mutex<Vec<TaskId>>>,
    /// `num.standby.replicas`
    pub num_standby_replicas: u32,
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
        let standby = self
            .prev_standby_tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let info = SubscriptionInfo {
            prev_tasks: prev.iter().map(|t| t.to_string()).collect(),
            prev_standby_tasks: standby.iter().map(|t| t.to_string()).collect(),
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
        // Standbys only for tasks with stores: a stateless task has nothing to keep warm.
        let stateful: Vec<TaskId> = tasks
            .iter()
            .filter(|t| {
                !self.topology.subtopologies()[t.subtopology]
                    .stores
                    .is_empty()
            })
            .copied()
            .collect();
        let standbys = assign_standbys(&stateful, &infos, &owned, self.num_standby_replicas);
        let mut hosts = HostMap::default();
        for t in &tasks {
            let n = hosts
                .partitions_by_subtopology
                .entry(t.subtopology.to_string())
                .or_default();
            *n = (*n).max(t.partition + 1);
        }
        for (i, info) in infos.iter().enumerate() {
            if let Some(h) = &info.host {
                let list = hosts.tasks_by_host.entry(h.clone()).or_default();
                list.extend(owned[i].iter().map(|t| t.to_string()));
                if !standbys[i].is_empty() {
                    let list = hosts.standby_by_host.entry(h.clone()).or_default();
                    list.extend(standbys[i].iter().map(|t| t.to_string()));
                }
            }
        }
        Ok(ids
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let partitions = owned[i]
                    .iter()
                    .flat_map(|t| self.partitions_of(*t, partition_counts))
                    .collect();
                let info = AssignmentInfo {
                    hosts: hosts.clone(),
                    standby_tasks: standbys[i].iter().map(|t| t.to_string()).collect(),
                };
                let user_data = Bytes::from(serde_json::to_vec(&info).unwrap_or_default());
                (
                    m.member_id.clone(),
                    MemberAssignment {
                        partitions,
                        user_data,
                    },
                )
            })
            .collect())
    }
}

/// Tasks per member (in `infos` order): each member keeps its previous tasks up to an
/// even share, overall and of each sub-topology; the rest go to the least loaded (then the
/// one with fewest tasks of that sub-topology), lowest index first. The per-sub-topology
/// share spreads a stateful sub-topology's tasks (and so its keys, for interactive
/// queries, and its work) over the members even when one of them had every task before.
fn assign_tasks(tasks: &[TaskId], infos: &[SubscriptionInfo]) -> Vec<BTreeSet<TaskId>> {
    let mut out = vec![BTreeSet::new(); infos.len()];
    if infos.is_empty() {
        return out;
    }
    let cap = tasks.len().div_ceil(infos.len());
    let mut per_sub: BTreeMap<usize, usize> = BTreeMap::new();
    for t in tasks {
        *per_sub.entry(t.subtopology).or_default() += 1;
    }
    let sub_cap = |s: usize| per_sub.get(&s).copied().unwrap_or(0).div_ceil(infos.len());
    let of_sub =
        |set: &BTreeSet<TaskId>, s: usize| set.iter().filter(|t| t.subtopology == s).count();
    let mut left: BTreeSet<TaskId> = tasks.iter().copied().collect();
    for (i, info) in infos.iter().enumerate() {
        for t in &info.prev_tasks {
            let Ok(t) = t.parse::<TaskId>() else { continue };
            let room =
                out[i].len() < cap && of_sub(&out[i], t.subtopology) < sub_cap(t.subtopology);
            if room && left.remove(&t) {
                out[i].insert(t);
            }
        }
    }
    for t in left {
        let i = (0..out.len())
            .min_by_key(|&i| (out[i].len(), of_sub(&out[i], t.subtopology), i))
            .expect("members");
        out[i].insert(t);
    }
    out
}

/// Standby tasks per member (in `infos` order): up to `replicas` per task, never on the
/// member running it nor twice on one member; members that had the task (active or standby)
/// first, then the fewest standbys, lowest index first.
fn assign_standbys(
    tasks: &[TaskId],
    infos: &[SubscriptionInfo],
    owned: &[BTreeSet<TaskId>],
    replicas: u32,
) -> Vec<BTreeSet<TaskId>> {
    let mut out = vec![BTreeSet::new(); infos.len()];
    let had: Vec<BTreeSet<TaskId>> = infos
        .iter()
        .map(|i| {
            i.prev_tasks
                .iter()
                .chain(&i.prev_standby_tasks)
                .filter_map(|t| t.parse().ok())
                .collect()
        })
        .collect();
    for t in tasks {
        for _ in 0..replicas {
            let candidate = (0..infos.len())
                .filter(|&i| !owned[i].contains(t) && !out[i].contains(t))
                .min_by_key(|&i| (!had[i].contains(t), out[i].len(), i));
            match candidate {
                Some(i) => {
                    out[i].insert(*t);
                }
                None => break,
            }
        }
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
            ..SubscriptionInfo::default()
        };
        let b = SubscriptionInfo::default();
        let c = SubscriptionInfo {
            prev_tasks: vec!["0_5".into(), "junk".into()],
            ..SubscriptionInfo::default()
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

    #[test]
    fn assignment_info_round_trips_with_partition_counts() {
        let mut info = AssignmentInfo::default();
        info.hosts
            .tasks_by_host
            .insert("h:1".into(), vec!["1_0".into()]);
        info.hosts.partitions_by_subtopology.insert("1".into(), 4);
        info.standby_tasks.push("0_1".into());
        let bytes = serde_json::to_vec(&info).unwrap();
        assert_eq!(AssignmentInfo::parse(&bytes), info);
        // What a leader without the counts sends still reads.
        let old = br#"{"tasks_by_host":{"h:1":["1_0"]},"standby_tasks":[]}"#;
        assert_eq!(AssignmentInfo::parse(old).hosts.tasks_by_host.len(), 1);
    }

    #[test]
    fn each_sub_topology_spreads_even_when_one_member_had_every_task() {
        let tasks: Vec<TaskId> = (0..2).flat_map(|s| (0..4).map(move |p| t(s, p))).collect();
        let had_all = SubscriptionInfo {
            prev_tasks: tasks.iter().map(|t| t.to_string()).collect(),
            ..SubscriptionInfo::default()
        };
        let out = assign_tasks(&tasks, &[had_all, SubscriptionInfo::default()]);
        for (i, member) in out.iter().enumerate() {
            for s in 0..2 {
                let n = member.iter().filter(|t| t.subtopology == s).count();
                assert_eq!(n, 2, "member {i}, sub-topology {s}: {member:?}");
            }
        }
        assert!(
            out[0].contains(&t(0, 0)) && out[0].contains(&t(1, 0)),
            "kept its own"
        );
    }

    #[test]
    fn standbys_go_to_other_members_and_prefer_those_that_had_the_task() {
        let tasks: Vec<TaskId> = (0..4).map(|p| t(0, p)).collect();
        let infos = vec![
            SubscriptionInfo::default(),
            SubscriptionInfo {
                prev_standby_tasks: vec!["0_0".into()],
                ..SubscriptionInfo::default()
            },
            SubscriptionInfo::default(),
        ];
        let owned = assign_tasks(&tasks, &infos);
        let standbys = assign_standbys(&tasks, &infos, &owned, 1);
        for task in &tasks {
            let active: Vec<usize> = (0..3).filter(|&i| owned[i].contains(task)).collect();
            let standby: Vec<usize> = (0..3).filter(|&i| standbys[i].contains(task)).collect();
            assert_eq!(active.len(), 1);
            assert_eq!(standby.len(), 1, "{task}: one standby");
            assert_ne!(active, standby, "{task}: a standby is never the active");
        }
        if !owned[1].contains(&t(0, 0)) {
            assert!(standbys[1].contains(&t(0, 0)), "member 1 had 0_0's state");
        }
        // More replicas than other members: as many as there are.
        let two = assign_standbys(&tasks, &infos[..2], &assign_tasks(&tasks, &infos[..2]), 3);
        assert_eq!(two.iter().map(BTreeSet::len).sum::<usize>(), 4);
    }
}
