"""``python -m orchlive dev`` as a new user meets it: mistakes fail fast, a dead worker comes back,
signals stop everything it started, and its directory goes away unless ``--keep``.

Each case runs the real command in a subprocess, with ``TMPDIR`` pointed at the test's own
directory so that what ``dev`` leaves behind can be seen.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchlive.etcd_server import free_port

from .harness import children_of  # etcd, the master, the workers: each execs in place of setpriv

pytestmark = pytest.mark.live
ROOT = Path(__file__).resolve().parents[2]


def dev_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    return env | {"TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for a reaper that is not ours counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def worker_pid(dev_pid: int, name: str) -> int | None:
    found = [p for p in children_of(dev_pid) if f"worker --name {name} " in cmdline(p)]
    return found[0] if found else None


def wait_until(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Dev:
    """A running ``orchlive dev`` with its output in files (so that reading it never blocks)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.out, self.err = tmp_path / "dev.out", tmp_path / "dev.err"
        self.work = tmp_path / "tmp"
        self.work.mkdir()
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "orchlive", "dev", "--port", str(self.port), *args],
                stdout=out,
                stderr=err,
                env=dev_env(self.work),
                cwd=tmp_path,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        assert self.process.poll() is None, self.err.read_text()
        return "Ctrl-C" in self.out.read_text()

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=40)


@pytest.fixture
def dev_factory(tmp_path: Path) -> Iterator:
    started: list[Dev] = []

    def start(*args: str) -> Dev:
        folder = tmp_path / f"dev{len(started)}"
        folder.mkdir()
        dev = Dev(folder, *args)
        started.append(dev)
        wait_until(dev.ready, 60, "the dev cluster")
        return dev

    yield start
    for dev in started:
        dev.stop(signal.SIGTERM)


def run_dev(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchlive", "dev", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=dev_env(tmp_path),
    )


def test_a_misspelt_policy_fails_at_once_in_one_line(tmp_path: Path) -> None:
    result = run_dev(tmp_path, "--policy", "bin_pakcing", "--port", str(free_port()))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert "--policy: unknown policy 'bin_pakcing'" in result.stderr and "bin_packing" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was started: no working directory either


@pytest.mark.parametrize("flag", ["--port", "--etcd-port"])
def test_a_busy_port_fails_at_once_in_one_line(tmp_path: Path, flag: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = ["--port", str(free_port())] if flag == "--etcd-port" else []
        result = run_dev(tmp_path, flag, str(port), *other)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: {flag} {port}: 127.0.0.1:{port} is already in use; choose another port"
    assert list(tmp_path.iterdir()) == []


def test_a_killed_worker_is_restarted_then_given_up(dev_factory) -> None:  # type: ignore[no-untyped-def]
    dev = dev_factory("--workers", "2", "--max-restarts", "1")
    first = worker_pid(dev.process.pid, "w1")
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: "restarting it (1 of 1 restarts)" in dev.err.read_text(), 20, "the restart notice")
    assert "w1 exited (signal 9)" in dev.err.read_text()
    wait_until(lambda: worker_pid(dev.process.pid, "w1") not in (None, first), 10, "a new w1")

    def w1_ready() -> bool:
        nodes = httpx.get(f"{dev.url}/api/v1/nodes", timeout=5).json()
        return {n["id"]: n["state"] for n in nodes}.get("w1") == "READY" and worker_pid(dev.process.pid, "w1") != first

    wait_until(w1_ready, 20, "w1 READY again")
    second = worker_pid(dev.process.pid, "w1")
    assert second is not None
    os.kill(second, signal.SIGKILL)  # past --max-restarts: the cluster runs on without it, and says so
    wait_until(lambda: "running on without it" in dev.err.read_text(), 20, "the give-up notice")
    assert dev.process.poll() is None
    assert httpx.get(f"{dev.url}/health", timeout=5).status_code == 200
    assert worker_pid(dev.process.pid, "w1") is None and worker_pid(dev.process.pid, "w2") is not None


def test_sigterm_stops_every_child_and_removes_the_directory(dev_factory) -> None:  # type: ignore[no-untyped-def]
    dev = dev_factory("--workers", "2")
    pids = children_of(dev.process.pid)
    names = " ".join(cmdline(p) for p in pids)
    assert len(pids) == 4 and "etcd" in names and " master " in names, names  # etcd, master, w1, w2
    assert len(list(dev.work.iterdir())) == 1  # the working directory, while it runs
    assert dev.stop(signal.SIGTERM) == 0, dev.err.read_text()
    assert [p for p in pids if alive(p)] == []
    assert list(dev.work.iterdir()) == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{dev.url}/health", timeout=2)


def test_sighup_with_keep_and_a_chosen_etcd_port(dev_factory) -> None:  # type: ignore[no-untyped-def]
    etcd_port = free_port()
    dev = dev_factory("--workers", "1", "--etcd-port", str(etcd_port), "--keep")
    banner = dev.out.read_text()
    assert f"etcd 127.0.0.1:{etcd_port}" in banner
    assert f"export ORCH_MASTER=http://127.0.0.1:{dev.port}" in banner.splitlines()[3]
    assert httpx.get(f"http://127.0.0.1:{etcd_port}/health", timeout=5).status_code == 200
    pids = children_of(dev.process.pid)
    assert len(pids) == 3
    assert dev.stop(signal.SIGHUP) == 0  # a closed terminal stops it as Ctrl-C does
    assert [p for p in pids if alive(p)] == []
    (kept,) = dev.work.iterdir()
    assert {"master.log", "w1.log"} <= {p.name for p in kept.iterdir()}


def test_no_etcd_program_is_one_line(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    if (bin_dir / "etcd").exists():
        pytest.skip("etcd sits beside python here")
    env = dev_env(tmp_path) | {"PATH": str(bin_dir)}
    result = subprocess.run(
        [sys.executable, "-m", "orchlive", "dev", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 2
    assert result.stderr == "error: no 'etcd' program on PATH (Debian: apt-get install etcd-server)\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux's setpriv")
def test_even_kill_9_of_dev_takes_its_children_down(dev_factory) -> None:  # type: ignore[no-untyped-def]
    dev = dev_factory("--workers", "1")
    pids = children_of(dev.process.pid)
    assert len(pids) == 3  # etcd, master, w1
    dev.process.kill()  # no handler runs: the children's parent-death signal does the work
    dev.process.wait(timeout=10)
    wait_until(lambda: not any(alive(p) for p in pids), 20, "the children to exit")
