"""kafka-python consumer groups: members of one group share a topic's partitions, every
record is consumed exactly once across them when each batch is committed synchronously
before the next poll, a member joining mid-stream rebalances the group without losing or
repeating a record, and the committed offsets end at the log's end.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from dataset import create_topic, unique_topic

BROKER_SETTINGS = {"group.initial.rebalance.delay.ms": "0"}
PARTITIONS = 4
RECORDS = 2_000
TIMEOUT_S = 120


class Member(threading.Thread):
    """One group member in its own thread (a KafkaConsumer is not thread-safe)."""

    def __init__(self, name: str, bootstrap: str, topic: str, group: str, seen: "Seen"):
        super().__init__(name=name, daemon=True)
        self.bootstrap, self.topic, self.group, self.seen = bootstrap, topic, group, seen
        self.stop = threading.Event()
        self.assignment: set[int] = set()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            consumer = KafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap,
                group_id=self.group,
                client_id=self.name,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=10_000,
                heartbeat_interval_ms=500,
            )
            try:
                while not self.stop.is_set():
                    batches = consumer.poll(timeout_ms=200)
                    keys = [r.key for records in batches.values() for r in records]
                    if keys:
                        # Committed before the next poll, where a rebalance may move the
                        # partitions: their next owner starts right after these records.
                        consumer.commit()
                        self.seen.add(self.name, keys)
                    self.assignment = {tp.partition for tp in consumer.assignment()}
            finally:
                consumer.close()
        except BaseException as e:  # reported by the test, not lost in a thread
            self.error = e


class Seen:
    """Every key consumed, by member, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: collections.Counter[bytes] = collections.Counter()
        self.by_member: collections.Counter[str] = collections.Counter()

    def add(self, member: str, keys: list[bytes]) -> None:
        with self.lock:
            self.counts.update(keys)
            self.by_member[member] += len(keys)

    def distinct(self) -> int:
        with self.lock:
            return len(self.counts)


def produce(bootstrap: str, topic: str, ids: range) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in ids:
        producer.send(topic, key=str(i).encode(), value=b"v%d" % i, partition=i % PARTITIONS)
    producer.flush(TIMEOUT_S)
    producer.close()


def wait_until(what: str, check, members: list[Member]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not check():
        for m in members:
            assert m.error is None, f"{m.name}: {m.error!r}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_group_members_consume_each_record_once_across_a_rebalance(broker):
    topic = unique_topic("kpgroups")
    group = f"kpgroups-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, PARTITIONS)
    seen = Seen()
    members = [Member(f"m{i}", broker.bootstrap, topic, group, seen) for i in range(3)]
    first_half = range(RECORDS // 2)

    produce(broker.bootstrap, topic, first_half)
    for m in members[:2]:
        m.start()
    wait_until("the first half", lambda: seen.distinct() == len(first_half), members)
    wait_until(
        "both members assigned",
        lambda: all(m.assignment for m in members[:2])
        and sorted(members[0].assignment | members[1].assignment) == list(range(PARTITIONS)),
        members,
    )

    # A third member joins: the group rebalances and all three go on consuming.
    members[2].start()
    wait_until("the third member's partitions", lambda: bool(members[2].assignment), members)
    produce(broker.bootstrap, topic, range(RECORDS // 2, RECORDS))
    wait_until("every record", lambda: seen.distinct() == RECORDS, members)
    assignments = [m.assignment for m in members]
    assert sorted(p for a in assignments for p in a) == list(range(PARTITIONS)), assignments
    assert all(assignments), f"a member was left idle after the rebalance: {assignments}"

    for m in members:
        m.stop.set()
    for m in members:
        m.join(TIMEOUT_S)
        assert not m.is_alive() and m.error is None, f"{m.name}: {m.error!r}"

    duplicates = {k: n for k, n in seen.counts.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} records consumed more than once"
    assert set(seen.counts) == {str(i).encode() for i in range(RECORDS)}
    assert seen.by_member["m2"] > 0, seen.by_member

    ends = end_offsets(broker.bootstrap, topic)
    assert sum(ends.values()) == RECORDS
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None})[group]
    finally:
        admin.close()
    assert {tp.partition: om.offset for tp, om in offsets.items()} == ends


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return {tp.partition: o for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()
