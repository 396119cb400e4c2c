"""Records to produce, and the check that what came back is exactly what was acknowledged.

A record is identified by an integer id carried in its key (`k0000042`), so a consumed record
can be matched to the delivery report of the record that was sent. `verify` compares three
things: what was sent (`Sent`), where the broker said it put it (acknowledged partition and
offset), and what a consumer read back (`Consumed`).
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

# How many mismatches of each kind a failure message shows.
EXAMPLES_MAX = 5

_WORDS = (
    b"alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    b"oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()


@dataclass(frozen=True)
class Sent:
    id: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


@dataclass(frozen=True)
class Consumed:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp_ms: int


def key_of(record_id: int) -> bytes:
    return b"k%07d" % record_id


def id_of(key: bytes | None) -> int | None:
    if key is None or not key.startswith(b"k"):
        return None
    try:
        return int(key[1:])
    except ValueError:
        return None


def make_records(count: int, source: str, seed: int = 7, base_ts_ms: int | None = None) -> list[Sent]:
    """`count` records with distinct keys, mildly compressible values, headers (one repeated
    name, one empty value) and strictly increasing CreateTime timestamps in the recent past."""
    rng = random.Random(seed)
    if base_ts_ms is None:
        base_ts_ms = int(time.time() * 1000) - count - 60_000
    records = []
    for i in range(count):
        words = b" ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 14)))
        value = b"v%07d:%s" % (i, words)
        headers = (
            ("id", str(i).encode()),
            ("src", source.encode()),
            ("dup", b"first"),
            ("dup", b"second"),
            ("empty", b""),
        )
        records.append(Sent(i, key_of(i), value, headers, base_ts_ms + i))
    return records


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 30) -> None:
    """Creates a topic through confluent-kafka's AdminClient and waits for the result."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=timeout_s, request_timeout=timeout_s,
    )
    futures[topic].result(timeout=timeout_s)
    wait_for_partitions(bootstrap, topic, partitions, timeout_s)


def wait_for_partitions(bootstrap: str, topic: str, partitions: int, timeout_s: float = 30) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        md = admin.list_topics(topic=topic, timeout=5)
        t = md.topics.get(topic)
        seen = t
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
            p.leader >= 0 for p in t.partitions.values()
        ):
            return
        time.sleep(0.1)
    raise AssertionError(f"topic {topic} not ready with {partitions} partitions: {seen}")


def produce_confluent(
    bootstrap: str, topic: str, records: list[Sent], codec: str = "none", timeout_s: float = 300
) -> dict[int, tuple[int, int]]:
    """Produces with an idempotent acks=all producer; returns {id: (partition, offset)} of
    every acknowledged record and fails if any delivery failed."""
    acked: dict[int, tuple[int, int]] = {}
    failed: list = []

    def on_delivery(err, msg):
        if err is not None:
            failed.append((id_of(msg.key()), str(err)))
        else:
            acked[id_of(msg.key())] = (msg.partition(), msg.offset())

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": codec,
        "linger.ms": 50,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "message.timeout.ms": int(timeout_s * 1000),
    })
    for i, r in enumerate(records):
        while True:
            try:
                producer.produce(
                    topic, key=r.key, value=r.value, headers=list(r.headers),
                    timestamp=r.timestamp_ms, on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.05)
        if i % 5000 == 0:
            producer.poll(0)
    remaining = producer.flush(timeout_s)
    assert remaining == 0, f"{remaining} records still in flight after {timeout_s}s"
    assert not failed, f"{len(failed)} deliveries failed, e.g. {failed[:5]}"
    return acked


def confluent_consumer(bootstrap: str, **extra) -> Consumer:
    config = {
        "bootstrap.servers": bootstrap,
        # confluent-kafka insists on a group id even for assign(); nothing is committed.
        "group.id": f"compat-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }
    config.update(extra)
    return Consumer(config)


def consume_all_confluent(
    bootstrap: str, topic: str, partitions: int, timeout_s: float = 120
) -> list[Consumed]:
    """Reads every partition from the beginning to its end.

    The end is where a fetch reports the high watermark (librdkafka's partition EOF); the test
    then checks ListOffsets(latest) agrees with it, since a broker whose two answers differ
    makes consumers stop early or wait forever.
    """
    consumer = confluent_consumer(bootstrap)
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out: list[Consumed] = []
        next_offset = {p: 0 for p in range(partitions)}
        pending = set(range(partitions))
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                        continue
                    raise AssertionError(f"consume error on {topic}: {err}")
                _ts_type, ts = msg.timestamp()
                out.append(
                    Consumed(
                        msg.partition(), msg.offset(), msg.key(), msg.value(),
                        tuple(msg.headers() or ()), ts,
                    )
                )
                next_offset[msg.partition()] = msg.offset() + 1
        if pending:
            raise AssertionError(
                f"timed out after {timeout_s}s consuming {topic}; partitions {sorted(pending)} "
                f"never reached their end (consumed up to {next_offset})"
            )
        for p in range(partitions):
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if next_offset[p] and high != next_offset[p]:
                raise AssertionError(
                    f"{topic}[{p}]: ListOffsets(latest) says {high} but fetching reached the "
                    f"high watermark after offset {next_offset[p] - 1}"
                )
        return out
    finally:
        consumer.close()


@dataclass
class Report:
    """Mismatches between acknowledged and consumed records; `ok` when there are none."""

    acknowledged: int = 0
    consumed: int = 0
    lost: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    wrong_offset: list = field(default_factory=list)
    out_of_order: list = field(default_factory=list)
    corrupted: list = field(default_factory=list)

    KINDS = ("lost", "duplicates", "unexpected", "wrong_offset", "out_of_order", "corrupted")

    @property
    def ok(self) -> bool:
        return not any(getattr(self, k) for k in self.KINDS)

    def summary(self) -> str:
        counts = ", ".join(f"{k}={len(getattr(self, k))}" for k in self.KINDS)
        lines = [f"acknowledged={self.acknowledged} consumed={self.consumed} {counts}"]
        for k in self.KINDS:
            examples = getattr(self, k)[:EXAMPLES_MAX]
            if examples:
                lines.append(f"  {k}: {examples}")
        return "\n".join(lines)


def verify(
    sent: dict[int, Sent] | None,
    acked: dict[int, tuple[int, int]],
    consumed: list[Consumed],
    check_timestamps: bool = True,
    timestamp_window_ms: tuple[int, int] | None = None,
    expected_headers=None,
) -> Report:
    """Each acknowledged record consumed exactly once, at its acknowledged (partition, offset),
    in increasing offset order per partition, with key/value/headers/timestamp intact.

    `sent=None` skips the content check (the crash test only tracks ids). With
    `timestamp_window_ms=(lo, hi)` a record's timestamp must fall in it instead of matching the
    one sent (for clients that cannot set timestamps); `expected_headers(partition)` likewise
    replaces the sent headers.
    """
    report = Report(acknowledged=len(acked), consumed=len(consumed))
    seen: dict[int, Consumed] = {}
    last_offset: dict[int, int] = {}
    last_id: dict[int, int] = {}
    for c in consumed:
        if c.offset <= last_offset.get(c.partition, -1):
            report.out_of_order.append((c.partition, c.offset, "after", last_offset[c.partition]))
        last_offset[c.partition] = c.offset
        rid = id_of(c.key)
        if rid is None or (sent is not None and rid not in sent):
            report.unexpected.append((c.partition, c.offset, c.key))
            continue
        if rid in seen:
            report.duplicates.append((rid, (seen[rid].partition, seen[rid].offset), (c.partition, c.offset)))
            continue
        seen[rid] = c
        # Ids are sent in increasing order, so per partition they must come back increasing.
        if rid <= last_id.get(c.partition, -1):
            report.out_of_order.append((c.partition, c.offset, f"id {rid} after id {last_id[c.partition]}"))
        last_id[c.partition] = rid
        if rid in acked and acked[rid] != (c.partition, c.offset):
            report.wrong_offset.append((rid, "acked", acked[rid], "consumed", (c.partition, c.offset)))
        if sent is not None:
            problem = _content_problem(sent[rid], c, check_timestamps, timestamp_window_ms, expected_headers)
            if problem:
                report.corrupted.append((rid, problem))
    report.lost = sorted(rid for rid in acked if rid not in seen)
    return report


def _content_problem(s: Sent, c: Consumed, check_ts, window, expected_headers) -> str | None:
    if c.key != s.key:
        return f"key {c.key!r} != {s.key!r}"
    if c.value != s.value:
        return f"value {c.value!r} != {s.value!r}"
    want_headers = expected_headers(c.partition) if expected_headers else s.headers
    if tuple(c.headers) != tuple(want_headers):
        return f"headers {c.headers!r} != {want_headers!r}"
    if window is not None:
        if not window[0] <= c.timestamp_ms <= window[1]:
            return f"timestamp {c.timestamp_ms} outside produce window {window}"
    elif check_ts and c.timestamp_ms != s.timestamp_ms:
        return f"timestamp {c.timestamp_ms} != {s.timestamp_ms}"
    return None
