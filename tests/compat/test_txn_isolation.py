"""The partition side of transactions, seen by confluent-kafka (librdkafka).

* Commits and aborts interleaved on one partition: a read_committed consumer sees exactly the
  committed records, in order; read_uncommitted sees every record (the markers are skipped by
  the client, not by the broker).
* An open transaction holds the last stable offset: read_committed consumers stop before its
  first record and their ListOffsets(LATEST) answers the LSO, while read_uncommitted reads past it;
  the commit releases both.
* DescribeProducers (kafka-python's admin) shows the open transaction's start offset.
* After a broker SIGKILL the aborted-transaction index and the open transaction are rebuilt from
  the log: aborted records stay invisible and the in-flight transaction still holds the LSO until
  the coordinator ends it.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from dataset import create_topic, unique_topic

pytestmark = pytest.mark.durable


@pytest.fixture
def txn_broker(broker_factory):
    return broker_factory({"transaction.max.timeout.ms": "60000"})


def producer(broker, timeout_ms: int = 60000) -> Producer:
    return Producer({
        "bootstrap.servers": broker.bootstrap,
        "transactional.id": f"iso-{uuid.uuid4().hex[:8]}",
        "transaction.timeout.ms": timeout_ms,
        "linger.ms": 0,
    })


def consumer(broker, isolation: str) -> Consumer:
    return Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": f"iso-reader-{uuid.uuid4().hex[:6]}",
        "isolation.level": isolation,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })


def read(broker, topic: str, isolation: str, settle_s: float = 1.5, timeout_s: float = 15) -> list[bytes]:
    """Values of partition 0 until end-of-partition has been reached and nothing more arrives
    for `settle_s`."""
    c = consumer(broker, isolation)
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out: list[bytes] = []
    deadline = time.time() + timeout_s
    eof_at = None
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            if eof_at is not None and time.time() - eof_at > settle_s:
                break
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof_at = time.time()
                continue
            raise KafkaException(m.error())
        eof_at = None
        out.append(m.value())
    c.close()
    return out


def txn(p: Producer, topic: str, values: list[bytes], commit: bool) -> None:
    p.begin_transaction()
    for v in values:
        p.produce(topic, value=v, partition=0)
    p.flush(10)
    if commit:
        p.commit_transaction(10)
    else:
        p.abort_transaction(10)


def test_read_committed_sees_only_committed_in_order(txn_broker):
    topic = unique_topic("iso")
    create_topic(txn_broker.bootstrap, topic, 1)
    a, b = producer(txn_broker), producer(txn_broker)
    a.init_transactions(10)
    b.init_transactions(10)
    committed, everything = [], []
    for round_ in range(6):
        va = [f"a{round_}-{i}".encode() for i in range(20)]
        vb = [f"b{round_}-{i}".encode() for i in range(20)]
        # Two producers' transactions interleave on the partition; one of them aborts.
        a.begin_transaction()
        b.begin_transaction()
        for x, y in zip(va, vb):
            a.produce(topic, value=x, partition=0)
            a.flush(10)
            b.produce(topic, value=y, partition=0)
            b.flush(10)
        everything += [v for pair in zip(va, vb) for v in pair]
        a.commit_transaction(10)
        if round_ % 2:
            b.commit_transaction(10)
        else:
            b.abort_transaction(10)
        committed += va + (vb if round_ % 2 else [])
    seen = read(txn_broker, topic, "read_committed")
    assert set(seen) == set(committed)
    assert len(seen) == len(committed)
    # Order within each producer is the log's order.
    assert [v for v in seen if v.startswith(b"a")] == [v for v in committed if v.startswith(b"a")]
    assert [v for v in seen if v.startswith(b"b")] == [v for v in committed if v.startswith(b"b")]
    assert read(txn_broker, topic, "read_uncommitted") == everything


def lso_and_hw(broker, topic: str) -> tuple[int, int]:
    """(LATEST for read_committed, LATEST for read_uncommitted) through ListOffsets."""
    out = []
    for isolation in ("read_committed", "read_uncommitted"):
        c = consumer(broker, isolation)
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
        c.close()
        out.append(high)
    return out[0], out[1]


def txn_start_offsets(broker, topic: str) -> list[int]:
    """DescribeProducers of partition 0: each producer's current transaction start offset,
    sorted (-1: none), through kafka-python's KafkaAdminClient."""
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTopicPartition
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        result = admin.describe_producers([KTopicPartition(topic, 0)])
    finally:
        admin.close()
    [state] = result.values()
    return sorted(p.current_transaction_start_offset for p in state.active_producers)


def test_open_transaction_holds_the_lso(txn_broker):
    topic = unique_topic("iso-lso")
    create_topic(txn_broker.bootstrap, topic, 1)
    plain = Producer({"bootstrap.servers": txn_broker.bootstrap, "enable.idempotence": True})
    for i in range(3):
        plain.produce(topic, value=f"before{i}".encode(), partition=0)
    plain.flush(10)
    p = producer(txn_broker)
    p.init_transactions(10)
    p.begin_transaction()
    p.produce(topic, value=b"open", partition=0)
    p.flush(10)
    # Non-transactional records written after the transaction began wait behind it too.
    plain.produce(topic, value=b"after", partition=0)
    plain.flush(10)
    assert lso_and_hw(txn_broker, topic) == (3, 5)
    assert txn_start_offsets(txn_broker, topic) == [-1, 3]
    assert read(txn_broker, topic, "read_committed", settle_s=1) == [b"before0", b"before1", b"before2"]
    assert read(txn_broker, topic, "read_uncommitted")[-2:] == [b"open", b"after"]
    p.commit_transaction(10)
    # The commit marker takes one offset.
    assert lso_and_hw(txn_broker, topic) == (6, 6)
    assert txn_start_offsets(txn_broker, topic) == [-1, -1]
    assert read(txn_broker, topic, "read_committed") == [
        b"before0", b"before1", b"before2", b"open", b"after"]


def test_aborted_index_and_open_transaction_survive_sigkill(txn_broker):
    topic = unique_topic("iso-crash")
    create_topic(txn_broker.bootstrap, topic, 1)
    p = producer(txn_broker)
    p.init_transactions(10)
    txn(p, topic, [b"keep1"], commit=True)
    txn(p, topic, [b"drop1", b"drop2"], commit=False)
    txn(p, topic, [b"keep2"], commit=True)
    q = producer(txn_broker)
    q.init_transactions(10)
    q.begin_transaction()
    q.produce(topic, value=b"in-flight", partition=0)
    q.flush(10)
    lso_before = lso_and_hw(txn_broker, topic)
    txn_broker.kill9()
    txn_broker.start()
    # The in-flight transaction still holds the LSO after recovery.
    assert lso_and_hw(txn_broker, topic) == lso_before
    assert read(txn_broker, topic, "read_committed") == [b"keep1", b"keep2"]
    assert read(txn_broker, topic, "read_uncommitted") == [b"keep1", b"drop1", b"drop2", b"keep2", b"in-flight"]
    # A new producer with q's id would fence it; here q's epoch is still current, so it commits.
    q.commit_transaction(30)
    assert read(txn_broker, topic, "read_committed") == [b"keep1", b"keep2", b"in-flight"]
