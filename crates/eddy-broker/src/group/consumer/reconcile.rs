//! Moves one member towards its target assignment (Kafka's
//! CurrentAssignmentBuilder), sans-io.
//!
//! The rule that keeps a partition from being consumed twice: a member is
//! given a partition only once no other member holds it, assigned or
//! pending revocation; a member that must give partitions up keeps its
//! epoch and gets nothing new until it acknowledges the revocation by
//! reporting owned partitions without them.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::member::{ConsumerMember, MemberState};
use super::Assignment;

/// The group-wide facts reconciliation reads.
pub struct Target<'a> {
    pub epoch: i32,
    pub assignment: &'a Assignment,
    /// Whether another member than the one reconciled holds a partition.
    pub held_by_other: &'a dyn Fn(Uuid, i32) -> bool,
}

/// Reconciles `m`. `owned` is what the member reported owning in this
/// heartbeat (None: it did not say, so it is assumed to own everything).
pub fn reconcile(m: &mut ConsumerMember, target: &Target<'_>, owned: Option<&Assignment>) {
    match m.state {
        MemberState::Stable => {
            if m.epoch != target.epoch {
                next(m, m.epoch, target, owned);
            }
        }
        MemberState::UnreleasedPartitions => next(m, m.epoch, target, owned),
        MemberState::UnrevokedPartitions => {
            if owns_any(owned, &m.revoking) {
                return;
            }
            // Revoked: the member moves one epoch on (never past the target)
            // and is brought towards the latest target.
            m.revoking.clear();
            let epoch = (m.epoch + 1).min(target.epoch);
            next(m, epoch, target, owned);
        }
    }
}

fn owns_any(owned: Option<&Assignment>, partitions: &Assignment) -> bool {
    let Some(owned) = owned else {
        return !partitions.is_empty();
    };
    partitions.iter().any(|(t, ps)| {
        owned
            .get(t)
            .is_some_and(|o| ps.iter().any(|p| o.contains(p)))
    })
}

fn next(m: &mut ConsumerMember, epoch: i32, target: &Target<'_>, owned: Option<&Assignment>) {
    let mut assigned = Assignment::new();
    let mut revoking = Assignment::new();
    let mut pending = Assignment::new();
    let mut unreleased = false;
    let topics: BTreeSet<Uuid> = m
        .assigned
        .keys()
        .chain(target.assignment.keys())
        .copied()
        .collect();
    let empty = BTreeSet::new();
    for topic in topics {
        let want = target.assignment.get(&topic).unwrap_or(&empty);
        let have = m.assigned.get(&topic).unwrap_or(&empty);
        let keep: BTreeSet<i32> = have.intersection(want).copied().collect();
        let give: BTreeSet<i32> = have.difference(&keep).copied().collect();
        let mut get: BTreeSet<i32> = want.difference(&keep).copied().collect();
        let before = get.len();
        get.retain(|p| !(target.held_by_other)(topic, *p));
        unreleased |= get.len() != before;
        for (set, parts) in [
            (&mut assigned, keep),
            (&mut revoking, give),
            (&mut pending, get),
        ] {
            if !parts.is_empty() {
                set.insert(topic, parts);
            }
        }
    }
    m.revoking.clear();
    if !revoking.is_empty() && owns_any(owned, &revoking) {
        m.state = MemberState::UnrevokedPartitions;
        m.set_epoch(epoch);
        m.assigned = assigned;
        m.revoking = revoking;
        return;
    }
    for (topic, parts) in pending {
        assigned.entry(topic).or_default().extend(parts);
    }
    m.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    m.set_epoch(target.epoch);
    m.assigned = assigned;
}
