//! Who gets which partitions. The group leader runs the [`Assignor`] over every member's
//! subscription; the others only send their subscription and receive their share.
//! [`RangeAssignor`] is Kafka's default (`range`); [`check_assignment`] stops a faulty custom
//! assignor from handing one partition to two members.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::record::TopicPartition;

/// One member as the leader sees it in JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    pub topics: Vec<String>,
    /// What this member's [`Assignor::subscription_user_data`] returned.
    pub user_data: Bytes,
    /// Partitions the member owned in its last generation (empty with the eager protocol
    /// of this client, which gives everything up before rejoining; set by other clients).
    pub owned: Vec<TopicPartition>,
}

/// What one member gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberAssignment {
    pub partitions: Vec<TopicPartition>,
    /// Handed to the member with its partitions ([`super::GroupEvent::Assigned`]).
    pub user_data: Bytes,
}

/// Decides who gets which partitions; runs on the leader only. Every member of a group
/// must offer an assignor of the same name, or the broker refuses the join
/// (INCONSISTENT_GROUP_PROTOCOL).
pub trait Assignor: Send + Sync {
    /// The protocol name, e.g. `range`.
    fn name(&self) -> &str;

    /// Sent in this member's JoinGroup; the leader's assignor sees it in
    /// [`MemberSubscription::user_data`]. Asked before every join.
    fn subscription_user_data(&self) -> Bytes {
        Bytes::new()
    }

    /// The assignment of every member, by member id. `partition_counts` holds every
    /// subscribed topic that exists (from Metadata). A member left out gets nothing.
    fn assign(
        &self,
        members: &[MemberSubscription],
        partition_counts: &BTreeMap<String, i32>,
    ) -> Result<BTreeMap<String, MemberAssignment>>;
}

/// Kafka's `range` assignor: per topic, the subscribed members in order (static members
/// by instance id first, then the others by member id, as Java orders them) get
/// consecutive ranges of partitions; the first `partitions % members` get one more.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &str {
        "range"
    }

    fn assign(
        &self,
        members: &[MemberSubscription],
        partition_counts: &BTreeMap<String, i32>,
    ) -> Result<BTreeMap<String, MemberAssignment>> {
        let mut out: BTreeMap<String, MemberAssignment> = members
            .iter()
            .map(|m| (m.member_id.clone(), MemberAssignment::default()))
            .collect();
        let mut ordered: Vec<&MemberSubscription> = members.iter().collect();
        ordered.sort_by(|a, b| range_order(a).cmp(&range_order(b)));
        for (topic, &count) in partition_counts {
            let subscribed: Vec<&str> = ordered
                .iter()
                .filter(|m| m.topics.iter().any(|t| t == topic))
                .map(|m| m.member_id.as_str())
                .collect();
            if subscribed.is_empty() || count <= 0 {
                continue;
            }
            let members_n = subscribed.len() as i32;
            let (per_member, extra) = (count / members_n, count % members_n);
            for (i, member) in subscribed.into_iter().enumerate() {
                let i = i as i32;
                let start = per_member * i + i.min(extra);
                let len = per_member + i32::from(i < extra);
                let partitions = &mut out
                    .get_mut(member)
                    .expect("every member is in out")
                    .partitions;
                partitions.extend((start..start + len).map(|p| TopicPartition::new(topic, p)));
            }
        }
        Ok(out)
    }
}

/// Static members first, by instance id; then dynamic ones by member id.
fn range_order(m: &MemberSubscription) -> (bool, &str) {
    match &m.group_instance_id {
        Some(instance) => (false, instance.as_str()),
        None => (true, m.member_id.as_str()),
    }
}

/// Checks an assignor's answer before it is sent: only members of the group, only
/// partitions that exist, none given twice.
pub fn check_assignment(
    assignor: &str,
    members: &[MemberSubscription],
    partition_counts: &BTreeMap<String, i32>,
    assignment: &BTreeMap<String, MemberAssignment>,
) -> Result<()> {
    let known: BTreeSet<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
    let mut seen: BTreeMap<&TopicPartition, &str> = BTreeMap::new();
    let fail = |detail: String| Err(Error::Config(format!("assignor {assignor:?} {detail}")));
    for (member, a) in assignment {
        if !known.contains(member.as_str()) {
            return fail(format!("assigned partitions to {member:?}, not a member"));
        }
        for tp in &a.partitions {
            let exists = partition_counts
                .get(&tp.topic)
                .is_some_and(|&n| (0..n).contains(&tp.partition));
            if !exists {
                return fail(format!("assigned {tp} to {member:?}; it does not exist"));
            }
            if let Some(other) = seen.insert(tp, member) {
                return fail(format!("assigned {tp} to both {other:?} and {member:?}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.to_owned(),
            group_instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            user_data: Bytes::new(),
            owned: Vec::new(),
        }
    }

    fn counts(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn partitions(a: &BTreeMap<String, MemberAssignment>, member: &str) -> Vec<String> {
        a[member]
            .partitions
            .iter()
            .map(|tp| tp.to_string())
            .collect()
    }

    #[test]
    fn splits_each_topic_in_ranges_first_members_get_the_extra() {
        let members = [
            member("c", &["t"]),
            member("a", &["t"]),
            member("b", &["t"]),
        ];
        let out = RangeAssignor
            .assign(&members, &counts(&[("t", 7)]))
            .unwrap();
        assert_eq!(partitions(&out, "a"), ["t-0", "t-1", "t-2"]);
        assert_eq!(partitions(&out, "b"), ["t-3", "t-4"]);
        assert_eq!(partitions(&out, "c"), ["t-5", "t-6"]);
        check_assignment("range", &members, &counts(&[("t", 7)]), &out).unwrap();
    }

    #[test]
    fn six_partitions_two_members_is_three_each() {
        let members = [member("m1", &["t"]), member("m2", &["t"])];
        let out = RangeAssignor
            .assign(&members, &counts(&[("t", 6)]))
            .unwrap();
        assert_eq!(partitions(&out, "m1"), ["t-0", "t-1", "t-2"]);
        assert_eq!(partitions(&out, "m2"), ["t-3", "t-4", "t-5"]);
    }

    #[test]
    fn topics_are_split_independently_like_kafka() {
        // Kafka's known range skew: with two 3-partition topics, the first member gets
        // two partitions of each.
        let members = [member("a", &["x", "y"]), member("b", &["x", "y"])];
        let out = RangeAssignor
            .assign(&members, &counts(&[("x", 3), ("y", 3)]))
            .unwrap();
        assert_eq!(partitions(&out, "a"), ["x-0", "x-1", "y-0", "y-1"]);
        assert_eq!(partitions(&out, "b"), ["x-2", "y-2"]);
    }

    #[test]
    fn only_subscribers_of_a_topic_share_it() {
        let members = [member("a", &["x"]), member("b", &["x", "y"])];
        let out = RangeAssignor
            .assign(&members, &counts(&[("x", 2), ("y", 2)]))
            .unwrap();
        assert_eq!(partitions(&out, "a"), ["x-0"]);
        assert_eq!(partitions(&out, "b"), ["x-1", "y-0", "y-1"]);
    }

    #[test]
    fn more_members_than_partitions_leaves_some_empty() {
        let members = [
            member("a", &["t"]),
            member("b", &["t"]),
            member("c", &["t"]),
        ];
        let out = RangeAssignor
            .assign(&members, &counts(&[("t", 2)]))
            .unwrap();
        assert_eq!(partitions(&out, "a"), ["t-0"]);
        assert_eq!(partitions(&out, "b"), ["t-1"]);
        assert!(out["c"].partitions.is_empty());
    }

    #[test]
    fn static_members_come_first_by_instance_id() {
        let mut s1 = member("zzz", &["t"]);
        s1.group_instance_id = Some("i-1".into());
        let mut s0 = member("yyy", &["t"]);
        s0.group_instance_id = Some("i-0".into());
        let members = [member("aaa", &["t"]), s1, s0];
        let out = RangeAssignor
            .assign(&members, &counts(&[("t", 3)]))
            .unwrap();
        assert_eq!(partitions(&out, "yyy"), ["t-0"]);
        assert_eq!(partitions(&out, "zzz"), ["t-1"]);
        assert_eq!(partitions(&out, "aaa"), ["t-2"]);
    }

    #[test]
    fn unknown_topics_are_left_out() {
        let members = [member("a", &["gone", "t"])];
        let out = RangeAssignor
            .assign(&members, &counts(&[("t", 1)]))
            .unwrap();
        assert_eq!(partitions(&out, "a"), ["t-0"]);
    }

    #[test]
    fn faulty_assignments_are_caught() {
        let members = [member("a", &["t"]), member("b", &["t"])];
        let n = counts(&[("t", 2)]);
        let give = |list: &[(&str, i32)]| MemberAssignment {
            partitions: list
                .iter()
                .map(|(t, p)| TopicPartition::new(t, *p))
                .collect(),
            user_data: Bytes::new(),
        };
        let twice: BTreeMap<String, MemberAssignment> = [
            ("a".to_string(), give(&[("t", 0)])),
            ("b".to_string(), give(&[("t", 0)])),
        ]
        .into();
        assert!(check_assignment("x", &members, &n, &twice).is_err());
        let stranger: BTreeMap<String, MemberAssignment> =
            [("zed".to_string(), give(&[("t", 0)]))].into();
        assert!(check_assignment("x", &members, &n, &stranger).is_err());
        let missing: BTreeMap<String, MemberAssignment> =
            [("a".to_string(), give(&[("t", 2)]))].into();
        assert!(check_assignment("x", &members, &n, &missing).is_err());
    }
}
