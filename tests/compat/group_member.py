"""One confluent-kafka group member, run as its own process so a test can SIGKILL it.

    python group_member.py '<json settings>'

Settings: bootstrap, topic, group, name, strategy (range | roundrobin | cooperative-sticky),
session_timeout_ms, and optional extra (more consumer config). The member subscribes,
consumes, and commits each record synchronously after "processing" it. Everything it does is
printed as one JSON object per line, flushed at once, so that what a killed member did up to
its death is on record:

    {"ev": "assign", "t": <monotonic s>, "partitions": [..], "incremental": bool}
    {"ev": "revoke", "t": ..., "partitions": [..], "incremental": bool}
    {"ev": "lost", "t": ..., "partitions": [..]}
    {"ev": "record", "p": 3, "o": 17}       (consumed: processing done)
    {"ev": "committed", "p": 3, "o": 18}    (the commit of o+1 returned)

`time.monotonic()` is CLOCK_MONOTONIC on Linux, one clock for every process on the machine,
so the test can compare times logged by different members.

It runs until stdin closes or a line "stop" arrives, then closes the consumer (leaving the group).
"""

from __future__ import annotations

import json
import select
import sys
import time

from confluent_kafka import Consumer, KafkaError


def emit(**event) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def main() -> int:
    s = json.loads(sys.argv[1])
    strategy = s.get("strategy", "range")
    incremental = strategy == "cooperative-sticky"
    config = {
        "bootstrap.servers": s["bootstrap"],
        "group.id": s["group"],
        "client.id": s["name"],
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": s.get("session_timeout_ms", 6000),
        "heartbeat.interval.ms": 500,
        "partition.assignment.strategy": strategy,
        **s.get("extra", {}),
    }
    consumer = Consumer(config)

    def on_assign(c, partitions):
        emit(ev="assign", t=time.monotonic(), partitions=[p.partition for p in partitions],
             incremental=incremental)
        if incremental:
            c.incremental_assign(partitions)
        else:
            c.assign(partitions)

    def on_revoke(c, partitions):
        emit(ev="revoke", t=time.monotonic(), partitions=[p.partition for p in partitions],
             incremental=incremental)
        if incremental:
            c.incremental_unassign(partitions)
        else:
            c.unassign()

    def on_lost(c, partitions):
        emit(ev="lost", t=time.monotonic(), partitions=[p.partition for p in partitions])
        if incremental:
            c.incremental_unassign(partitions)
        else:
            c.unassign()

    consumer.subscribe([s["topic"]], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    emit(ev="started", t=time.monotonic())
    try:
        while True:
            ready, _, _ = select.select([sys.stdin], [], [], 0)
            if ready:
                line = sys.stdin.readline()
                if not line or line.strip() == "stop":
                    break
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    emit(ev="error", error=str(msg.error()))
                continue
            emit(ev="record", p=msg.partition(), o=msg.offset())
            try:
                consumer.commit(message=msg, asynchronous=False)
                emit(ev="committed", p=msg.partition(), o=msg.offset() + 1)
            except Exception as e:  # a commit during a rebalance may fail; the record repeats
                emit(ev="commit_failed", p=msg.partition(), o=msg.offset() + 1, error=str(e))
    finally:
        consumer.close()
        emit(ev="closed", t=time.monotonic())
    return 0


if __name__ == "__main__":
    sys.exit(main())
