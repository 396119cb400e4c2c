"""Real clients produce records with every codec and read them back unchanged.

For each client (kcat, confluent-kafka, kafka-python) and codec (none, gzip, snappy, lz4, zstd):
produce `EDDY_ROUNDTRIP_RECORDS` (default 100,000) records with keys, headers and timestamps to
a fresh 3-partition topic, keep every acknowledged (partition, offset), consume everything back
with the same client, and check each record came back once, in order, at its acknowledged
offset, byte for byte (`dataset.verify`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import wire
from dataset import (
    Consumed,
    Sent,
    consume_all_confluent,
    create_topic,
    make_records,
    produce_confluent,
    unique_topic,
    verify,
    wait_for_partitions,
)

RECORDS = int(os.environ.get("EDDY_ROUNDTRIP_RECORDS", "100000"))
PARTITIONS = 3
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
# Generous: kafka-python is pure Python, and a loaded 2-core CI machine is slow.
CLIENT_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def records() -> list[Sent]:
    return make_records(RECORDS, source="roundtrip")


def assert_verified(report, client, codec):
    print(f"{client}/{codec}: {report.summary()}")
    assert report.ok, f"{client}/{codec}: {report.summary()}"
    assert report.consumed == report.acknowledged == RECORDS, report.summary()


# -- confluent-kafka -------------------------------------------------------------------------


def roundtrip_confluent(broker, records, codec):
    topic = unique_topic(f"rt-confluent-{codec}")
    create_topic(broker.bootstrap, topic, PARTITIONS)
    acked = produce_confluent(broker.bootstrap, topic, records, codec, CLIENT_TIMEOUT_S)
    consumed = consume_all_confluent(broker.bootstrap, topic, PARTITIONS, CLIENT_TIMEOUT_S)
    # librdkafka hands an empty header value back as None.
    consumed = [
        Consumed(c.partition, c.offset, c.key, c.value,
                 tuple((k, b"" if v is None else v) for k, v in c.headers), c.timestamp_ms)
        for c in consumed
    ]
    return topic, verify({r.id: r for r in records}, acked, consumed)


# -- kafka-python ----------------------------------------------------------------------------


def roundtrip_kafka_python(broker, records, codec):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    topic = unique_topic(f"rt-kafkapython-{codec}")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=30_000)
    try:
        admin.create_topics(
            [NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)],
            timeout_ms=30_000,
        )
    finally:
        admin.close()
    wait_for_partitions(broker.bootstrap, topic, PARTITIONS)

    acked: dict[int, tuple[int, int]] = {}
    failed: list = []
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        acks="all",
        compression_type=None if codec == "none" else codec,
        linger_ms=50,
        batch_size=512 * 1024,
        max_request_size=16 * 1024 * 1024,
        request_timeout_ms=60_000,
    )
    try:
        for r in records:
            future = producer.send(
                topic, key=r.key, value=r.value, headers=list(r.headers), timestamp_ms=r.timestamp_ms
            )
            future.add_callback(lambda md, rid=r.id: acked.__setitem__(rid, (md.partition, md.offset)))
            future.add_errback(lambda exc, rid=r.id: failed.append((rid, repr(exc))))
        producer.flush(timeout=CLIENT_TIMEOUT_S)
    finally:
        producer.close(timeout=10)
    assert not failed, f"{len(failed)} deliveries failed, e.g. {failed[:5]}"

    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    consumed: list[Consumed] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        # Past the end offsets, one more empty poll: records beyond what ListOffsets reported
        # are read too and reported by verify rather than silently left behind.
        at_end_polls = 0
        while time.monotonic() < deadline and at_end_polls < 2:
            polled = consumer.poll(timeout_ms=500, max_records=10_000)
            for batch in polled.values():
                for m in batch:
                    consumed.append(
                        Consumed(m.partition, m.offset, m.key, m.value, tuple(m.headers), m.timestamp)
                    )
            if all(consumer.position(tp) >= ends[tp] for tp in tps):
                at_end_polls = 0 if polled else at_end_polls + 1
    finally:
        consumer.close()
    return topic, verify({r.id: r for r in records}, acked, consumed)


# -- kcat ------------------------------------------------------------------------------------


def kcat_headers(partition: int) -> tuple[tuple[str, bytes], ...]:
    # kcat's -H headers are fixed for a whole run; one run per partition makes them differ.
    return (("src", b"kcat"), ("partition", str(partition).encode()), ("dup", b"first"),
            ("dup", b"second"))


def roundtrip_kcat(broker, records, codec, tmp_path):
    kcat = shutil.which("kcat")
    assert kcat, "kcat not installed (scripts/test-all installs the Debian package)"
    topic = unique_topic(f"rt-kcat-{codec}")
    # kcat has no admin API; create the topic with librdkafka's, which kcat is built on.
    create_topic(broker.bootstrap, topic, PARTITIONS)

    # kcat prints no per-record delivery report, so each partition is produced by its own
    # idempotent run with -p: record n of a fresh partition's file must land at offset n.
    by_partition = {p: [r for r in records if r.id % PARTITIONS == p] for p in range(PARTITIONS)}
    acked: dict[int, tuple[int, int]] = {}
    procs = []
    t_start_ms = int(time.time() * 1000)
    for p, recs in by_partition.items():
        path = tmp_path / f"in-{p}.txt"
        path.write_bytes(b"".join(r.key + b"\t" + r.value + b"\n" for r in recs))
        acked.update({r.id: (p, n) for n, r in enumerate(recs)})
        cmd = [kcat, "-P", "-b", broker.bootstrap, "-t", topic, "-p", str(p), "-K", "\\t",
               "-z", codec, "-l", str(path),
               "-X", "enable.idempotence=true", "-X", "linger.ms=50",
               "-X", "batch.num.messages=10000", "-X", "message.timeout.ms=120000"]
        for name, value in kcat_headers(p):
            cmd += ["-H", f"{name}={value.decode()}"]
        procs.append((p, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    for p, proc in procs:
        out, err = proc.communicate(timeout=CLIENT_TIMEOUT_S)
        assert proc.returncode == 0, f"kcat -P partition {p}: exit {proc.returncode}: {err.decode()}"
        assert b"failed" not in err.lower(), f"kcat -P partition {p}: {err.decode()}"
    t_end_ms = int(time.time() * 1000)

    out_path = tmp_path / "out.txt"
    with open(out_path, "wb") as out:
        proc = subprocess.run(
            [kcat, "-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
             "-f", "%p\\t%o\\t%T\\t%k\\t%s\\t%h\\n"],
            stdout=out, stderr=subprocess.PIPE, timeout=CLIENT_TIMEOUT_S,
        )
    assert proc.returncode == 0, f"kcat -C: exit {proc.returncode}: {proc.stderr.decode()}"
    consumed = [parse_kcat_line(line) for line in out_path.read_bytes().splitlines()]
    # kcat -C without -p reads partitions concurrently; order only matters per partition.
    consumed.sort(key=lambda c: c.partition)
    report = verify(
        {r.id: r for r in records}, acked, consumed,
        timestamp_window_ms=(t_start_ms, t_end_ms), expected_headers=kcat_headers,
    )
    return topic, report


def parse_kcat_line(line: bytes) -> Consumed:
    partition, offset, ts, key, value, headers = line.split(b"\t")
    pairs = []
    for h in headers.split(b",") if headers else []:
        name, _, val = h.partition(b"=")
        pairs.append((name.decode(), val))
    return Consumed(int(partition), int(offset), key, value, tuple(pairs), int(ts))


# -- the tests -------------------------------------------------------------------------------


def check_stored_codec(broker, topic, codec):
    """The broker keeps the producer's compression (Kafka's default compression.type=producer).

    librdkafka sends a batch uncompressed when compressing does not make it smaller (a lone
    record often), so a batch may come back uncompressed, but never in another codec, and the
    big batches must carry the codec they were sent with.
    """
    with wire.Connection(broker.bootstrap) as conn:
        batches = conn.fetch_batches(topic, 0, offset=0)
    assert batches, f"no batch fetched from {topic}[0]"
    want = wire.CODEC_IDS[codec]
    seen = sorted({(b.codec, b.record_count >= 100) for b in batches})
    assert all(b.crc_ok for b in batches), f"{topic}[0]: a fetched batch fails its CRC"
    assert all(b.codec in (0, want) for b in batches), f"{topic}[0]: codecs {seen}, sent {codec}"
    big = [b for b in batches if b.record_count >= 100]
    assert big and all(b.codec == want for b in big), (
        f"{topic}[0]: (codec, >=100 records) of fetched batches {seen}, produced with {codec}. "
        "Codec 0 here means the client sent it uncompressed: librdkafka silently does so when "
        "ApiVersions lacks what it ties a codec to (Produce from v0 for gzip/snappy in older "
        "librdkafka such as kcat 1.7.1's 2.0.2, cf. KAFKA-18659; FindCoordinator v0 for lz4)"
    )


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_kafka(broker, records, codec):
    topic, report = roundtrip_confluent(broker, records, codec)
    assert_verified(report, "confluent-kafka", codec)
    check_stored_codec(broker, topic, codec)


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python(broker, records, codec):
    topic, report = roundtrip_kafka_python(broker, records, codec)
    assert_verified(report, "kafka-python", codec)
    check_stored_codec(broker, topic, codec)


@pytest.mark.parametrize("codec", CODECS)
def test_kcat(broker, records, codec, tmp_path):
    topic, report = roundtrip_kcat(broker, records, codec, tmp_path)
    assert_verified(report, "kcat", codec)
    check_stored_codec(broker, topic, codec)
