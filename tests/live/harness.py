"""A live cluster made of real processes (master, workers) on a real etcd, for the tests.

Every process is started here and stopped here by its PID; each cluster uses its own
key prefix so that tests sharing one etcd never see each other.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from orchlive.etcd_server import EtcdServer, free_port

_ids = itertools.count()


def children_of(pid: int) -> list[int]:
    """The live direct children of process ``pid`` (none if it is gone)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class LiveCluster:
    """A master and named workers on one key prefix."""

    def __init__(
        self,
        etcd: EtcdServer,
        work_dir: Path,
        *,
        policy: str = "bin_packing",
        seed: int = 0,
        lease_ttl: int = 2,
        leader_ttl: int = 2,
        api_token: str | None = None,
    ) -> None:
        self.etcd = etcd
        self.prefix = f"/test-{next(_ids)}-{uuid.uuid4().hex[:6]}"
        self.work_dir = work_dir
        self.policy = policy
        self.seed = seed
        self.lease_ttl = lease_ttl
        self.leader_ttl = leader_ttl
        self.masters: dict[int, subprocess.Popen[bytes]] = {}
        self.docker_host: str | None = None
        self.api_token = api_token
        self.port = free_port()
        self.master: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.http = httpx.Client(base_url=self.url, timeout=10.0, headers=self._auth())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
        env |= {"ORCH_ETCD": self.etcd.endpoint, "ORCH_PREFIX": self.prefix}
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])  # this checkout's code
        if self.api_token:
            env["ORCH_API_TOKEN"] = self.api_token
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        return env

    def _spawn(self, args: list[str], log_name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.work_dir / log_name, "ab")  # noqa: SIM115 - the child keeps it
        child = subprocess.Popen(
            [sys.executable, "-m", "orchlive", "--log-level", "INFO", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._env() | (env or {}),
        )
        log.close()
        return child

    def start_master(self, port: int | None = None, extra: list[str] | None = None) -> int:
        """Start a master (the first one serves ``self.url``); returns its port.

        ``extra``: more flags for ``orchlive master`` (``--plugin``, ``--policy-param``).
        """
        port = port or (self.port if not self.masters else free_port())
        child = self._spawn(
            [
                "master",
                "--port",
                str(port),
                "--policy",
                self.policy,
                "--seed",
                str(self.seed),
                "--leader-ttl",
                str(self.leader_ttl),
                *(extra or []),
            ],
            f"master-{port}.log",
        )
        self.masters[port] = child
        self.master = self.master or child
        self._wait_for_child(child, f"master-{port}.log", lambda: self._get_ok(f"http://127.0.0.1:{port}/health"))
        return port

    def _wait_for_child(self, child: subprocess.Popen[bytes], log_name: str, ready: Callable[[], bool]) -> None:
        """Wait until ``ready``; fail at once if the child exits, and with its log's tail either way.

        45 s: starting a master or worker (imports, etcd session) takes about a second here,
        but tens of seconds on a machine at load 30.
        """

        def check() -> bool:
            if child.poll() is not None:
                raise AssertionError(f"{log_name} exited with {child.returncode}:\n{self._tail(log_name)}")
            return ready()

        try:
            self.wait_until(check, timeout=45, what=log_name.removesuffix(".log"))
        except AssertionError as error:
            if "exited with" in str(error):
                raise
            raise AssertionError(f"{error}; {log_name} ends:\n{self._tail(log_name)}") from None

    def _tail(self, log_name: str, lines: int = 15) -> str:
        path = self.work_dir / log_name
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def leader_ports(self) -> list[int]:
        leaders = []
        for port in self.masters:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json().get("leader"):
                    leaders.append(port)
            except (httpx.HTTPError, ValueError):
                pass
        return leaders

    def kill_master(self, port: int, sig: int = signal.SIGKILL) -> None:
        child = self.masters.pop(port)
        child.send_signal(sig)
        child.wait(timeout=10)
        if port == self.port and self.masters:
            # Point the client at a surviving master.
            self.port = next(iter(self.masters))
            self.http.close()
            self.http = httpx.Client(base_url=self.url, timeout=10.0, headers=self._auth())

    def start_worker(
        self,
        name: str,
        *,
        cpu: int = 4000,
        memory: int = 8192,
        labels: str = "",
        runtime: str = "process",
        resources: dict[str, int | float] | None = None,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> None:
        """Start ``orchlive worker``; ``resources`` become ``--resource NAME=AMOUNT`` flags, ``env`` is added."""
        args = [
            "worker",
            "--name",
            name,
            "--cpu",
            str(cpu),
            "--memory",
            str(memory),
            "--lease-ttl",
            str(self.lease_ttl),
            "--runtime",
            runtime,
            "--data-dir",
            str(self.work_dir),
        ]
        if labels:
            args += ["--labels", labels]
        for resource, amount in (resources or {}).items():
            args += ["--resource", f"{resource}={amount}"]
        self.workers[name] = self._spawn(args, f"{name}.log", env)
        if wait:
            self._wait_for_child(self.workers[name], f"{name}.log", lambda: self.node_state(name) == "READY")

    def kill_worker(self, name: str, sig: int = signal.SIGKILL) -> None:
        child = self.workers.pop(name)
        child.send_signal(sig)
        child.wait(timeout=10)

    def stop(self) -> None:
        children = [*self.workers.values(), *self.masters.values()]
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.workers.clear()
        self.masters.clear()
        self.master = None
        self.http.close()

    # ------------------------------------------------------------------ API helpers
    def _get_ok(self, path: str) -> bool:
        try:
            if path.startswith("http"):
                return httpx.get(path, timeout=2).status_code == 200
            return self.http.get(path).status_code == 200
        except httpx.HTTPError:
            return False

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post("/api/v1/tasks", json=body, headers=self._auth())
        assert response.status_code == 201, response.text
        return response.json()

    def _auth(self) -> dict[str, bytes]:
        return {"Authorization": f"Bearer {self.api_token}".encode()} if self.api_token else {}

    def task(self, task_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def tasks(self) -> list[dict[str, Any]]:
        return self.http.get("/api/v1/tasks").json()

    def nodes(self) -> dict[str, dict[str, Any]]:
        return {n["id"]: n for n in self.http.get("/api/v1/nodes").json()}

    def node_state(self, name: str) -> str | None:
        try:
            return self.nodes().get(name, {}).get("state")
        except (httpx.HTTPError, ValueError):
            return None

    def wait_for_state(self, task_id: str, states: set[str], timeout: float = 30) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def check() -> bool:
            nonlocal found
            try:
                found = self.task(task_id)
            except (httpx.HTTPError, AssertionError):
                return False
            return found["state"] in states

        try:
            self.wait_until(check, timeout=timeout, what=f"task {task_id} in {states}")
        except AssertionError as error:
            seen = {k: found.get(k) for k in ("state", "node", "attempts", "reason", "exit_code")}
            logs = "\n".join(f"--- {name}:\n{self._tail(name, 8)}" for name in self._log_names())
            raise AssertionError(f"{error}; last seen {seen}\n{logs}") from None
        return found

    def _log_names(self) -> list[str]:
        return sorted(path.name for path in self.work_dir.glob("*.log"))

    def events(self, since: int = 0, *, until_idle: float = 1.0) -> list[dict[str, Any]]:
        """Events recorded after ``since``, read from the SSE stream until it is quiet."""
        import json

        out: list[dict[str, Any]] = []
        try:
            with httpx.stream(
                "GET",
                f"{self.url}/api/v1/events",
                params={"since": since},
                headers=self._auth(),
                timeout=httpx.Timeout(10.0, read=until_idle),
            ) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        out.append(json.loads(line[5:]))
        except httpx.ReadTimeout:
            pass
        return out

    @staticmethod
    def wait_until(check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
