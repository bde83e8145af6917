"""``python -m orchlive dev``: a whole cluster on this machine, like ``nomad agent -dev``.

Starts a private etcd, one master and N process-runtime workers as child processes,
and stops exactly those (by PID) on exit or Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from orchlive.etcd_server import EtcdServer

__all__ = ["DevCluster"]


class DevCluster:
    """etcd + master + workers, as child processes."""

    def __init__(
        self,
        *,
        workers: int = 3,
        port: int = 8080,
        policy: str = "bin_packing",
        cpu: int = 4000,
        memory: int = 8192,
        resources: Mapping[str, int | float] | None = None,
        prefix: str = "/orch",
        lease_ttl: int = 5,
        master_args: list[str] | None = None,
    ) -> None:
        self.workers = workers
        self.port = port
        self.policy = policy
        self.cpu = cpu
        self.memory = memory
        self.resources = dict(resources or {})  # every worker's other resources, e.g. {"gpu": 4000}
        self.prefix = prefix
        self.lease_ttl = lease_ttl
        self.master_args = list(master_args or [])  # e.g. --plugin and --policy-params, passed through
        self.etcd = EtcdServer()
        self.children: list[subprocess.Popen[bytes]] = []
        self.work_dir = Path(tempfile.mkdtemp(prefix="orch-dev-"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def etcd_endpoint(self) -> str:
        return self.etcd.endpoint

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.work_dir / log_name, "ab")  # noqa: SIM115 - the child owns it
        env = {**os.environ, "ORCH_ETCD": self.etcd.endpoint, "ORCH_PREFIX": self.prefix}
        child = subprocess.Popen(
            [sys.executable, "-m", "orchlive", *args], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        self.children.append(child)
        return child

    def start(self) -> None:
        self.etcd.start()
        self._spawn(["master", "--port", str(self.port), "--policy", self.policy, *self.master_args], "master.log")
        for i in range(1, self.workers + 1):
            self._spawn(
                [
                    "worker",
                    "--name",
                    f"w{i}",
                    "--cpu",
                    str(self.cpu),
                    "--memory",
                    str(self.memory),
                    "--lease-ttl",
                    str(self.lease_ttl),
                    "--data-dir",
                    str(self.work_dir),
                    *(f"--resource={name}={amount}" for name, amount in self.resources.items()),
                ],
                f"w{i}.log",
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                nodes = httpx.get(f"{self.url}/api/v1/nodes", timeout=1).json()
                if sum(n["state"] == "READY" for n in nodes) == self.workers:
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"dev cluster not ready within {timeout} s; logs in {self.work_dir}")

    def wait(self) -> None:
        """Block until Ctrl-C or until a child dies."""
        try:
            while all(child.poll() is None for child in self.children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children.clear()
        self.etcd.cleanup()

    def __enter__(self) -> DevCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
