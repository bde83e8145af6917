"""A private etcd cluster of several members on loopback (Debian's ``etcd-server``), for fault tests.

Each member listens on free loopback ports with its own temporary data directory. The
members are started together (none is healthy before a quorum has joined), each can be
killed by the PID this module started (``kill``) and restarted on the same ports and
data (``start_member``), and ``endpoint`` is the comma-separated list ``--etcd`` and
``ORCH_ETCD`` take. Nothing but the processes started here is ever signalled.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from orchlive.etcd_server import free_port

__all__ = ["EtcdCluster", "EtcdMember"]


@dataclass
class EtcdMember:
    """One member: its name, ports, data directory, and the process while it runs."""

    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def healthy(self) -> bool:
        """The member answers ``/health`` with a leader (it is part of a quorum)."""
        try:
            with urllib.request.urlopen(f"http://{self.endpoint}/health", timeout=1) as reply:
                return b"true" in reply.read()
        except OSError:
            return False


class EtcdCluster:
    """``size`` etcd members forming one cluster on loopback."""

    def __init__(self, size: int = 3, binary: str | None = None) -> None:
        found = binary or shutil.which("etcd")
        if found is None:
            raise FileNotFoundError("no 'etcd' binary on PATH (Debian: apt-get install etcd-server)")
        self.binary = found
        self.root = Path(tempfile.mkdtemp(prefix="orch-etcd-cluster-"))
        self.token = f"orch-{uuid.uuid4().hex[:8]}"
        self.members = [EtcdMember(f"m{i}", free_port(), free_port(), self.root / f"m{i}") for i in range(size)]

    @property
    def endpoint(self) -> str:
        """Every member's client address, comma-separated (what ``--etcd`` takes)."""
        return ",".join(m.endpoint for m in self.members)

    def _command(self, member: EtcdMember) -> list[str]:
        client = f"http://{member.endpoint}"
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        return [
            self.binary,
            *("--name", member.name, "--data-dir", str(member.data_dir / "data")),
            *("--listen-client-urls", client, "--advertise-client-urls", client),
            *("--listen-peer-urls", member.peer_url, "--initial-advertise-peer-urls", member.peer_url),
            *("--initial-cluster", initial, "--initial-cluster-token", self.token),
            *("--initial-cluster-state", "new"),  # ignored on a restart: the data directory has the cluster
        ]

    def start_member(self, index: int) -> None:
        """Launch member ``index`` (first start or restart on its ports and data); does not wait."""
        member = self.members[index]
        member.data_dir.mkdir(parents=True, exist_ok=True)
        with open(member.data_dir / "etcd.log", "ab") as log:
            member.process = subprocess.Popen(self._command(member), stdout=log, stderr=subprocess.STDOUT)

    def start(self, timeout: float = 30.0) -> None:
        """Launch every member, then wait until all are healthy."""
        for index in range(len(self.members)):
            self.start_member(index)
        self.wait_healthy(timeout=timeout)

    def wait_healthy(self, indices: list[int] | None = None, timeout: float = 30.0) -> None:
        """Wait until the members ``indices`` (default: every running one) answer ``/health``."""
        chosen = [self.members[i] for i in indices] if indices is not None else self.running()
        deadline = time.monotonic() + timeout
        while not all(m.healthy() for m in chosen):
            for member in chosen:
                if member.process is not None and member.process.poll() is not None:
                    raise RuntimeError(f"etcd {member.name} exited; see {member.data_dir / 'etcd.log'}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"etcd cluster not healthy within {timeout} s; logs in {self.root}")
            time.sleep(0.1)

    def running(self) -> list[EtcdMember]:
        return [m for m in self.members if m.process is not None and m.process.poll() is None]

    def member_at(self, endpoint: str) -> int:
        """The index of the member serving ``endpoint`` (host:port)."""
        return next(i for i, m in enumerate(self.members) if m.endpoint == endpoint)

    def kill(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Signal member ``index`` by the PID started here (SIGKILL by default) and reap it."""
        member = self.members[index]
        if member.process is None:
            return
        member.process.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            member.process.wait(timeout=10)
            member.process = None

    def stop(self, *, graceful: bool = True) -> None:
        """Stop every member started here, by PID: SIGTERM (then SIGKILL), or at once SIGKILL."""
        for member in self.members:
            if member.process is not None and member.process.poll() is None:
                member.process.send_signal(signal.SIGCONT)  # a stopped member could not act on SIGTERM
                member.process.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        for member in self.members:
            if member.process is None:
                continue
            try:
                member.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                member.process.kill()
                member.process.wait()
            member.process = None

    def cleanup(self) -> None:
        """Stop and delete everything; no need to let members hand over a cluster being deleted."""
        self.stop(graceful=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> EtcdCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
