"""Fixtures that run a real broker process for the compatibility tests.

The broker under test is chosen by `EDDY_TEST_BROKER` (eddy or tansu; see broker_process.py).

Fixtures:

* `broker`: one broker per test module. A module may set `BROKER_SETTINGS = {...}`.
* `fresh_broker`: one broker per test.
* `broker_factory`: `broker_factory(settings)` starts more brokers within one test.

Each yields a `Broker` with `.bootstrap`, `.http`, `.data_dir`, `.restart()`, `.kill9()`,
`.stop()`. When a test fails, the tail of each broker's log is attached to the report.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest

from broker_process import BROKER_KIND, Broker, eddy_binary, kill_all, tansu_binary


class BrokerFactory:
    """Starts brokers on demand inside one test or module and closes them all at the end."""

    def __init__(self, tmp_root: Path, kind: str = BROKER_KIND):
        self.tmp_root = tmp_root
        self.kind = kind
        self.brokers: list[Broker] = []

    def __call__(self, settings: dict[str, str] | None = None) -> Broker:
        if settings and self.kind == "tansu":
            pytest.skip(f"tansu takes no broker settings (wanted {settings})")
        workdir = Path(tempfile.mkdtemp(prefix=f"{self.kind}-", dir=self.tmp_root))
        broker = Broker(self.kind, workdir, settings)
        self.brokers.append(broker)
        return broker.start()

    def close(self) -> None:
        for broker in self.brokers:
            broker.close()


def _factory(tmp_path_factory, name: str) -> BrokerFactory:
    return BrokerFactory(tmp_path_factory.mktemp(name, numbered=True))


@pytest.fixture(scope="module")
def broker(request, tmp_path_factory):
    factory = _factory(tmp_path_factory, "broker")
    try:
        yield factory(getattr(request.module, "BROKER_SETTINGS", None))
    finally:
        factory.close()


@pytest.fixture
def fresh_broker(request, tmp_path_factory):
    factory = _factory(tmp_path_factory, "fresh")
    marker = request.node.get_closest_marker("broker_settings")
    try:
        yield factory(marker.args[0] if marker else None)
    finally:
        factory.close()


@pytest.fixture
def broker_factory(tmp_path_factory):
    factory = _factory(tmp_path_factory, "factory")
    try:
        yield factory
    finally:
        factory.close()


def _brokers_of(item) -> list[Broker]:
    found = []
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, Broker):
            found.append(value)
        elif isinstance(value, BrokerFactory):
            found.extend(value.brokers)
    return found


_LOG_OFFSETS = pytest.StashKey[dict]()
# Log bytes from before the test kept as context in a failure report.
LOG_CONTEXT_BYTES = 4096


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    # Where each broker's log stood when the test body began: a failure report shows the
    # log from there on, not what earlier tests on a shared broker left.
    item.stash[_LOG_OFFSETS] = {id(b): b.log_size() for b in _brokers_of(item)}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        offsets = item.stash.get(_LOG_OFFSETS, {})
        for b in _brokers_of(item):
            since = max(0, offsets.get(id(b), 0) - LOG_CONTEXT_BYTES)
            report.sections.append(
                (f"{b.kind} log ({b.log_path}, {b.starts} starts)", b.log_tail(since=since))
            )


def pytest_configure(config):
    config.addinivalue_line("markers", "broker_settings(dict): settings for fresh_broker")
    config.addinivalue_line(
        "markers", "durable: needs storage that survives a restart (xfail on tansu)"
    )

    # A harness killed by a CI timeout must not leave brokers behind: turn SIGTERM into an
    # exit that runs the finalizers, and kill whatever is still live at interpreter exit.
    def on_sigterm(signum, frame):
        kill_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    atexit.register(kill_all)


def pytest_report_header(config):
    binary = eddy_binary() if BROKER_KIND == "eddy" else tansu_binary()
    kcat = shutil.which("kcat") or "missing"
    return [f"broker under test: {BROKER_KIND} ({binary})", f"kcat: {kcat}"]


def pytest_collection_modifyitems(config, items):
    if BROKER_KIND == "eddy":
        return
    for item in items:
        if item.get_closest_marker("durable"):
            item.add_marker(
                pytest.mark.xfail(reason=f"{BROKER_KIND} runs on memory storage", strict=False)
            )
