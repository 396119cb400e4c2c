"""Log compaction seen from real clients against the real binary.

confluent-kafka produces keyed records with repeats and tombstones to topics created with
`cleanup.policy=compact`, small segments and `min.cleanable.dirty.ratio=0.01`; the broker runs
its cleaner every 200 ms. Once `/metrics` shows the cleaner has caught up with the log, a
consumer reading from the beginning must see exactly the latest value of each key, at the
offset it was produced at; tombstones are there while `delete.retention.ms` has not passed and
gone after it. `__consumer_offsets` is compacted by the same cleaner and committed offsets
survive a SIGKILL after compaction. A keyless record is refused with INVALID_RECORD.
kafka-python reads a compacted topic too.
"""

from __future__ import annotations

import random
import re
import time
import urllib.request

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from dataset import unique_topic, wait_for_partitions

BROKER_SETTINGS = {
    "log.cleaner.backoff.ms": "200",
    # Also the defaults of __consumer_offsets, so that it rolls and gets cleaned.
    "log.segment.bytes": "4096",
    "log.roll.ms": "1000",
    "log.cleaner.min.cleanable.ratio": "0.01",
    "offsets.topic.num.partitions": "1",
}
RECORDS = 6000
KEYS = 300
TOMBSTONE_PERCENT = 10
WAIT_S = 90


def create_compacted(bootstrap: str, topic: str, delete_retention_ms: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {
        "cleanup.policy": "compact",
        "segment.bytes": "2048",
        "segment.ms": "500",
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": str(delete_retention_ms),
    }
    futures = admin.create_topics([NewTopic(topic, 1, 1, config=config)], operation_timeout=30)
    futures[topic].result(timeout=30)
    wait_for_partitions(bootstrap, topic, 1)


def produce_workload(bootstrap: str, topic: str, compression: str, seed: int) -> dict:
    """Returns key -> (offset, value or None) of the last record acknowledged per key."""
    rng = random.Random(seed)
    latest: dict[bytes, tuple[int, bytes | None]] = {}
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
            return
        current = latest.get(msg.key())
        if current is None or current[0] < msg.offset():
            latest[msg.key()] = (msg.offset(), msg.value())

    producer = Producer({
        "bootstrap.servers": bootstrap, "compression.type": compression,
        "linger.ms": 5, "batch.num.messages": 20,
    })
    for i in range(RECORDS):
        key = f"key-{rng.randrange(KEYS)}".encode()
        tombstone = rng.randrange(100) < TOMBSTONE_PERCENT
        value = None if tombstone else f"value-{i}-{'x' * rng.randrange(60)}".encode()
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        if i % 500 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors, errors[:3]
    return latest


def metrics(broker) -> str:
    with urllib.request.urlopen(f"{broker.http}/metrics", timeout=5) as r:
        return r.read().decode()


def metric(text: str, name: str, topic: str | None = None) -> float | None:
    label = f'{{topic="{topic}",partition="0"}}' if topic else ""
    m = re.search(rf"^{re.escape(name + label)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_cleaned(broker, topic: str, end_offset: int) -> str:
    """Waits until the cleaner's checkpoint for the partition reaches `end_offset`."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        text = metrics(broker)
        first_dirty = metric(text, "eddy_log_cleaner_partition_first_dirty_offset", topic)
        if first_dirty is not None and first_dirty >= end_offset:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{topic} not cleaned up to {end_offset} within {WAIT_S}s")


def consume_all(bootstrap: str, topic: str) -> list[tuple[int, bytes, bytes | None]]:
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": unique_topic("reader"),
        "enable.auto.commit": False, "enable.partition.eof": True,
    })
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return out
                raise AssertionError(msg.error())
            out.append((msg.offset(), msg.key(), msg.value()))
        raise AssertionError(f"no end of {topic} within 60 s")
    finally:
        consumer.close()


def check_compacted(consumed, latest, keep_tombstones: bool) -> None:
    offsets = [o for o, _, _ in consumed]
    assert offsets == sorted(set(offsets)), "offsets strictly increase"
    got = {k: (o, v) for o, k, v in consumed}
    assert len(got) == len(consumed), "one record per key once everything is cleaned"
    want = {k: ov for k, ov in latest.items() if keep_tombstones or ov[1] is not None}
    assert got == want


def test_compaction_keeps_latest_per_key_and_drops_tombstones_after_delete_retention(broker):
    kept = unique_topic("compact-keep")
    dropped = unique_topic("compact-drop")
    create_compacted(broker.bootstrap, kept, delete_retention_ms=3_600_000)
    create_compacted(broker.bootstrap, dropped, delete_retention_ms=1_000)
    latest_kept = produce_workload(broker.bootstrap, kept, "none", seed=1)
    latest_dropped = produce_workload(broker.bootstrap, dropped, "lz4", seed=2)
    produced_at = time.monotonic()
    tombstones = sum(1 for _, v in latest_kept.values() if v is None)
    assert tombstones > 0

    text = wait_cleaned(broker, kept, RECORDS)
    cleaned_after_s = time.monotonic() - produced_at
    consumed = consume_all(broker.bootstrap, kept)
    check_compacted(consumed, latest_kept, keep_tombstones=True)
    assert sum(1 for _, _, v in consumed if v is None) == tombstones

    # The 1 s delete horizon passes; a later pass removes those tombstones.
    deadline = time.monotonic() + WAIT_S
    while True:
        wait_cleaned(broker, dropped, RECORDS)
        consumed = consume_all(broker.bootstrap, dropped)
        if all(v is not None for _, _, v in consumed) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    check_compacted(consumed, latest_dropped, keep_tombstones=False)

    text = metrics(broker)
    print(
        f"\n{RECORDS} records x 2 topics, {KEYS} keys: cleaned within {cleaned_after_s:.1f}s; "
        f"size after: {metric(text, 'eddy_log_cleaner_partition_size_bytes', kept):.0f} B "
        f"(tombstones kept), {metric(text, 'eddy_log_cleaner_partition_size_bytes', dropped):.0f}"
        f" B (lz4, tombstones dropped); cleaner totals: "
        f"{metric(text, 'eddy_log_cleaner_bytes_read_total'):.0f} B read, "
        f"{metric(text, 'eddy_log_cleaner_bytes_written_total'):.0f} B written, "
        f"{metric(text, 'eddy_log_cleaner_records_removed_total'):.0f} records removed, "
        f"{metric(text, 'eddy_log_cleaner_passes_total'):.0f} passes, "
        f"{metric(text, 'eddy_log_cleaner_pass_ms_total'):.0f} ms"
    )
    assert metric(text, "eddy_log_cleaner_errors_total") == 0


def test_keyless_record_to_compacted_topic_is_invalid_record(broker):
    topic = unique_topic("compact-keyless")
    create_compacted(broker.bootstrap, topic, delete_retention_ms=1_000)
    results = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "retries": 0})
    producer.produce(topic, value=b"no key", on_delivery=lambda err, msg: results.append(err))
    producer.flush(30)
    # Separately: a keyless record fails its whole batch, as in Kafka.
    producer.produce(topic, key=b"k", value=b"keyed", on_delivery=lambda err, msg: results.append(err))
    producer.flush(30)
    assert len(results) == 2
    assert results[0] is not None and results[0].code() == KafkaError.INVALID_RECORD, results[0]
    assert results[1] is None


@pytest.mark.durable
def test_consumer_offsets_compacted_and_committed_offsets_survive_sigkill(broker):
    topic = unique_topic("compact-commits")
    create_compacted(broker.bootstrap, topic, delete_retention_ms=1_000)
    group = unique_topic("cg")
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False,
    })
    try:
        for offset in range(1, 301):
            consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()
    text = metrics(broker)
    end = metric(text, "eddy_partition_log_end_offset", "__consumer_offsets")
    assert end is not None and end >= 300
    text = wait_cleaned(broker, "__consumer_offsets", int(end) - 1)
    size = metric(text, "eddy_log_cleaner_partition_size_bytes", "__consumer_offsets")
    print(f"\n__consumer_offsets: {end:.0f} records written, {size:.0f} B after cleaning")
    assert size < 300 * 100

    broker.kill9()
    broker.start()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        committed = consumer.committed([TopicPartition(topic, 0)], timeout=30)
        assert committed[0].offset == 300
    finally:
        consumer.close()


def test_kafka_python_reads_a_compacted_topic(broker):
    """kafka-python (pure Python, its own batch decoder) skips the offset gaps too."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTopicPartition

    topic = unique_topic("compact-kpy")
    create_compacted(broker.bootstrap, topic, delete_retention_ms=3_600_000)
    latest = produce_workload(broker.bootstrap, topic, "gzip", seed=3)
    wait_cleaned(broker, topic, RECORDS)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=10_000)
    try:
        tp = KTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        consumed = []
        for msg in consumer:
            consumed.append((msg.offset, msg.key, msg.value))
            if consumer.position(tp) >= end:
                break
    finally:
        consumer.close()
    check_compacted(consumed, latest, keep_tombstones=True)
