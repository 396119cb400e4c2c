//! Deleting groups and committed offsets on request (DeleteGroups,
//! OffsetDelete), with Kafka's rules: a group is deleted only while it has
//! no members, and an offset only while no member consumes its topic.
//!
//! Deletions are tombstones in `__consumer_offsets`, appended under the
//! groups lock like every other record (the log's order is the memory's
//! order), so a deleted group stays deleted across a restart.

use std::collections::{BTreeSet, HashMap};

use tokio::sync::oneshot;

use super::{codes, records, Group, GroupCoordinator, Record, State};
use crate::flusher::FlushResult;

/// Kafka's protocol type of consumer groups: their member metadata is a
/// `ConsumerProtocolSubscription`.
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// What an accepted OffsetDelete gives back.
pub struct OffsetsDeleted {
    /// One error code per requested partition, in request order.
    pub errors: Vec<i16>,
    /// Resolves once the tombstones are durable; None when none was written.
    pub durable: Option<oneshot::Receiver<FlushResult>>,
}

impl GroupCoordinator {
    /// DeleteGroups for one group: its offsets and metadata are tombstoned
    /// and it is forgotten. Only a group without members may go
    /// (NON_EMPTY_GROUP otherwise). The receiver, when there is one,
    /// resolves once the tombstones are durable: answer only then.
    pub fn delete_group(
        &self,
        group_id: &str,
    ) -> Result<Option<oneshot::Receiver<FlushResult>>, i16> {
        if group_id.is_empty() || group_id.len() > records::STRING_BYTES_MAX {
            return Err(codes::INVALID_GROUP_ID);
        }
        let mut groups = self.inner.groups.lock().expect("groups lock");
        // Lock order: `groups`, then the consumer-protocol groups.
        let mut consumer = self.inner.consumer();
        if consumer
            .groups
            .get(group_id)
            .is_some_and(|c| !c.members.is_empty())
        {
            return Err(codes::NON_EMPTY_GROUP);
        }
        let is_consumer_group = consumer.groups.contains_key(group_id);
        let mut batch: Vec<Record> = match groups.get(group_id) {
            None if !is_consumer_group => return Err(codes::GROUP_ID_NOT_FOUND),
            None => Vec::new(),
            Some(g) if g.state == State::Dead => return Err(codes::GROUP_ID_NOT_FOUND),
            Some(g) if g.state != State::Empty => return Err(codes::NON_EMPTY_GROUP),
            Some(g) => g
                .offsets
                .all()
                .map(|(t, p, _)| (records::encode_offset_key(group_id, t, p), None))
                .collect(),
        };
        // Written even for a group that never recorded metadata (generation
        // 0): a tombstone for an absent key costs one small record.
        batch.push((records::encode_group_key(group_id), None));
        // Memory follows the log: a failed write keeps the group.
        let durable = self.inner.append(group_id, batch).transpose()?;
        groups.remove(group_id);
        consumer.groups.remove(group_id);
        tracing::info!(group = %group_id, "deleted group");
        Ok(durable)
    }

    /// OffsetDelete: removes the committed offsets of `partitions`.
    /// Partitions of topics the group's members consume get
    /// GROUP_SUBSCRIBED_TO_TOPIC; a group with members of a protocol type
    /// other than `consumer` cannot say what they consume and refuses as a
    /// whole (NON_EMPTY_GROUP). An Empty group left without offsets is
    /// deleted, as Kafka does.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<OffsetsDeleted, i16> {
        if group_id.is_empty() || group_id.len() > records::STRING_BYTES_MAX {
            return Err(codes::INVALID_GROUP_ID);
        }
        let mut groups = self.inner.groups.lock().expect("groups lock");
        // A consumer-protocol group keeps its offsets in `groups` too.
        let live_consumer = consumer_group_subscriptions(&self.inner.consumer(), group_id);
        let may_forget = live_consumer.is_none();
        let subscribed = match live_consumer {
            Some(subscribed) => subscribed,
            None => match groups.get(group_id) {
                None => return Err(codes::GROUP_ID_NOT_FOUND),
                Some(g) => match g.state {
                    State::Dead => return Err(codes::GROUP_ID_NOT_FOUND),
                    State::Empty => Subscribed::Topics(BTreeSet::new()),
                    _ if g.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE) => {
                        subscribed_topics(g)
                    }
                    _ => return Err(codes::NON_EMPTY_GROUP),
                },
            },
        };
        let errors: Vec<i16> = partitions
            .iter()
            .map(|(t, _)| {
                if subscribed.contains(t) {
                    codes::GROUP_SUBSCRIBED_TO_TOPIC
                } else {
                    codes::NONE
                }
            })
            .collect();
        self.remove_offsets(&mut groups, group_id, partitions, errors, may_forget)
    }

    /// Tombstones and forgets the offsets of `partitions` whose error is
    /// NONE; with `may_forget`, an Empty group left without offsets goes too.
    fn remove_offsets(
        &self,
        groups: &mut HashMap<String, Group>,
        group_id: &str,
        partitions: &[(String, i32)],
        errors: Vec<i16>,
        may_forget: bool,
    ) -> Result<OffsetsDeleted, i16> {
        let nothing = |errors| {
            Ok(OffsetsDeleted {
                errors,
                durable: None,
            })
        };
        // A consumer-protocol group that never committed has no entry.
        let Some(g) = groups.get_mut(group_id) else {
            return nothing(errors);
        };
        let doomed: BTreeSet<(&str, i32)> = partitions
            .iter()
            .zip(&errors)
            .filter(|(_, e)| **e == codes::NONE)
            .map(|((t, p), _)| (t.as_str(), *p))
            .filter(|(t, p)| g.offsets.get(t, *p).is_some())
            .collect();
        if doomed.is_empty() {
            return nothing(errors);
        }
        let mut batch: Vec<Record> = doomed
            .iter()
            .map(|(t, p)| (records::encode_offset_key(group_id, t, *p), None))
            .collect();
        let forget =
            may_forget && g.state == State::Empty && doomed.len() == g.offsets.all().count();
        if forget {
            batch.push((records::encode_group_key(group_id), None));
        }
        let durable = self.inner.append(group_id, batch).transpose()?;
        for (t, p) in &doomed {
            g.offsets.remove(t, *p);
        }
        tracing::info!(group = %group_id, offsets = doomed.len(), "deleted committed offsets");
        if forget {
            groups.remove(group_id);
            self.inner.consumer().groups.remove(group_id);
        }
        Ok(OffsetsDeleted { errors, durable })
    }
}

/// The topics a consumer group's members subscribe to.
enum Subscribed {
    Topics(BTreeSet<String>),
    /// Some member's metadata could not be read: every topic counts as
    /// consumed, which refuses a deletion rather than lose a live offset.
    Unknown,
}

impl Subscribed {
    fn contains(&self, topic: &str) -> bool {
        match self {
            Subscribed::Topics(topics) => topics.contains(topic),
            Subscribed::Unknown => true,
        }
    }
}

/// The topics the members of a consumer-protocol (KIP-848) group subscribe
/// to; None when `group_id` is no such group with members. A member
/// subscribed by regex counts as subscribed to everything (the regex is
/// resolved elsewhere, and refusing is the safe answer).
fn consumer_group_subscriptions(
    consumer: &super::consumer::ConsumerGroups,
    group_id: &str,
) -> Option<Subscribed> {
    let group = consumer.groups.get(group_id)?;
    if group.members.is_empty() {
        return None;
    }
    if group.members.values().any(|m| m.topic_regex.is_some()) {
        return Some(Subscribed::Unknown);
    }
    let topics = group
        .members
        .values()
        .flat_map(|m| m.topic_names.iter().cloned())
        .collect();
    Some(Subscribed::Topics(topics))
}

/// The union of the members' subscriptions in the group's protocol.
fn subscribed_topics(g: &Group) -> Subscribed {
    let Some(protocol) = g.protocol_name.as_deref() else {
        // First rebalance still choosing a protocol: no metadata to trust yet.
        return Subscribed::Unknown;
    };
    let mut topics = BTreeSet::new();
    for m in &g.members {
        match eddy_protocol::consumer_protocol::subscription_topics(&m.metadata(protocol)) {
            Ok(t) => topics.extend(t),
            Err(e) => {
                tracing::debug!(group = %g.id, member = %m.id, error = %e, "unreadable subscription");
                return Subscribed::Unknown;
            }
        }
    }
    Subscribed::Topics(topics)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use eddy_protocol::consumer_protocol::encode_subscription;

    use super::super::consumer::{ConsumerGroup, ConsumerMember};
    use super::super::member::{JoinParams, Member};
    use super::super::{CommitPartition, GroupConfig, GroupLog};
    use super::*;

    /// Keeps every appended record, as `__consumer_offsets` would.
    #[derive(Default)]
    struct MemoryLog {
        records: Mutex<Vec<Record>>,
    }

    impl GroupLog for MemoryLog {
        fn append(
            &self,
            _group: &str,
            records: Vec<Record>,
        ) -> Result<oneshot::Receiver<FlushResult>, i16> {
            self.records.lock().unwrap().extend(records);
            let (tx, rx) = oneshot::channel();
            let _ = tx.send(Ok(()));
            Ok(rx)
        }
    }

    fn coordinator() -> (GroupCoordinator, Arc<MemoryLog>) {
        let log = Arc::new(MemoryLog::default());
        let weak: std::sync::Weak<dyn GroupLog> = {
            let dyn_log: Arc<dyn GroupLog> = log.clone();
            Arc::downgrade(&dyn_log)
        };
        // Keep the Arc<dyn> alive through the concrete Arc (same allocation).
        (
            GroupCoordinator::with_log(GroupConfig::default(), Some(weak)),
            log,
        )
    }

    fn commit(c: &GroupCoordinator, group: &str, topic: &str, partition: i32, offset: i64) {
        let p = CommitPartition {
            topic: topic.into(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: None,
        };
        let done = c.commit(group, "", None, -1, &[p]).expect("simple commit");
        assert_eq!(done.errors, vec![codes::NONE]);
    }

    /// Puts a live member into `group`, subscribed with `metadata`.
    fn add_member(c: &GroupCoordinator, group: &str, protocol_type: &str, metadata: Vec<u8>) {
        let mut groups = c.inner.groups.lock().unwrap();
        let g = groups
            .entry(group.to_string())
            .or_insert_with(|| Group::new(group));
        let p = JoinParams {
            group_id: group.into(),
            protocol_type: protocol_type.into(),
            protocols: vec![("range".into(), Bytes::from(metadata))],
            session_timeout_ms: 10_000,
            ..JoinParams::default()
        };
        g.members.push(Member::new("m-1".into(), &p, 0));
        g.protocol_type = Some(protocol_type.into());
        g.protocol_name = Some("range".into());
        g.generation += 1;
        g.state = State::Stable;
    }

    /// A fresh coordinator fed every record written so far: a restart.
    fn replay(log: &MemoryLog) -> GroupCoordinator {
        let c = GroupCoordinator::new(GroupConfig::default());
        for (key, value) in log.records.lock().unwrap().iter() {
            let key = records::decode_key(key).unwrap();
            let value = records::decode_value(&key, value.as_deref()).unwrap();
            c.load(key, value);
        }
        c
    }

    #[test]
    fn deleting_an_empty_group_tombstones_it_and_survives_replay() {
        let (c, log) = coordinator();
        commit(&c, "g", "t", 0, 5);
        commit(&c, "g", "t", 1, 7);
        commit(&c, "other", "t", 0, 1);
        assert!(c.delete_group("g").unwrap().is_some());
        assert!(c.fetch("g", None).is_empty());
        let after = replay(&log);
        let ids: Vec<String> = after.list().into_iter().map(|(id, _, _)| id).collect();
        assert_eq!(ids, vec!["other".to_string()]);
        assert_eq!(c.delete_group("g").unwrap_err(), codes::GROUP_ID_NOT_FOUND);
    }

    #[test]
    fn groups_with_members_unknown_or_unnamed_are_refused() {
        let (c, log) = coordinator();
        add_member(&c, "live", "consumer", encode_subscription(&["t"]));
        let before = log.records.lock().unwrap().len();
        assert_eq!(c.delete_group("live").unwrap_err(), codes::NON_EMPTY_GROUP);
        assert_eq!(
            c.delete_group("nope").unwrap_err(),
            codes::GROUP_ID_NOT_FOUND
        );
        assert_eq!(c.delete_group("").unwrap_err(), codes::INVALID_GROUP_ID);
        assert_eq!(log.records.lock().unwrap().len(), before, "nothing written");
        assert!(c.describe("live").is_some());
    }

    #[test]
    fn offsets_of_subscribed_topics_stay_others_go() {
        let (c, log) = coordinator();
        commit(&c, "g", "a", 0, 3);
        commit(&c, "g", "b", 0, 4);
        add_member(&c, "g", "consumer", encode_subscription(&["a"]));
        let wanted = [("a".to_string(), 0), ("b".to_string(), 0)];
        let out = c.delete_offsets("g", &wanted).unwrap();
        assert_eq!(
            out.errors,
            vec![codes::GROUP_SUBSCRIBED_TO_TOPIC, codes::NONE]
        );
        let left: Vec<_> = c
            .fetch("g", None)
            .into_iter()
            .map(|(t, p, _)| (t, p))
            .collect();
        assert_eq!(left, vec![("a".to_string(), 0)]);
        let after = replay(&log);
        assert!(after.fetch("g", Some(&wanted[1..]))[0].2.is_none());
        assert_eq!(
            after.fetch("g", Some(&wanted[..1]))[0]
                .2
                .as_ref()
                .unwrap()
                .offset,
            3
        );
    }

    #[test]
    fn unreadable_subscriptions_protect_every_topic() {
        let (c, _log) = coordinator();
        commit(&c, "g", "b", 0, 4);
        add_member(&c, "g", "consumer", vec![0, 0, 0x7f, 0xff, 0xff, 0xff]);
        let out = c.delete_offsets("g", &[("b".to_string(), 0)]).unwrap();
        assert_eq!(out.errors, vec![codes::GROUP_SUBSCRIBED_TO_TOPIC]);
        assert!(out.durable.is_none());
        assert_eq!(c.fetch("g", None).len(), 1);
    }

    #[test]
    fn live_groups_of_other_protocol_types_refuse_offset_deletion() {
        let (c, _log) = coordinator();
        commit(&c, "g", "b", 0, 4);
        add_member(&c, "g", "connect", vec![]);
        let err = c.delete_offsets("g", &[("b".to_string(), 0)]).err();
        assert_eq!(err, Some(codes::NON_EMPTY_GROUP));
        assert_eq!(
            c.delete_offsets("", &[]).err(),
            Some(codes::INVALID_GROUP_ID)
        );
        assert_eq!(
            c.delete_offsets("x", &[]).err(),
            Some(codes::GROUP_ID_NOT_FOUND)
        );
    }

    #[test]
    fn deleting_the_last_offsets_of_an_empty_group_deletes_the_group() {
        let (c, log) = coordinator();
        commit(&c, "g", "a", 0, 3);
        commit(&c, "g", "a", 1, 3);
        let out = c.delete_offsets("g", &[("a".to_string(), 0)]).unwrap();
        assert_eq!(out.errors, vec![codes::NONE]);
        assert_eq!(c.list().len(), 1, "one offset left: the group stays");
        c.delete_offsets("g", &[("a".to_string(), 1), ("a".to_string(), 9)])
            .unwrap();
        assert!(c.list().is_empty());
        assert!(replay(&log).list().is_empty());
    }

    /// Puts a KIP-848 member subscribed to `topics` into consumer group `group`.
    fn add_consumer_member(c: &GroupCoordinator, group: &str, topics: &[&str]) {
        let mut consumer = c.inner.consumer();
        let g = consumer
            .groups
            .entry(group.to_string())
            .or_insert_with(|| ConsumerGroup::new(group));
        let mut m = ConsumerMember::new("k-1".into(), None);
        m.topic_names = topics.iter().map(|t| t.to_string()).collect();
        g.members.insert(m.id.clone(), m);
    }

    #[test]
    fn consumer_protocol_groups_follow_the_same_rules() {
        let (c, log) = coordinator();
        commit(&c, "g", "a", 0, 3);
        commit(&c, "g", "b", 0, 4);
        add_consumer_member(&c, "g", &["a"]);
        assert_eq!(c.delete_group("g").unwrap_err(), codes::NON_EMPTY_GROUP);
        let wanted = [("a".to_string(), 0), ("b".to_string(), 0)];
        let out = c.delete_offsets("g", &wanted).unwrap();
        assert_eq!(
            out.errors,
            vec![codes::GROUP_SUBSCRIBED_TO_TOPIC, codes::NONE]
        );
        assert_eq!(c.fetch("g", None).len(), 1, "a-0 stays");
        // Its last offset gone, a live consumer group is still a group.
        add_consumer_member(&c, "h", &["a"]);
        commit_before_member(&c, "h");
        let out = c.delete_offsets("h", &[("b".to_string(), 0)]).unwrap();
        assert_eq!(out.errors, vec![codes::NONE]);
        assert!(c.inner.consumer().groups.contains_key("h"));

        c.inner
            .consumer()
            .groups
            .get_mut("g")
            .unwrap()
            .members
            .clear();
        assert!(c.delete_group("g").unwrap().is_some());
        assert!(!c.inner.consumer().groups.contains_key("g"));
        assert!(c.fetch("g", None).is_empty());
        assert!(replay(&log).fetch("g", None).is_empty());
    }

    /// Commits b-0 for `group` while its consumer-protocol members are set
    /// aside (an admin commit needs a group without members).
    fn commit_before_member(c: &GroupCoordinator, group: &str) {
        let members =
            std::mem::take(&mut c.inner.consumer().groups.get_mut(group).unwrap().members);
        commit(c, group, "b", 0, 1);
        c.inner.consumer().groups.get_mut(group).unwrap().members = members;
    }
}
