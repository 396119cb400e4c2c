//! Unit and property tests of the consumer protocol's state machine.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use uuid::Uuid;

use super::assignor::{self, MemberSpec, Spec};
use super::pattern::Pattern;
use super::*;

const SESSION_MS: i32 = 10_000;

fn topic_id(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

fn topics(list: &[(&str, u8, i32)]) -> Topics {
    list.iter()
        .map(|(name, id, partitions)| {
            (
                name.to_string(),
                TopicMeta {
                    id: topic_id(*id),
                    partitions: *partitions,
                },
            )
        })
        .collect()
}

fn config() -> ConsumerConfig {
    ConsumerConfig {
        session_timeout_ms: SESSION_MS,
        heartbeat_interval_ms: 1000,
        max_size: 10,
        assignors: assignor::NAMES.to_vec(),
        startup_grace_ms: 0,
    }
}

fn join(member: &str, names: &[&str]) -> Heartbeat {
    Heartbeat {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        topic_names: Some(names.iter().map(|s| s.to_string()).collect()),
        owned: Some(Assignment::new()),
        ..Heartbeat::default()
    }
}

fn beat(member: &str, epoch: i32, owned: &Assignment) -> Heartbeat {
    Heartbeat {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: Some(owned.clone()),
        ..Heartbeat::default()
    }
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

fn parts(t: u8, ps: &[i32]) -> Assignment {
    [(topic_id(t), ps.iter().copied().collect())].into()
}

/// A client as the tests model it: what it owns and its epoch.
#[derive(Debug, Clone, Default)]
struct Client {
    id: String,
    epoch: i32,
    owned: Assignment,
    joined: bool,
    /// After a lost answer a client sends a full request (subscription,
    /// rebalance timeout and owned partitions), which is answered with the
    /// full assignment.
    full_next: bool,
}

impl Client {
    fn new(id: &str) -> Client {
        Client {
            id: id.to_string(),
            ..Client::default()
        }
    }

    /// Sends one heartbeat; applies the answer unless `lost`.
    fn beat(
        &mut self,
        g: &mut ConsumerGroups,
        t: &Topics,
        now_ms: i64,
        lost: bool,
    ) -> Result<(), Refused> {
        let hb = if self.joined && self.full_next {
            Heartbeat {
                member_epoch: self.epoch,
                owned: Some(self.owned.clone()),
                ..join(&self.id, &["a", "b"])
            }
        } else if self.joined {
            beat(&self.id, self.epoch, &self.owned)
        } else {
            join(&self.id, &["a", "b"])
        };
        self.full_next = lost;
        match g.heartbeat(hb, t, &config(), now_ms) {
            Ok(answer) if !lost => {
                self.joined = true;
                self.epoch = answer.member_epoch;
                if let Some(a) = answer.assignment {
                    self.owned = a;
                }
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => {
                // Fenced or unknown: give everything up and rejoin.
                self.lose();
                Err(e)
            }
        }
    }

    fn lose(&mut self) {
        self.owned.clear();
        self.epoch = 0;
        self.joined = false;
    }
}

fn settle(g: &mut ConsumerGroups, t: &Topics, clients: &mut [Client], now_ms: i64) {
    for _ in 0..8 {
        for c in clients.iter_mut() {
            let _ = c.beat(g, t, now_ms, false);
        }
    }
}

#[test]
fn a_single_member_gets_every_partition_at_epoch_one() {
    let t = topics(&[("a", 1, 4)]);
    let mut g = ConsumerGroups::default();
    let answer = g.heartbeat(join("m1", &["a"]), &t, &config(), 0).unwrap();
    assert_eq!(answer.member_epoch, 1);
    assert_eq!(answer.assignment, Some(parts(1, &[0, 1, 2, 3])));
    assert_eq!(answer.heartbeat_interval_ms, 1000);
    assert_eq!(g.groups["g"].state(), GroupState::Stable);
    // A steady heartbeat carries no assignment.
    let again = g
        .heartbeat(beat("m1", 1, &parts(1, &[0, 1, 2, 3])), &t, &config(), 1)
        .unwrap();
    assert_eq!((again.member_epoch, again.assignment), (1, None));
}

#[test]
fn partitions_move_only_after_their_owner_revokes_them() {
    let t = topics(&[("a", 1, 4)]);
    let mut g = ConsumerGroups::default();
    g.heartbeat(join("m1", &["a"]), &t, &config(), 0).unwrap();
    let j2 = g.heartbeat(join("m2", &["a"]), &t, &config(), 1).unwrap();
    // m1 still holds everything: m2 is at the new epoch but gets nothing yet.
    assert_eq!(j2.member_epoch, 2);
    assert_eq!(j2.assignment, Some(Assignment::new()));
    assert_eq!(g.groups["g"].state(), GroupState::Reconciling);
    // m1 is told to keep two; it stays at epoch 1 until it revokes.
    let r1 = g
        .heartbeat(beat("m1", 1, &parts(1, &[0, 1, 2, 3])), &t, &config(), 2)
        .unwrap();
    assert_eq!(r1.member_epoch, 1);
    let kept = r1.assignment.unwrap();
    assert_eq!(count(&kept), 2);
    // Until m1 acknowledges, m2 still gets nothing.
    let still = g
        .heartbeat(beat("m2", 2, &Assignment::new()), &t, &config(), 3)
        .unwrap();
    assert_eq!(still.assignment, None);
    // m1 acknowledges (owns only what it kept) and moves to epoch 2.
    let ack = g.heartbeat(beat("m1", 1, &kept), &t, &config(), 4).unwrap();
    assert_eq!(ack.member_epoch, 2);
    let got = g
        .heartbeat(beat("m2", 2, &Assignment::new()), &t, &config(), 5)
        .unwrap();
    let given = got.assignment.unwrap();
    assert_eq!(count(&given), 2);
    let all: BTreeSet<i32> = kept[&topic_id(1)]
        .union(&given[&topic_id(1)])
        .copied()
        .collect();
    assert_eq!(all, (0..4).collect());
    assert_eq!(g.groups["g"].state(), GroupState::Stable);
}

#[test]
fn member_epochs_are_fenced() {
    let t = topics(&[("a", 1, 2)]);
    let mut g = ConsumerGroups::default();
    g.heartbeat(join("m1", &["a"]), &t, &config(), 0).unwrap();
    let ahead = g.heartbeat(beat("m1", 5, &Assignment::new()), &t, &config(), 1);
    assert_eq!(ahead.unwrap_err().code, errors::FENCED_MEMBER_EPOCH);
    // Two topic changes take m1 to epoch 3 (previous 2): epoch 1 is fenced.
    let t2 = topics(&[("a", 1, 3)]);
    g.heartbeat(beat("m1", 1, &parts(1, &[0, 1])), &t2, &config(), 2)
        .unwrap();
    let t3 = topics(&[("a", 1, 4)]);
    let at3 = g
        .heartbeat(beat("m1", 2, &parts(1, &[0, 1, 2])), &t3, &config(), 3)
        .unwrap();
    assert_eq!(at3.member_epoch, 3);
    let behind = g.heartbeat(beat("m1", 1, &Assignment::new()), &t3, &config(), 4);
    assert_eq!(behind.unwrap_err().code, errors::FENCED_MEMBER_EPOCH);
    // Epoch 0 with a known member id is a rejoin: it starts over.
    let rejoin = g.heartbeat(join("m1", &["a"]), &t3, &config(), 5).unwrap();
    assert_eq!(rejoin.member_epoch, 3);
    assert_eq!(rejoin.assignment, Some(parts(1, &[0, 1, 2, 3])));
    let unknown = g.heartbeat(beat("nobody", 1, &Assignment::new()), &t, &config(), 3);
    assert_eq!(unknown.unwrap_err().code, codes::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_lost_answer_is_forgiven_once() {
    let t = topics(&[("a", 1, 2)]);
    let mut g = ConsumerGroups::default();
    g.heartbeat(join("m1", &["a"]), &t, &config(), 0).unwrap();
    // Topic grows: epoch 2 with a new partition; the answer is lost.
    let t2 = topics(&[("a", 1, 3)]);
    let a = g
        .heartbeat(beat("m1", 1, &parts(1, &[0, 1])), &t2, &config(), 1)
        .unwrap();
    assert_eq!(a.member_epoch, 2);
    assert_eq!(a.assignment, Some(parts(1, &[0, 1, 2])));
    // The member retries with epoch 1 and what it owned: accepted, told again.
    let retry = g
        .heartbeat(beat("m1", 1, &parts(1, &[0, 1])), &t2, &config(), 2)
        .unwrap();
    assert_eq!(retry.member_epoch, 2);
    // Epoch 1 owning a partition outside the assignment is fenced.
    let t3 = topics(&[("a", 1, 3), ("b", 2, 1)]);
    let bad = g.heartbeat(beat("m1", 1, &parts(2, &[0])), &t3, &config(), 3);
    assert_eq!(bad.unwrap_err().code, errors::FENCED_MEMBER_EPOCH);
}

#[test]
fn leaving_frees_partitions_for_the_others() {
    let t = topics(&[("a", 1, 4)]);
    let mut g = ConsumerGroups::default();
    let mut clients = vec![Client::new("m1"), Client::new("m2")];
    settle(&mut g, &t, &mut clients, 0);
    assert_eq!(count(&clients[0].owned), 2);
    let left = g
        .heartbeat(
            beat("m1", LEAVE_EPOCH, &Assignment::new()),
            &t,
            &config(),
            1,
        )
        .unwrap();
    assert_eq!(left.member_epoch, LEAVE_EPOCH);
    clients.remove(0);
    settle(&mut g, &t, &mut clients, 2);
    assert_eq!(count(&clients[0].owned), 4);
    assert_eq!(g.groups["g"].state(), GroupState::Stable);
}

#[test]
fn sessions_and_revocations_expire() {
    let t = topics(&[("a", 1, 4)]);
    let mut g = ConsumerGroups::default();
    g.heartbeat(join("m1", &["a"]), &t, &config(), 0).unwrap();
    assert_eq!(g.next_deadline_ms(), Some(i64::from(SESSION_MS)));
    g.tick(i64::from(SESSION_MS) - 1);
    assert_eq!(g.groups["g"].members.len(), 1);
    g.tick(i64::from(SESSION_MS));
    assert!(g.groups["g"].members.is_empty());
    assert_eq!(g.groups["g"].state(), GroupState::Empty);

    // A member told to revoke that never does is removed after its
    // rebalance timeout, and its partitions go to the other.
    let mut g = ConsumerGroups::default();
    let mut j = join("m1", &["a"]);
    j.rebalance_timeout_ms = 500;
    g.heartbeat(j, &t, &config(), 0).unwrap();
    g.heartbeat(join("m2", &["a"]), &t, &config(), 0).unwrap();
    let r = g
        .heartbeat(beat("m1", 1, &parts(1, &[0, 1, 2, 3])), &t, &config(), 100)
        .unwrap();
    assert_eq!(count(&r.assignment.unwrap()), 2);
    g.tick(599);
    assert!(g.groups["g"].members.contains_key("m1"));
    g.tick(600);
    assert!(!g.groups["g"].members.contains_key("m1"));
    let got = g
        .heartbeat(beat("m2", 2, &Assignment::new()), &t, &config(), 700)
        .unwrap();
    assert_eq!(got.assignment.map(|a| count(&a)), Some(4));
}

#[test]
fn static_members_come_back_to_their_partitions() {
    let t = topics(&[("a", 1, 4)]);
    let mut g = ConsumerGroups::default();
    let mut s1 = join("m1", &["a"]);
    s1.instance_id = Some("i1".into());
    g.heartbeat(s1, &t, &config(), 0).unwrap();
    let mut s2 = join("m2", &["a"]);
    s2.instance_id = Some("i2".into());
    g.heartbeat(s2.clone(), &t, &config(), 0).unwrap();
    let mut clients = vec![Client::new("m1"), Client::new("m2")];
    for c in &mut clients {
        c.joined = true;
        c.epoch = g.groups["g"].members[&c.id].epoch;
        c.owned = g.groups["g"].members[&c.id].assigned.clone();
    }
    settle(&mut g, &t, &mut clients, 1);
    let before = clients[1].owned.clone();
    assert_eq!(count(&before), 2);
    // i2 leaves for now (-2) and keeps its partitions.
    let mut leave = beat("m2", LEAVE_STATIC_EPOCH, &before);
    leave.instance_id = Some("i2".into());
    assert_eq!(
        g.heartbeat(leave, &t, &config(), 2).unwrap().member_epoch,
        LEAVE_STATIC_EPOCH
    );
    // Another process may not take i1, which has not left.
    let mut thief = join("m3", &["a"]);
    thief.instance_id = Some("i1".into());
    let refused = g.heartbeat(thief, &t, &config(), 3).unwrap_err();
    assert_eq!(refused.code, errors::UNRELEASED_INSTANCE_ID);
    // i2 restarts with a new member id and gets the same partitions at once.
    let mut back = join("m2b", &["a"]);
    back.instance_id = Some("i2".into());
    let answer = g.heartbeat(back, &t, &config(), 4).unwrap();
    assert_eq!(answer.assignment, Some(before));
    assert_eq!(g.groups["g"].state(), GroupState::Stable);
    // The old member id is fenced.
    let mut old = beat("m2", 2, &Assignment::new());
    old.instance_id = Some("i2".into());
    assert_eq!(
        g.heartbeat(old, &t, &config(), 5).unwrap_err().code,
        codes::FENCED_INSTANCE_ID
    );
}

#[test]
fn requests_are_validated_with_kafka_messages() {
    let c = config();
    let mut no_timeout = join("m", &["a"]);
    no_timeout.rebalance_timeout_ms = -1;
    let e = validate(&no_timeout, 1, &c).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            codes::INVALID_REQUEST,
            "RebalanceTimeoutMs must be provided in first request."
        )
    );
    let mut owned = join("m", &["a"]);
    owned.owned = Some(parts(1, &[0]));
    assert_eq!(
        validate(&owned, 1, &c).unwrap_err().code,
        codes::INVALID_REQUEST
    );
    let mut empty_id = join("", &["a"]);
    assert_eq!(
        validate(&empty_id, 1, &c).unwrap_err().message,
        "MemberId can't be empty."
    );
    assert!(
        validate(&empty_id, 0, &c).is_ok(),
        "v0: the coordinator names the member"
    );
    empty_id.topic_names = None;
    assert_eq!(
        validate(&empty_id, 0, &c).unwrap_err().code,
        codes::INVALID_REQUEST
    );
    let mut assignor = join("m", &["a"]);
    assignor.server_assignor = Some("sticky".into());
    assert_eq!(
        validate(&assignor, 1, &c).unwrap_err().code,
        errors::UNSUPPORTED_ASSIGNOR
    );
    assignor.server_assignor =
        Some("org.apache.kafka.coordinator.group.assignor.RangeAssignor".into());
    assert!(validate(&assignor, 1, &c).is_ok());
    let mut static_leave = beat("m", LEAVE_STATIC_EPOCH, &Assignment::new());
    assert_eq!(
        validate(&static_leave, 1, &c).unwrap_err().message,
        "InstanceId can't be null."
    );
    static_leave.member_epoch = -3;
    assert_eq!(
        validate(&static_leave, 1, &c).unwrap_err().message,
        "MemberEpoch is invalid."
    );
    let mut regex = join("m", &[]);
    regex.topic_names = None;
    regex.topic_regex = Some("(?<=a)b".into());
    assert_eq!(
        validate(&regex, 1, &c).unwrap_err().code,
        errors::INVALID_REGULAR_EXPRESSION
    );
}

#[test]
fn the_group_size_is_bounded() {
    let t = topics(&[("a", 1, 1)]);
    let mut g = ConsumerGroups::default();
    let mut c = config();
    c.max_size = 2;
    g.heartbeat(join("m1", &["a"]), &t, &c, 0).unwrap();
    g.heartbeat(join("m2", &["a"]), &t, &c, 0).unwrap();
    let e = g.heartbeat(join("m3", &["a"]), &t, &c, 0).unwrap_err();
    assert_eq!(e.code, errors::GROUP_MAX_SIZE_REACHED);
}

#[test]
fn regex_subscriptions_follow_new_topics() {
    let t = topics(&[("orders-eu", 1, 2), ("orders-us", 2, 2), ("payments", 3, 2)]);
    let mut g = ConsumerGroups::default();
    let mut j = join("m1", &[]);
    j.topic_names = None;
    j.topic_regex = Some("orders-.*".into());
    // As in Kafka, a new pattern is resolved for the next heartbeat: the
    // join gets nothing, the next heartbeat the matching topics.
    let first = g.heartbeat(j, &t, &config(), 0).unwrap();
    assert_eq!(first.assignment, Some(Assignment::new()));
    let next = g.heartbeat(
        beat("m1", first.member_epoch, &Assignment::new()),
        &t,
        &config(),
        0,
    );
    let a = next.unwrap().assignment.unwrap();
    assert_eq!(
        a.keys().copied().collect::<Vec<_>>(),
        vec![topic_id(1), topic_id(2)]
    );
    let mut t2 = t.clone();
    t2.insert(
        "orders-jp".into(),
        TopicMeta {
            id: topic_id(4),
            partitions: 1,
        },
    );
    let owned = a.clone();
    let b = g
        .heartbeat(beat("m1", 2, &owned), &t2, &config(), 1)
        .unwrap();
    // A new matching topic joins at once: the pattern is resolved.
    assert_eq!(b.member_epoch, 3);
    assert!(b.assignment.unwrap().contains_key(&topic_id(4)));
    // Once its last user leaves, the pattern must be resolved anew.
    g.heartbeat(
        beat("m1", LEAVE_EPOCH, &Assignment::new()),
        &t2,
        &config(),
        2,
    )
    .unwrap();
    let mut again = join("m2", &["payments"]);
    again.topic_regex = Some("orders-.*".into());
    let literal_first = g.heartbeat(again, &t2, &config(), 3).unwrap();
    assert_eq!(literal_first.assignment, Some(parts(3, &[0, 1])));
}

#[test]
fn patterns_match_whole_names() {
    let p = Pattern::compile("orders-[a-z]+\\.v\\d|^audit$").unwrap();
    assert!(p.matches("orders-eu.v1"));
    assert!(!p.matches("orders-eu.v"));
    assert!(!p.matches("xorders-eu.v1"));
    assert!(p.matches("audit"));
    assert!(!p.matches("audits"));
    assert!(Pattern::compile(".*").unwrap().matches(""));
    assert!(Pattern::compile("a?b*c").unwrap().matches("c"));
    assert!(Pattern::compile("[^.]*").unwrap().matches("abc"));
    assert!(!Pattern::compile("[^.]*").unwrap().matches("a.c"));
    // librdkafka joins its regex subscriptions like this.
    let joined = Pattern::compile("(^rdkafkatest_.*_topic_regex.*)|(^other)").unwrap();
    assert!(joined.matches("rdkafkatest_rnd1_topic_regex2"));
    assert!(joined.matches("other"));
    assert!(!joined.matches("rdkafkatest_rnd1_topic_a"));
    assert!(Pattern::compile("(ab)*c").unwrap().matches("ababc"));
    assert!(!Pattern::compile("(ab)*c").unwrap().matches("abac"));
    assert!(Pattern::compile("(?:x|y){2,3}").unwrap().matches("xyx"));
    assert!(!Pattern::compile("(?:x|y){2,3}").unwrap().matches("xyxy"));
    assert!(Pattern::compile("a{2}").unwrap().matches("aa"));
    assert!(Pattern::compile("t.*?\\.v\\d+$")
        .unwrap()
        .matches("topic.v12"));
    assert!(Pattern::compile("(?=a)").is_err());
    assert!(Pattern::compile("(ab").is_err());
    assert!(Pattern::compile("ab)").is_err());
    assert!(Pattern::compile("a**").is_err());
    assert!(Pattern::compile("a{1001}").is_err());
    assert!(Pattern::compile(&"(".repeat(65)).is_err());
    assert!(Pattern::compile("*a").is_err());
    assert!(Pattern::compile("[z-a]").is_err());
    // Linear time: no backtracking blow-up.
    let evil = Pattern::compile("a*a*a*a*a*a*a*a*a*a*a*a*b").unwrap();
    assert!(!evil.matches(&"a".repeat(249)));
}

fn specs(members: &[(&str, &[u8])]) -> BTreeMap<String, MemberSpec> {
    members
        .iter()
        .map(|(id, ts)| {
            let topics = ts.iter().map(|t| topic_id(*t)).collect();
            (id.to_string(), MemberSpec { topics })
        })
        .collect()
}

#[test]
fn range_gives_contiguous_ranges() {
    let members = specs(&[("a", &[1, 2]), ("b", &[1, 2]), ("c", &[1])]);
    let partitions = [(topic_id(1), 7), (topic_id(2), 3)].into();
    let out = assignor::range(&Spec {
        members: &members,
        partitions: &partitions,
        current: &BTreeMap::new(),
    });
    assert_eq!(
        out["a"],
        [
            (topic_id(1), (0..3).collect()),
            (topic_id(2), (0..2).collect())
        ]
        .into()
    );
    assert_eq!(
        out["b"],
        [
            (topic_id(1), (3..5).collect()),
            (topic_id(2), (2..3).collect())
        ]
        .into()
    );
    assert_eq!(out["c"], [(topic_id(1), (5..7).collect())].into());
}

#[test]
fn uniform_is_balanced_and_sticky() {
    let members = specs(&[("a", &[1]), ("b", &[1])]);
    let partitions = [(topic_id(1), 6)].into();
    let first = assignor::uniform(&Spec {
        members: &members,
        partitions: &partitions,
        current: &BTreeMap::new(),
    });
    assert_eq!((count(&first["a"]), count(&first["b"])), (3, 3));
    let members = specs(&[("a", &[1]), ("b", &[1]), ("c", &[1])]);
    let second = assignor::uniform(&Spec {
        members: &members,
        partitions: &partitions,
        current: &first,
    });
    for id in ["a", "b", "c"] {
        assert_eq!(count(&second[id]), 2, "{id}: {second:?}");
    }
    // Each old member keeps two of its three: only two partitions move.
    for id in ["a", "b"] {
        let kept = second[id][&topic_id(1)]
            .intersection(&first[id][&topic_id(1)])
            .count();
        assert_eq!(kept, 2);
    }
}

#[test]
fn uniform_balances_unequal_subscriptions() {
    // b alone takes topic 2; a and b share topic 1 so that both end with 3.
    let members = specs(&[("a", &[1]), ("b", &[1, 2])]);
    let partitions = [(topic_id(1), 4), (topic_id(2), 2)].into();
    let out = assignor::uniform(&Spec {
        members: &members,
        partitions: &partitions,
        current: &BTreeMap::new(),
    });
    assert_eq!(count(&out["a"]), 3);
    assert_eq!(count(&out["b"]), 3);
    assert_eq!(out["b"][&topic_id(2)].len(), 2);
}

#[derive(Debug, Clone)]
enum Op {
    Beat(usize),
    BeatLost(usize),
    Leave(usize),
    /// Time passes; only the clients in the set heartbeat meanwhile.
    Pass(u16, Vec<bool>),
    Grow(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..5usize).prop_map(Op::Beat),
        1 => (0..5usize).prop_map(Op::BeatLost),
        1 => (0..5usize).prop_map(Op::Leave),
        1 => (0..15_000u16, prop::collection::vec(any::<bool>(), 5)).prop_map(|(ms, alive)| Op::Pass(ms, alive)),
        1 => (1..4u8).prop_map(Op::Grow),
    ]
}

/// No partition is owned by two clients, and the server's holders agree.
fn check_invariants(g: &ConsumerGroups, clients: &[Client]) {
    let mut seen: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
    for c in clients {
        for (t, ps) in &c.owned {
            for p in ps {
                if let Some(other) = seen.insert((*t, *p), &c.id) {
                    panic!("partition {t}:{p} owned by {other} and {}", c.id);
                }
            }
        }
    }
    let Some(group) = g.groups.get("g") else {
        return;
    };
    let mut held: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
    for m in group.members.values() {
        for key in m.held() {
            assert!(held.insert(key, &m.id).is_none(), "{key:?} held twice");
            assert_eq!(group.holder(key.0, key.1), Some(m.id.as_str()));
        }
    }
    // What a client owns, the server counts as held by that member.
    for c in clients.iter().filter(|c| c.joined) {
        for (t, ps) in &c.owned {
            for p in ps {
                assert_eq!(
                    held.get(&(*t, *p)).copied(),
                    Some(c.id.as_str()),
                    "{t}:{p} of {}",
                    c.id
                );
            }
        }
    }
}

fn apply(op: &Op, g: &mut ConsumerGroups, t: &mut Topics, clients: &mut [Client], now: &mut i64) {
    *now += 10;
    match op {
        Op::Beat(i) => {
            let _ = clients[*i].beat(g, t, *now, false);
        }
        Op::BeatLost(i) => {
            let _ = clients[*i].beat(g, t, *now, true);
        }
        Op::Leave(i) => {
            let c = &mut clients[*i];
            if c.joined {
                let _ = g.heartbeat(
                    beat(&c.id, LEAVE_EPOCH, &Assignment::new()),
                    t,
                    &config(),
                    *now,
                );
            }
            c.lose();
        }
        Op::Pass(ms, alive) => {
            let end = *now + i64::from(*ms);
            while *now < end {
                *now = (*now + 3000).min(end);
                for (c, alive) in clients.iter_mut().zip(alive) {
                    if *alive && c.joined {
                        let _ = c.beat(g, t, *now, false);
                    }
                }
                g.tick(*now);
                // A client whose member is gone has lost its partitions.
                for c in clients.iter_mut().filter(|c| c.joined) {
                    if !g
                        .groups
                        .get("g")
                        .is_some_and(|gr| gr.members.contains_key(&c.id))
                    {
                        c.lose();
                    }
                }
            }
        }
        Op::Grow(n) => {
            let name = if n % 2 == 0 { "a" } else { "b" };
            if let Some(meta) = t.get_mut(name) {
                meta.partitions = (meta.partitions + i32::from(*n)).min(24);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random joins, heartbeats (some answers lost), leaves, session
    /// expiries and topic growth: no partition is ever owned by two
    /// members, and once everyone heartbeats the group is stable, complete
    /// and balanced.
    #[test]
    fn no_partition_is_owned_twice(ops in prop::collection::vec(op(), 1..80)) {
        let mut t = topics(&[("a", 1, 6), ("b", 2, 3)]);
        let mut g = ConsumerGroups::default();
        let mut clients: Vec<Client> = (0..5).map(|i| Client::new(&format!("m{i}"))).collect();
        let mut now = 0;
        for op in &ops {
            apply(op, &mut g, &mut t, &mut clients, &mut now);
            check_invariants(&g, &clients);
        }
        // Members the server knows (a client whose join answer was lost
        // rejoins) and clients that think they are members.
        let known = |c: &Client| g.groups.get("g").is_some_and(|gr| gr.members.contains_key(&c.id));
        let mut alive: Vec<Client> = clients.into_iter().filter(|c| c.joined || known(c)).collect();
        if alive.is_empty() {
            return Ok(());
        }
        settle(&mut g, &t, &mut alive, now + 1);
        check_invariants(&g, &alive);
        let group = &g.groups["g"];
        prop_assert_eq!(group.state(), GroupState::Stable);
        let total: usize = t.values().map(|m| m.partitions as usize).sum();
        let counts: Vec<usize> = alive.iter().map(|c| count(&c.owned)).collect();
        prop_assert_eq!(counts.iter().sum::<usize>(), total);
        let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        prop_assert!(hi - lo <= 1, "unbalanced: {:?}", counts);
        for c in &alive {
            prop_assert_eq!(&c.owned, &group.members[&c.id].assigned);
        }
    }
}

mod coordinator;

#[test]
fn after_a_restart_stored_groups_hand_out_nothing_during_the_grace() {
    let t = topics(&[("a", 1, 2)]);
    let mut c = config();
    c.startup_grace_ms = 1000;
    let mut g = ConsumerGroups::default();
    g.tick(0);
    // A group with committed offsets may have members from before the
    // restart still consuming: nothing is handed out yet.
    let early = g
        .heartbeat_stored(join("m1", &["a"]), &t, &c, 500, true)
        .unwrap();
    assert_eq!(early.assignment, Some(Assignment::new()));
    assert_eq!(
        g.groups["g"].members["m1"].state,
        MemberState::UnreleasedPartitions
    );
    let later = g
        .heartbeat_stored(
            beat("m1", early.member_epoch, &Assignment::new()),
            &t,
            &c,
            1000,
            true,
        )
        .unwrap();
    assert_eq!(later.assignment, Some(parts(1, &[0, 1])));
    // A group with nothing stored cannot have such members.
    let mut fresh = ConsumerGroups::default();
    fresh.tick(0);
    let j = fresh
        .heartbeat_stored(join("m1", &["a"]), &t, &c, 1, false)
        .unwrap();
    assert_eq!(j.assignment, Some(parts(1, &[0, 1])));
}
