"""Group administration through real admin clients: confluent-kafka's AdminClient (list,
describe, committed offsets, alter, delete) and kafka-python's KafkaAdminClient (delete
groups, delete offsets), against groups made by real consumers.

A group with a live member cannot be deleted (NON_EMPTY_GROUP), nor can the offsets of a
topic its member consumes (GROUP_SUBSCRIBED_TO_TOPIC); an empty group can, and it is gone
from every listing afterwards.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient
from kafka import TopicPartition as KpTopicPartition

from dataset import create_topic, unique_topic

BROKER_SETTINGS = {"group.initial.rebalance.delay.ms": "0"}
PARTITIONS = 3
RECORDS_PER_PARTITION = 10
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
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10_000,
    })


def consume_all_and_commit(bootstrap: str, topic: str, group: str) -> None:
    """A group member reads every record, commits synchronously and leaves."""
    consumer = group_consumer(bootstrap, group)
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + TIMEOUT_S
    while seen < PARTITIONS * RECORDS_PER_PARTITION:
        assert time.monotonic() < deadline, f"consumed {seen}"
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        seen += 1
    consumer.commit(asynchronous=False)
    consumer.close()


def live_member(bootstrap: str, topic: str, group: str):
    """A consumer that holds an assignment of every partition (close it when done)."""
    consumer = group_consumer(bootstrap, group)
    consumer.subscribe([topic])
    deadline = time.monotonic() + TIMEOUT_S
    while len(consumer.assignment()) < PARTITIONS:
        assert time.monotonic() < deadline, f"assignment {consumer.assignment()}"
        consumer.poll(0.2)
    return consumer


def committed(admin: AdminClient, group: str, topic: str) -> dict[int, int]:
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p) for p in range(PARTITIONS)]
    )
    result = admin.list_consumer_group_offsets([request])[group].result(TIMEOUT_S)
    return {tp.partition: tp.offset for tp in result.topic_partitions}


def listed(admin: AdminClient, states=None) -> dict[str, ConsumerGroupState]:
    kwargs = {"states": states} if states else {}
    result = admin.list_consumer_groups(request_timeout=TIMEOUT_S, **kwargs).result(TIMEOUT_S)
    assert not result.errors, result.errors
    return {g.group_id: g.state for g in result.valid}


def error_code(future) -> int:
    with pytest.raises(KafkaException) as raised:
        future.result(TIMEOUT_S)
    return raised.value.args[0].code()


@pytest.fixture
def topic(broker) -> str:
    name = unique_topic("gadmin")
    create_topic(broker.bootstrap, name, PARTITIONS)
    produce(broker.bootstrap, name)
    return name


def test_confluent_admin_lists_describes_alters_and_deletes_an_empty_group(broker, topic):
    group = f"gadmin-{uuid.uuid4().hex[:8]}"
    consume_all_and_commit(broker.bootstrap, topic, group)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    assert listed(admin)[group] == ConsumerGroupState.EMPTY
    assert group in listed(admin, {ConsumerGroupState.EMPTY})
    assert group not in listed(admin, {ConsumerGroupState.STABLE})
    description = admin.describe_consumer_groups([group])[group].result(TIMEOUT_S)
    assert description.state == ConsumerGroupState.EMPTY
    assert description.members == []
    assert committed(admin, group, topic) == {p: RECORDS_PER_PARTITION for p in range(PARTITIONS)}

    wanted = {0: 3, 1: 0, 2: 7}
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p, o) for p, o in wanted.items()]
    )
    altered = admin.alter_consumer_group_offsets([request])[group].result(TIMEOUT_S)
    assert all(tp.error is None for tp in altered.topic_partitions), altered.topic_partitions
    assert committed(admin, group, topic) == wanted

    assert admin.delete_consumer_groups([group])[group].result(TIMEOUT_S) is None
    assert group not in listed(admin)
    # OFFSET_INVALID (-1001): nothing committed any more.
    assert committed(admin, group, topic) == {p: -1001 for p in range(PARTITIONS)}
    assert error_code(admin.delete_consumer_groups([group])[group]) == KafkaError.GROUP_ID_NOT_FOUND


def test_a_group_with_a_live_member_is_not_deleted(broker, topic):
    group = f"gadmin-live-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    consumer = live_member(broker.bootstrap, topic, group)
    try:
        assert listed(admin, {ConsumerGroupState.STABLE}).get(group) == ConsumerGroupState.STABLE
        description = admin.describe_consumer_groups([group])[group].result(TIMEOUT_S)
        assert description.state == ConsumerGroupState.STABLE
        assert len(description.members) == 1
        assigned = description.members[0].assignment.topic_partitions
        assert sorted((tp.topic, tp.partition) for tp in assigned) == [
            (topic, p) for p in range(PARTITIONS)
        ]
        assert error_code(admin.delete_consumer_groups([group])[group]) == KafkaError.NON_EMPTY_GROUP
        # An admin commit into a group with members is refused too.
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 1)])
        result = admin.alter_consumer_group_offsets([request])[group].result(TIMEOUT_S)
        assert [tp.error.code() for tp in result.topic_partitions] == [
            KafkaError.UNKNOWN_MEMBER_ID
        ]
    finally:
        consumer.close()
    # Once the member left, the group goes.
    assert admin.delete_consumer_groups([group])[group].result(TIMEOUT_S) is None
    assert group not in listed(admin)


def test_kafka_python_deletes_groups_and_offsets(broker, topic):
    kept = f"gadmin-kp-{uuid.uuid4().hex[:8]}"
    doomed = f"gadmin-kp-{uuid.uuid4().hex[:8]}"
    consume_all_and_commit(broker.bootstrap, topic, kept)
    consume_all_and_commit(broker.bootstrap, topic, doomed)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        results = dict(admin.delete_groups([doomed, "gadmin-never-existed"]))
        assert results == {doomed: "OK", "gadmin-never-existed": "GroupIdNotFoundError"}
        groups = {g[0] if isinstance(g, tuple) else g["group_id"] for g in admin.list_groups()}
        assert kept in groups and doomed not in groups

        # OffsetDelete while a member consumes the topic: refused for that topic.
        consumer = live_member(broker.bootstrap, topic, kept)
        try:
            out = admin.delete_group_offsets(kept, [KpTopicPartition(topic, 0)])
            assert [e.__name__ for e in out.values()] == ["GroupSubscribedToTopicError"]
            assert dict(admin.delete_groups([kept])) == {kept: "NonEmptyGroupError"}
        finally:
            consumer.close()
        out = admin.delete_group_offsets(kept, [KpTopicPartition(topic, 0)])
        assert [e.__name__ for e in out.values()] == ["NoError"]
        left = admin.list_group_offsets({kept: None})[kept]
        assert sorted(tp.partition for tp in left) == [1, 2]
    finally:
        admin.close()


@pytest.mark.durable
def test_offsets_of_an_empty_group_expire_on_the_check_interval(broker_factory):
    # Retention 0: offsets of a group without members expire at the next check, so the
    # check interval is what the test sees working.
    settings = dict(BROKER_SETTINGS)
    settings["offsets.retention.minutes"] = "0"
    settings["offsets.retention.check.interval.ms"] = "200"
    broker = broker_factory(settings)
    topic = unique_topic("gexpire")
    create_topic(broker.bootstrap, topic, PARTITIONS)
    produce(broker.bootstrap, topic)
    group = f"gexpire-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    consumer = live_member(broker.bootstrap, topic, group)
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, p, 5) for p in range(PARTITIONS)], asynchronous=False
        )
        # A live member keeps its group's offsets past retention.
        time.sleep(1)
        assert committed(admin, group, topic) == {p: 5 for p in range(PARTITIONS)}
    finally:
        consumer.close()
    deadline = time.monotonic() + 10
    while group in listed(admin):
        assert time.monotonic() < deadline, "empty group with expired offsets still listed"
        time.sleep(0.2)
    assert committed(admin, group, topic) == {p: -1001 for p in range(PARTITIONS)}
    broker.kill9()
    broker.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert group not in listed(admin)
