"""Live cluster under load (group ``live_load``; not in CI's quick group): issue 13's load numbers.

* **Placements per second** for 2,000 tasks posted by 16 concurrent clients (keep-alive
  HTTP/1.1 connections, ``_Connection``) to a live master with 3 process workers (tasks
  run ``true``), as a ratio to the raw compare-and-swap rate of the same aetcd client
  (``Store``) in the same run: the median of 3 paired rounds (``ORCH_BENCH_LOAD_ROUNDS``).
  Target ratio >= 0.3.
* **Master CPU per task** (user + system time of the master process, from
  ``/proc/PID/stat``, from the first post to the last placement) at 1,000, 2,000 and
  4,000 tasks (``ORCH_BENCH_LOAD_SIZES`` picks others). Target: flat (largest / smallest
  near 1).

Placements are counted by a watch on the events prefix from this process (``task.assigned``,
each task once: a task placed again after a requeue does not end the count early), so
waiting for them costs the master nothing. ``ORCH_BENCH_PROFILE=DIR`` runs each master
and worker under cProfile and prints where their time goes (the profile slows it down: read the ratio
from a run without it).
"""

from __future__ import annotations

import asyncio
import json
import os
import pstats
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchlive.etcd_server import EtcdServer
from orchlive.store import Store
from tests.live.harness import LiveCluster, children_of

CLIENTS = 16
WORKERS = 3
TICKS = os.sysconf("SC_CLK_TCK")
BODY = {"name": "load", "image": "alpine", "command": ["true"], "resources": {"cpu": 100, "memory": 64}}


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdServer]:
    if shutil.which("etcd") is None:
        pytest.skip("no 'etcd' binary on PATH: install Debian's etcd-server")
    server = EtcdServer()
    server.start()
    yield server
    server.cleanup()


class _LoadCluster(LiveCluster):
    """A cluster whose master may run under cProfile (``ORCH_BENCH_PROFILE``)."""

    def __init__(self, etcd: EtcdServer, work_dir: Path, profile: Path | None) -> None:
        super().__init__(etcd, work_dir, policy="spread", lease_ttl=5)
        self.profile = profile

    def _spawn(self, args: list[str], log_name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        if args[0] not in ("master", "worker") or self.profile is None:
            return super()._spawn(args, log_name, env)
        log = open(self.work_dir / log_name, "ab")  # noqa: SIM115 - the child keeps it
        path = self.profile if args[0] == "master" else self.profile.with_suffix(f".{Path(log_name).stem}.prof")
        command = [sys.executable, "-c", _PROFILED, str(path), "--log-level", "INFO", *args]
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self._env() | (env or {}))
        log.close()
        return child


# ``python -m cProfile`` writes nothing here: uvicorn re-raises SIGTERM after its shutdown,
# so the process dies by the signal. A handler that exits lets the profile be written.
_PROFILED = """
import cProfile, runpy, signal, sys
def leave(*_):
    raise SystemExit(0)
signal.signal(signal.SIGTERM, leave)
path, sys.argv = sys.argv[1], ["orchlive", *sys.argv[2:]]
profile = cProfile.Profile()
profile.enable()
try:
    runpy.run_module("orchlive", run_name="__main__")
finally:
    profile.disable()
    profile.dump_stats(path)
"""


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of process ``pid`` so far (/proc/PID/stat fields 14, 15; 16, 17 add
    its reaped children: a worker's tasks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(f) for f in fields[11 : 15 if children else 13]) / TICKS


def _launchers_seconds(pid: int) -> float:
    """CPU seconds of a worker's live children and what they reaped: its launcher and the
    tasks it started (the worker reaps the launcher only when it ends)."""
    total = 0.0
    for child in children_of(pid):
        try:  # noqa: SIM105 - a child may end between the listing and the read
            total += cpu_seconds(child, children=True)
        except OSError:
            pass
    return total


def _cpu_by_process(cluster: LiveCluster) -> dict[str, float]:
    """CPU seconds so far of everything on the machine that the run involves."""
    assert cluster.master is not None and cluster.etcd.process is not None
    return {
        "master": cpu_seconds(cluster.master.pid),
        "workers": sum(cpu_seconds(w.pid) for w in cluster.workers.values()),
        "launchers_and_tasks": sum(
            cpu_seconds(w.pid, children=True) - cpu_seconds(w.pid) + _launchers_seconds(w.pid)
            for w in cluster.workers.values()
        ),
        "etcd": cpu_seconds(cluster.etcd.process.pid),
        "clients": time.process_time(),
    }


def raw_cas_rate(endpoint: str, n: int = 2000) -> float:
    """Sequential compare-and-swap transactions per second on one key, with the master's client."""

    async def measure() -> float:
        async with Store(endpoint, "/bench-load-raw") as store:
            key = "/bench-load-raw/k"
            revision = await store.put(key, b"0")
            began = time.perf_counter()
            for i in range(n):
                applied, revision = await store.txn().expect_revision(key, revision).put(key, str(i).encode()).commit()
                assert applied
            return n / (time.perf_counter() - began)

    return asyncio.run(measure())


async def _watch_events(store: Store, start: int, assigned: int, seen: dict[str, list[float]]) -> None:
    """Note when each event arrives (by type) until ``assigned`` tasks have been placed."""
    placed: set[str] = set()
    async for change in store.watch(store.keys.events(), start):
        if change.kind == "put":
            event = json.loads(change.value)
            if event["type"] == "task.assigned":
                if event["object"]["id"] in placed:
                    continue
                placed.add(event["object"]["id"])
            seen.setdefault(event["type"], []).append(time.perf_counter())
            if len(placed) == assigned:
                return


class _Connection:
    """One keep-alive HTTP/1.1 connection that posts the benchmark's task: a client costing little CPU.

    The clients share the machine with the cluster they load: httpx spends about 2 ms of CPU
    per post, as much as the master spends accepting it, and that CPU is taken from the
    system under test. This client writes one fixed request and reads the status line, the
    headers and a ``content-length`` body; it asserts every answer is 201.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        body = json.dumps(BODY).encode()
        head = "POST /api/v1/tasks HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        self.request = (head + f"content-length: {len(body)}\r\n\r\n").encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *headers = head.decode("latin-1").split("\r\n")
        length = next(int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:"))
        answer = await self.reader.readexactly(length)
        assert status_line.split()[1] == "201", (status_line, answer[:200])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def _post(cluster: LiveCluster, tasks: int) -> list[float]:
    """Post ``tasks`` tasks from 16 concurrent clients (one connection each); the latency of each post, s."""
    posted: list[float] = []
    left = iter(range(tasks))

    async def client() -> None:
        connection = _Connection(cluster.port)
        try:
            for _ in left:  # the clients share one count: each takes the next post while any is left
                sent = time.perf_counter()
                await connection.post()
                posted.append(time.perf_counter() - sent)
        finally:
            await connection.close()

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return posted


async def _post_and_place(cluster: LiveCluster, tasks: int) -> dict[str, Any]:
    """With the workers up, post ``tasks`` tasks; return once every one is placed, with the timings."""
    for i in range(1, WORKERS + 1):
        cluster.start_worker(f"w{i}", cpu=1_000_000, memory=1_000_000)
    async with Store(cluster.etcd.endpoint, cluster.prefix) as store:
        seen: dict[str, list[float]] = {}
        watcher = asyncio.create_task(_watch_events(store, await store.revision() + 1, tasks, seen))
        cpu_before, began = _cpu_by_process(cluster), time.perf_counter()
        posted = await _post(cluster, tasks)
        submitted = time.perf_counter()
        await asyncio.wait_for(watcher, timeout=900)
        used = {name: seconds - cpu_before[name] for name, seconds in _cpu_by_process(cluster).items()}
    wall = seen["task.assigned"][-1] - began
    return {
        "tasks": tasks,
        "placements_per_second": tasks / wall,
        "submit_seconds": submitted - began,
        "place_seconds": wall,
        "post_p50_s": float(np.percentile(posted, 50)),
        "post_p99_s": float(np.percentile(posted, 99)),
        "master_cpu_seconds": used["master"],
        "master_cpu_ms_per_task": 1000 * used["master"] / tasks,
        # Where the machine's cores went while placing (cores busy on average, by process).
        **{f"cores_{name}": seconds / wall for name, seconds in used.items()},
    }


async def _place_backlog(cluster: LiveCluster, tasks: int) -> dict[str, Any]:
    """Post ``tasks`` tasks with no worker up, then start one: the scheduler alone, without the API."""
    began = time.perf_counter()
    posted = await _post(cluster, tasks)
    posting = time.perf_counter() - began
    async with Store(cluster.etcd.endpoint, cluster.prefix) as store:
        seen: dict[str, list[float]] = {}
        watcher = asyncio.create_task(_watch_events(store, await store.revision() + 1, tasks, seen))
        cluster.start_worker("w1", cpu=1_000_000, memory=1_000_000, wait=False)
        assert cluster.master is not None
        cpu_before = cpu_seconds(cluster.master.pid)
        await asyncio.wait_for(watcher, timeout=900)
        cpu = cpu_seconds(cluster.master.pid) - cpu_before
    wall = seen["task.assigned"][-1] - seen["node.joined"][0]
    return {
        "tasks": tasks,
        "backlog_placements_per_second": tasks / wall,
        "backlog_master_cpu_ms_per_task": 1000 * cpu / tasks,
        "posts_per_second_alone": tasks / posting,
        "post_p50_s": float(np.percentile(posted, 50)),
    }


def _run(etcd: EtcdServer, work: Path, tasks: int, measure: Callable[..., Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """A fresh master on its own prefix, loaded with ``tasks`` tasks by ``measure(cluster, tasks)``."""
    profile_dir = os.environ.get("ORCH_BENCH_PROFILE")
    profile = Path(profile_dir) / f"master-{measure.__name__}-{tasks}.prof" if profile_dir else None
    work.mkdir(parents=True, exist_ok=True)
    cluster = _LoadCluster(etcd, work, profile)
    try:
        cluster.start_master()
        return asyncio.run(measure(cluster, tasks))
    finally:
        cluster.stop()
        if profile is not None and profile.exists():
            print(f"\nmaster profile, {tasks} tasks ({profile}):")
            pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(30)
        if profile is not None and (workers := sorted(profile.parent.glob(f"{profile.stem}.*.prof"))):
            print(f"\nworkers' profile, {tasks} tasks ({', '.join(map(str, workers))}):")
            pstats.Stats(*map(str, workers)).sort_stats("cumulative").print_stats(30)


def _paired_rounds() -> int:
    """How many paired runs (raw CAS, then the cluster) the ratio is the median of: ``ORCH_BENCH_LOAD_ROUNDS``, 3."""
    raw = os.environ.get("ORCH_BENCH_LOAD_ROUNDS", "3")
    if not raw.isdigit() or int(raw) < 1:
        raise pytest.UsageError(f"ORCH_BENCH_LOAD_ROUNDS: a positive number of rounds, got {raw!r}")
    return int(raw)


@pytest.mark.benchmark(group="live_load")
def test_placements_per_second_beside_raw_cas(benchmark, etcd: EtcdServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The ratio is the median of paired rounds: one run varies by about 15% on a quiet machine."""
    rounds: list[tuple[float, dict[str, Any]]] = []

    def paired(i: int) -> dict[str, Any]:
        baseline = raw_cas_rate(etcd.endpoint)
        result = _run(etcd, tmp_path / f"load{i}", 2000, _post_and_place)
        rounds.append((baseline, result))
        return result

    benchmark.pedantic(paired, args=(0,), rounds=1, iterations=1)
    for i in range(1, _paired_rounds()):
        paired(i)
    ratios = [result["placements_per_second"] / baseline for baseline, result in rounds]
    baseline, result = rounds[int(np.argsort(ratios)[len(ratios) // 2])]  # the median round
    # Where the time goes: the same 2,000 tasks placed from a backlog, without the API in the way.
    backlog = _run(etcd, tmp_path / "backlog", 2000, _place_backlog)
    ratio = result["placements_per_second"] / baseline
    benchmark.extra_info.update(
        result
        | {
            "clients": CLIENTS,
            "workers": WORKERS,
            "baseline_cas_per_second": baseline,
            "ratio": ratio,
            "ratios_of_rounds": ratios,
            "target_ratio": 0.3,
            "backlog_placements_per_second": backlog["backlog_placements_per_second"],
            "backlog_ratio": backlog["backlog_placements_per_second"] / baseline,
            "backlog_master_cpu_ms_per_task": backlog["backlog_master_cpu_ms_per_task"],
            "posts_per_second_with_nothing_to_place": backlog["posts_per_second_alone"],
        }
    )
    print(
        f"\nlive load (the median of {len(ratios)} paired rounds, ratios "
        f"{', '.join(f'{r:.3f}' for r in ratios)}): {result['placements_per_second']:.1f} placements/s "
        f"for 2,000 tasks from {CLIENTS} clients; raw CAS {baseline:.0f}/s; ratio {ratio:.3f} (target 0.3); master CPU "
        f"{result['master_cpu_ms_per_task']:.2f} ms/task; the last post returned after "
        f"{result['submit_seconds']:.1f} s, the last placement after {result['place_seconds']:.1f} s. "
        f"From a backlog (no API): {backlog['backlog_placements_per_second']:.0f} placements/s "
        f"(ratio {backlog['backlog_placements_per_second'] / baseline:.3f}), "
        f"{backlog['backlog_master_cpu_ms_per_task']:.2f} ms of master CPU per task; the API alone "
        f"(no worker, nothing placed) accepted {backlog['posts_per_second_alone']:.0f} posts/s. "
        f"CPU per task in the median round: {_by_process(result)}"
    )


def _by_process(result: dict[str, Any]) -> str:
    """Milliseconds of CPU per task by process (the machine's cores are shared: each one counts)."""
    cores = {name: result[f"cores_{name}"] for name in _PROCESSES}
    per = {name: 1000 * used * result["place_seconds"] / result["tasks"] for name, used in cores.items()}
    parts = ", ".join(f"{name.replace('_', ' ')} {ms:.2f}" for name, ms in per.items())
    return f"{parts} ms (sum {sum(per.values()):.2f} ms; {sum(cores.values()):.2f} cores in use)"


_PROCESSES = ("master", "workers", "launchers_and_tasks", "etcd", "clients")


def _sizes() -> list[int]:
    """Task counts of the CPU-per-task run: ``ORCH_BENCH_LOAD_SIZES`` (default 1000,2000,4000, the issue's range)."""
    raw = os.environ.get("ORCH_BENCH_LOAD_SIZES", "1000,2000,4000")
    try:
        sizes = sorted({int(part) for part in raw.split(",") if part.strip()})
    except ValueError:
        raise pytest.UsageError(f"ORCH_BENCH_LOAD_SIZES: a comma-separated list of task counts, got {raw!r}") from None
    if len(sizes) < 2 or sizes[0] < 1:
        raise pytest.UsageError(f"ORCH_BENCH_LOAD_SIZES: at least two positive task counts, got {raw!r}")
    return sizes


@pytest.mark.benchmark(group="live_load")
def test_master_cpu_per_task_flat(benchmark, etcd: EtcdServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Master CPU per task at each size (1,000, 2,000 and 4,000 by default; ``ORCH_BENCH_LOAD_SIZES``)."""
    *smaller, largest = _sizes()
    runs = {n: _run(etcd, tmp_path / f"n{n}", n, _post_and_place) for n in smaller}
    runs[largest] = benchmark.pedantic(
        lambda: _run(etcd, tmp_path / f"n{largest}", largest, _post_and_place), rounds=1, iterations=1
    )
    first = min(runs)
    growth = runs[largest]["master_cpu_ms_per_task"] / runs[first]["master_cpu_ms_per_task"]
    benchmark.extra_info.update(
        {f"cpu_ms_per_task_{n}": run["master_cpu_ms_per_task"] for n, run in runs.items()}
        | {f"placements_per_second_{n}": run["placements_per_second"] for n, run in runs.items()}
        | {f"growth_{largest}_over_{first}": growth, "ratio": 1 / growth}  # higher is better: 1.0 is flat
    )
    cpu = ", ".join(f"{run['master_cpu_ms_per_task']:.2f} ms at {n:,}" for n, run in runs.items())
    rates = ", ".join(f"{run['placements_per_second']:.1f}" for run in runs.values())
    print(f"\nmaster CPU per task: {cpu} tasks ({growth:.2f}x from {first:,} to {largest:,}); placements/s {rates}")
