"""Crash safety: what the broker acknowledged survives SIGKILL and SIGTERM, exactly once.

The storm test runs an idempotent acks=all producer (confluent-kafka) while the broker is
SIGKILLed `EDDY_CRASH_KILLS` times (default 20) at random intervals and restarted on the same
data directory. Every record carries a unique id; at the end every acknowledged id must be
readable exactly once at its acknowledged offset, and no id may appear twice.
"""

from __future__ import annotations

import os
import random
import threading
import time

import pytest
from confluent_kafka import Producer

from dataset import (
    consume_all_confluent,
    create_topic,
    id_of,
    key_of,
    make_records,
    produce_confluent,
    unique_topic,
    verify,
    wait_for_partitions,
)

KILLS = int(os.environ.get("EDDY_CRASH_KILLS", "20"))
KILL_INTERVAL_S = (0.2, 1.5)
PARTITIONS = 4
# Records per producer loop turn (each turn also polls for 10 ms): caps the storm at a few
# thousand records a second so reading everything back stays quick.
BURST_RECORDS = 25
SEED = int(os.environ.get("EDDY_CRASH_SEED", str(random.randrange(1 << 30))))


class Storm:
    """Produces unique ids from a thread until stopped, recreating the producer after a fatal
    error (an idempotent producer whose sequence the broker rejects cannot go on)."""

    def __init__(self, bootstrap: str, topic: str):
        self.bootstrap = bootstrap
        self.topic = topic
        self.acked: dict[int, tuple[int, int]] = {}
        self.failed: dict[int, str] = {}
        self.sent = 0
        self.producers = 0
        self.fatal_errors: list[str] = []
        self._fatal = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="storm", daemon=True)
        self.exception: BaseException | None = None

    def start(self):
        self._thread.start()

    def stop(self, timeout_s: float = 180):
        self._stop.set()
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"producer thread still running after {timeout_s}s"
        if self.exception:
            raise self.exception

    def _on_error(self, err):
        if err.fatal():
            self.fatal_errors.append(str(err))
            self._fatal.set()

    def _on_delivery(self, err, msg):
        rid = id_of(msg.key())
        if err is None:
            self.acked[rid] = (msg.partition(), msg.offset())
        else:
            self.failed[rid] = err.name()

    def _producer(self) -> Producer:
        self.producers += 1
        return Producer({
            "bootstrap.servers": self.bootstrap,
            "client.id": f"storm-{self.producers}",
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            # Long enough to ride out every restart: a record that times out is "not
            # acknowledged", which the test allows but which also tests less.
            "message.timeout.ms": 120_000,
            "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 500,
            "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 500,
            "queue.buffering.max.messages": 100_000,
            "error_cb": self._on_error,
        })

    def _run(self):
        try:
            while not self._stop.is_set():
                self._fatal.clear()
                producer = self._producer()
                while not self._stop.is_set() and not self._fatal.is_set():
                    for _ in range(BURST_RECORDS):
                        rid = self.sent
                        try:
                            producer.produce(
                                self.topic, key=key_of(rid), value=b"storm-%d-" % rid + b"x" * 64,
                                partition=rid % PARTITIONS, on_delivery=self._on_delivery,
                            )
                        except BufferError:
                            break
                        self.sent += 1
                    producer.poll(0.01)
                # Stopped or fatal: deliver (or fail) everything still queued.
                producer.flush(150)
        except BaseException as e:  # surfaced by stop()
            self.exception = e


@pytest.mark.durable
@pytest.mark.timeout(900)
def test_sigkill_storm_loses_and_duplicates_nothing(fresh_broker):
    broker = fresh_broker
    rng = random.Random(SEED)
    topic = unique_topic("storm")
    create_topic(broker.bootstrap, topic, PARTITIONS)

    storm = Storm(broker.bootstrap, topic)
    storm.start()
    restart_s = []
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(*KILL_INTERVAL_S))
            broker.kill9()
            t0 = time.monotonic()
            broker.start()
            restart_s.append(time.monotonic() - t0)
        sent_before_last_restart_done = storm.sent
        # Let the producer get records acknowledged by the last incarnation too.
        time.sleep(2)
    finally:
        storm.stop()

    consumed = consume_all_confluent(broker.bootstrap, topic, PARTITIONS, timeout_s=300)
    report = verify(None, storm.acked, consumed)
    not_acked_but_present = sum(1 for c in consumed if id_of(c.key) not in storm.acked)
    print(
        f"storm (seed {SEED}): kills={KILLS} producers={storm.producers} sent={storm.sent} "
        f"acked={len(storm.acked)} failed={len(storm.failed)} consumed={len(consumed)} "
        f"lost={len(report.lost)} duplicates={len(report.duplicates)} "
        f"wrong_offset={len(report.wrong_offset)} out_of_order={len(report.out_of_order)} "
        f"unacked_present={not_acked_but_present} "
        f"restart_s max={max(restart_s):.2f} mean={sum(restart_s) / len(restart_s):.2f}"
    )
    if storm.fatal_errors:
        print(f"fatal producer errors: {storm.fatal_errors[:5]}")
    if storm.failed:
        kinds = sorted(set(storm.failed.values()))
        print(f"failed deliveries by kind: {kinds}")
    assert report.ok, report.summary()
    # A storm in which nothing got through would pass the checks above vacuously.
    assert len(storm.acked) >= 1000, f"only {len(storm.acked)} records acknowledged"
    assert max(storm.acked) >= sent_before_last_restart_done, "nothing acknowledged after the last restart"


@pytest.mark.durable
def test_sigkill_after_ack_keeps_everything(fresh_broker):
    """The simplest crash: records acknowledged, then SIGKILL, then restart."""
    topic = unique_topic("kill-after-ack")
    create_topic(fresh_broker.bootstrap, topic, 3)
    records = make_records(10_000, source="kill9")
    acked = produce_confluent(fresh_broker.bootstrap, topic, records)
    fresh_broker.kill9()
    fresh_broker.start()
    consumed = consume_all_confluent(fresh_broker.bootstrap, topic, 3)
    report = verify({r.id: r for r in records}, acked, consumed)
    assert report.ok, report.summary()


def test_sigterm_exits_zero_and_keeps_data(fresh_broker):
    topic = unique_topic("sigterm")
    create_topic(fresh_broker.bootstrap, topic, 3)
    records = make_records(20_000, source="sigterm")
    first, second = records[:10_000], records[10_000:]
    acked = produce_confluent(fresh_broker.bootstrap, topic, first)

    returncode = fresh_broker.stop()
    assert returncode == 0, f"broker exited with {returncode} on SIGTERM"

    fresh_broker.start()
    if not fresh_broker.durable:
        pytest.xfail(f"{fresh_broker.kind} runs on memory storage")
    # The topic survived as it was (checked before producing, which could auto-create it).
    wait_for_partitions(fresh_broker.bootstrap, topic, 3, timeout_s=10)
    acked.update(produce_confluent(fresh_broker.bootstrap, topic, second))
    consumed = consume_all_confluent(fresh_broker.bootstrap, topic, 3)
    report = verify({r.id: r for r in records}, acked, consumed)
    assert report.ok, report.summary()
