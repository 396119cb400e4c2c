//! State machine tests: time is a number, answers are read off the
//! receivers, so every rebalance step is checked without a runtime.

use bytes::Bytes;
use tokio::sync::oneshot::Receiver;

use super::codes;
use super::member::{JoinParams, JoinResult, SyncParams, SyncResult};
use super::state::{Group, GroupConfig, State};

const CONFIG: GroupConfig = GroupConfig {
    initial_rebalance_delay_ms: 3000,
    min_session_timeout_ms: 6000,
    max_session_timeout_ms: 1_800_000,
    offsets_retention_ms: 10_080 * 60_000,
    offsets_retention_check_interval_ms: 600_000,
};

fn params(member_id: &str) -> JoinParams {
    JoinParams {
        group_id: "g".into(),
        member_id: member_id.into(),
        client_id: "c".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 60_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
        require_known_member_id: true,
        ..JoinParams::default()
    }
}

fn answer<T>(rx: &mut Receiver<T>) -> Option<T> {
    rx.try_recv().ok()
}

/// The v4+ round trip: MEMBER_ID_REQUIRED, then a join with that id.
fn join_new(g: &mut Group, now: i64) -> (String, Receiver<JoinResult>) {
    let first = answer(&mut g.join(params(""), &CONFIG, now)).expect("answered at once");
    assert_eq!(first.error, codes::MEMBER_ID_REQUIRED);
    let rx = g.join(params(&first.member_id), &CONFIG, now);
    (first.member_id, rx)
}

fn sync(
    g: &mut Group,
    id: &str,
    generation: i32,
    assignments: &[(&str, &[u8])],
    now: i64,
) -> Receiver<SyncResult> {
    let p = SyncParams {
        group_id: "g".into(),
        member_id: id.into(),
        generation,
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::copy_from_slice(a)))
            .collect(),
        ..SyncParams::default()
    };
    g.sync(p, now)
}

/// A lone member through the initial delay and sync: the group is Stable.
fn stable_with_one(g: &mut Group) -> String {
    let (id, mut rx) = join_new(g, 0);
    assert!(
        answer(&mut rx).is_none(),
        "the initial delay holds the join"
    );
    g.tick(2999, &CONFIG);
    assert!(answer(&mut rx).is_none());
    g.tick(3000, &CONFIG);
    let joined = answer(&mut rx).expect("join completes after the delay");
    assert_eq!((joined.error, joined.generation), (codes::NONE, 1));
    assert_eq!(joined.leader, id);
    assert_eq!(joined.members.len(), 1);
    let s = answer(&mut sync(g, &id, 1, &[(&id, b"a0")], 3000)).expect("leader's sync answers");
    assert_eq!(s.assignment.as_ref(), b"a0");
    assert_eq!(g.state, State::Stable);
    id
}

#[test]
fn lone_member_joins_after_the_initial_delay_and_syncs() {
    let mut g = Group::new("g");
    stable_with_one(&mut g);
    assert_eq!(
        g.next_deadline_ms(),
        Some(3000 + 10_000),
        "session deadline"
    );
}

#[test]
fn member_id_round_trip_expires_unused_ids() {
    let mut g = Group::new("g");
    let first = answer(&mut g.join(params(""), &CONFIG, 0)).unwrap();
    assert_eq!(first.error, codes::MEMBER_ID_REQUIRED);
    assert!(first.member_id.starts_with("c-"));
    g.tick(10_000, &CONFIG);
    assert!(g.pending.is_empty());
    let late = answer(&mut g.join(params(&first.member_id), &CONFIG, 10_001)).unwrap();
    assert_eq!(late.error, codes::UNKNOWN_MEMBER_ID);
}

#[test]
fn second_member_triggers_rebalance_and_leader_assigns_both() {
    let mut g = Group::new("g");
    let a = stable_with_one(&mut g);
    let (b, mut b_join) = join_new(&mut g, 4000);
    assert_eq!(g.state, State::PreparingRebalance);
    assert_eq!(g.heartbeat(&a, None, 1, 4100), codes::REBALANCE_IN_PROGRESS);
    let mut a_join = g.join(params(&a), &CONFIG, 4200);
    let ja = answer(&mut a_join).expect("everyone rejoined: completes at once");
    let jb = answer(&mut b_join).unwrap();
    assert_eq!((ja.generation, jb.generation), (2, 2));
    assert_eq!(ja.leader, a);
    assert_eq!(ja.members.len(), 2, "leader gets all members");
    assert!(jb.members.is_empty());
    assert_eq!(g.state, State::CompletingRebalance);
    let mut b_sync = sync(&mut g, &b, 2, &[], 4300);
    assert!(
        answer(&mut b_sync).is_none(),
        "follower waits for the leader"
    );
    let mut a_sync = sync(&mut g, &a, 2, &[(&a, b"pa"), (&b, b"pb")], 4300);
    assert_eq!(answer(&mut a_sync).unwrap().assignment.as_ref(), b"pa");
    assert_eq!(answer(&mut b_sync).unwrap().assignment.as_ref(), b"pb");
    assert_eq!(g.state, State::Stable);
    assert_eq!(g.heartbeat(&b, None, 1, 4400), codes::ILLEGAL_GENERATION);
    assert_eq!(
        g.heartbeat("nobody", None, 2, 4300),
        codes::UNKNOWN_MEMBER_ID
    );
    assert_eq!(g.heartbeat(&b, None, 2, 4300), codes::NONE);
}

#[test]
fn member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
    let mut g = Group::new("g");
    let a = stable_with_one(&mut g);
    // a keeps heartbeating (told to rejoin) but never rejoins.
    let (b, mut b_join) = join_new(&mut g, 4000);
    for now in (5000..64_000).step_by(5000) {
        assert_eq!(g.heartbeat(&a, None, 1, now), codes::REBALANCE_IN_PROGRESS);
        g.tick(now, &CONFIG);
    }
    g.tick(4000 + 60_000 - 1, &CONFIG);
    assert!(answer(&mut b_join).is_none());
    g.tick(4000 + 60_000, &CONFIG);
    let jb = answer(&mut b_join).unwrap();
    assert_eq!(jb.error, codes::NONE);
    assert_eq!(jb.leader, b, "leadership moves to a member that rejoined");
    assert!(g.member(&a).is_none());
}

#[test]
fn session_expiry_removes_a_silent_member_and_rebalances() {
    let mut g = Group::new("g");
    let a = stable_with_one(&mut g);
    let (b, mut b_join) = join_new(&mut g, 4000);
    drop(g.join(params(&a), &CONFIG, 4000));
    answer(&mut b_join).unwrap();
    drop(sync(&mut g, &a, 2, &[], 4000));
    assert_eq!(g.state, State::Stable);
    // a heartbeats, b goes silent.
    assert_eq!(g.heartbeat(&a, None, 2, 12_000), codes::NONE);
    g.tick(14_000, &CONFIG);
    assert!(g.member(&b).is_none());
    assert_eq!(g.state, State::PreparingRebalance);
    let mut a_join = g.join(params(&a), &CONFIG, 14_100);
    assert_eq!(answer(&mut a_join).unwrap().generation, 3);
}

#[test]
fn leaving_last_member_empties_the_group() {
    let mut g = Group::new("g");
    let a = stable_with_one(&mut g);
    assert_eq!(g.leave(&a, None, 5000, &CONFIG), codes::NONE);
    assert_eq!(g.state, State::Empty);
    assert_eq!(g.generation, 2);
    assert_eq!(g.leave(&a, None, 5000, &CONFIG), codes::UNKNOWN_MEMBER_ID);
}

#[test]
fn leave_during_sync_fails_the_waiters_and_rebalances() {
    let mut g = Group::new("g");
    let a = stable_with_one(&mut g);
    let (b, _b_join) = join_new(&mut g, 4000);
    drop(g.join(params(&a), &CONFIG, 4000));
    let mut a_sync = sync(&mut g, &b, 2, &[], 4000);
    assert_eq!(g.leave(&b, None, 4100, &CONFIG), codes::NONE);
    assert_eq!(answer(&mut a_sync).unwrap().error, codes::UNKNOWN_MEMBER_ID);
    assert_eq!(g.state, State::PreparingRebalance);
}

#[test]
fn protocols_must_overlap_and_the_common_one_is_chosen() {
    let mut g = Group::new("g");
    let mut p = params("");
    p.require_known_member_id = false;
    p.protocols = vec![
        ("roundrobin".into(), Bytes::new()),
        ("range".into(), Bytes::new()),
    ];
    let mut a = g.join(p.clone(), &CONFIG, 0);
    let mut q = p.clone();
    q.protocols = vec![("range".into(), Bytes::new())];
    let mut b = g.join(q, &CONFIG, 0);
    let mut other_type = p.clone();
    other_type.protocol_type = "connect".into();
    let bad = answer(&mut g.join(other_type, &CONFIG, 0)).unwrap();
    assert_eq!(bad.error, codes::INCONSISTENT_GROUP_PROTOCOL);
    let mut disjoint = p.clone();
    disjoint.protocols = vec![("sticky".into(), Bytes::new())];
    let bad = answer(&mut g.join(disjoint, &CONFIG, 0)).unwrap();
    assert_eq!(bad.error, codes::INCONSISTENT_GROUP_PROTOCOL);
    g.tick(3000, &CONFIG);
    assert!(answer(&mut a).is_none(), "b arrived during the delay");
    g.tick(6000, &CONFIG);
    let ja = answer(&mut a).unwrap();
    assert_eq!(ja.protocol_name.as_deref(), Some("range"));
    assert_eq!(answer(&mut b).unwrap().generation, 1);
}

#[test]
fn initial_delay_extends_while_members_keep_arriving() {
    let mut g = Group::new("g");
    let (_, mut a) = join_new(&mut g, 0);
    let (_, mut b) = join_new(&mut g, 100);
    g.tick(3000, &CONFIG);
    assert!(answer(&mut a).is_none(), "a new member arrived: wait again");
    g.tick(6000, &CONFIG);
    assert_eq!(answer(&mut a).unwrap().generation, 1);
    assert_eq!(answer(&mut b).unwrap().generation, 1);
}

#[test]
fn static_member_rejoin_keeps_assignment_and_fences_the_old_id() {
    let mut g = Group::new("g");
    let mut p = params("");
    p.instance_id = Some("i1".into());
    let mut rx = g.join(p.clone(), &CONFIG, 0);
    g.tick(3000, &CONFIG);
    let first = answer(&mut rx).unwrap();
    assert_eq!(
        first.error,
        codes::NONE,
        "static members skip MEMBER_ID_REQUIRED"
    );
    let old = first.member_id.clone();
    drop(sync(&mut g, &old, 1, &[(&old, b"x")], 3000));
    let (b, mut b_join) = join_new(&mut g, 3100);
    drop(g.join(
        JoinParams {
            member_id: old.clone(),
            ..p.clone()
        },
        &CONFIG,
        3100,
    ));
    answer(&mut b_join).unwrap();
    drop(sync(&mut g, &old, 2, &[(&old, b"x"), (&b, b"y")], 3100));
    assert_eq!(g.state, State::Stable);
    // The leader's instance restarts with no member id and a JoinGroup
    // before v9: no rebalance; it is answered as a follower (the leader id
    // is its old member id) and gets its assignment from SyncGroup.
    let again = answer(&mut g.join(p.clone(), &CONFIG, 3200)).expect("no rebalance");
    assert_eq!((again.error, again.generation), (codes::NONE, 2));
    assert_eq!(again.leader, old);
    assert!(again.members.is_empty() && !again.skip_assignment);
    assert_eq!(g.state, State::Stable);
    let got = answer(&mut sync(&mut g, &again.member_id, 2, &[], 3200)).unwrap();
    assert_eq!(got.assignment.as_ref(), b"x");
    // With v9 the leader is told who it is and to skip the assignment.
    let mut v9 = p.clone();
    v9.supports_skip_assignment = true;
    let third = answer(&mut g.join(v9, &CONFIG, 3300)).expect("no rebalance");
    assert_eq!(third.leader, third.member_id);
    assert!(third.skip_assignment && third.members.len() == 2);
    assert_eq!(g.state, State::Stable);
    assert_eq!(
        g.heartbeat(&old, Some("i1"), 2, 3200),
        codes::FENCED_INSTANCE_ID
    );
    assert_eq!(
        g.leave(&old, Some("i1"), 3200, &CONFIG),
        codes::FENCED_INSTANCE_ID
    );
}

#[test]
fn static_follower_rejoin_in_stable_gets_its_assignment_back() {
    let mut g = Group::new("g");
    let leader = stable_with_one(&mut g);
    let mut p = params("");
    p.instance_id = Some("i1".into());
    let mut s_join = g.join(p.clone(), &CONFIG, 4000);
    drop(g.join(params(&leader), &CONFIG, 4000));
    let s = answer(&mut s_join).unwrap().member_id;
    drop(sync(
        &mut g,
        &leader,
        2,
        &[(&leader, b"l"), (&s, b"s")],
        4000,
    ));
    assert_eq!(g.state, State::Stable);
    let rejoined = answer(&mut g.join(p, &CONFIG, 5000)).expect("no rebalance");
    assert_eq!((rejoined.error, rejoined.generation), (codes::NONE, 2));
    assert_ne!(rejoined.member_id, s);
    assert_eq!(g.state, State::Stable);
    let got = answer(&mut sync(&mut g, &rejoined.member_id, 2, &[], 5000)).unwrap();
    assert_eq!(got.assignment.as_ref(), b"s");
    assert_eq!(g.check_member(&s, Some("i1"), 2), codes::FENCED_INSTANCE_ID);
}

#[test]
fn session_timeout_bounds_are_enforced() {
    let mut g = Group::new("g");
    let mut p = params("");
    p.session_timeout_ms = 10;
    let r = answer(&mut g.join(p, &CONFIG, 0)).unwrap();
    assert_eq!(r.error, codes::INVALID_SESSION_TIMEOUT);
}

#[test]
fn a_stable_group_restored_from_its_record_carries_on_without_a_rebalance() {
    let mut g = Group::new("g");
    let leader = stable_with_one(&mut g);
    let (other, mut other_join) = join_new(&mut g, 4000);
    drop(g.join(params(&leader), &CONFIG, 4000));
    answer(&mut other_join).unwrap();
    drop(sync(
        &mut g,
        &leader,
        2,
        &[(&leader, b"l"), (&other, b"o")],
        4000,
    ));
    assert_eq!(g.state, State::Stable);

    let mut restored = Group::new("g");
    restored.restore(&g.metadata(4000), 10_000, &CONFIG);
    assert_eq!((restored.state, restored.generation), (State::Stable, 2));
    assert_eq!(restored.heartbeat(&other, None, 2, 10_000), codes::NONE);
    let got = answer(&mut sync(&mut restored, &other, 2, &[], 10_000)).unwrap();
    assert_eq!(got.assignment.as_ref(), b"o");
    // A member that never comes back is dropped when its fresh session ends.
    assert_eq!(restored.heartbeat(&leader, None, 2, 15_000), codes::NONE);
    restored.tick(20_001, &CONFIG);
    assert_eq!(restored.state, State::PreparingRebalance);
}

#[test]
fn a_group_recorded_before_its_assignment_rebalances_when_restored() {
    let mut g = Group::new("g");
    let (_, mut rx) = join_new(&mut g, 0);
    g.tick(3000, &CONFIG);
    answer(&mut rx).unwrap();
    assert_eq!(g.state, State::CompletingRebalance);
    let mut restored = Group::new("g");
    restored.restore(&g.metadata(3000), 5000, &CONFIG);
    assert_eq!(restored.state, State::PreparingRebalance);
    // A tombstone leaves an empty group behind.
    restored.restore(&Default::default(), 5000, &CONFIG);
    assert_eq!(restored.state, State::Empty);
    assert!(restored.members.is_empty());
}

#[test]
fn a_leader_that_never_syncs_is_removed_at_the_rebalance_timeout() {
    let mut g = Group::new("g");
    let leader = stable_with_one(&mut g);
    let (other, mut other_join) = join_new(&mut g, 4000);
    drop(g.join(params(&leader), &CONFIG, 4000));
    assert_eq!(answer(&mut other_join).unwrap().generation, 2);
    assert_eq!(g.state, State::CompletingRebalance);
    let mut waiting = sync(&mut g, &other, 2, &[], 4000);
    // The leader keeps its session alive but never sends SyncGroup.
    for t in [10_000, 20_000, 30_000, 40_000, 50_000, 60_000] {
        assert_eq!(g.heartbeat(&leader, None, 2, t), codes::NONE);
        g.tick(t, &CONFIG);
    }
    assert!(answer(&mut waiting).is_none());
    g.tick(4000 + 60_000, &CONFIG);
    assert_eq!(
        answer(&mut waiting).unwrap().error,
        codes::REBALANCE_IN_PROGRESS
    );
    assert!(g.member(&leader).is_none(), "the leader was removed");
    assert_eq!(g.state, State::PreparingRebalance);
}

#[test]
fn a_static_member_replaced_in_stable_changes_what_is_recorded() {
    let mut g = Group::new("g");
    let mut p = params("");
    p.instance_id = Some("i1".into());
    let mut rx = g.join(p.clone(), &CONFIG, 0);
    g.tick(3000, &CONFIG);
    let old = answer(&mut rx).unwrap().member_id;
    drop(sync(&mut g, &old, 1, &[(&old, b"x")], 3000));
    let before = g.persisted_view();
    let again = answer(&mut g.join(p, &CONFIG, 4000)).expect("no rebalance");
    assert_ne!(again.member_id, old);
    assert_ne!(
        g.persisted_view(),
        before,
        "the new member id must be written"
    );
    // Restored from what is written now, the live member is not fenced.
    let mut restored = Group::new("g");
    restored.restore(&g.metadata(4000), 5000, &CONFIG);
    assert_eq!(
        restored.heartbeat(&again.member_id, Some("i1"), 1, 5000),
        codes::NONE
    );
}

#[test]
fn a_restored_member_that_never_returns_does_not_hold_up_the_next_join() {
    let mut g = Group::new("g");
    let (_, mut rx) = join_new(&mut g, 0);
    g.tick(3000, &CONFIG);
    answer(&mut rx).unwrap();
    // Recorded at the end of the join phase, before any assignment.
    let mut restored = Group::new("g");
    restored.restore(&g.metadata(3000), 10_000, &CONFIG);
    assert_eq!(restored.state, State::PreparingRebalance);
    let (fresh, mut fresh_join) = join_new(&mut restored, 10_500);
    // The timer's ticks: the old member's fresh session (10 s) ends and the
    // join completes without it, long before the rebalance timeout (60 s).
    let mut now = 10_500;
    while let Some(next) = restored.next_deadline_ms().filter(|d| *d <= 20_001) {
        now = next.max(now);
        restored.tick(now, &CONFIG);
    }
    let joined = answer(&mut fresh_join).expect("join completes once the old session ends");
    assert!(now <= 20_000, "completed at {now}");
    assert_eq!(joined.error, codes::NONE);
    assert_eq!(joined.leader, fresh);
    assert_eq!(restored.members.len(), 1);
}
