"""A transactional copier (confluent-kafka), run as its own process so a test can SIGKILL it.

    python txn_copier.py '<json settings>'

Settings: bootstrap, input, output, group, transactional_id, incarnation, and optional
batch (records per transaction, default 750), linger_ms, transaction_timeout_ms.

It consumes `input` read_committed as a member of `group`, transforms each record
(`transform`), and produces the result to `output` inside a transaction that also commits
the consumed offsets (send_offsets_to_transaction), so each input record lands in the
output exactly once. Every output record carries headers `inc` (this incarnation) and `txn`
(the transaction's number in this incarnation), so a reader can tell which transaction it
came from. On an abortable error the transaction is aborted and the consumer rewound to
the committed offsets; on a fatal one the copier exits with status 3.

What it does is printed as one JSON object per line, flushed at once, so what a killed
copier did up to its death is on record:

    {"ev": "ready", "inc": i}                      init_transactions returned
    {"ev": "begin", "txn": n}                       begin_transaction returned
    {"ev": "commit_begin", "txn": n, "count": k}    commit_transaction called
    {"ev": "committed", "txn": n, "count": k}       ... and returned: the records are visible
    {"ev": "aborted", "txn": n, "why": "..."}       abort_transaction returned: never visible
    {"ev": "fatal", "error": "..."}

A transaction with no `commit_begin` never commits; one with `commit_begin` and no outcome
(killed in between) may have either way. It runs until stdin closes or says "stop".
"""

from __future__ import annotations

import json
import os
import select
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer

# A transaction is committed once it holds this many records, or when input pauses this long.
IDLE_COMMIT_S = 0.5
# Bounds every blocking transactional call; a call that times out is retried.
CALL_TIMEOUT_S = 30
FATAL_EXIT = 3
# librdkafka 2.16 re-bootstraps when every known broker is down (the broker is SIGKILLed
# several times in a row here), which decommissions the cached coordinator; a pending
# send_offsets_to_transaction then waits forever, past its timeout (open librdkafka bugs
# #5511 and #5456, seen here as a copier stuck in send_offsets after the broker came back).
# With one broker whose address never changes, re-bootstrapping has nothing to offer.
NO_REBOOTSTRAP = {"metadata.recovery.strategy": "none"}


def emit(**event) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def transform(value: bytes) -> bytes:
    """The copier's "processing": deterministic, so the test can check every output value."""
    return b"copied:" + value.upper()


class Fatal(Exception):
    pass


class Copier:
    def __init__(self, s: dict):
        self.s = s
        self.inc = s["incarnation"]
        self.batch = s.get("batch", 750)
        self.txn = 0
        self.in_txn = False
        self.count = 0
        self.rewind_needed = False
        self.consumer = Consumer({
            "bootstrap.servers": s["bootstrap"],
            "group.id": s["group"],
            # A dead incarnation's membership ends with its session; kept short so the next
            # incarnation gets the partitions soon.
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **NO_REBOOTSTRAP,
        })
        self.producer = Producer({
            "bootstrap.servers": s["bootstrap"],
            "transactional.id": s["transactional_id"],
            "transaction.timeout.ms": s.get("transaction_timeout_ms", 10000),
            "linger.ms": s.get("linger_ms", 20),
            "batch.num.messages": 1000,
            **NO_REBOOTSTRAP,
            # librdkafka's own trace on stderr when chasing a stall, e.g. "eos,protocol".
            **({"debug": os.environ["EDDY_COPIER_DEBUG"]} if os.environ.get("EDDY_COPIER_DEBUG") else {}),
        })

    def call(self, what: str, fn, *args) -> None:
        """Runs a transactional call; retriable errors are retried, abortable ones raised
        as KafkaException, fatal ones as Fatal."""
        while True:
            try:
                fn(*args)
                return
            except KafkaException as e:
                err = e.args[0]
                if err.fatal():
                    raise Fatal(f"{what}: {err}") from e
                if err.retriable():
                    time.sleep(0.1)
                    continue
                if err.txn_requires_abort():
                    raise
                raise Fatal(f"{what}: {err}") from e

    def begin(self) -> None:
        self.txn += 1
        self.count = 0
        self.call("begin_transaction", self.producer.begin_transaction)
        self.in_txn = True
        emit(ev="begin", txn=self.txn)

    def abort(self, why: str) -> None:
        self.call("abort_transaction", self.producer.abort_transaction, CALL_TIMEOUT_S)
        self.in_txn = False
        self.count = 0
        emit(ev="aborted", txn=self.txn, why=why)
        self.rewind()

    def rewind(self) -> None:
        """Back to the committed offsets: the aborted records are consumed again."""
        assignment = self.consumer.assignment()
        if not assignment:
            return
        for tp in self.consumer.committed(assignment, timeout=CALL_TIMEOUT_S):
            if tp.offset < 0:
                tp.offset = OFFSET_BEGINNING
            self.consumer.seek(tp)

    def commit(self) -> None:
        try:
            positions = self.consumer.position(self.consumer.assignment())
            meta = self.consumer.consumer_group_metadata()
            self.call("send_offsets_to_transaction", self.producer.send_offsets_to_transaction,
                      positions, meta, CALL_TIMEOUT_S)
            emit(ev="commit_begin", txn=self.txn, count=self.count)
            self.call("commit_transaction", self.producer.commit_transaction, CALL_TIMEOUT_S)
        except KafkaException as e:
            self.abort(str(e.args[0]))
            return
        self.in_txn = False
        emit(ev="committed", txn=self.txn, count=self.count)
        self.count = 0

    def copy(self, msg) -> None:
        if not self.in_txn:
            self.begin()
        headers = [("inc", str(self.inc).encode()), ("txn", str(self.txn).encode())]
        while True:
            try:
                self.producer.produce(self.s["output"], key=msg.key(),
                                      value=transform(msg.value()), headers=headers)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.count += 1

    def on_revoke(self, consumer, partitions) -> None:
        # Records consumed from revoked partitions must not be committed by us.
        if self.in_txn:
            self.rewind_needed = True

    def run(self) -> int:
        self.call("init_transactions", self.producer.init_transactions, CALL_TIMEOUT_S)
        emit(ev="ready", inc=self.inc)
        self.consumer.subscribe([self.s["input"]], on_revoke=self.on_revoke)
        last_record = time.monotonic()
        while not stop_requested():
            if self.rewind_needed:
                self.rewind_needed = False
                self.abort("partitions revoked")
            want = self.batch - self.count
            for msg in self.consumer.consume(num_messages=want, timeout=0.2):
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        emit(ev="consume_error", error=str(msg.error()))
                    continue
                self.copy(msg)
                last_record = time.monotonic()
            self.producer.poll(0)
            idle = time.monotonic() - last_record > IDLE_COMMIT_S
            if self.in_txn and (self.count >= self.batch or (idle and self.count > 0)):
                self.commit()
        return 0


def stop_requested() -> bool:
    ready, _, _ = select.select([sys.stdin], [], [], 0)
    if not ready:
        return False
    line = sys.stdin.readline()
    return not line or line.strip() == "stop"


def main() -> int:
    copier = Copier(json.loads(sys.argv[1]))
    try:
        return copier.run()
    except Fatal as e:
        emit(ev="fatal", error=str(e))
        return FATAL_EXIT
    finally:
        copier.consumer.close()


if __name__ == "__main__":
    sys.exit(main())
