"""Start and stop a private etcd server (Debian's ``etcd-server``) for ``dev`` and the tests.

It listens on free loopback ports with a temporary data directory, and is stopped by
the PID this module started: nothing else is ever killed.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["EtcdServer", "free_port"]


# Ports are drawn from below Linux's default ephemeral range (32768-60999): a port the kernel
# hands out for ``bind(0)`` is also what it hands to the next outgoing connection (a client of
# etcd, a health probe), which can take it between our pick and the server's bind. Random
# picks also keep parallel test workers apart.
_PICK_RANGE = (15_000, 32_000)
_picker = random.Random()


def _bindable(s: socket.socket, port: int) -> bool:
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (outside the ephemeral range)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1, free right now.

    Held open together while picked: one ``free_port`` after another may be handed the
    same port twice, since each is released before the next is asked for.
    """
    sockets: list[socket.socket] = []
    try:
        while len(sockets) < count:
            s = socket.socket()
            if _bindable(s, _picker.randrange(*_PICK_RANGE)) or _bindable(s, 0):
                sockets.append(s)
            else:
                s.close()
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


class EtcdServer:
    """One etcd member on loopback; restartable on the same ports and data (for outage tests)."""

    def __init__(
        self,
        binary: str | None = None,
        data_dir: Path | None = None,
        *,
        client_port: int | None = None,
        die_with_parent: bool = False,
    ) -> None:
        """A server not yet started.

        Args:
            binary: the etcd program (default: ``etcd`` on PATH).
            data_dir: where etcd keeps its data and log (default: a temporary directory,
                removed by ``cleanup``).
            client_port: the port clients use (default: a free one).
            die_with_parent: etcd gets SIGTERM when this process dies, even by SIGKILL
                (util-linux's ``setpriv``): ``orchlive dev`` asks for it so that no etcd
                outlives it holding its port.
        """
        found = binary or shutil.which("etcd")
        if found is None:
            raise FileNotFoundError("no 'etcd' binary on PATH (Debian: apt-get install etcd-server)")
        self.binary = found
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="orch-etcd-"))
        self.client_port = client_port or free_port()
        self.peer_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "etcd.log"
        setpriv = shutil.which("setpriv") if die_with_parent else None
        self._wrapper = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def start(self, timeout: float = 20.0) -> None:
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.process = subprocess.Popen(
            [
                *self._wrapper,
                self.binary,
                "--name",
                "orch",
                "--data-dir",
                str(self.data_dir / "data"),
                "--listen-client-urls",
                client,
                "--advertise-client-urls",
                client,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"orch={peer}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.process.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.client_port), timeout=0.2):
                    pass
                if self._healthy():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"etcd did not come up within {timeout} s; see {self.log_path}")

    def _healthy(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.client_port}/health", timeout=1) as reply:
                return b"true" in reply.read()
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server we started (SIGTERM, then SIGKILL), by its PID only."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EtcdServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
