"""What stops tasks from outside the worker, on its own: no etcd, no worker.

Process tasks (the worker's launcher, ``orchlive.runtime.launcher``, driven through
``ProcessRuntime``): the whole process group dies at the lease deadline (grandchildren too)
and the reason is recorded; a deadline the worker keeps pushing lets the task finish; tasks
die with a worker killed by ``-9`` and with a launcher killed by ``-9``; many tasks at once
each get their own exit code; tasks start with ``subprocess``'s outcomes. Docker mode (a
supervisor per container, ``orchlive.runtime.supervisor``), against a fake engine on a unix
socket: the supervisor asks the engine to kill the container at the deadline, and leaves on
its own once the container stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchlive.runtime.base import TaskSpec, TaskStartError
from orchlive.runtime.process import ProcessRuntime, spawn_supervisor
from orchlive.runtime.supervisor import write_deadline

pytestmark = pytest.mark.live


def _alive(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


def test_the_group_dies_at_the_deadline_and_lives_while_it_is_pushed(tmp_path: Path) -> None:
    heartbeat = tmp_path / "lease-deadline"
    marker = f"sleep 7{time.monotonic_ns() % 1000:03d}"  # a grandchild only this test starts

    async def scenario() -> tuple[int, str | None, int, str | None]:
        runtime = ProcessRuntime(heartbeat=heartbeat)
        write_deadline(str(heartbeat), time.monotonic() + 0.6)
        spec = TaskSpec("doomed", 1, None, ["sh", "-c", f"{marker}; echo never"], log_path=tmp_path / "a.log")
        doomed = await runtime.start(spec)
        code = await asyncio.wait_for(doomed.wait(), timeout=10)
        write_deadline(str(heartbeat), time.monotonic() + 0.6)
        fine = await runtime.start(TaskSpec("kept", 1, None, ["sleep", "1.5"], log_path=tmp_path / "b.log"))
        for _ in range(15):  # the worker renewing: the deadline moves on every 0.2 s
            write_deadline(str(heartbeat), time.monotonic() + 0.6)
            await asyncio.sleep(0.2)
        return code, doomed.fenced(), await fine.wait(), fine.fenced()

    code, why, kept_code, kept_why = asyncio.run(scenario())
    assert code == -9 and why is not None and "did not renew its lease in time" in why
    assert not _alive(marker), "the task's child outlived the group kill"
    assert "never" not in (tmp_path / "a.log").read_text()
    assert (kept_code, kept_why) == (0, None)


class _FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str) -> None:
        self.calls: list[tuple[str, str]] = []
        self.running = True
        super().__init__(path, _EngineHandler)


class _EngineHandler(http.server.BaseHTTPRequestHandler):
    server: _FakeEngine

    def address_string(self) -> str:  # a unix socket has no client address
        return "fake"

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.calls.append(("GET", self.path))
        self._reply(200, b'{"State": {"Running": %s}}' % (b"true" if self.server.running else b"false"))

    def do_POST(self) -> None:
        self.server.calls.append(("POST", self.path))
        self.server.running = False
        self._reply(204)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[_FakeEngine]:
    server = _FakeEngine(str(tmp_path / "docker.sock"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _container_supervisor(tmp_path: Path, heartbeat: Path) -> int:
    order = {
        "docker": {"host": f"unix://{tmp_path / 'docker.sock'}", "container": "c0ffee"},
        "heartbeat": str(heartbeat),
        "reason": str(tmp_path / "c.stopped"),
    }

    async def run() -> int:
        process = await spawn_supervisor(order, stderr=subprocess.DEVNULL, new_session=True)
        return await asyncio.wait_for(process.wait(), timeout=15)

    return asyncio.run(run())


def test_the_container_is_killed_through_the_engine_at_the_deadline(engine: _FakeEngine, tmp_path: Path) -> None:
    heartbeat = tmp_path / "lease-deadline"
    write_deadline(str(heartbeat), time.monotonic() + 1.0)
    began = time.monotonic()
    assert _container_supervisor(tmp_path, heartbeat) == 0
    assert ("POST", "/containers/c0ffee/kill") in engine.calls
    assert time.monotonic() - began >= 1.0 - 0.05  # not before the deadline
    assert "did not renew its lease in time" in (tmp_path / "c.stopped").read_text()


def test_the_container_supervisor_leaves_once_the_container_stopped(engine: _FakeEngine, tmp_path: Path) -> None:
    heartbeat = tmp_path / "lease-deadline"
    write_deadline(str(heartbeat), time.monotonic() + 3600)
    engine.running = False  # the task ended on its own
    assert _container_supervisor(tmp_path, heartbeat) == 0
    assert [c for c in engine.calls if c[0] == "POST"] == []
    assert not (tmp_path / "c.stopped").exists()


def _run(tmp_path: Path, command: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """Start ``command`` through the process runtime (its supervisor); its exit code and log."""

    async def run() -> int:
        spec = TaskSpec("t", 1, None, command, env=env or {}, log_path=tmp_path / "t.log")
        handle = await ProcessRuntime().start(spec)
        return await asyncio.wait_for(handle.wait(), timeout=15)

    code = asyncio.run(run())
    return code, (tmp_path / "t.log").read_text()


def _refused(tmp_path: Path, command: list[str], env: dict[str, str] | None = None) -> str:
    with pytest.raises(TaskStartError) as refused:
        _run(tmp_path, command, env)
    return str(refused.value)


def test_the_supervisor_starts_tasks_as_subprocess_would(tmp_path: Path) -> None:
    """The supervisor forks and execs the task itself (no ``subprocess``): the same outcomes."""
    assert _run(tmp_path, ["true"]) == (0, "")  # found on os.defpath: no PATH declared
    code, log = _run(tmp_path, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (code, sorted(log.split())) == (3, ["err", "out"])  # stdout and stderr both in the log
    assert _run(tmp_path, ["sh", "-c", "kill -TERM $$"])[0] == -15  # killed by a signal: -N
    assert _run(tmp_path, ["sh", "-c", "cat; echo eof"]) == (0, "eof\n")  # stdin is /dev/null
    assert _run(tmp_path, ["sh", "-c", "echo $ONLY; echo ${HOME:-unset}"], {"ONLY": "this"})[1] == "this\nunset\n"
    # SIGPIPE is back to its default in the task (Python ignores it): `yes` dies quietly.
    code, log = _run(tmp_path, ["sh", "-c", "yes | head -n 1"])
    assert (code, log) == (0, "y\n")
    script = tmp_path / "bin" / "hello"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    assert _run(tmp_path, ["hello"], {"PATH": str(script.parent)}) == (0, "hello\n")  # the task's own PATH


def test_what_cannot_start_is_refused_with_the_reason(tmp_path: Path) -> None:
    assert "No such file or directory" in _refused(tmp_path, ["/no/such/program"])
    assert "'/no/such/program'" in _refused(tmp_path, ["/no/such/program"])
    assert "No such file or directory" in _refused(tmp_path, ["no-such-program-anywhere"])
    plain = tmp_path / "plain"
    plain.write_text("not a program\n")
    assert "Permission denied" in _refused(tmp_path, [str(plain)])
    assert "embedded null byte" in _refused(tmp_path, ["echo", "a\x00b"])
    assert "embedded null byte" in _refused(tmp_path, ["true"], {"A": "x\x00y"})
    assert "illegal environment variable name" in _refused(tmp_path, ["true"], {"A=B": "x"})


_WORKER = """
import asyncio, sys
from pathlib import Path
from orchlive.runtime.base import TaskSpec
from orchlive.runtime.process import ProcessRuntime

async def main():
    runtime = ProcessRuntime()
    await runtime.start(TaskSpec("t", 1, None, ["sh", "-c", sys.argv[1]], log_path=Path(sys.argv[2])))
    print("started", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def _gone(marker: str, seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.1)):
        if not _alive(marker):
            return True
        time.sleep(0.1)
    return False


def test_tasks_die_with_a_worker_killed_by_sigkill(tmp_path: Path) -> None:
    """The worker (here a small script driving the runtime) is killed with -9: its launcher
    and every task's group follow it, grandchildren included."""
    marker = f"sleep 8{time.monotonic_ns() % 1000:03d}"
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, f"{marker}; echo never", str(tmp_path / "t.log")], stdout=subprocess.PIPE
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline() == b"started\n"
        assert _alive(marker)
        worker.kill()
        worker.wait(timeout=10)
        assert _gone(marker), "the task outlived its worker"
        assert _gone(f"launcher.py {worker.pid}"), "the launcher outlived its worker"
    finally:
        worker.kill()


def test_a_dead_launcher_takes_its_tasks_along_and_the_next_task_gets_a_new_one(tmp_path: Path) -> None:
    marker = f"sleep 9{time.monotonic_ns() % 1000:03d}"

    async def scenario() -> tuple[int, int, int]:
        runtime = ProcessRuntime()
        spec = TaskSpec("long", 1, None, ["sh", "-c", f"{marker}; echo never"], log_path=tmp_path / "a.log")
        handle = await runtime.start(spec)
        assert runtime.launcher.process is not None
        first = runtime.launcher.process.pid
        os.kill(first, signal.SIGKILL)
        code = await asyncio.wait_for(handle.wait(), timeout=10)
        after = await runtime.start(TaskSpec("next", 1, None, ["sh", "-c", "exit 4"], log_path=tmp_path / "b.log"))
        next_code = await asyncio.wait_for(after.wait(), timeout=10)
        assert runtime.launcher.process is not None
        second = runtime.launcher.process.pid
        await runtime.close()
        return code, next_code, first - second

    code, next_code, difference = asyncio.run(scenario())
    assert code == -signal.SIGKILL
    assert _gone(marker), "the task outlived its launcher"
    assert next_code == 4 and difference != 0
    assert "never" not in (tmp_path / "a.log").read_text()


def test_many_tasks_at_once_each_get_their_own_exit_code(tmp_path: Path) -> None:
    """Answers from one launcher are matched to their orders, however they interleave."""

    async def scenario() -> list[int]:
        runtime = ProcessRuntime()
        specs = [
            TaskSpec(f"t{i}", 1, None, ["sh", "-c", f"sleep 0.{i % 3}; exit {i}"], log_path=tmp_path / f"{i}.log")
            for i in range(40)
        ]
        handles = await asyncio.gather(*(runtime.start(spec) for spec in specs))
        codes = await asyncio.wait_for(asyncio.gather(*(h.wait() for h in handles)), timeout=30)
        await runtime.close()
        return list(codes)

    assert asyncio.run(scenario()) == list(range(40))


def test_tasks_started_together_share_one_launcher(tmp_path: Path) -> None:
    # Two starts before any launcher exists used to start one each (the second replacing the
    # first as the worker's): the README's "one launcher per worker", and close() left one.
    def launchers() -> set[int]:
        children = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split()
        found = set()
        for pid in map(int, children):
            with contextlib.suppress(OSError):
                if b"launcher" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.add(pid)
        return found

    async def run() -> set[int]:
        runtime = ProcessRuntime()
        specs = [TaskSpec(f"t{i}", 1, None, ["sleep", "2"], log_path=tmp_path / f"t{i}.log") for i in range(3)]
        handles = await asyncio.gather(*(runtime.start(spec) for spec in specs))
        started = launchers() - before
        for handle in handles:
            await handle.kill()
        await runtime.close()
        return started

    before = launchers()  # earlier tests' runtimes in this process may have left theirs
    assert len(asyncio.run(run())) == 1


def test_a_task_killed_by_a_signal_says_which() -> None:
    from orchlive.runtime import exit_reason

    assert exit_reason(3) == "exited with code 3"
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL (exit code -9)"
    assert exit_reason(-200) == "killed by signal 200 (exit code -200)"
