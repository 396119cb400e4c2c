"""Transaction safety with confluent-kafka against the real binary.

* Zombie fencing: a second producer with the same transactional.id fences the first; the
  first's open transaction is aborted (written, yet never visible read_committed) and its
  next transactional call fails fatally with a fencing error.
* Hanging transaction: a producer process begins a transaction, produces and is SIGKILLed.
  Its records hold the last stable offset back, so a read_committed consumer sees nothing
  written after them, until the transaction's timeout passes: the broker aborts it, the LSO
  moves on, and the records committed after it become visible (the hanging ones never).
* Broker SIGKILL with transactions in flight: a commit the client saw succeed is visible
  after restart; a transaction open across the crash is committed by its producer or
  aborted, all or nothing under read_committed; one whose producer died with the broker is
  recovered from `__transaction_state` and aborted by its timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition,
)

from dataset import create_topic, unique_topic

TXN_TIMEOUT_MS = 5000
# Long enough to outlast a broker restart, so the transaction is still open after it.
CRASH_TXN_TIMEOUT_MS = 10000
# The broker looks for timed-out transactions this often.
ABORT_CHECK_MS = 500
# A timed-out transaction is aborted within its timeout, the check interval and this.
ABORT_SLACK_S = 10
BROKER_SETTINGS = {
    "group.initial.rebalance.delay.ms": "0",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": str(ABORT_CHECK_MS),
}

pytestmark = pytest.mark.durable


@pytest.fixture
def txn_broker(broker_factory):
    return broker_factory(BROKER_SETTINGS)


def txn_producer(bootstrap: str, txn_id: str, **extra) -> Producer:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "transaction.timeout.ms": TXN_TIMEOUT_MS, "linger.ms": 5, **extra})
    p.init_transactions(30)
    return p


def produce_txn(p: Producer, topic: str, values: list[bytes]) -> None:
    for v in values:
        p.produce(topic, value=v)
    assert p.flush(30) == 0


def read_all(bootstrap: str, topic: str, isolation: str = "read_committed",
             wait_for: int = 0, timeout_s: float = 30) -> list[bytes]:
    """Values of partition 0 up to its end as the isolation level sees it (the LSO for
    read_committed); waits until at least `wait_for` values were read."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("reader"),
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    values, eof, deadline = [], False, time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (eof and len(values) >= wait_for):
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            eof = msg.error().code() == KafkaError._PARTITION_EOF
            continue
        eof = False
        values.append(msg.value())
    c.close()
    return values


def stable_offset(bootstrap: str, topic: str) -> int:
    """The partition's end as read_committed sees it: ListOffsets latest = the LSO."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("lso"),
                  "isolation.level": "read_committed"})
    _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    c.close()
    return high


def new_topic(broker, prefix: str) -> str:
    topic = unique_topic(prefix)
    create_topic(broker.bootstrap, topic, 1)
    return topic


def test_second_producer_fences_the_first(txn_broker):
    topic = new_topic(txn_broker, "fence")
    txn_id = unique_topic("fenced-id")
    zombie = txn_producer(txn_broker.bootstrap, txn_id)
    zombie.begin_transaction()
    produce_txn(zombie, topic, [b"zombie-%d" % i for i in range(10)])

    fresh = txn_producer(txn_broker.bootstrap, txn_id)
    fresh.begin_transaction()
    produce_txn(fresh, topic, [b"fresh-%d" % i for i in range(5)])
    fresh.commit_transaction(30)

    with pytest.raises(KafkaException) as raised:
        zombie.produce(topic, value=b"zombie-late")
        zombie.commit_transaction(30)
    err = raised.value.args[0]
    assert err.fatal(), f"fencing should be fatal, got {err}"
    assert err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                          KafkaError.INVALID_PRODUCER_EPOCH), err

    committed = read_all(txn_broker.bootstrap, topic, wait_for=5)
    assert committed == [b"fresh-%d" % i for i in range(5)]
    # The zombie's records reached the log (so the test did exercise an abort).
    everything = read_all(txn_broker.bootstrap, topic, "read_uncommitted", wait_for=15)
    assert [v for v in everything if v.startswith(b"zombie-")] == [
        b"zombie-%d" % i for i in range(10)]


HANGING_PRODUCER = textwrap.dedent("""
    import sys
    from confluent_kafka import Producer
    bootstrap, topic, txn_id, timeout_ms = sys.argv[1:5]
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "transaction.timeout.ms": int(timeout_ms)})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, value=b"hanging-%d" % i)
    assert p.flush(30) == 0
    print("produced", flush=True)
    sys.stdin.read()  # wait for the SIGKILL
""")


def start_hanging_producer(bootstrap: str, topic: str, txn_id: str,
                           timeout_ms: int = TXN_TIMEOUT_MS) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HANGING_PRODUCER, bootstrap, topic, txn_id, str(timeout_ms)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "produced"
    return proc


def plain_produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for v in values:
        p.produce(topic, value=v)
    assert p.flush(30) == 0


def test_hanging_transaction_is_aborted_after_its_timeout(txn_broker):
    topic = new_topic(txn_broker, "hanging")
    proc = start_hanging_producer(txn_broker.bootstrap, topic, unique_topic("hanging-id"))
    killed_at = time.monotonic()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    after = [b"after-%d" % i for i in range(10)]
    plain_produce(txn_broker.bootstrap, topic, after)

    # The open transaction holds the LSO at its first record.
    assert stable_offset(txn_broker.bootstrap, topic) == 0
    assert read_all(txn_broker.bootstrap, topic, timeout_s=1) == []

    seen = read_all(txn_broker.bootstrap, topic, wait_for=len(after),
                    timeout_s=TXN_TIMEOUT_MS / 1000 + ABORT_SLACK_S)
    waited_s = time.monotonic() - killed_at
    assert seen == after, f"after {waited_s:.1f}s read_committed saw {seen}"
    assert waited_s >= TXN_TIMEOUT_MS / 1000 * 0.9, "aborted before its timeout"
    # 10 hanging + 1 abort marker + 10 after: the LSO is the end of the log.
    assert stable_offset(txn_broker.bootstrap, topic) == 21


def test_commit_acknowledged_before_a_broker_crash_survives(txn_broker):
    topic = new_topic(txn_broker, "durable-commit")
    p = txn_producer(txn_broker.bootstrap, unique_topic("durable-id"))
    p.begin_transaction()
    produce_txn(p, topic, [b"c-%d" % i for i in range(20)])
    p.commit_transaction(30)
    txn_broker.kill9()
    txn_broker.start()
    assert read_all(txn_broker.bootstrap, topic, wait_for=20) == [b"c-%d" % i for i in range(20)]
    # The same producer goes on after the restart: its state was recovered.
    p.begin_transaction()
    produce_txn(p, topic, [b"d-%d" % i for i in range(5)])
    p.commit_transaction(30)
    assert read_all(txn_broker.bootstrap, topic, wait_for=25)[20:] == [
        b"d-%d" % i for i in range(5)]


def test_transaction_open_across_a_broker_crash_is_all_or_nothing(txn_broker):
    topic = new_topic(txn_broker, "crash-open")
    p = txn_producer(txn_broker.bootstrap, unique_topic("crash-open-id"),
                     **{"transaction.timeout.ms": 30000})
    p.begin_transaction()
    values = [b"o-%d" % i for i in range(20)]
    produce_txn(p, topic, values)
    txn_broker.kill9()
    txn_broker.start()
    try:
        p.commit_transaction(60)
        committed = True
    except KafkaException as e:
        assert e.args[0].txn_requires_abort() or e.args[0].fatal(), e
        if e.args[0].txn_requires_abort():
            p.abort_transaction(60)
        committed = False
    # Either way the outcome is settled now: a marker follows the records.
    seen = read_all(txn_broker.bootstrap, topic, wait_for=20 if committed else 0)
    assert seen == (values if committed else []), f"committed={committed}, saw {seen}"
    # What a later transaction commits is visible (the LSO is past the first one).
    later = txn_producer(txn_broker.bootstrap, unique_topic("crash-later-id"))
    later.begin_transaction()
    produce_txn(later, topic, [b"later"])
    later.commit_transaction(30)
    assert read_all(txn_broker.bootstrap, topic, wait_for=len(seen) + 1) == seen + [b"later"]


def test_in_flight_transaction_of_a_dead_producer_is_recovered_and_aborted(txn_broker):
    topic = new_topic(txn_broker, "crash-dead")
    proc = start_hanging_producer(txn_broker.bootstrap, topic, unique_topic("crash-dead-id"),
                                  CRASH_TXN_TIMEOUT_MS)
    txn_broker.kill9()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    txn_broker.start()
    restarted_at = time.monotonic()
    after = [b"after-%d" % i for i in range(5)]
    plain_produce(txn_broker.bootstrap, topic, after)
    # Recovered as open: it still holds the LSO ...
    assert stable_offset(txn_broker.bootstrap, topic) == 0
    # ... until its timeout aborts it.
    seen = read_all(txn_broker.bootstrap, topic, wait_for=len(after),
                    timeout_s=CRASH_TXN_TIMEOUT_MS / 1000 + ABORT_SLACK_S)
    assert seen == after, (
        f"{time.monotonic() - restarted_at:.1f}s after restart read_committed saw {seen}")


def assigned(consumer: Consumer, deadline_s: float = 30) -> list:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        consumer.poll(0.2)
        if consumer.assignment():
            return consumer.assignment()
    raise AssertionError("no assignment")


def test_offsets_of_a_member_from_an_old_generation_are_refused(txn_broker):
    """KIP-447: send_offsets_to_transaction carries the member's generation; a member that
    lost its partitions in a rebalance (a zombie) cannot commit offsets for them."""
    topic = unique_topic("kip447")
    create_topic(txn_broker.bootstrap, topic, 2)
    group = unique_topic("kip447-group")
    conf = {"bootstrap.servers": txn_broker.bootstrap, "group.id": group,
            "enable.auto.commit": False, "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500}
    a = Consumer(conf)
    a.subscribe([topic])
    assigned(a)
    stale = a.consumer_group_metadata()
    b = Consumer(conf)
    b.subscribe([topic])
    deadline = time.monotonic() + 30
    while not (a.assignment() and b.assignment()) and time.monotonic() < deadline:
        a.poll(0.1)
        b.poll(0.1)
    assert a.assignment() and b.assignment(), "the group did not rebalance to two members"
    current = a.consumer_group_metadata()

    p = txn_producer(txn_broker.bootstrap, unique_topic("kip447-tx"))
    p.begin_transaction()
    with pytest.raises(KafkaException) as raised:
        p.send_offsets_to_transaction([TopicPartition(topic, 0, 5)], stale, 30)
    err = raised.value.args[0]
    assert err.code() == KafkaError.ILLEGAL_GENERATION, err
    assert err.txn_requires_abort(), err
    p.abort_transaction(30)

    # The member's current generation may commit.
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(topic, 0, 5)], current, 30)
    p.commit_transaction(30)
    committed = a.committed([TopicPartition(topic, 0)], 30)
    assert committed[0].offset == 5
    a.close()
    b.close()
