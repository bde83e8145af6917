"""``python -m orchlive dev``: a whole cluster on this machine, like ``nomad agent -dev``.

Starts a private etcd, one master and N process-runtime workers as child processes,
supervises them and stops exactly those (by PID) when asked. What a new user gets wrong
fails before anything starts (a busy port, ``DevError``); a child that dies while the
cluster starts fails it at once with the last line of the child's log, instead of a
timeout. A worker that dies later is restarted, at most ``max_restarts`` times, and then
the cluster runs on without it and says so: killing a worker is how the README shows
rescheduling, so it must not end the cluster. If etcd or the master dies, the cluster
stops. Children get SIGTERM when ``dev`` itself dies, even by SIGKILL (util-linux's
``setpriv --pdeathsig``), so no etcd or master outlives it holding a port. The working
directory (logs, etcd data, task outputs) is removed at the end unless ``keep``, or
unless something failed, when its logs are what the user needs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from orchlive.etcd_server import EtcdServer, free_ports

__all__ = ["DevCluster", "DevError", "port_in_use"]

_SETPRIV = shutil.which("setpriv")


class DevError(Exception):
    """The dev cluster cannot start or carry on; one line saying why (and where the logs are)."""


def port_in_use(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:``port`` (probed as uvicorn binds: SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _last_line(path: Path) -> str:
    """The last non-empty line of a log, to quote in a one-line error."""
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def _status(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"status {code}"


class DevCluster:
    """etcd + master + workers, as supervised child processes.

    Args:
        workers: how many process-runtime workers (``w1``...).
        port: the master's API port on 127.0.0.1.
        etcd_port: etcd's client port (default: a free one).
        policy: the master's placement policy (checked by the caller).
        cpu, memory: every worker's capacity, millicores and MiB.
        resources: every worker's other resources, e.g. ``{"gpu": 4000}``.
        master_args: more master flags, passed through (``--plugin``, ``--policy-params``).
        max_restarts: restarts allowed per worker before the cluster runs on without it.
        metrics_port: the first worker's ``/metrics`` port, the next ones count up from it
            (default: free ports); ``metrics_ports`` says which each worker got.
        keep: leave the working directory (logs, etcd data) behind.
        report: where supervision news goes (a worker restarted or given up); stderr.
    """

    def __init__(
        self,
        *,
        workers: int = 3,
        port: int = 8080,
        etcd_port: int | None = None,
        policy: str = "bin_packing",
        cpu: int = 4000,
        memory: int = 8192,
        resources: Mapping[str, int | float] | None = None,
        prefix: str = "/orch",
        lease_ttl: int = 5,
        master_args: list[str] | None = None,
        max_restarts: int = 3,
        metrics_port: int | None = None,
        keep: bool = False,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.workers = workers
        self.port = port
        self.etcd_port = etcd_port
        self.policy = policy
        self.cpu = cpu
        self.memory = memory
        self.resources = dict(resources or {})
        self.prefix = prefix
        self.lease_ttl = lease_ttl
        self.master_args = list(master_args or [])
        self.max_restarts = max_restarts
        # A worker keeps its /metrics port across restarts, so that a scrape config stays right.
        names = self.worker_names()
        ports = [metrics_port + i for i in range(len(names))] if metrics_port is not None else free_ports(len(names))
        self.metrics_ports = dict(zip(names, ports, strict=True))
        self.keep = keep
        self.report = report or (lambda line: print(f"orchlive dev: {line}", file=sys.stderr, flush=True))
        self.work_dir: Path | None = None
        self.etcd: EtcdServer | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}  # "master", "w1", ...
        self.restarts: dict[str, int] = {}
        self.given_up: set[str] = set()
        self.failed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def etcd_endpoint(self) -> str:
        return self.etcd.endpoint if self.etcd else f"127.0.0.1:{self.etcd_port}"

    def worker_names(self) -> list[str]:
        return [f"w{i}" for i in range(1, self.workers + 1)]

    # ------------------------------------------------------------------ start
    def check(self) -> None:
        """Refuse a port something already listens on, or a missing etcd, before anything starts."""
        if shutil.which("etcd") is None:
            raise DevError("no 'etcd' program on PATH (Debian: apt-get install etcd-server)")
        metrics = [("--metrics-port", port) for port in self.metrics_ports.values()]
        for flag, port in (("--port", self.port), ("--etcd-port", self.etcd_port), *metrics):
            if port is not None and port_in_use(port):
                raise DevError(f"{flag} {port}: 127.0.0.1:{port} is already in use; choose another port")

    def start(self) -> None:
        """Check the ports and etcd, then start etcd, the master and the workers and wait until all are ready."""
        self.check()
        self.work_dir = Path(tempfile.mkdtemp(prefix="orch-dev-"))
        self.etcd = EtcdServer(data_dir=self.work_dir / "etcd", client_port=self.etcd_port, die_with_parent=True)
        try:
            self.etcd.start()
        except (RuntimeError, TimeoutError) as err:
            self.failed = True
            raise DevError(f"etcd did not start: {_last_line(self.etcd.log_path) or err}") from None
        self._spawn("master", ["master", "--host", "127.0.0.1", "--port", str(self.port), "--policy", self.policy])
        for name in self.worker_names():
            self._spawn(name, self._worker_args(name))
        self._wait_ready()

    def _worker_args(self, name: str) -> list[str]:
        assert self.work_dir is not None
        return [
            "worker",
            "--name",
            name,
            "--runtime",
            "process",
            "--cpu",
            str(self.cpu),
            "--memory",
            str(self.memory),
            "--lease-ttl",
            str(self.lease_ttl),
            "--data-dir",
            str(self.work_dir),
            "--metrics-port",
            str(self.metrics_ports[name]),
            *(f"--resource={resource}={amount}" for resource, amount in self.resources.items()),
        ]

    def log_path(self, name: str) -> Path:
        assert self.work_dir is not None
        return self.work_dir / f"{name}.log"

    def _spawn(self, name: str, args: list[str]) -> None:
        assert self.etcd is not None
        if name == "master":
            args = [*args, *self.master_args]
        env = {**os.environ, "ORCH_ETCD": self.etcd.endpoint, "ORCH_PREFIX": self.prefix}
        wrapper = [_SETPRIV, "--pdeathsig", "TERM", "--"] if _SETPRIV else []
        with open(self.log_path(name), "ab") as log:  # the child keeps its own copy of the descriptor
            self.children[name] = subprocess.Popen(
                [*wrapper, sys.executable, "-m", "orchlive", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )

    def _died(self, name: str) -> str | None:
        """``"<name> exited (status N): <last log line>"`` if that child has exited, else None."""
        code = self.children[name].poll()
        if code is None:
            return None
        return f"{name} exited ({_status(code)}): {_last_line(self.log_path(name)) or 'no output'}"

    def _wait_ready(self, timeout: float = 30.0) -> None:
        token = os.environ.get("ORCH_API_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in self.children:
                if (why := self._died(name)) is not None:
                    self.failed = True
                    raise DevError(f"{why} (logs in {self.work_dir})")
            try:
                nodes = httpx.get(f"{self.url}/api/v1/nodes", timeout=1, headers=headers).json()
                if sum(n["state"] == "READY" for n in nodes) == self.workers:
                    return
            except (httpx.HTTPError, ValueError, TypeError, KeyError):
                pass
            time.sleep(0.2)
        self.failed = True
        raise DevError(f"not ready within {timeout:.0f} s (logs in {self.work_dir})")

    # ------------------------------------------------------------------ supervise
    def supervise_once(self) -> None:
        """Restart a worker that died (up to ``max_restarts``); raise ``DevError`` if etcd or the master died."""
        assert self.etcd is not None and self.etcd.process is not None
        if (code := self.etcd.process.poll()) is not None:
            self.failed = True
            raise DevError(f"etcd exited ({_status(code)}); stopping (logs in {self.work_dir})")
        if (why := self._died("master")) is not None:
            self.failed = True
            raise DevError(f"the {why}; stopping (logs in {self.work_dir})")
        for name in self.worker_names():
            if name in self.given_up or (why := self._died(name)) is None:
                continue
            done = self.restarts.get(name, 0)
            if done >= self.max_restarts:
                self.given_up.add(name)
                self.report(f"{why}; not restarted after {done} restarts, running on without it")
                continue
            self.restarts[name] = done + 1
            self.report(f"{why}; restarting it ({done + 1} of {self.max_restarts} restarts)")
            self._spawn(name, self._worker_args(name))

    def wait(self, poll: float = 0.5) -> None:
        """Supervise until interrupted (KeyboardInterrupt: Ctrl-C, or a signal the caller maps to it)."""
        try:
            while True:
                self.supervise_once()
                time.sleep(poll)
        except KeyboardInterrupt:
            pass

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """SIGTERM every child this cluster started (by PID), then etcd; remove the directory unless kept."""
        for child in reversed(self.children.values()):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children.values():
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children.clear()
        if self.etcd is not None:
            self.etcd.stop()
        if self.work_dir is not None and not (self.keep or self.failed):
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> DevCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
