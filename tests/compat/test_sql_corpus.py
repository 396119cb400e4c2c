"""The server half of the SQL corpus: `crates/eddy-sql/tests/sql/server/*.json`, one file per
feature, each case a list of steps run in order against a fresh `eddy start` over its REST
API (the other half, `tests/sql/*.json`, runs queries through the TopologyTestDriver).

Steps:
* `{"ksql": "..;", "properties": {..}, "expect": [..]}` — POST /ksql; the answer must match
  `expect` (objects: the keys given, recursively; lists: same length, item by item), or
  `"error": {"status": 400, "message": "<part>"}`.
* `{"pull": "SELECT ..;", "rows": [[..]], "columns": [..]}` — POST /query-stream, retried
  until the rows equal `rows` (in any order) or 30 s pass (tables catch up asynchronously).
* `{"push": "SELECT .. EMIT CHANGES LIMIT n;", "properties": {..}, "rows": [[..]]}` — the
  push query's rows until its LIMIT, in any order; `"error"` as for ksql.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

CORPUS = Path(__file__).resolve().parents[2] / "crates/eddy-sql/tests/sql/server"
SETTINGS = {"group.initial.rebalance.delay.ms": "0"}


def cases():
    for path in sorted(CORPUS.glob("*.json")):
        for case in json.loads(path.read_text())["tests"]:
            yield pytest.param(case, id=f"{path.stem}/{case['name']}")


def matches(got, want) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and matches(got[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(matches, got, want))
    return got == want


def check_error(r: httpx.Response, want: dict, step) -> None:
    assert r.status_code == want.get("status", 400), (step, r.text)
    message = r.json().get("message", "")
    assert want["message"] in message, (step, message)


def rows_of(r: httpx.Response) -> tuple[dict, list]:
    lines = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    return lines[0], lines[1:]


def canonical(rows) -> list:
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


@pytest.mark.broker_settings(SETTINGS)
@pytest.mark.parametrize("case", list(cases()))
def test_server_corpus(fresh_broker, case):
    http = fresh_broker.http
    for step in case["steps"]:
        if "ksql" in step:
            r = httpx.post(http + "/ksql", json={"ksql": step["ksql"], "streamsProperties": step.get("properties", {})}, timeout=60)
            if "error" in step:
                check_error(r, step["error"], step)
                continue
            assert r.status_code == 200, (step, r.text)
            if "expect" in step:
                assert matches(r.json(), step["expect"]), (step, r.json())
        elif "pull" in step:
            deadline = time.monotonic() + 30
            while True:
                r = httpx.post(http + "/query-stream", json={"sql": step["pull"], "properties": {}}, timeout=30)
                if "error" in step:
                    check_error(r, step["error"], step)
                    break
                assert r.status_code == 200, (step, r.text)
                header, rows = rows_of(r)
                if canonical(rows) == canonical(step["rows"]) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if "error" not in step:
                assert canonical(rows) == canonical(step["rows"]), (step, rows)
                if "columns" in step:
                    assert header["columnNames"] == step["columns"], (step, header)
        elif "push" in step:
            r = httpx.post(http + "/query-stream", json={"sql": step["push"], "properties": step.get("properties", {})}, timeout=60)
            if "error" in step:
                check_error(r, step["error"], step)
                continue
            assert r.status_code == 200, (step, r.text)
            header, rows = rows_of(r)
            assert canonical(rows) == canonical(step["rows"]), (step, rows)
            if "columns" in step:
                assert header["columnNames"] == step["columns"], (step, header)
        else:
            raise AssertionError(f"unknown step {step}")
