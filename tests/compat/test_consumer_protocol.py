"""The KIP-848 consumer group protocol with confluent-kafka (`group.protocol=consumer`).

The broker assigns partitions itself (ConsumerGroupHeartbeat); these tests check what a user of
the protocol relies on: every record is consumed once across the group, no partition is owned
by two consumers at once (ownership is recorded from the rebalance callbacks with timestamps),
the group balances, a leaving or dead consumer's partitions go to the others, committed offsets
are resumed from (across a broker restart too), and the `range` assignor can be asked for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass, field

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient

from dataset import create_topic, unique_topic

PARTITIONS = 6
RECORDS_PER_PARTITION = 200
SESSION_TIMEOUT_MS = 6000
# Short heartbeats make reconciliation (a few heartbeats) quick.
BROKER_SETTINGS = {
    "group.consumer.session.timeout.ms": str(SESSION_TIMEOUT_MS),
    "group.consumer.heartbeat.interval.ms": "500",
}
TIMEOUT_S = 60


def produce(bootstrap: str, topic: str, per_partition: int = RECORDS_PER_PARTITION, tag: str = "") -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for p in range(PARTITIONS):
        for i in range(per_partition):
            producer.produce(topic, value=f"{tag}{p}-{i}".encode(), partition=p)
    assert producer.flush(TIMEOUT_S) == 0
    return PARTITIONS * per_partition


@dataclass
class Member:
    """A consumer and what its rebalance callbacks saw, with timestamps."""

    name: str
    consumer: Consumer
    # (monotonic time, "assign" | "revoke" | "lost", [partition])
    events: list[tuple[float, str, list[int]]] = field(default_factory=list)
    seen: list[tuple[int, int]] = field(default_factory=list)

    def owned(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}


def member(bootstrap: str, group: str, name: str, **extra) -> Member:
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.protocol": "consumer",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "client.id": name,
    }
    config.update(extra)
    m = Member(name, None)  # type: ignore[arg-type]

    def on_assign(consumer, partitions):
        m.events.append((time.monotonic(), "assign", [tp.partition for tp in partitions]))

    def on_revoke(consumer, partitions):
        # Commit what was consumed before giving the partitions up, so the next
        # owner starts right after it: no record is consumed twice.
        positions = [tp for tp in consumer.position(partitions) if tp.offset >= 0]
        if positions:
            consumer.commit(offsets=positions, asynchronous=False)
        # Ownership ends once this callback returns.
        m.events.append((time.monotonic(), "revoke", [tp.partition for tp in partitions]))

    def on_lost(consumer, partitions):
        m.events.append((time.monotonic(), "lost", [tp.partition for tp in partitions]))

    m.consumer = Consumer(config)
    m._callbacks = (on_assign, on_revoke, on_lost)  # type: ignore[attr-defined]
    return m


def subscribe(m: Member, topic: str) -> None:
    on_assign, on_revoke, on_lost = m._callbacks  # type: ignore[attr-defined]
    m.consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)


def poll_all(members: list[Member], timeout_s: float = 0.05) -> None:
    for m in members:
        msg = m.consumer.poll(timeout_s)
        if msg is None:
            continue
        assert msg.error() is None, f"{m.name}: {msg.error()}"
        m.seen.append((msg.partition(), msg.offset()))


def poll_until(members: list[Member], done, what: str, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: " + ", ".join(
            f"{m.name} owns {sorted(m.owned())}" for m in members
        )
        poll_all(members)


def ownership_intervals(members: list[Member], now: float) -> dict[int, list[tuple[float, float, str]]]:
    """Per partition: (from, to, member) for every stretch a member owned it."""
    out: dict[int, list[tuple[float, float, str]]] = {p: [] for p in range(PARTITIONS)}
    for m in members:
        since: dict[int, float] = {}
        for t, kind, partitions in m.events:
            for p in partitions:
                if kind == "assign":
                    assert p not in since, f"{m.name} assigned partition {p} twice"
                    since[p] = t
                else:
                    assert p in since, f"{m.name} lost partition {p} it did not own"
                    out[p].append((since.pop(p), t, m.name))
        for p, t in since.items():
            out[p].append((t, now, m.name))
    return out


def assert_no_shared_partition(members: list[Member]) -> None:
    for p, stretches in ownership_intervals(members, time.monotonic()).items():
        stretches.sort()
        for (a_from, a_to, a), (b_from, b_to, b) in zip(stretches, stretches[1:]):
            assert b_from >= a_to, (
                f"partition {p} owned by {a} until {a_to:.3f} and by {b} from {b_from:.3f}"
            )


def assert_each_record_once(members: list[Member], expected: int) -> None:
    seen = [record for m in members for record in m.seen]
    assert len(seen) == len(set(seen)), "some record was consumed twice"
    assert len(seen) == expected


def balanced(members: list[Member], each: int):
    def done() -> bool:
        owned = [m.owned() for m in members]
        return all(len(o) == each for o in owned) and len(set().union(*owned)) == each * len(members)

    return done


def close_all(members: list[Member]) -> None:
    for m in members:
        m.consumer.close()


def test_three_consumers_share_six_partitions_and_take_over_from_one_that_leaves(broker):
    topic = unique_topic("kip848")
    group = f"kip848-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, PARTITIONS)
    expected = produce(broker.bootstrap, topic)
    members = [member(broker.bootstrap, group, f"c{i}") for i in range(3)]
    for m in members:
        subscribe(m, topic)
    try:
        poll_until(members, lambda: sum(len(m.seen) for m in members) >= expected, "every record")
        poll_until(members, balanced(members, 2), "two partitions each")
        assert_each_record_once(members, expected)
        assert_no_shared_partition(members)

        # One consumer leaves: the two others take its partitions, and what is
        # produced next is consumed once between them.
        leaving, staying = members[0], members[1:]
        leaving.consumer.close()
        poll_until(staying, balanced(staying, 3), "three partitions each after a close")
        more = produce(broker.bootstrap, topic, per_partition=50, tag="more-")
        before = sum(len(m.seen) for m in members)
        poll_until(staying, lambda: sum(len(m.seen) for m in members) >= before + more, "new records")
        assert_each_record_once(members, expected + more)
        assert_no_shared_partition(members)
    finally:
        close_all(members[1:])


def test_range_assignor_gives_contiguous_ranges(broker):
    topic = unique_topic("kip848-range")
    group = f"kip848-range-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, PARTITIONS)
    members = [member(broker.bootstrap, group, f"r{i}", **{"group.remote.assignor": "range"}) for i in range(2)]
    for m in members:
        subscribe(m, topic)
    try:
        poll_until(members, balanced(members, 3), "three partitions each")
        assert sorted(sorted(m.owned()) for m in members) == [[0, 1, 2], [3, 4, 5]]
        assert_no_shared_partition(members)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        described = admin.describe_consumer_groups([group])[group].result(timeout=30)
        assert str(described.type).endswith("CONSUMER"), described.type
        assert described.partition_assignor == "range"
        assert len(described.members) == 2
        listed = admin.list_consumer_groups().result(timeout=30)
        assert group in {g.group_id for g in listed.valid}
        # A client that only knows DescribeGroups sees it in classic terms.
        classic = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            d = classic.describe_groups([group])[group]
        finally:
            classic.close()
        assert (d["error"], d["group_state"], d["protocol_type"], d["protocol_data"]) == (
            None, "Stable", "consumer", "range"), d
        ranges = sorted(
            sorted(p for a in m["member_assignment"]["assigned_partitions"] for p in a["partitions"])
            for m in d["members"]
        )
        assert ranges == [[0, 1, 2], [3, 4, 5]], d["members"]
        assert all(m["member_metadata"]["topics"] == [topic] for m in d["members"])
    finally:
        close_all(members)


@pytest.mark.durable
@pytest.mark.broker_settings(BROKER_SETTINGS)
def test_committed_offsets_are_resumed_after_close_and_broker_restart(fresh_broker):
    topic = unique_topic("kip848-commit")
    group = f"kip848-commit-{uuid.uuid4().hex[:8]}"
    create_topic(fresh_broker.bootstrap, topic, PARTITIONS)
    produce(fresh_broker.bootstrap, topic, per_partition=20)
    first = member(fresh_broker.bootstrap, group, "first", **{"auto.offset.reset": "latest"})
    subscribe(first, topic)
    poll_until([first], lambda: len(first.owned()) == PARTITIONS, "all partitions")
    committed = {p: 3 * p + 1 for p in range(PARTITIONS)}
    results = first.consumer.commit(
        offsets=[TopicPartition(topic, p, o) for p, o in committed.items()], asynchronous=False
    )
    assert all(tp.error is None for tp in results), results
    first.consumer.close()

    fresh_broker.restart()
    second = member(fresh_broker.bootstrap, group, "second", **{"auto.offset.reset": "latest"})
    subscribe(second, topic)
    try:
        first_seen: dict[int, int] = {}

        def all_seen() -> bool:
            for p, o in second.seen:
                first_seen.setdefault(p, o)
            return len(first_seen) == PARTITIONS

        poll_until([second], all_seen, "a record from every partition")
        assert first_seen == committed
    finally:
        second.consumer.close()


CHILD = textwrap.dedent(
    """
    import sys, time
    from confluent_kafka import Consumer
    bootstrap, group, topic = sys.argv[1:4]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                  "auto.offset.reset": "earliest", "client.id": "child"})
    c.subscribe([topic])
    last = None
    while True:
        c.poll(0.1)
        owned = sorted(tp.partition for tp in c.assignment())
        if owned != last:
            print("OWNED", " ".join(map(str, owned)), flush=True)
            last = owned
    """
)


def test_a_killed_consumer_loses_its_partitions_after_the_session_timeout(broker):
    topic = unique_topic("kip848-kill")
    group = f"kip848-kill-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, PARTITIONS)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, broker.bootstrap, group, topic],
        stdout=subprocess.PIPE, text=True,
    )
    survivor = member(broker.bootstrap, group, "survivor")
    subscribe(survivor, topic)
    try:
        poll_until([survivor], lambda: len(survivor.owned()) == PARTITIONS // 2, "half the partitions")
        child_owned: set[int] = set()
        deadline = time.monotonic() + TIMEOUT_S
        while len(child_owned) != PARTITIONS // 2:
            assert time.monotonic() < deadline, "the child never owned its half"
            line = child.stdout.readline()
            if line.startswith("OWNED"):
                child_owned = {int(p) for p in line.split()[1:]}
        assert child_owned.isdisjoint(survivor.owned())

        child.send_signal(signal.SIGKILL)
        child.wait()
        killed_at = time.monotonic()
        poll_until([survivor], lambda: len(survivor.owned()) == PARTITIONS, "the dead consumer's partitions")
        took_s = time.monotonic() - killed_at
        # Not before the session timeout (the broker heard nothing wrong
        # before), and not long after it.
        assert took_s >= SESSION_TIMEOUT_MS / 1000 - 1.5, took_s
        assert took_s <= SESSION_TIMEOUT_MS / 1000 + 15, took_s
    finally:
        if child.poll() is None:
            child.kill()
        survivor.consumer.close()


def test_regex_subscription_follows_matching_topics(broker):
    prefix = f"kip848re-{uuid.uuid4().hex[:8]}"
    group = f"{prefix}-group"
    create_topic(broker.bootstrap, f"{prefix}-orders", 2)
    create_topic(broker.bootstrap, f"{prefix}-payments", 3)
    create_topic(broker.bootstrap, f"other-{prefix}", 4)
    m = member(broker.bootstrap, group, "regex")
    # librdkafka sends the pattern to the broker (SubscribedTopicRegex).
    m.consumer.subscribe([f"^{prefix}-.*"])

    def topics_owned() -> dict[str, int]:
        out: dict[str, int] = {}
        for tp in m.consumer.assignment():
            out[tp.topic] = out.get(tp.topic, 0) + 1
        return out

    try:
        want = {f"{prefix}-orders": 2, f"{prefix}-payments": 3}
        poll_until([m], lambda: topics_owned() == want, f"the topics matching {prefix}-.*")
        # A topic created later that matches is picked up too.
        create_topic(broker.bootstrap, f"{prefix}-refunds", 1)
        want[f"{prefix}-refunds"] = 1
        poll_until([m], lambda: topics_owned() == want, "the new matching topic")
    finally:
        m.consumer.close()


@pytest.mark.durable
@pytest.mark.broker_settings(BROKER_SETTINGS)
def test_consumers_rejoin_after_a_broker_restart(fresh_broker):
    """Membership is not persisted: after a restart the members are unknown,
    rejoin and are assigned anew, and consumption goes on from the commits.
    No partition is given out until the members from before the restart have
    heard that they are unknown (the coordinator's startup grace)."""
    topic = unique_topic("kip848-restart")
    group = f"kip848-restart-{uuid.uuid4().hex[:8]}"
    create_topic(fresh_broker.bootstrap, topic, PARTITIONS)
    first_batch = produce(fresh_broker.bootstrap, topic, per_partition=10)
    members = [member(fresh_broker.bootstrap, group, f"c{i}") for i in range(2)]
    for m in members:
        subscribe(m, topic)
    try:
        poll_until(members, lambda: sum(len(m.seen) for m in members) >= first_batch, "the first batch")
        for m in members:
            m.consumer.commit(asynchronous=False)
        fresh_broker.kill9()
        fresh_broker.start()
        more = produce(fresh_broker.bootstrap, topic, per_partition=10, tag="after-")
        poll_until(
            members,
            lambda: sum(len(m.seen) for m in members) >= first_batch + more,
            "the records produced after the restart",
        )
        poll_until(members, balanced(members, PARTITIONS // 2), "a balanced group again")
        assert_each_record_once(members, first_batch + more)
        assert_no_shared_partition(members)
    finally:
        close_all(members)
