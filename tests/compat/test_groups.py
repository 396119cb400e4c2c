"""Consumer groups: committed offsets survive a crash of the broker.

A confluent-kafka consumer in a group commits chosen offsets, the broker is SIGKILLed and
started again on the same data directory, and a new consumer of the same group resumes
exactly at the committed offsets (not at `auto.offset.reset`).
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from dataset import create_topic, unique_topic

PARTITIONS = 3
RECORDS_PER_PARTITION = 30
# Offsets the first consumer commits, by partition; 0 means "commit the very start".
COMMITTED = {0: 5, 1: 17, 2: 0}
SETTINGS = {"group.initial.rebalance.delay.ms": "0"}
TIMEOUT_S = 60


def produce(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for p in range(PARTITIONS):
        for i in range(RECORDS_PER_PARTITION):
            producer.produce(topic, value=f"{p}-{i}".encode(), partition=p)
    assert producer.flush(TIMEOUT_S) == 0


def group_consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        # Were the commits lost, the consumer would start at the end and see nothing.
        "auto.offset.reset": "latest",
        "session.timeout.ms": 10_000,
    })


def wait_for_assignment(consumer: Consumer, partitions: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while len(consumer.assignment()) < partitions:
        assert time.monotonic() < deadline, f"assignment still {consumer.assignment()}"
        msg = consumer.poll(0.2)
        assert msg is None or msg.error() is None, msg.error()


def first_offsets(consumer: Consumer, topic: str) -> dict[int, int]:
    """The offset of the first record the consumer gets from each partition."""
    first: dict[int, int] = {}
    deadline = time.monotonic() + TIMEOUT_S
    while len(first) < PARTITIONS:
        assert time.monotonic() < deadline, f"only saw partitions {first}"
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        assert msg.topic() == topic
        first.setdefault(msg.partition(), msg.offset())
    return first


@pytest.mark.durable
@pytest.mark.broker_settings(SETTINGS)
def test_group_resumes_at_committed_offsets_after_sigkill(fresh_broker):
    topic = unique_topic("groups")
    group = f"resume-{uuid.uuid4().hex[:8]}"
    create_topic(fresh_broker.bootstrap, topic, PARTITIONS)
    produce(fresh_broker.bootstrap, topic)

    consumer = group_consumer(fresh_broker.bootstrap, group)
    consumer.subscribe([topic])
    wait_for_assignment(consumer, PARTITIONS)
    wanted = [TopicPartition(topic, p, o) for p, o in COMMITTED.items()]
    results = consumer.commit(offsets=wanted, asynchronous=False)
    assert all(r.error is None for r in results), results
    consumer.close()

    fresh_broker.kill9()
    fresh_broker.start()

    consumer = group_consumer(fresh_broker.bootstrap, group)
    try:
        committed = consumer.committed(
            [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=TIMEOUT_S
        )
        assert {tp.partition: tp.offset for tp in committed} == COMMITTED
        consumer.subscribe([topic])
        assert first_offsets(consumer, topic) == COMMITTED
    finally:
        consumer.close()


@pytest.mark.durable
@pytest.mark.broker_settings(SETTINGS)
def test_group_membership_survives_sigkill_without_a_rebalance(fresh_broker):
    """Kafka reloads a group's members and assignments when its coordinator moves; so does
    Eddy after a SIGKILL: the member keeps its id and assignment and simply carries on."""
    from confluent_kafka.admin import AdminClient

    topic = unique_topic("groups-state")
    group = f"state-{uuid.uuid4().hex[:8]}"
    create_topic(fresh_broker.bootstrap, topic, PARTITIONS)
    produce(fresh_broker.bootstrap, topic)
    rebalances = []
    consumer = group_consumer(fresh_broker.bootstrap, group)
    consumer.subscribe([topic], on_assign=lambda c, ps: rebalances.append(("assign", len(ps))),
                       on_revoke=lambda c, ps: rebalances.append(("revoke", len(ps))))
    try:
        wait_for_assignment(consumer, PARTITIONS)
        member_id = consumer.memberid()
        time.sleep(1)  # the group record is written without anyone waiting for it

        fresh_broker.kill9()
        fresh_broker.start()
        produce(fresh_broker.bootstrap, topic)
        got = 0
        deadline = time.monotonic() + TIMEOUT_S
        while got < PARTITIONS * RECORDS_PER_PARTITION:
            assert time.monotonic() < deadline, f"consumed {got} after the restart"
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got += 1
        assert consumer.memberid() == member_id
        assert rebalances == [("assign", PARTITIONS)], rebalances

        admin = AdminClient({"bootstrap.servers": fresh_broker.bootstrap})
        described = admin.describe_consumer_groups([group])[group].result(TIMEOUT_S)
        assert [m.member_id for m in described.members] == [member_id]
        assert described.members[0].host == "/127.0.0.1"  # Kafka's form of the peer address
        assert len(described.members[0].assignment.topic_partitions) == PARTITIONS
    finally:
        consumer.close()
