"""The SQL engine's REST API (ksqlDB's shape) on `eddy start`, driven over HTTP by httpx
(HTTP/1.1, and HTTP/2 for /query-stream) with records produced and read by confluent-kafka.

* statements, SHOW/DESCRIBE/EXPLAIN, and errors that say what and where;
* pull queries on an aggregated table (by key and in full), in both /query and
  /query-stream shapes; rows written by INSERT VALUES and /inserts-stream;
* a push query over HTTP/2 delivers rows produced after it started; /close-query ends it;
* a persistent query keeps running across SIGKILLs of Eddy, and its output table has
  neither gaps nor duplicates.
"""

from __future__ import annotations

import collections
import json
import subprocess
import threading
import time

import httpx
import pytest
from confluent_kafka import Consumer, Producer

from broker_process import eddy_binary

SETTINGS = {"group.initial.rebalance.delay.ms": "0"}
BROKER_SETTINGS = SETTINGS


def ksql(broker, text: str, **props) -> httpx.Response:
    return httpx.post(
        broker.http + "/ksql",
        json={"ksql": text, "streamsProperties": props},
        timeout=60,
    )


def ok(broker, text: str, **props) -> list:
    r = ksql(broker, text, **props)
    assert r.status_code == 200, r.text
    return r.json()


def pull(broker, sql: str) -> tuple[dict, list[list]]:
    """A pull query over /query-stream (delimited): the header and the rows."""
    r = httpx.post(broker.http + "/query-stream", json={"sql": sql, "properties": {}}, timeout=30)
    assert r.status_code == 200, r.text
    lines = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    return lines[0], lines[1:]


def wait_until(what: str, check, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not true after {timeout_s}s (last: {last!r})")


def test_info_and_healthcheck(broker):
    info = httpx.get(broker.http + "/info").json()["KsqlServerInfo"]
    assert info["serverStatus"] == "RUNNING"
    assert info["ksqlServiceId"] == "default_"
    health = httpx.get(broker.http + "/healthcheck").json()
    assert health["isHealthy"] is True


def test_statements_and_descriptions(broker):
    created = ok(
        broker,
        "CREATE STREAM orders (id BIGINT KEY, item STRING, qty INT) "
        "WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=2);",
    )
    assert created[0]["@type"] == "currentStatus"
    assert created[0]["commandStatus"]["status"] == "SUCCESS"
    ok(broker, "CREATE STREAM big AS SELECT id, item, qty * 2 AS double_qty FROM orders WHERE qty > 10;")
    streams = ok(broker, "SHOW STREAMS;")[0]
    assert streams["@type"] == "streams"
    assert {s["name"] for s in streams["streams"]} == {"ORDERS", "BIG"}
    queries = ok(broker, "SHOW QUERIES;")[0]["queries"]
    assert [q["sinks"] for q in queries] == [["BIG"]]
    query_id = queries[0]["id"]
    assert query_id.startswith("CSAS_BIG_")
    desc = ok(broker, "DESCRIBE big;")[0]["sourceDescription"]
    assert [f["name"] for f in desc["fields"]] == ["ID", "ITEM", "DOUBLE_QTY"]
    assert desc["fields"][0]["type"] == "KEY"
    assert desc["writeQueries"] == [{"id": query_id}]
    explained = ok(broker, f"EXPLAIN {query_id};")[0]["queryDescription"]
    assert explained["sinks"] == ["BIG"] and "Sub-topology" in explained["topology"]
    topics = {t["name"] for t in ok(broker, "SHOW TOPICS;")[0]["topics"]}
    assert {"orders", "BIG"} <= topics

    # The derived stream sees the rows that match.
    ok(broker, "INSERT INTO orders (id, item, qty) VALUES (1, 'apple', 5);")
    ok(broker, "INSERT INTO orders (id, item, qty) VALUES (2, 'pear', 12);")
    rows = read_topic(broker, "BIG", expect=1)
    assert [(k, json.loads(v)) for k, v in rows] == [
        ((2).to_bytes(8, "big"), {"ITEM": "pear", "DOUBLE_QTY": 24})
    ]

    # DROP is refused while a query reads the stream, allowed after TERMINATE.
    r = ksql(broker, "DROP STREAM orders;")
    assert r.status_code == 400 and query_id in r.json()["message"]
    ok(broker, f"TERMINATE {query_id};")
    assert ok(broker, "SHOW QUERIES;")[0]["queries"] == []
    ok(broker, "DROP STREAM big DELETE TOPIC;")
    ok(broker, "DROP STREAM orders;")
    assert ok(broker, "SHOW STREAMS;")[0]["streams"] == []


def test_errors_say_what_and_where(broker):
    ok(broker, "CREATE STREAM e1 (id INT KEY, v STRING) WITH (KAFKA_TOPIC='e1', VALUE_FORMAT='JSON', PARTITIONS=1);")
    cases = [
        ("CREATE STREAM x AS SELECT id, nope FROM e1;", "line 1, column 31", "NOPE"),
        ("CREATE STREAM x AS SELEC id FROM e1;", "line 1, column 20", "SELECT"),
        ("CREATE STREAM y (id INT KEY) WITH (KAFKA_TOPIC='absent', VALUE_FORMAT='JSON');",
         "", "PARTITIONS"),
        ("SELECT * FROM e1 EMIT CHANGES;", "", "/query"),
        ("CREATE STREAM z AS SELECT id, v\nFROM missing;", "line 2, column 6", "MISSING"),
    ]
    for text, where, what in cases:
        r = ksql(broker, text)
        assert r.status_code == 400, (text, r.text)
        body = r.json()
        assert body["@type"] == "statement_error", body
        assert body["error_code"] in (40001, 40002), body
        assert where in body["message"] and what in body["message"], (text, body["message"])
    r = httpx.post(broker.http + "/ksql", content=b"not json")
    assert r.status_code == 400 and r.json()["error_code"] == 40000
    r = httpx.post(broker.http + "/query-stream", json={"sql": "SELECT * FROM e1;"})
    assert r.status_code == 400 and "stream" in r.json()["message"]


def test_pull_queries_on_an_aggregated_table(broker):
    ok(broker, "CREATE STREAM views (id BIGINT KEY, page STRING) "
               "WITH (KAFKA_TOPIC='views', VALUE_FORMAT='JSON', PARTITIONS=3);")
    ok(broker, "CREATE TABLE page_views AS SELECT page, COUNT(*) AS n FROM views GROUP BY page;",
       **{"auto.offset.reset": "earliest"})
    for i, page in enumerate(["/a", "/b", "/a", "/c", "/a"]):
        ok(broker, f"INSERT INTO views (id, page) VALUES ({i}, '{page}');")
    # And through /inserts-stream: a target line, then one row per line, each acknowledged.
    body = "\n".join(
        [json.dumps({"target": "views"})]
        + [json.dumps({"ID": 10 + i, "PAGE": "/b"}) for i in range(3)]
        + [json.dumps({"ID": "not a number", "PAGE": "/b"})]
    )
    r = httpx.post(broker.http + "/inserts-stream", content=body, timeout=30)
    acks = [json.loads(line) for line in r.text.splitlines()]
    assert [a["status"] for a in acks] == ["ok", "ok", "ok", "error"], acks
    assert "ID" in acks[3]["message"]

    want = {"/a": 3, "/b": 4, "/c": 1}
    header, rows = wait_until(
        "the table holds every view",
        lambda: (h_r := pull(broker, "SELECT * FROM page_views;"))
        and dict(map(tuple, h_r[1])) == want and h_r,
    )
    assert header["columnNames"] == ["PAGE", "N"]
    assert header["columnTypes"] == ["STRING", "BIGINT"]
    _, rows = pull(broker, "SELECT page, n * 10 AS tens FROM page_views WHERE page = '/b';")
    assert rows == [["/b", 40]]
    _, rows = pull(broker, "SELECT * FROM page_views WHERE n >= 3;")
    assert sorted(map(tuple, rows)) == [("/a", 3), ("/b", 4)]
    # The /query shape: a header entry then row entries.
    r = httpx.post(broker.http + "/query", json={"ksql": "SELECT * FROM page_views WHERE page = '/c';"})
    assert r.status_code == 200
    entries = r.json()
    assert "`PAGE` STRING" in entries[0]["header"]["schema"]
    assert entries[1:] == [{"row": {"columns": ["/c", 1]}}]


def test_push_query_over_http2_and_close_query(broker):
    ok(broker, "CREATE STREAM ticks (sym STRING KEY, price DOUBLE) "
               "WITH (KAFKA_TOPIC='ticks', VALUE_FORMAT='JSON', PARTITIONS=2);")
    got: list = []
    header: dict = {}
    versions: list = []
    started = threading.Event()

    def listen():
        with httpx.Client(http1=False, http2=True, timeout=60) as client:
            with client.stream(
                "POST", broker.http + "/query-stream",
                json={"sql": "SELECT sym, price * 2 AS twice FROM ticks WHERE price > 1 EMIT CHANGES;",
                      "properties": {}},
            ) as r:
                versions.append(r.http_version)
                for line in r.iter_lines():
                    if not line.strip():
                        continue
                    if not header:
                        header.update(json.loads(line))
                        started.set()
                    else:
                        got.append(json.loads(line))

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert started.wait(30)
    assert versions == ["HTTP/2"]
    assert header["columnNames"] == ["SYM", "TWICE"]
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for sym, price in [("A", 0.5), ("B", 2.0), ("C", 3.5)]:
        p.produce("ticks", key=sym.encode(), value=json.dumps({"PRICE": price}).encode())
    p.flush(10)
    wait_until("both rows pushed", lambda: len(got) == 2, 30)
    assert sorted(got) == [["B", 4.0], ["C", 7.0]]
    r = httpx.post(broker.http + "/close-query", json={"queryId": header["queryId"]})
    assert r.status_code == 200, r.text
    t.join(10)
    assert not t.is_alive(), "the push query's response did not end after /close-query"
    r = httpx.post(broker.http + "/close-query", json={"queryId": header["queryId"]})
    assert r.status_code == 400


def read_topic(broker, topic: str, expect: int, timeout_s: float = 30) -> list[tuple]:
    """(key, value) of every committed record of `topic`, once `expect` are there."""
    c = Consumer({
        "bootstrap.servers": broker.bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })
    c.subscribe([topic])
    out = []
    deadline = time.monotonic() + timeout_s
    idle_until = None
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                if len(out) >= expect:
                    idle_until = idle_until or time.monotonic() + 1.5
                    if time.monotonic() > idle_until:
                        break
                continue
            if m.error():
                continue
            out.append((m.key(), m.value()))
    finally:
        c.close()
    return out


@pytest.mark.broker_settings(SETTINGS)
def test_persistent_query_survives_sigkill(fresh_broker):
    """An aggregation created before SIGKILLs of Eddy keeps running after each restart; its
    output has every count of every key exactly once, in order (1, 2, .., n)."""
    b = fresh_broker
    ok(b, "CREATE STREAM clicks (usr STRING KEY, n INT) "
          "WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=4);")
    ok(b, "CREATE TABLE per_user AS SELECT usr, COUNT(*) AS c FROM clicks GROUP BY usr;",
       **{"auto.offset.reset": "earliest"})
    phases, per_phase, users = 5, 3000, 40
    sent = 0
    for phase in range(phases):
        p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True,
                      "acks": "all", "linger.ms": 5})
        for i in range(per_phase):
            p.produce("clicks", key=f"u{(sent + i) % users}".encode(),
                      value=json.dumps({"N": sent + i}).encode())
            if i % 500 == 0:
                p.poll(0)
        assert p.flush(30) == 0
        sent += per_phase
        if phase < phases - 1:
            time.sleep(0.3 + 0.2 * phase)  # let the query be mid-way through the phase
            b.kill9()
            b.start()
    # The reference: counts of the input topic itself, read back.
    reference = collections.Counter(k.decode() for k, _ in read_topic(b, "clicks", sent))
    assert sum(reference.values()) == sent

    def table_matches():
        _, rows = pull(b, "SELECT * FROM per_user;")
        return dict(map(tuple, rows)) == dict(reference)

    wait_until("the table equals the reference", table_matches, 120)
    # The output topic: per key, the counts 1..n, each once, in order.
    updates = read_topic(b, "PER_USER", sent, 60)
    by_key = collections.defaultdict(list)
    for k, v in updates:
        by_key[k.decode()].append(json.loads(v)["C"])
    for user, n in reference.items():
        assert by_key[user] == list(range(1, n + 1)), (
            f"{user}: gaps or duplicates in the output: {len(by_key[user])} updates for {n} inputs"
        )
    assert ok(b, "SHOW QUERIES;")[0]["queries"][0]["state"] == "RUNNING"


def eddy(*args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([str(eddy_binary()), *args], capture_output=True, text=True, timeout=timeout)


def test_shell_runs_a_file(broker, tmp_path):
    """`eddy sql -f`: statements across lines, SET, RUN SCRIPT, tables printed as tables, a
    push query ended by its LIMIT; a failing statement stops the file with exit code 1."""
    inner = tmp_path / "inner.sql"
    inner.write_text("INSERT INTO shell_s (id, name) VALUES (1, 'ada');\n"
                     "INSERT INTO shell_s (id, name) VALUES (2, 'bob');\n")
    script = tmp_path / "main.sql"
    script.write_text(
        "CREATE STREAM shell_s (id INT KEY, name STRING)\n"
        "  WITH (KAFKA_TOPIC='shell_s', VALUE_FORMAT='JSON', PARTITIONS=1);\n"
        f"RUN SCRIPT '{inner}';\n"
        "SET 'auto.offset.reset' = 'earliest';\n"
        "SHOW STREAMS;\n"
        "SELECT id, UCASE(name) AS upper_name FROM shell_s EMIT CHANGES LIMIT 2;\n"
    )
    r = eddy("sql", "--server", broker.http, "-f", str(script))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "| Stream created |" in out
    assert "Successfully changed local property 'auto.offset.reset' to 'earliest'." in out
    assert "| SHELL_S " in out and "| Stream Name " in out
    assert "| ID " in out and "| UPPER_NAME " in out
    assert "| ADA " in out and "| BOB " in out
    assert "Query terminated" in out

    bad = tmp_path / "bad.sql"
    bad.write_text("SHOW STREAMS;\nCREATE STREAM t2 AS SELECT missing FROM shell_s;\nSHOW TABLES;\n")
    r = eddy("sql", "--server", broker.http, "-f", str(bad))
    assert r.returncode == 1
    assert "MISSING cannot be resolved" in r.stderr and "line 1, column 28" in r.stderr
    assert "Table Name" not in r.stdout, "statements after the error must not run"


def test_bench_sql_runs(broker):
    """`eddy bench sql` end to end with a small load (its figures are for humans; here it
    must only complete: every pushed row arrives and every lookup finds its key)."""
    r = eddy("bench", "sql", "--server", broker.http, "-b", broker.bootstrap,
             "--rate", "200", "--seconds", "2", "--pulls", "200", "--keys", "50", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "produce-to-row latency ms: p50" in r.stdout
    assert "200 key lookups" in r.stdout and "200 found" in r.stdout
    assert "BENCH_SQL" not in ok(broker, "SHOW STREAMS;")[0]["streams"].__repr__()


def test_joins_run_on_the_broker(broker):
    """A stream-table join (the stream repartitioned by a non-key column) and a table-table
    join, as persistent queries on the broker; the joined table answers pull queries."""
    earliest = {"auto.offset.reset": "earliest"}
    ok(broker, "CREATE TABLE j_users (id INT PRIMARY KEY, name STRING) "
               "WITH (KAFKA_TOPIC='j_users', VALUE_FORMAT='JSON', PARTITIONS=3);")
    ok(broker, "CREATE TABLE j_cities (id INT PRIMARY KEY, city STRING) "
               "WITH (KAFKA_TOPIC='j_cities', VALUE_FORMAT='JSON', PARTITIONS=3);")
    ok(broker, "CREATE STREAM j_views (id BIGINT KEY, uid INT, page STRING) "
               "WITH (KAFKA_TOPIC='j_views', VALUE_FORMAT='JSON', PARTITIONS=2);")
    for i in range(6):
        ok(broker, f"INSERT INTO j_users (id, name) VALUES ({i}, 'user{i}');")
        if i % 2 == 0:
            ok(broker, f"INSERT INTO j_cities (id, city) VALUES ({i}, 'city{i}');")
    ok(broker, "CREATE STREAM j_named AS SELECT v.uid, v.page, u.name FROM j_views v "
               "JOIN j_users u ON v.uid = u.id;", **earliest)
    ok(broker, "CREATE TABLE j_user_city AS SELECT u.id AS id, u.name, c.city FROM j_users u "
               "LEFT JOIN j_cities c ON u.id = c.id;", **earliest)
    # The views come after the users are in the table (a stream-table join looks the table
    # up as each view arrives).
    def users_loaded():
        _, rows = pull(broker, "SELECT * FROM j_user_city;")
        return len(rows) == 6
    wait_until("the joined table has every user", users_loaded)
    for i in range(12):
        ok(broker, f"INSERT INTO j_views (id, uid, page) VALUES ({100 + i}, {i % 6}, '/p{i}');")
    rows = read_topic(broker, "J_NAMED", expect=12)
    got = sorted((int.from_bytes(k, "big"), json.loads(v)["PAGE"], json.loads(v)["NAME"]) for k, v in rows)
    assert got == sorted((i % 6, f"/p{i}", f"user{i % 6}") for i in range(12))
    _, rows = pull(broker, "SELECT * FROM j_user_city;")
    assert sorted(map(tuple, rows)) == [
        (i, f"user{i}", f"city{i}" if i % 2 == 0 else None) for i in range(6)
    ]
    _, rows = pull(broker, "SELECT city FROM j_user_city WHERE id = 4;")
    assert rows == [["city4"]]


def test_push_query_over_an_aggregation(broker):
    """A push query with GROUP BY runs as a transient query: its rows are the aggregation's
    updates; when it ends its topics are deleted."""
    ok(broker, "CREATE STREAM agg_s (id INT KEY, k STRING) "
               "WITH (KAFKA_TOPIC='agg_s', VALUE_FORMAT='JSON', PARTITIONS=2);")
    for i, k in enumerate(["a", "a", "b"]):
        ok(broker, f"INSERT INTO agg_s (id, k) VALUES ({i}, '{k}');")
    r = httpx.post(
        broker.http + "/query-stream",
        json={"sql": "SELECT k, COUNT(*) AS n FROM agg_s GROUP BY k EMIT CHANGES LIMIT 3;",
              "properties": {"auto.offset.reset": "earliest"}},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    lines = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    assert lines[0]["columnNames"] == ["K", "N"]
    assert sorted(map(tuple, lines[1:])) == [("a", 1), ("a", 2), ("b", 1)]

    def transient_topics():
        topics = ok(broker, "SHOW TOPICS EXTENDED;")[0]["topics"]
        return [t["name"] for t in topics if "transient" in t["name"]]

    wait_until("the transient query's topics are deleted", lambda: transient_topics() == [], 30)


def test_shell_is_interactive_on_a_terminal(broker, tmp_path):
    """`eddy sql` on a terminal: a statement over two lines, the up arrow recalls it from
    history, Ctrl-D quits; the history is saved."""
    import os
    import pty
    import select

    ok(broker, "CREATE STREAM tty_s (id INT KEY) WITH (KAFKA_TOPIC='tty_s', VALUE_FORMAT='JSON', PARTITIONS=1);")
    main, side = pty.openpty()
    env = dict(os.environ, HOME=str(tmp_path), TERM="xterm")
    proc = subprocess.Popen([str(eddy_binary()), "sql", "--server", broker.http],
                            stdin=side, stdout=side, stderr=side, env=env, close_fds=True)
    os.close(side)
    out = b""

    def read_until(needle: bytes, count: int = 1, timeout_s: float = 20) -> None:
        nonlocal out
        deadline = time.monotonic() + timeout_s
        while out.count(needle) < count and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    out += os.read(main, 65536)
                except OSError:
                    break
        assert out.count(needle) >= count, out.decode(errors="replace")[-2000:]

    try:
        read_until(b"eddy> ")
        os.write(main, b"SHOW\r")
        read_until(b"...> ")
        os.write(main, b"STREAMS;\r")
        read_until(b"TTY_S", 1)
        read_until(b"eddy> ", 2)
        os.write(main, b"\x1b[A\r")  # up arrow: the last statement again
        read_until(b"TTY_S", 2)
        time.sleep(1)  # the next prompt: Ctrl-D at an empty prompt quits
        os.write(main, b"\x04")
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    # rustyline keeps a multi-line entry on one line, its newline escaped.
    assert r"SHOW\nSTREAMS;" in (tmp_path / ".eddy_sql_history").read_text()
