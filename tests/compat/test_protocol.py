"""Protocol behaviour a Kafka client relies on, checked on the wire or through real clients.

Raw-socket tests (`wire.py`) check exact error codes and connection handling; the rest use
confluent-kafka's admin and consumer APIs the way applications do.
"""

from __future__ import annotations

import struct
import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import wire
from dataset import (
    confluent_consumer,
    create_topic,
    make_records,
    produce_confluent,
    unique_topic,
    wait_for_partitions,
)

# The wire client's fixed versions; every current broker must accept them.
WIRE_VERSIONS = {wire.API_PRODUCE: 3, wire.API_FETCH: 4, wire.API_METADATA: 4, wire.API_API_VERSIONS: 0}


def admin(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def topic_names(broker) -> set[str]:
    return set(admin(broker).list_topics(timeout=10).topics)


@pytest.fixture(scope="module")
def versions(broker) -> dict[int, tuple[int, int]]:
    with wire.Connection(broker.bootstrap) as conn:
        error, versions = conn.api_versions()
    assert error == wire.NONE
    missing = {k: v for k, v in WIRE_VERSIONS.items()
               if k not in versions or not versions[k][0] <= v <= versions[k][1]}
    assert not missing, f"broker lacks (api_key: version) {missing}; it advertises {versions}"
    return versions


# -- ApiVersions ------------------------------------------------------------------------------


def test_api_versions_lists_core_apis(versions):
    for api_key in (wire.API_PRODUCE, wire.API_FETCH, wire.API_METADATA, wire.API_API_VERSIONS):
        assert api_key in versions
    # Flexible ApiVersions (v3) is what every current client sends first.
    assert versions[wire.API_API_VERSIONS][1] >= 3, versions[wire.API_API_VERSIONS]


def test_api_versions_unsupported_version_answers_v0_with_error_35(broker, versions):
    body = wire.Writer().compact_string("eddy-compat").compact_string("1.0").uvarint(0).bytes()
    with wire.Connection(broker.bootstrap) as conn:
        # KIP-511: an ApiVersions request of a version the broker does not know gets a v0
        # response (v0 header, v0 body) with UNSUPPORTED_VERSION and the broker's versions,
        # so the client can retry with one it has.
        r = conn.request(wire.API_API_VERSIONS, 99, body, flexible=True)
        try:
            error, listed = wire.parse_api_versions_v0(r)
        except ValueError as e:
            raise AssertionError(f"not a v0 ApiVersions response ({e}): {r.data[:64].hex()}") from e
        assert error == wire.UNSUPPORTED_VERSION, f"error {error}, expected 35 (UNSUPPORTED_VERSION)"
        assert wire.API_API_VERSIONS in listed, f"no ApiVersions entry in {listed}"
        assert listed[wire.API_API_VERSIONS] == versions[wire.API_API_VERSIONS]
        # The connection stays usable.
        error, _ = conn.api_versions()
        assert error == wire.NONE


# -- bad input closes only the offending connection ------------------------------------------

TLS_CLIENT_HELLO = bytes.fromhex(
    "16030100c4010000c00303" + "ab" * 32 + "00" + "0004130113020100" + "0093"
    + "0000000e000c0000096c6f63616c686f7374" + "000a00080006001d00170018"
    + "000d00140012040308040401050308050501080606010201" + "002b0003020304"
    + "0033002600240017" + "0020" + "cd" * 32 + "002d00020101" + "0010000b000908687474702f312e31"
    + "00" * 23
)

GARBAGE = {
    "http_request": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "tls_client_hello": TLS_CLIENT_HELLO,
    "oversized_length": struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 64,
    "length_just_over_default_max": struct.pack(">i", 100 * 1024 * 1024 + 1) + b"\x00" * 64,
    "negative_length": struct.pack(">i", -1) + b"\x00" * 64,
    "frame_shorter_than_header": struct.pack(">i", 3) + b"\x00\x12\x00",
    "unknown_api_key": struct.pack(">ihhih", 10, 0x7FF0, 0, 1, -1),
    "malformed_metadata_body": struct.pack(">ihhih", 14, wire.API_METADATA, 4, 1, -1)
    + struct.pack(">i", 0x7FFFFFF0),
    "random_bytes": bytes.fromhex("8f3a11c2d49e07b6") * 16,
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_closes_that_connection_only(broker, versions, name):
    with wire.Connection(broker.bootstrap) as healthy, wire.Connection(broker.bootstrap) as victim:
        assert healthy.api_versions()[0] == wire.NONE
        victim.send_raw(GARBAGE[name])
        assert victim.closed_within(5), f"broker kept the connection open after {name}"
        assert healthy.api_versions()[0] == wire.NONE, "an unrelated connection was disturbed"
    with wire.Connection(broker.bootstrap) as fresh:
        assert fresh.api_versions()[0] == wire.NONE, "broker stopped accepting connections"


# -- topic auto-creation ----------------------------------------------------------------------


def test_produce_auto_creates_topic_when_enabled(broker_factory):
    broker = broker_factory({"auto.create.topics.enable": "true", "num.partitions": "2"})
    topic = unique_topic("auto")
    errors = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 20_000})
    producer.produce(topic, b"hello", on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(30) == 0
    assert errors == [None], f"delivery to an auto-created topic failed: {errors}"
    wait_for_partitions(broker.bootstrap, topic, 2, timeout_s=10)


def test_unknown_topic_when_auto_create_disabled(broker_factory):
    broker = broker_factory({"auto.create.topics.enable": "false"})
    topic = unique_topic("noauto")
    with wire.Connection(broker.bootstrap) as conn:
        md = conn.metadata([topic], allow_auto_create=True)
        assert md["topics"][topic][0] == wire.UNKNOWN_TOPIC_OR_PARTITION, md
        error, _ = conn.produce(topic, 0, wire.encode_batch([(b"k", b"v")]))
        assert error == wire.UNKNOWN_TOPIC_OR_PARTITION, f"produce error {error}, expected 3"
        md = conn.metadata([topic], allow_auto_create=True)
        assert md["topics"][topic][0] == wire.UNKNOWN_TOPIC_OR_PARTITION, "topic appeared anyway"

    errors = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 3000})
    producer.produce(topic, b"hello", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert len(errors) == 1 and errors[0] is not None, f"delivery succeeded: {errors}"
    assert topic not in topic_names(broker)


# -- CreateTopics -----------------------------------------------------------------------------

INVALID_TOPIC_NAMES = ["with space", "slash/name", "star*", "..", ".", "x" * 250, "é"]


@pytest.mark.parametrize("name", INVALID_TOPIC_NAMES, ids=lambda n: n if len(n) < 20 else f"len{len(n)}")
def test_invalid_topic_name_rejected(broker, name):
    a = admin(broker)  # must outlive its futures: a destroyed client fails them with _DESTROY
    futures = a.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    with pytest.raises(KafkaException) as info:
        futures[name].result(timeout=30)
    code = info.value.args[0].code()
    assert code == KafkaError.TOPIC_EXCEPTION, f"error {info.value}, expected INVALID_TOPIC_EXCEPTION (17)"
    assert name not in topic_names(broker)


def test_create_topics_validate_only(broker):
    topic = unique_topic("validate")
    a = admin(broker)
    futures = a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)], validate_only=True)
    futures[topic].result(timeout=30)
    assert topic not in topic_names(broker), "validate_only created the topic"

    bad = "bad name"
    futures = a.create_topics([NewTopic(bad, num_partitions=1, replication_factor=1)], validate_only=True)
    with pytest.raises(KafkaException) as info:
        futures[bad].result(timeout=30)
    assert info.value.args[0].code() == KafkaError.TOPIC_EXCEPTION, info.value

    create_topic(broker.bootstrap, topic, 3)
    futures = a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)], validate_only=True)
    with pytest.raises(KafkaException) as info:
        futures[topic].result(timeout=30)
    assert info.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, info.value


# -- DeleteRecords, ListOffsets ---------------------------------------------------------------


def test_delete_records_moves_low_watermark(broker):
    topic = unique_topic("delrec")
    create_topic(broker.bootstrap, topic, 1)
    produce_confluent(broker.bootstrap, topic, make_records(100, source="delrec"))

    a = admin(broker)
    futures = a.delete_records([TopicPartition(topic, 0, 40)])
    (result,) = [f.result(timeout=30) for f in futures.values()]
    assert result.low_watermark == 40, f"DeleteRecords returned low watermark {result.low_watermark}"

    consumer = confluent_consumer(broker.bootstrap)
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (40, 100)
        consumer.assign([TopicPartition(topic, 0, -2)])  # OFFSET_BEGINNING
        first = None
        deadline = time.monotonic() + 30
        while first is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                first = msg.offset()
        assert first == 40, f"first record read from the beginning is at offset {first}"
    finally:
        consumer.close()

    futures = a.delete_records([TopicPartition(topic, 0, 200)])
    with pytest.raises(KafkaException) as info:
        [f.result(timeout=30) for f in futures.values()]
    assert info.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE, info.value


def test_list_offsets_by_timestamp(broker):
    topic = unique_topic("bytime")
    create_topic(broker.bootstrap, topic, 1)
    base = int(time.time() * 1000) - 3_600_000
    records = make_records(10, source="bytime")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 1000})
    # Records 0-4 share one batch, so the lookup must find offsets inside a batch, not just
    # batch starts; 5-9 are a batch each.
    for i, r in enumerate(records):
        producer.produce(topic, key=r.key, value=r.value, partition=0, timestamp=base + i * 1000)
        if i >= 4:
            assert producer.flush(10) == 0
    with wire.Connection(broker.bootstrap) as conn:
        counts = [b.record_count for b in conn.fetch_batches(topic, 0, 0)]
    assert counts[:2] == [5, 1], f"test premise: batches of {counts}"

    cases = {base - 5000: 0, base: 0, base + 1: 1, base + 2500: 3, base + 9000: 9, base + 9001: -1}
    consumer = confluent_consumer(broker.bootstrap)
    try:
        got = {}
        for ts in cases:
            (tp,) = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert tp.error is None, tp.error
            got[ts - base] = tp.offset
    finally:
        consumer.close()
    assert got == {ts - base: off for ts, off in cases.items()}


# -- Fetch long poll --------------------------------------------------------------------------


def test_fetch_waits_max_wait_when_no_data(broker, versions):
    topic = unique_topic("longpoll")
    create_topic(broker.bootstrap, topic, 1)
    with wire.Connection(broker.bootstrap) as conn:
        t0 = time.monotonic()
        error, hw, records = conn.fetch(topic, 0, 0, max_wait_ms=1000, min_bytes=1)
        elapsed = time.monotonic() - t0
    assert error == wire.NONE and hw == 0 and records == b""
    assert 0.8 <= elapsed <= 3.0, f"fetch with max_wait_ms=1000 on no data returned after {elapsed:.2f}s"


def test_fetch_returns_early_when_data_arrives(broker, versions):
    topic = unique_topic("longpoll-data")
    create_topic(broker.bootstrap, topic, 1)
    result = {}

    def fetch():
        with wire.Connection(broker.bootstrap, timeout_s=30) as conn:
            t0 = time.monotonic()
            result["response"] = conn.fetch(topic, 0, 0, max_wait_ms=10_000, min_bytes=1)
            result["elapsed"] = time.monotonic() - t0

    thread = threading.Thread(target=fetch)
    thread.start()
    time.sleep(0.5)
    produce_confluent(broker.bootstrap, topic, make_records(1, source="longpoll"))
    thread.join(30)
    error, hw, records = result["response"]
    assert error == wire.NONE and hw == 1, result
    assert wire.decode_batches(records), "long poll returned without the record"
    assert result["elapsed"] < 5, f"fetch returned after {result['elapsed']:.2f}s, not when data arrived"


@pytest.mark.parametrize("target", ["zstd", "uncompressed"])
def test_topic_compression_type_recompresses(broker, target):
    """compression.type=<codec> stores batches in that codec whatever the producer sent."""
    topic = f"recompress-{target}-{time.time_ns()}"
    client = admin(broker)
    client.create_topics([NewTopic(topic, 1, 1, config={"compression.type": target})])[topic].result(timeout=10)
    sent = "none" if target == "zstd" else "gzip"
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": sent, "linger.ms": 50})
    for i in range(500):
        p.produce(topic, key=f"k{i}".encode(), value=f"value-{i}".encode() * 4, partition=0,
                  headers=[("h", b"1"), ("h", b"2")])
    assert p.flush(15) == 0
    with wire.Connection(broker.bootstrap) as conn:
        batches = conn.fetch_batches(topic, 0, offset=0)
    want = wire.CODEC_IDS["zstd" if target == "zstd" else "none"]
    assert batches and all(b.codec == want and b.crc_ok for b in batches), [(b.codec, b.crc_ok) for b in batches]
    assert sum(b.record_count for b in batches) == 500
    # Records, including duplicate header keys, survive the re-encoding.
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 15
    while len(got) < 500 and time.time() < deadline:
        m = c.poll(1.0)
        if m is not None and not m.error():
            got.append(m)
    c.close()
    assert [m.value() for m in got] == [f"value-{i}".encode() * 4 for i in range(500)]
    assert got[7].headers() == [("h", b"1"), ("h", b"2")]


def test_compacted_topic_rejects_records_without_key(broker):
    topic = f"compact-keyless-{time.time_ns()}"
    client = admin(broker)
    client.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})])[topic].result(timeout=10)
    errors = []
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "retries": 0})
    p.produce(topic, key=b"k", value=b"kept", partition=0)
    assert p.flush(10) == 0
    p.produce(topic, value=b"no key", partition=0, on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(10) == 0
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.INVALID_RECORD, errors[0]
    with wire.Connection(broker.bootstrap) as conn:
        batches = conn.fetch_batches(topic, 0, offset=0)
    assert sum(b.record_count for b in batches) == 1
