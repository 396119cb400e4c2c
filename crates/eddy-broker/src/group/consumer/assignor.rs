//! Server-side assignors of the consumer protocol (KIP-848): `uniform`
//! (the default) and `range`. An assignor maps the group's subscriptions
//! and the subscribed topics' partitions to a target assignment; it is a
//! pure function, so the coordinator can recompute the target whenever the
//! group epoch moves.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::Assignment;

/// The assignors Eddy has, by the names clients send in `ServerAssignor`.
pub const NAMES: &[&str] = &["uniform", "range"];

/// One member as an assignor sees it: the ids of the topics it subscribes to.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    pub topics: BTreeSet<Uuid>,
}

/// What an assignor needs: members by id, partition counts by topic id, and
/// the current target so that partitions can stay where they are.
pub struct Spec<'a> {
    pub members: &'a BTreeMap<String, MemberSpec>,
    pub partitions: &'a BTreeMap<Uuid, i32>,
    pub current: &'a BTreeMap<String, Assignment>,
}

/// The canonical name of an assignor: Kafka's class names are accepted too.
pub fn canonical(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    NAMES.iter().copied().find(|n| {
        lower == *n || lower.ends_with(&format!(".{n}assignor")) || lower == format!("{n}assignor")
    })
}

/// Runs the named assignor (canonical name; anything else is `uniform`).
pub fn assign(name: &str, spec: &Spec<'_>) -> BTreeMap<String, Assignment> {
    match name {
        "range" => range(spec),
        _ => uniform(spec),
    }
}

/// Contiguous ranges per topic over the members subscribed to it, sorted by
/// member id: with P partitions and N members, the first P % N members get
/// one more. Same input, same output: members keep their ranges while the
/// membership does not change.
pub fn range(spec: &Spec<'_>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = spec
        .members
        .keys()
        .map(|id| (id.clone(), Assignment::new()))
        .collect();
    for (topic, count) in spec.partitions {
        let subscribed: Vec<&String> = spec
            .members
            .iter()
            .filter(|(_, m)| m.topics.contains(topic))
            .map(|(id, _)| id)
            .collect();
        if subscribed.is_empty() {
            continue;
        }
        let n = subscribed.len() as i32;
        let (quota, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, id) in subscribed.into_iter().enumerate() {
            let take = quota + i32::from((i as i32) < extra);
            if take > 0 {
                let parts = out.get_mut(id).expect("every member has an entry");
                parts.insert(*topic, (next..next + take).collect());
            }
            next += take;
        }
    }
    out
}

/// Balanced and sticky: every partition stays with its current target
/// owner while that owner still subscribes to its topic, the rest go to the
/// least loaded eligible member, and then partitions move one at a time
/// from a member to an eligible one with at least two fewer until none can.
/// Each move lowers the sum of squared loads, so the loop ends; with equal
/// subscriptions the result is balanced to within one partition.
pub fn uniform(spec: &Spec<'_>) -> BTreeMap<String, Assignment> {
    let mut owner: BTreeMap<(Uuid, i32), String> = BTreeMap::new();
    let mut load: BTreeMap<&str, usize> = spec.members.keys().map(|id| (id.as_str(), 0)).collect();
    let eligible = |id: &str, topic: &Uuid| {
        spec.members
            .get(id)
            .is_some_and(|m| m.topics.contains(topic))
    };
    for (id, parts) in spec.current {
        for (topic, ps) in parts {
            let count = spec.partitions.get(topic).copied().unwrap_or(0);
            if !eligible(id, topic) {
                continue;
            }
            for p in ps.iter().filter(|p| **p < count) {
                owner.insert((*topic, *p), id.clone());
                *load
                    .get_mut(id.as_str())
                    .expect("eligible members are loaded") += 1;
            }
        }
    }
    // Topics with the fewest eligible members first, so the flexible
    // partitions are placed last.
    let mut topics: Vec<(&Uuid, i32, usize)> = spec
        .partitions
        .iter()
        .map(|(t, n)| {
            (
                t,
                *n,
                spec.members
                    .values()
                    .filter(|m| m.topics.contains(t))
                    .count(),
            )
        })
        .filter(|(_, _, eligible)| *eligible > 0)
        .collect();
    topics.sort_by_key(|(t, _, eligible)| (*eligible, **t));
    for (topic, count, _) in &topics {
        for p in 0..*count {
            if owner.contains_key(&(**topic, p)) {
                continue;
            }
            let target = least_loaded(&load, |id| eligible(id, topic), None);
            if let Some(id) = target {
                owner.insert((**topic, p), id.to_string());
                *load.get_mut(id).expect("chosen from load") += 1;
            }
        }
    }
    rebalance(&mut owner, &mut load, &eligible);
    let mut out: BTreeMap<String, Assignment> = spec
        .members
        .keys()
        .map(|id| (id.clone(), Assignment::new()))
        .collect();
    for ((topic, p), id) in owner {
        if let Some(a) = out.get_mut(&id) {
            a.entry(topic).or_default().insert(p);
        }
    }
    out
}

/// The eligible member with the smallest load (ties: smallest id), below
/// `below` when given.
fn least_loaded<'a>(
    load: &BTreeMap<&'a str, usize>,
    eligible: impl Fn(&str) -> bool,
    below: Option<usize>,
) -> Option<&'a str> {
    load.iter()
        .filter(|(id, l)| eligible(id) && below.is_none_or(|b| **l < b))
        .min_by_key(|(id, l)| (**l, **id))
        .map(|(id, _)| *id)
}

/// Moves partitions from the most loaded members to eligible members with
/// at least two fewer, one at a time.
fn rebalance(
    owner: &mut BTreeMap<(Uuid, i32), String>,
    load: &mut BTreeMap<&str, usize>,
    eligible: &impl Fn(&str, &Uuid) -> bool,
) {
    loop {
        let mut donors: Vec<(&str, usize)> = load.iter().map(|(id, l)| (*id, *l)).collect();
        donors.sort_by_key(|(id, l)| (std::cmp::Reverse(*l), *id));
        let mut moved = None;
        'search: for (donor, donor_load) in donors {
            if donor_load < 2 {
                break;
            }
            // The donor's partitions from the highest, so the low ones stay put.
            for ((topic, p), _) in owner.iter().rev().filter(|(_, o)| o.as_str() == donor) {
                let to = least_loaded(load, |id| eligible(id, topic), Some(donor_load - 1));
                if let Some(to) = to {
                    moved = Some(((*topic, *p), donor, to));
                    break 'search;
                }
            }
        }
        let Some((key, from, to)) = moved else {
            return;
        };
        let (from, to) = (from.to_string(), to.to_string());
        owner.insert(key, to.clone());
        *load.get_mut(from.as_str()).expect("donor is loaded") -= 1;
        *load.get_mut(to.as_str()).expect("receiver is loaded") += 1;
    }
}
