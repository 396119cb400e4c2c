//! The consumer protocol inside the [`GroupCoordinator`]: one id, one
//! kind of group; OffsetCommit checks member epochs.

use bytes::Bytes;

use super::*;
use crate::group::{CommitPartition, GroupConfig, GroupCoordinator, JoinParams};

fn commit(g: &GroupCoordinator, member: &str, epoch: i32) -> Result<Vec<i16>, i16> {
    let p = CommitPartition {
        topic: "a".into(),
        partition: 0,
        offset: 42,
        leader_epoch: -1,
        metadata: None,
    };
    g.commit("g", member, None, epoch, &[p]).map(|c| c.errors)
}

fn classic_join(g: &GroupCoordinator) -> i16 {
    let p = JoinParams {
        group_id: "g".into(),
        client_id: "classic".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::new())],
        ..JoinParams::default()
    };
    let mut rx = g.join(p);
    rx.try_recv().map(|r| r.error).unwrap_or(codes::NONE)
}

#[test]
fn commits_carry_the_member_epoch() {
    let g = GroupCoordinator::new(GroupConfig::default());
    let t = topics(&[("a", 1, 2)]);
    let answer = g
        .consumer_heartbeat(join("m1", &["a"]), &t, &config())
        .unwrap();
    assert_eq!(answer.member_epoch, 1);
    assert_eq!(commit(&g, "m1", 1), Ok(vec![codes::NONE]));
    assert_eq!(commit(&g, "m1", 0), Err(errors::STALE_MEMBER_EPOCH));
    assert_eq!(commit(&g, "m2", 1), Err(codes::UNKNOWN_MEMBER_ID));
    // A commit from outside the group needs it empty.
    assert_eq!(commit(&g, "", -1), Err(codes::UNKNOWN_MEMBER_ID));
    assert_eq!(g.fetch("g", None).len(), 1);
    assert_eq!(g.consumer_offsets_check("g", "m1", 1), Some(codes::NONE));
    assert_eq!(g.consumer_offsets_check("other", "m1", 1), None);

    let leave = beat("m1", LEAVE_EPOCH, &Assignment::new());
    g.consumer_heartbeat(leave, &t, &config()).unwrap();
    assert_eq!(commit(&g, "", -1), Ok(vec![codes::NONE]));
    // The empty consumer group is listed as such, not as a classic one.
    assert_eq!(
        g.list_consumer(),
        vec![("g".to_string(), GroupState::Empty)]
    );
    assert!(g.list().is_empty());
}

#[test]
fn a_group_id_is_classic_or_consumer() {
    let g = GroupCoordinator::new(GroupConfig::default());
    let t = topics(&[("a", 1, 2)]);
    g.consumer_heartbeat(join("m1", &["a"]), &t, &config())
        .unwrap();
    assert_eq!(classic_join(&g), codes::INCONSISTENT_GROUP_PROTOCOL);

    let g = GroupCoordinator::new(GroupConfig::default());
    assert_eq!(classic_join(&g), codes::NONE);
    let refused = g
        .consumer_heartbeat(join("m1", &["a"]), &t, &config())
        .unwrap_err();
    assert_eq!(refused.code, codes::GROUP_ID_NOT_FOUND);
    assert_eq!(refused.message, "Group g is not a consumer group.");
}

#[test]
fn an_empty_consumer_group_becomes_classic_on_join() {
    let g = GroupCoordinator::new(GroupConfig::default());
    let t = topics(&[("a", 1, 2)]);
    g.consumer_heartbeat(join("m1", &["a"]), &t, &config())
        .unwrap();
    let leave = beat("m1", LEAVE_EPOCH, &Assignment::new());
    g.consumer_heartbeat(leave, &t, &config()).unwrap();
    assert_eq!(classic_join(&g), codes::NONE);
    assert!(g.list_consumer().is_empty());
    assert_eq!(g.list().len(), 1);
}
