"""Consumer groups under rebalances, with confluent-kafka members in their own processes.

* Three members share a 6-partition topic while a producer keeps writing; no partition is
  ever owned by two members at once (ownership intervals from each member's assign/revoke
  callbacks, on the machine-wide monotonic clock). One member is SIGKILLed: the other two
  take over its partitions within the session timeout (plus the heartbeat and rejoin that
  follow), every acknowledged record is consumed, and only records whose commit had not
  returned are consumed twice.
* With cooperative-sticky, a third member joining takes two partitions, and only those two
  are revoked from the others: partitions that stay are never revoked.

Members are `group_member.py` processes; each commits every record synchronously.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer

from dataset import create_topic, unique_topic

PARTITIONS = 6
SESSION_TIMEOUT_MS = 6000
# After the session times out the survivors learn of the rebalance on their next heartbeat
# (500 ms), rejoin, and the leader assigns: allow this much on top of the session timeout.
TAKEOVER_SLACK_S = 4.0
TIMEOUT_S = 90
MEMBER_SCRIPT = Path(__file__).with_name("group_member.py")


class Member:
    """A group member process and the events it has printed so far."""

    def __init__(self, name: str, settings: dict):
        self.name = name
        self.events: list[dict] = []
        self.killed_at: float | None = None
        self.proc = subprocess.Popen(
            [sys.executable, str(MEMBER_SCRIPT), json.dumps({**settings, "name": name})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def owned(self) -> set[int]:
        """Partitions owned now, replayed from the assign/revoke/lost events."""
        return ownership(self.events)[0]

    def kill9(self) -> None:
        self.killed_at = time.monotonic()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.reader.join(5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
            self.proc.wait(30)
        self.reader.join(5)


def ownership(events: list[dict], end: float | None = None):
    """(owned now, [(partition, from, to)]) from one member's events, in order."""
    owned: dict[int, float] = {}
    intervals = []
    for e in events:
        if e["ev"] == "assign":
            if not e["incremental"]:
                assert not owned, f"eager assign while still owning {sorted(owned)}"
            for p in e["partitions"]:
                owned.setdefault(p, e["t"])
        elif e["ev"] in ("revoke", "lost"):
            for p in e["partitions"]:
                if p in owned:
                    intervals.append((p, owned.pop(p), e["t"]))
    if end is not None:
        intervals += [(p, t0, end) for p, t0 in owned.items()]
    return set(owned), intervals


def assert_no_double_ownership(members: list[Member], end: float) -> None:
    spans = []
    for m in members:
        _, intervals = ownership(m.events, m.killed_at or end)
        spans += [(p, t0, t1, m.name) for p, t0, t1 in intervals]
    for p in range(PARTITIONS):
        mine = sorted((t0, t1, n) for q, t0, t1, n in spans if q == p)
        for (a0, a1, an), (b0, b1, bn) in zip(mine, mine[1:]):
            assert b0 >= a1 or an == bn, (
                f"partition {p} owned by {an} [{a0:.3f}, {a1:.3f}] and {bn} from {b0:.3f}")


def wait_until(what: str, check, timeout_s: float = TIMEOUT_S) -> float:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic()


class BackgroundProducer:
    """Produces keyed records to every partition until stopped; keeps the acknowledged offsets."""

    def __init__(self, bootstrap: str, topic: str, rate_per_s: int = 300):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                  "linger.ms": 5})
        self.topic, self.rate_per_s = topic, rate_per_s
        self.acked: set[tuple[int, int]] = set()
        self.failed: list[str] = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.failed.append(str(err))
        else:
            self.acked.add((msg.partition(), msg.offset()))

    def _run(self) -> None:
        i = 0
        while self.running:
            self.producer.produce(self.topic, key=f"k{i}".encode(), value=b"v" * 20,
                                  partition=i % PARTITIONS, on_delivery=self._delivered)
            i += 1
            self.producer.poll(0)
            time.sleep(1 / self.rate_per_s)
        assert self.producer.flush(30) == 0

    def stop(self) -> None:
        self.running = False
        self.thread.join(60)
        assert not self.failed, self.failed[:5]


def consumed(members: list[Member]):
    """[(partition, offset, member, committed)] for every record any member consumed."""
    out = []
    for m in members:
        commits = {(e["p"], e["o"]) for e in m.events if e["ev"] == "committed"}
        out += [(e["p"], e["o"], m.name, (e["p"], e["o"] + 1) in commits)
                for e in m.events if e["ev"] == "record"]
    return out


def settings(broker, topic, group, strategy):
    return {"bootstrap": broker.bootstrap, "topic": topic, "group": group,
            "strategy": strategy, "session_timeout_ms": SESSION_TIMEOUT_MS}


def test_three_members_share_and_survive_a_sigkill(fresh_broker):
    topic = unique_topic("rebalance")
    group = f"g-{uuid.uuid4().hex[:8]}"
    create_topic(fresh_broker.bootstrap, topic, PARTITIONS)
    producer = BackgroundProducer(fresh_broker.bootstrap, topic)
    s = settings(fresh_broker, topic, group, "range")
    members = [Member(f"m{i}", s) for i in range(3)]
    try:
        wait_until("three members with two partitions each",
                   lambda: sorted(len(m.owned()) for m in members) == [2, 2, 2]
                   and set().union(*(m.owned() for m in members)) == set(range(PARTITIONS)))
        victim, survivors = members[2], members[:2]
        lost = victim.owned()
        wait_until("the victim to consume", lambda: any(
            e["ev"] == "committed" for e in victim.events))
        victim.kill9()
        taken_over = wait_until(
            "survivors to own every partition",
            lambda: set().union(*(m.owned() for m in survivors)) == set(range(PARTITIONS)),
            timeout_s=SESSION_TIMEOUT_MS / 1000 + 30)
        took_s = taken_over - victim.killed_at
        print(f"partitions {sorted(lost)} taken over {took_s:.2f} s after SIGKILL")
        assert took_s <= SESSION_TIMEOUT_MS / 1000 + TAKEOVER_SLACK_S, took_s

        producer.stop()
        wait_until("survivors to consume everything acknowledged",
                   lambda: producer.acked <= {(p, o) for p, o, _, _ in consumed(survivors)}
                   | {(p, o) for p, o, _, _ in consumed([victim])})
    finally:
        producer.running = False
        for m in members:
            m.stop()

    end = time.monotonic()
    assert_no_double_ownership(members, end)
    reads = consumed(members)
    seen: dict[tuple[int, int], list] = {}
    for p, o, name, committed in reads:
        seen.setdefault((p, o), []).append((name, committed))
    assert producer.acked - set(seen) == set(), "acknowledged records never consumed"
    repeats = {k: v for k, v in seen.items() if len(v) > 1}
    for key, readers in repeats.items():
        # A record read twice was read first by someone whose commit never returned.
        assert sum(1 for _, committed in readers if committed) <= 1, (key, readers)
    victim_tail = {(p, o) for p, o, n, c in reads if n == victim.name and not c}
    assert all(k in victim_tail or any(not c for _, c in v) for k, v in repeats.items())
    assert len(victim_tail) <= len(lost), victim_tail
    print(f"{len(producer.acked)} acknowledged, {len(reads)} reads, {len(repeats)} read twice "
          f"(uncommitted tail of the killed member: {len(victim_tail)})")


def test_cooperative_sticky_moves_only_the_partitions_that_change_hands(fresh_broker):
    topic = unique_topic("cooperative")
    group = f"g-{uuid.uuid4().hex[:8]}"
    create_topic(fresh_broker.bootstrap, topic, PARTITIONS)
    s = settings(fresh_broker, topic, group, "cooperative-sticky")
    first = [Member(f"c{i}", s) for i in range(2)]
    members = list(first)
    try:
        wait_until("two members with three partitions each",
                   lambda: sorted(len(m.owned()) for m in first) == [3, 3])
        before = {m.name: m.owned() for m in first}
        marks = {m.name: len(m.events) for m in first}
        third = Member("c2", s)
        members.append(third)
        wait_until("three members with two partitions each",
                   lambda: sorted(len(m.owned()) for m in members) == [2, 2, 2])
        time.sleep(2)  # a needless extra revoke would show up here
        until = {m.name: len(m.events) for m in first}
    finally:
        for m in members:
            m.stop()

    moved = ownership([e for e in third.events if e["ev"] != "revoke"])[0]
    assert len(moved) == 2, moved
    for m in first:
        during = m.events[marks[m.name]:until[m.name]]
        changes = [e for e in during if e["ev"] in ("assign", "revoke", "lost")]
        assert all(e["ev"] != "lost" and e["incremental"] for e in changes), changes
        revoked = {p for e in changes if e["ev"] == "revoke" for p in e["partitions"]}
        kept = before[m.name] - moved
        assert not (revoked & kept), f"{m.name} had kept partitions {revoked & kept} revoked"
        assert revoked == before[m.name] & moved, (m.name, revoked, moved)
        print(f"{m.name}: kept {sorted(kept)}, gave up {sorted(revoked)}")
    assert_no_double_ownership(members, time.monotonic())
