//! Consumer groups against a live broker: members split a topic, rebalance when one joins,
//! leaves or dies, resume at the group's committed offsets, carry an assignor's user data,
//! and a member of an old generation cannot commit.
//!
//! Each member runs in its own task (a JoinGroup waits for the others, so members cannot
//! take turns on one task) and writes what it sees to a shared timeline, in the order seen.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use eddy_client::group_consumer::codes;
use eddy_client::{
    is_membership_lost, Admin, Assignor, AutoOffsetReset, Client, ConsumerConfig, GroupConsumer,
    GroupConsumerConfig, GroupEvent, MemberAssignment, MemberSubscription, Producer,
    ProducerConfig, ProducerRecord, RangeAssignor, TopicPartition,
};
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
enum Seen {
    Assigned {
        partitions: Vec<TopicPartition>,
        generation_id: i32,
        user_data: Bytes,
    },
    Revoked(Vec<TopicPartition>),
    /// (partition, offset) of each record.
    Records(Vec<(i32, i64)>),
    /// The test stopped the member (to close or drop it): it reads nothing more.
    Stopped,
}

/// What every member saw: (member name, event), in the order seen.
#[derive(Clone, Default)]
struct Timeline(Arc<Mutex<Vec<(String, Seen)>>>);

impl Timeline {
    fn push(&self, member: &str, seen: Seen) {
        self.0.lock().unwrap().push((member.to_owned(), seen));
    }

    fn events(&self) -> Vec<(String, Seen)> {
        self.0.lock().unwrap().clone()
    }

    /// What `member` holds now: its last Assigned, unless a Revoked came after.
    fn holding(&self, member: &str) -> Option<Vec<TopicPartition>> {
        let mut holding = None;
        for (who, seen) in self.events() {
            match seen {
                Seen::Assigned { partitions, .. } if who == member => holding = Some(partitions),
                Seen::Revoked(_) | Seen::Stopped if who == member => holding = None,
                _ => {}
            }
        }
        holding
    }

    /// The generation of `member`'s last Assigned.
    fn generation(&self, member: &str) -> Option<i32> {
        let mut generation = None;
        for (who, seen) in self.events() {
            if let Seen::Assigned { generation_id, .. } = seen {
                if who == member {
                    generation = Some(generation_id);
                }
            }
        }
        generation
    }

    /// Every (partition, offset) consumed, by anyone, with repeats.
    fn consumed(&self) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (_, seen) in self.events() {
            if let Seen::Records(records) = seen {
                out.extend(records);
            }
        }
        out
    }

    fn count(&self, member: &str, pick: fn(&Seen) -> bool) -> usize {
        self.events()
            .iter()
            .filter(|(who, seen)| who == member && pick(seen))
            .count()
    }

    /// Replays the timeline: no partition is assigned to a member while another holds it.
    fn assert_never_owned_twice(&self) {
        let mut owner: BTreeMap<TopicPartition, String> = BTreeMap::new();
        for (who, seen) in self.events() {
            match seen {
                Seen::Assigned { partitions, .. } => {
                    for tp in partitions {
                        if let Some(other) = owner.insert(tp.clone(), who.clone()) {
                            panic!("{tp} assigned to {who} while {other} held it");
                        }
                    }
                }
                Seen::Revoked(partitions) => {
                    for tp in partitions {
                        assert_eq!(owner.remove(&tp).as_deref(), Some(who.as_str()));
                    }
                }
                Seen::Stopped => owner.retain(|_, holder| *holder != who),
                Seen::Records(_) => {}
            }
        }
    }

    async fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&Timeline) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not after {limit:?}; timeline: {:#?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A member polling in its own task, committing after every batch of records.
struct Member {
    name: String,
    timeline: Timeline,
    stop: Arc<AtomicBool>,
    task: JoinHandle<GroupConsumer>,
}

impl Member {
    fn spawn(name: &str, consumer: GroupConsumer, timeline: Timeline) -> Member {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run(
            name.to_owned(),
            consumer,
            timeline.clone(),
            stop.clone(),
        ));
        Member {
            name: name.to_owned(),
            timeline,
            stop,
            task,
        }
    }

    /// Stops polling (after the current poll) and hands the consumer back.
    async fn stop(self) -> GroupConsumer {
        self.stop.store(true, Ordering::Relaxed);
        let consumer = self.task.await.expect("member task panicked");
        self.timeline.push(&self.name, Seen::Stopped);
        consumer
    }
}

/// A member's poll loop, until `stop`.
async fn run(
    name: String,
    mut consumer: GroupConsumer,
    timeline: Timeline,
    stop: Arc<AtomicBool>,
) -> GroupConsumer {
    while !stop.load(Ordering::Relaxed) {
        let event = consumer.poll().await;
        let event = event.unwrap_or_else(|e| panic!("{name}: poll failed: {e}"));
        match event {
            GroupEvent::Assigned {
                partitions,
                user_data,
                generation_id,
            } => {
                let seen = Seen::Assigned {
                    partitions,
                    generation_id,
                    user_data,
                };
                timeline.push(&name, seen);
            }
            // Everything consumed was committed with its batch.
            GroupEvent::Revoked(partitions) => timeline.push(&name, Seen::Revoked(partitions)),
            GroupEvent::Records(records) if records.is_empty() => {}
            GroupEvent::Records(records) => {
                let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
                for r in &records {
                    next.insert(TopicPartition::new(&r.topic, r.partition), r.offset + 1);
                }
                let seen = records.iter().map(|r| (r.partition, r.offset)).collect();
                timeline.push(&name, Seen::Records(seen));
                let offsets: Vec<(TopicPartition, i64)> = next.into_iter().collect();
                if let Err(e) = consumer.commit(&offsets).await {
                    assert!(is_membership_lost(&e), "{name}: commit failed: {e}");
                    eprintln!("{name}: commit refused (the group moved on): {e}");
                }
            }
        }
    }
    consumer
}

fn config(group: &str) -> GroupConsumerConfig {
    GroupConsumerConfig {
        session_timeout_ms: 6_000, // the broker's minimum
        heartbeat_interval_ms: 500,
        max_poll_interval_ms: 10_000,
        auto_offset_reset: AutoOffsetReset::Earliest,
        consumer: ConsumerConfig {
            fetch_max_wait_ms: 100,
            ..ConsumerConfig::default()
        },
        ..GroupConsumerConfig::new(group)
    }
}

async fn member(client: &Client, config: GroupConsumerConfig, topic: &str) -> GroupConsumer {
    let mut consumer = GroupConsumer::new(client.clone(), config, Arc::new(RangeAssignor))
        .await
        .expect("new group consumer");
    consumer.subscribe(&[topic]).await.unwrap();
    consumer
}

/// `n` records spread over the topic's partitions by key.
async fn produce(client: &Client, topic: &str, from: usize, n: usize) {
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    let mut delivered = Vec::new();
    for i in from..from + n {
        let record = ProducerRecord::new(topic, format!("v{i}")).with_key(format!("k{i}"));
        delivered.push(producer.send(record).await.unwrap());
    }
    for d in delivered {
        d.await.unwrap();
    }
    producer.close().await;
}

fn assert_each_once(consumed: &[(i32, i64)], n: usize) {
    let distinct: BTreeSet<&(i32, i64)> = consumed.iter().collect();
    assert_eq!(
        distinct.len(),
        consumed.len(),
        "some records were read twice"
    );
    assert_eq!(consumed.len(), n, "records consumed");
}

fn tps(topic: &str, partitions: impl IntoIterator<Item = i32>) -> Vec<TopicPartition> {
    partitions
        .into_iter()
        .map(|p| TopicPartition::new(topic, p))
        .collect()
}

fn is_assigned(seen: &Seen) -> bool {
    matches!(seen, Seen::Assigned { .. })
}

fn is_revoked(seen: &Seen) -> bool {
    matches!(seen, Seen::Revoked(_))
}

#[tokio::test]
async fn two_members_split_six_partitions_and_read_each_record_once() {
    let Some(bootstrap) = common::bootstrap("two_members_split_six_partitions") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::create_topic(&client, "group-split", 6).await;
    let group = common::unique_topic("group-split");
    produce(&client, &topic, 0, 600).await;

    let timeline = Timeline::default();
    let a = Member::spawn(
        "a",
        member(&client, config(&group), &topic).await,
        timeline.clone(),
    );
    let b = Member::spawn(
        "b",
        member(&client, config(&group), &topic).await,
        timeline.clone(),
    );
    timeline
        .wait_for("all 600 records read", Duration::from_secs(15), |t| {
            t.consumed().len() >= 600
        })
        .await;

    let (held_a, held_b) = (
        timeline.holding("a").unwrap(),
        timeline.holding("b").unwrap(),
    );
    let mut both = [held_a.clone(), held_b.clone()];
    both.sort();
    assert_eq!(
        both,
        [tps(&topic, 0..3), tps(&topic, 3..6)],
        "range split 3/3"
    );
    timeline.assert_never_owned_twice();

    // Tools see the group as a consumer group with decodable assignments.
    let described = Admin::new(client.clone())
        .describe_group(&group)
        .await
        .unwrap();
    assert_eq!(
        (described.state.as_str(), described.protocol.as_str()),
        ("Stable", "range")
    );
    assert_eq!(described.members.len(), 2);
    for m in &described.members {
        let assigned = m.assignment.as_ref().expect("assignment decodes");
        assert_eq!(assigned.len(), 1);
        assert_eq!(assigned[0].1.len(), 3);
    }

    for m in [a, b] {
        m.stop().await.close().await.unwrap();
    }
    assert_each_once(&timeline.consumed(), 600);
}

#[tokio::test]
async fn a_third_member_joining_makes_both_give_up_before_anyone_takes_over() {
    let Some(bootstrap) = common::bootstrap("a_third_member_joining") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::create_topic(&client, "group-join", 6).await;
    let group = common::unique_topic("group-join");
    produce(&client, &topic, 0, 300).await;

    let timeline = Timeline::default();
    let a = Member::spawn(
        "a",
        member(&client, config(&group), &topic).await,
        timeline.clone(),
    );
    let b = Member::spawn(
        "b",
        member(&client, config(&group), &topic).await,
        timeline.clone(),
    );
    timeline
        .wait_for("a and b hold 3 each", Duration::from_secs(15), |t| {
            t.holding("a").is_some_and(|p| p.len() == 3)
                && t.holding("b").is_some_and(|p| p.len() == 3)
        })
        .await;

    let c = Member::spawn(
        "c",
        member(&client, config(&group), &topic).await,
        timeline.clone(),
    );
    produce(&client, &topic, 300, 300).await;
    timeline
        .wait_for("2/2/2 after c joined", Duration::from_secs(15), |t| {
            ["a", "b", "c"]
                .iter()
                .all(|m| t.holding(m).is_some_and(|p| p.len() == 2))
        })
        .await;
    for old in ["a", "b"] {
        assert!(
            timeline.count(old, is_revoked) >= 1,
            "{old} gave up its partitions"
        );
        assert!(
            timeline.count(old, is_assigned) >= 2,
            "{old} was assigned again"
        );
    }
    let generations: BTreeSet<Option<i32>> = ["a", "b", "c"]
        .iter()
        .map(|m| timeline.generation(m))
        .collect();
    assert_eq!(generations.len(), 1, "one generation: {generations:?}");
    timeline.assert_never_owned_twice();
    timeline
        .wait_for("all 600 records read", Duration::from_secs(10), |t| {
            t.consumed().len() >= 600
        })
        .await;
    for m in [a, b, c] {
        m.stop().await.close().await.unwrap();
    }
    assert_each_once(&timeline.consumed(), 600);
}

#[tokio::test]
async fn after_a_member_closes_the_other_resumes_at_its_committed_offsets() {
    let Some(bootstrap) = common::bootstrap("after_a_member_closes") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::create_topic(&client, "group-close", 6).await;
    let group = common::unique_topic("group-close");
    produce(&client, &topic, 0, 300).await;

    let timeline = Timeline::default();
    let a = Member::spawn(
        "a",
        member(&client, config(&group), &topic).await,
        timeline.clone(),
    );
    let b = Member::spawn(
        "b",
        member(&client, config(&group), &topic).await,
        timeline.clone(),
    );
    timeline
        .wait_for(
            "300 records read by a and b",
            Duration::from_secs(15),
            |t| t.consumed().len() >= 300,
        )
        .await;
    let b = b.stop().await;
    let b_held = b.assignment();
    assert_eq!(b_held.len(), 3);
    let committed = b.committed(&b_held).await.unwrap();
    assert!(committed
        .iter()
        .all(|(_, offset)| offset.is_some_and(|o| o > 0)));
    let closed_at = Instant::now();
    b.close().await.unwrap();

    timeline
        .wait_for("a holds all 6", Duration::from_secs(10), |t| {
            t.holding("a").is_some_and(|p| p.len() == 6)
        })
        .await;
    // LeaveGroup, not the session timeout, moved the partitions.
    assert!(
        closed_at.elapsed() < Duration::from_secs(5),
        "{:?}",
        closed_at.elapsed()
    );
    produce(&client, &topic, 300, 300).await;
    timeline
        .wait_for("all 600 records read", Duration::from_secs(10), |t| {
            t.consumed().len() >= 600
        })
        .await;
    a.stop().await.close().await.unwrap();
    // b committed everything it read: a neither skipped nor re-read any of it.
    assert_each_once(&timeline.consumed(), 600);
    timeline.assert_never_owned_twice();
}

/// Hands each member the user data it subscribed with, prefixed: proves the bytes travel
/// member -> JoinGroup -> leader's assignor -> SyncGroup -> member.
struct EchoAssignor {
    tag: &'static str,
}

impl Assignor for EchoAssignor {
    fn name(&self) -> &str {
        "echo"
    }

    fn subscription_user_data(&self) -> Bytes {
        Bytes::from(format!("from {}", self.tag))
    }

    fn assign(
        &self,
        members: &[MemberSubscription],
        partition_counts: &BTreeMap<String, i32>,
    ) -> eddy_client::Result<BTreeMap<String, MemberAssignment>> {
        let mut out = RangeAssignor.assign(members, partition_counts)?;
        for m in members {
            let mut data = b"echo: ".to_vec();
            data.extend_from_slice(&m.user_data);
            out.get_mut(&m.member_id).unwrap().user_data = Bytes::from(data);
        }
        Ok(out)
    }
}

#[tokio::test]
async fn a_custom_assignors_user_data_round_trips() {
    let Some(bootstrap) = common::bootstrap("a_custom_assignors_user_data_round_trips") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::create_topic(&client, "group-echo", 4).await;
    let group = common::unique_topic("group-echo");

    let timeline = Timeline::default();
    let mut members = Vec::new();
    for tag in ["a", "b"] {
        let assignor = Arc::new(EchoAssignor { tag });
        let mut consumer = GroupConsumer::new(client.clone(), config(&group), assignor)
            .await
            .unwrap();
        consumer.subscribe(&[&topic]).await.unwrap();
        members.push(Member::spawn(tag, consumer, timeline.clone()));
    }
    timeline
        .wait_for("both assigned 2", Duration::from_secs(15), |t| {
            ["a", "b"]
                .iter()
                .all(|m| t.holding(m).is_some_and(|p| p.len() == 2))
        })
        .await;
    for (who, seen) in timeline.events() {
        if let Seen::Assigned { user_data, .. } = seen {
            assert_eq!(user_data, Bytes::from(format!("echo: from {who}")));
        }
    }
    let described = Admin::new(client.clone())
        .describe_group(&group)
        .await
        .unwrap();
    assert_eq!(described.protocol, "echo");
    for m in members {
        m.stop().await.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_member_that_stops_heartbeating_loses_its_partitions_after_the_session_timeout() {
    let Some(bootstrap) = common::bootstrap("a_member_that_stops_heartbeating") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::create_topic(&client, "group-dead", 6).await;
    let group = common::unique_topic("group-dead");

    let timeline = Timeline::default();
    let a = Member::spawn(
        "a",
        member(&client, config(&group), &topic).await,
        timeline.clone(),
    );
    let b = Member::spawn(
        "b",
        member(&client, config(&group), &topic).await,
        timeline.clone(),
    );
    timeline
        .wait_for("a and b hold 3 each", Duration::from_secs(15), |t| {
            t.holding("a").is_some_and(|p| p.len() == 3)
                && t.holding("b").is_some_and(|p| p.len() == 3)
        })
        .await;
    // Dropped without close(): no LeaveGroup, no more heartbeats.
    drop(a.stop().await);
    let died_at = Instant::now();
    timeline
        .wait_for("b holds all 6", Duration::from_secs(12), |t| {
            t.holding("b").is_some_and(|p| p.len() == 6)
        })
        .await;
    let took = died_at.elapsed();
    assert!(
        took >= Duration::from_millis(4_500),
        "before the session timed out: {took:?}"
    );
    assert!(timeline.count("b", is_revoked) >= 1);
    timeline.assert_never_owned_twice();
    b.stop().await.close().await.unwrap();
}

#[tokio::test]
async fn a_commit_from_an_old_generation_is_refused() {
    let Some(bootstrap) = common::bootstrap("a_commit_from_an_old_generation_is_refused") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::create_topic(&client, "group-stale", 2).await;
    let group = common::unique_topic("group-stale");

    // A static member keeps its place when it does not rejoin in time, so the group moves
    // to a new generation with it still in: its commits then carry an old generation.
    let short = |mut c: GroupConsumerConfig| {
        c.max_poll_interval_ms = 2_000;
        c.session_timeout_ms = 15_000;
        c
    };
    let static_config = GroupConsumerConfig {
        group_instance_id: Some("a-instance".into()),
        ..short(config(&group))
    };
    let mut a = member(&client, static_config, &topic).await;
    let (old_generation, held) = loop {
        if let GroupEvent::Assigned {
            partitions,
            generation_id,
            ..
        } = a.poll().await.unwrap()
        {
            break (generation_id, partitions);
        }
    };
    assert_eq!(held, tps(&topic, 0..2));
    assert_eq!(a.group_metadata().generation_id, old_generation);

    // b joins while a does not poll: after the rebalance timeout the group goes on.
    let timeline = Timeline::default();
    let b = Member::spawn(
        "b",
        member(&client, short(config(&group)), &topic).await,
        timeline.clone(),
    );
    timeline
        .wait_for("b assigned", Duration::from_secs(10), |t| {
            t.holding("b").is_some()
        })
        .await;
    let err = a
        .commit(&[(TopicPartition::new(&topic, 0), 1)])
        .await
        .unwrap_err();
    assert_eq!(err.kafka_code(), Some(codes::ILLEGAL_GENERATION), "{err}");
    assert!(is_membership_lost(&err));

    // The next poll gives the partitions up; the one after rejoins and commits again.
    assert_eq!(a.poll().await.unwrap(), GroupEvent::Revoked(held));
    let generation = loop {
        if let GroupEvent::Assigned { generation_id, .. } = a.poll().await.unwrap() {
            break generation_id;
        }
    };
    assert!(generation > old_generation);
    let mine = a.assignment();
    if let Some(tp) = mine.first() {
        a.commit(&[(tp.clone(), 0)]).await.unwrap();
    }
    a.close().await.unwrap();
    b.stop().await.close().await.unwrap();
}

#[tokio::test]
async fn paused_partitions_are_not_fetched_and_resume_where_they_were_left() {
    let Some(bootstrap) = common::bootstrap("paused_partitions_are_not_fetched") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::create_topic(&client, "group-pause", 2).await;
    let group = common::unique_topic("group-pause");
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    for p in 0..2 {
        for i in 0..20 {
            let record = ProducerRecord::new(&topic, format!("v{i}")).with_partition(p);
            producer.send(record).await.unwrap().await.unwrap();
        }
    }
    producer.close().await;

    let mut consumer = member(&client, config(&group), &topic).await;
    while !matches!(consumer.poll().await.unwrap(), GroupEvent::Assigned { .. }) {}
    let (p0, p1) = (
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 1),
    );
    assert_eq!(
        consumer.position(&p0),
        Some(0),
        "earliest: nothing committed"
    );
    consumer.pause(std::slice::from_ref(&p0));
    assert_eq!(consumer.paused(), std::slice::from_ref(&p0));
    let mut read: Vec<(i32, i64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while consumer.position(&p1) != Some(20) {
        assert!(Instant::now() < deadline, "p1 not read to its end");
        if let GroupEvent::Records(records) = consumer.poll().await.unwrap() {
            read.extend(records.iter().map(|r| (r.partition, r.offset)));
        }
    }
    assert!(
        read.iter().all(|(p, _)| *p == 1),
        "a paused partition was fetched"
    );
    assert_eq!(read.len(), 20);

    consumer.seek(&p0, 15).await.unwrap();
    assert_eq!(consumer.position(&p0), Some(15));
    consumer.resume(std::slice::from_ref(&p0));
    read.clear();
    while consumer.position(&p0) != Some(20) {
        assert!(
            Instant::now() < deadline,
            "p0 not read to its end after resume"
        );
        if let GroupEvent::Records(records) = consumer.poll().await.unwrap() {
            read.extend(records.iter().map(|r| (r.partition, r.offset)));
        }
    }
    assert_eq!(read, (15..20).map(|o| (0, o)).collect::<Vec<_>>());
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn a_member_that_stops_polling_leaves_and_rejoins_on_its_next_poll() {
    let Some(bootstrap) = common::bootstrap("a_member_that_stops_polling_leaves") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::create_topic(&client, "group-slow", 2).await;
    let group = common::unique_topic("group-slow");
    let config = GroupConsumerConfig {
        max_poll_interval_ms: 1_500,
        ..config(&group)
    };
    let mut consumer = member(&client, config, &topic).await;
    while !matches!(consumer.poll().await.unwrap(), GroupEvent::Assigned { .. }) {}
    let held = consumer.assignment();
    assert_eq!(held.len(), 2);

    // No poll for longer than max.poll.interval.ms: the heartbeat sends LeaveGroup.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let admin = Admin::new(client.clone());
    let described = admin.describe_group(&group).await.unwrap();
    assert_eq!(described.state, "Empty", "{described:?}");
    let err = consumer.commit(&[(held[0].clone(), 1)]).await.unwrap_err();
    assert!(is_membership_lost(&err), "{err}");

    assert_eq!(
        consumer.poll().await.unwrap(),
        GroupEvent::Revoked(held.clone())
    );
    let generation = loop {
        if let GroupEvent::Assigned {
            partitions,
            generation_id,
            ..
        } = consumer.poll().await.unwrap()
        {
            assert_eq!(partitions, held);
            break generation_id;
        }
    };
    assert_eq!(consumer.group_metadata().generation_id, generation);
    consumer.commit(&[(held[0].clone(), 1)]).await.unwrap();
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn a_static_member_replaced_by_a_new_instance_is_fenced_for_good() {
    let Some(bootstrap) = common::bootstrap("a_static_member_replaced") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let topic = common::create_topic(&client, "group-fenced", 2).await;
    let group = common::unique_topic("group-fenced");
    let static_config = || GroupConsumerConfig {
        group_instance_id: Some("the-instance".into()),
        ..config(&group)
    };
    let mut old = member(&client, static_config(), &topic).await;
    while !matches!(old.poll().await.unwrap(), GroupEvent::Assigned { .. }) {}

    // The same instance id again: it takes the old member's place without a rebalance.
    let timeline = Timeline::default();
    let new = member(&client, static_config(), &topic).await;
    let new = Member::spawn("new", new, timeline.clone());
    timeline
        .wait_for("new assigned", Duration::from_secs(10), |t| {
            t.holding("new").is_some_and(|p| p.len() == 2)
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = loop {
        match old.poll().await {
            Err(e) => break e,
            Ok(_) => assert!(Instant::now() < deadline, "the old instance was not fenced"),
        }
    };
    assert_eq!(err.kafka_code(), Some(codes::FENCED_INSTANCE_ID), "{err}");
    let again = old.poll().await.unwrap_err();
    assert_eq!(again.kafka_code(), Some(codes::FENCED_INSTANCE_ID));
    old.close().await.unwrap();
    new.stop().await.close().await.unwrap();
}
