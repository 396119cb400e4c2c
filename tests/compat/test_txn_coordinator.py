"""The transaction coordinator with confluent-kafka (librdkafka) against the real binary.

* init_transactions -> produce -> commit: visible to read_committed; abort: never visible.
* send_offsets_to_transaction: the group's offsets move only when the transaction commits,
  and the committed ones survive a broker SIGKILL (replayed from `__consumer_offsets`,
  transactional records applied by their COMMIT marker, aborted ones dropped).
* transaction.timeout.ms above transaction.max.timeout.ms is refused at init.
* A second init_transactions with the same transactional.id fences the first producer.
* Transactions survive a broker restart: the coordinator replays `__transaction_state`
  and the producer's next transaction commits.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition,
)

from dataset import create_topic, unique_topic

BROKER_SETTINGS = {
    "group.initial.rebalance.delay.ms": "0",
    "transaction.max.timeout.ms": "60000",
}

pytestmark = pytest.mark.durable


@pytest.fixture
def txn_broker(broker_factory):
    return broker_factory(BROKER_SETTINGS)


def producer(broker, txn_id: str, timeout_ms: int = 30000) -> Producer:
    return Producer({
        "bootstrap.servers": broker.bootstrap,
        "transactional.id": txn_id,
        "transaction.timeout.ms": timeout_ms,
    })


def read_committed(broker, topic: str, partitions: int, expect_at_least: int = 0,
                   timeout_s: float = 10) -> list[bytes]:
    """Values visible read_committed, reading until the end or `timeout_s`."""
    c = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": f"reader-{uuid.uuid4().hex[:6]}",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out, eof = [], set()
    import time
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
                if len(eof) == partitions and len(out) >= expect_at_least:
                    break
                continue
            raise KafkaException(m.error())
        out.append(m.value())
    c.close()
    return out


def committed(broker, group: str, topic: str, partition: int = 0) -> int:
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        [tp] = c.committed([TopicPartition(topic, partition)], timeout=10)
        return tp.offset
    finally:
        c.close()


def test_commit_is_visible_and_abort_is_not(txn_broker):
    topic = unique_topic("txn")
    create_topic(txn_broker.bootstrap, topic, 2)
    p = producer(txn_broker, f"tx-{uuid.uuid4().hex[:6]}")
    p.init_transactions(10)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, value=f"c{i}".encode(), partition=i % 2)
    p.commit_transaction(10)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, value=f"a{i}".encode(), partition=i % 2)
    p.flush(10)
    p.abort_transaction(10)
    p.begin_transaction()
    p.produce(topic, value=b"last", partition=0)
    p.commit_transaction(10)
    values = read_committed(txn_broker, topic, 2, expect_at_least=11)
    assert sorted(values) == sorted([f"c{i}".encode() for i in range(10)] + [b"last"])


def test_offsets_move_only_on_commit_and_survive_sigkill(txn_broker):
    topic = unique_topic("txn-offsets")
    create_topic(txn_broker.bootstrap, topic, 1)
    group = f"g-{uuid.uuid4().hex[:6]}"
    p = producer(txn_broker, f"tx-{uuid.uuid4().hex[:6]}")
    p.init_transactions(10)
    c = Consumer({"bootstrap.servers": txn_broker.bootstrap, "group.id": group})
    metadata = c.consumer_group_metadata()

    def send(offset: int, commit: bool):
        p.begin_transaction()
        p.produce(topic, value=b"x", partition=0)
        p.send_offsets_to_transaction([TopicPartition(topic, 0, offset)], metadata, 10)
        if commit:
            p.commit_transaction(10)
        else:
            p.abort_transaction(10)

    send(5, commit=True)
    assert committed(txn_broker, group, topic) == 5
    send(9, commit=False)
    assert committed(txn_broker, group, topic) == 5
    send(12, commit=True)
    send(20, commit=False)
    c.close()
    assert committed(txn_broker, group, topic) == 12
    txn_broker.kill9()
    txn_broker.start()
    assert committed(txn_broker, group, topic) == 12


def test_timeout_above_the_maximum_is_refused(txn_broker):
    p = producer(txn_broker, f"tx-{uuid.uuid4().hex[:6]}", timeout_ms=120000)
    with pytest.raises(KafkaException) as e:
        p.init_transactions(10)
    assert e.value.args[0].code() == KafkaError.INVALID_TRANSACTION_TIMEOUT


def test_second_producer_fences_the_first(txn_broker):
    topic = unique_topic("txn-fence")
    create_topic(txn_broker.bootstrap, topic, 1)
    txn_id = f"tx-{uuid.uuid4().hex[:6]}"
    old = producer(txn_broker, txn_id)
    old.init_transactions(10)
    old.begin_transaction()
    old.produce(topic, value=b"zombie", partition=0)
    old.flush(10)
    new = producer(txn_broker, txn_id)
    new.init_transactions(20)
    new.begin_transaction()
    new.produce(topic, value=b"fresh", partition=0)
    new.commit_transaction(10)
    with pytest.raises(KafkaException) as e:
        old.commit_transaction(10)
    assert e.value.args[0].fatal() or e.value.args[0].txn_requires_abort()
    assert read_committed(txn_broker, topic, 1, expect_at_least=1) == [b"fresh"]


def test_coordinator_state_survives_a_restart(txn_broker):
    topic = unique_topic("txn-restart")
    create_topic(txn_broker.bootstrap, topic, 1)
    p = producer(txn_broker, f"tx-{uuid.uuid4().hex[:6]}")
    p.init_transactions(10)
    p.begin_transaction()
    p.produce(topic, value=b"one", partition=0)
    p.commit_transaction(10)
    txn_broker.kill9()
    txn_broker.start()
    p.begin_transaction()
    p.produce(topic, value=b"two", partition=0)
    p.commit_transaction(30)
    assert read_committed(txn_broker, topic, 1, expect_at_least=2) == [b"one", b"two"]
