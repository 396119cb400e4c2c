//! Joining a generation: JoinGroup (with the v4+ MEMBER_ID_REQUIRED round trip), the
//! leader's assignment, SyncGroup. [`join_once`] makes one attempt; what a failure means
//! (rejoin at once, back off, find the coordinator, give up) is [`next_step`]'s, kept pure
//! so it is tested without a broker.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;

use super::assignor::{check_assignment, Assignor, MemberAssignment, MemberSubscription};
use super::codes;
use super::coordinator::{Coordinator, Identity, JoinRequest};
use super::heartbeat::Rejoin;
use super::protocol::{self, Assignment, Subscription};
use crate::client::Client;
use crate::error::{Error, KafkaCode, Result};

/// What a join needs besides the member's identity.
pub struct JoinContext<'a> {
    pub client: &'a Client,
    pub assignor: &'a dyn Assignor,
    /// Sorted, no duplicates.
    pub topics: &'a [String],
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// Why we (re)join; sent with JoinGroup v8+.
    pub reason: &'a str,
}

/// One JoinGroup and SyncGroup, giving this member's assignment. `id` takes the member id and generation the coordinator
/// gives as they come, so a failed attempt leaves what the next one needs.
pub async fn join_once(
    ctx: &JoinContext<'_>,
    coordinator: &Coordinator,
    id: &mut Identity,
) -> Result<Assignment> {
    let subscription = Subscription {
        topics: ctx.topics.to_vec(),
        user_data: ctx.assignor.subscription_user_data(),
        // Eager protocol: everything was given up before this join.
        owned: Vec::new(),
        generation_id: id.generation_id,
    };
    let metadata = protocol::encode_subscription(&subscription)?;
    let context = format!("join group {:?}", id.group_id);
    // At most two JoinGroups: the first may only hand out our member id (KIP-394).
    let mut response = None;
    for _ in 0..2 {
        let join = JoinRequest {
            session_timeout_ms: ctx.session_timeout_ms,
            rebalance_timeout_ms: ctx.rebalance_timeout_ms,
            protocol: ctx.assignor.name(),
            metadata: metadata.clone(),
            reason: ctx.reason,
        };
        let r = coordinator.join(id, join).await?;
        let code = KafkaCode(r.error_code);
        if code == codes::MEMBER_ID_REQUIRED && id.member_id.is_empty() {
            id.member_id = r.member_id.to_string();
            continue;
        }
        code.check(&context)?;
        response = Some(r);
        break;
    }
    let Some(response) = response else {
        return Err(Error::Kafka {
            code: codes::MEMBER_ID_REQUIRED,
            context,
            message: Some("the coordinator asked for a member id twice".into()),
        });
    };
    id.member_id = response.member_id.to_string();
    id.generation_id = response.generation_id;
    let leader = response.leader == response.member_id;
    tracing::info!(group = %id.group_id, member = %id.member_id, generation = id.generation_id,
        leader, "joined group");
    let assignments = if leader && !response.skip_assignment {
        assign(ctx, &response.members).await?
    } else {
        Vec::new()
    };
    let sync = coordinator
        .sync(id, ctx.assignor.name(), assignments)
        .await?;
    KafkaCode(sync.error_code).check(format!(
        "sync group {:?} (generation {})",
        id.group_id, id.generation_id
    ))?;
    let what = format!("assignment of member {:?}", id.member_id);
    protocol::decode_assignment(&sync.assignment, &what)
}

/// The leader's part: everyone's subscription, Metadata of every subscribed topic, the
/// assignor, and one encoded assignment per member (empty for those it left out).
async fn assign(
    ctx: &JoinContext<'_>,
    members: &[JoinGroupResponseMember],
) -> Result<Vec<(String, Bytes)>> {
    let subscriptions = members
        .iter()
        .map(|m| {
            let what = format!("subscription of member {:?}", m.member_id.as_str());
            let s = protocol::decode_subscription(&m.metadata, &what)?;
            Ok(MemberSubscription {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
                topics: s.topics,
                user_data: s.user_data,
                owned: s.owned,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let topics: BTreeSet<&str> = subscriptions
        .iter()
        .flat_map(|s| s.topics.iter().map(String::as_str))
        .collect();
    let topics: Vec<&str> = topics.into_iter().collect();
    let metadata = ctx.client.metadata(Some(&topics)).await?;
    // Topics that do not exist (yet) are left out, as Java's leader does.
    let partition_counts: BTreeMap<String, i32> = metadata
        .topics
        .iter()
        .filter(|t| t.error.is_ok() && !t.partitions.is_empty())
        .map(|t| (t.name.clone(), t.partitions.len() as i32))
        .collect();
    let name = ctx.assignor.name();
    let assignment = ctx.assignor.assign(&subscriptions, &partition_counts)?;
    check_assignment(name, &subscriptions, &partition_counts, &assignment)?;
    tracing::info!(
        assignor = name,
        members = subscriptions.len(),
        ?partition_counts,
        "assigned partitions as the group leader"
    );
    subscriptions
        .iter()
        .map(|s| {
            let a = assignment.get(&s.member_id).cloned().unwrap_or_default();
            let MemberAssignment {
                partitions,
                user_data,
            } = a;
            let bytes = protocol::encode_assignment(&Assignment {
                partitions,
                user_data,
            })?;
            Ok((s.member_id.clone(), bytes))
        })
        .collect()
}

/// What to do after a failed join attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Join again at once, after resetting what the [`Rejoin`] says.
    Rejoin(Rejoin),
    /// Wait `retry.backoff.ms`, then join again (the coordinator is loading).
    Backoff,
    /// The coordinator moved or cannot be reached: find it, then join again.
    FindCoordinator,
    /// No retry can help: another instance took our `group.instance.id`.
    Fatal,
    /// Hand the error to the caller (configuration, authorization, the assignor).
    Fail,
}

pub fn next_step(error: &Error) -> Step {
    match error.kafka_code() {
        Some(codes::REBALANCE_IN_PROGRESS) => Step::Rejoin(Rejoin::Requested),
        Some(codes::ILLEGAL_GENERATION) => Step::Rejoin(Rejoin::ResetGeneration),
        Some(codes::UNKNOWN_MEMBER_ID | codes::MEMBER_ID_REQUIRED) => {
            Step::Rejoin(Rejoin::ResetMember)
        }
        Some(codes::FENCED_INSTANCE_ID) => Step::Fatal,
        Some(codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE) => Step::FindCoordinator,
        Some(code) if code.is_retriable() => Step::Backoff,
        Some(_) => Step::Fail,
        // Connection refused, closed, timed out.
        None if error.is_retriable() => Step::FindCoordinator,
        None => Step::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(code: KafkaCode) -> Error {
        code.check("test").unwrap_err()
    }

    #[test]
    fn group_errors_map_to_kafka_consumer_behaviour() {
        let cases = [
            (
                codes::REBALANCE_IN_PROGRESS,
                Step::Rejoin(Rejoin::Requested),
            ),
            (
                codes::ILLEGAL_GENERATION,
                Step::Rejoin(Rejoin::ResetGeneration),
            ),
            (codes::UNKNOWN_MEMBER_ID, Step::Rejoin(Rejoin::ResetMember)),
            (codes::FENCED_INSTANCE_ID, Step::Fatal),
            (codes::NOT_COORDINATOR, Step::FindCoordinator),
            (codes::COORDINATOR_NOT_AVAILABLE, Step::FindCoordinator),
            (codes::COORDINATOR_LOAD_IN_PROGRESS, Step::Backoff),
            (codes::INCONSISTENT_GROUP_PROTOCOL, Step::Fail),
            (codes::INVALID_SESSION_TIMEOUT, Step::Fail),
        ];
        for (code, step) in cases {
            assert_eq!(next_step(&kafka(code)), step, "{code}");
        }
    }

    #[test]
    fn connection_errors_look_for_the_coordinator_again() {
        let closed = Error::ConnectionClosed {
            addr: "b:9092".into(),
            in_flight: true,
        };
        assert_eq!(next_step(&closed), Step::FindCoordinator);
        assert_eq!(next_step(&Error::Config("x".into())), Step::Fail);
    }
}
