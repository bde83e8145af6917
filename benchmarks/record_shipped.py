"""Record the two shipped recordings again, from a real cluster: ``scenarios/recordings/<name>``.

    python -m benchmarks.record_shipped dev_mixed        # from the repository root
    python -m benchmarks.record_shipped killed_worker [--out DIR]

Each run starts a private etcd (``orchlive.etcd_server``), a master and process workers,
submits the workload below through the API, waits until every task completed, and writes
the folder with ``orchlive.record.record`` (the recording format of this checkout), then a
``SOURCE.txt`` saying how and when, with the machine's load average during the run: the
waits and the timing races depend on it. The workloads are those of the first recordings
(recovered from their ``tasks.csv``, ``nodes.csv`` and ``policy.json``):

* ``dev_mixed``: an ``orchlive dev`` cluster (``orchlive.dev.DevCluster``: 3 workers of
  4000 millicores and 8192 MiB, lease 5 s, ``bin_packing``) runs the 150 ``sleep`` tasks of
  ``record_shipped_dev_mixed.csv`` at its times: the first recording's tasks (six shapes,
  0.3-2.5 s each, 0.09-0.31 s apart), each submitted when it was then and sleeping what it
  ran then (its run to the tenth of a second). Tasks queue for capacity.
* ``killed_worker``: a master under ``spread`` and workers ``w1``-``w3`` of different sizes
  (lease 2 s; the live tests' harness) run 200 tasks of six shapes in turn, one every 0.4 s
  on a fixed clock; ``w4`` is started after the 60th submission and joins about 24 s in, and
  ``w2`` is killed (SIGKILL) at 48.2 s, with tasks running.

It lives beside the benchmarks because, like ``test_live.py``, it drives the live tests'
harness (``tests/live/harness.py``); it is a script, not a benchmark, and pytest does not
collect it. Needs the ``etcd`` program (Debian's ``etcd-server``).
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from orchlive.dev import DevCluster
from orchlive.etcd_server import EtcdServer, free_port
from orchlive.record import record
from tests.live.harness import LiveCluster

ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = ROOT / "scenarios" / "recordings"
RECORDING_FILES = ("tasks.csv", "nodes.csv", "node_events.csv", "policy.json")

# dev_mixed: one task a row: name, submit_time (s from the first), cpu_milli, memory_mib, seconds of sleep.
DEV_WORKLOAD = Path(__file__).with_name("record_shipped_dev_mixed.csv")
DEV_LEASE = 5  # orchlive dev's default lease (s)

# killed_worker: (cpu millicores, memory MiB, seconds of sleep), in turn; one submission every SLOT s.
KILLED_SHAPES = [(500, 256, 1.8), (1500, 1024, 2.6), (250, 2048, 1.4), (2000, 3000, 2.2), (750, 512, 3.0)]
KILLED_SHAPES.append((3000, 2048, 1.8))
KILLED_TASKS = 200
SLOT = 0.4
KILLED_WORKERS = {"w1": (4000, 8192), "w2": (8000, 4096), "w3": (6000, 16384)}  # cpu millicores, memory MiB
W4 = (4000, 8192)
W4_AFTER = 59  # started after task 59 (23.6 s): up and joined about 24 s in
KILL_AFTER = 120  # w2 killed half a slot after task 120: 48.2 s
LEASE = 2


class LoadSampler:
    """The 1-minute load average, sampled every ``every`` seconds while the recording runs."""

    def __init__(self, every: float = 2.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.every)

    @contextmanager
    def running(self) -> Iterator[LoadSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()

    def summary(self) -> str:
        s = np.array(self.samples or [os.getloadavg()[0]])
        return f"{s.min():.1f}-{s.max():.1f} (mean {s.mean():.1f}, {len(s)} samples every {self.every:.0f} s)"


def wait_completed(get: Callable[[], list[dict]], count: int, timeout: float) -> None:
    """Wait until ``count`` tasks are COMPLETED; fail on a FAILED one or at ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [t["state"] for t in get()]
        if "FAILED" in states:
            raise SystemExit(f"a task failed: {states.count('FAILED')} FAILED")
        if states.count("COMPLETED") >= count:
            return
        time.sleep(0.5)
    raise SystemExit(f"not every task completed within {timeout:.0f} s")


def run_dev_mixed(out: Path, seed: int) -> None:
    """The tasks of ``DEV_WORKLOAD`` at their times on an ``orchlive dev`` cluster (see the module)."""
    with DEV_WORKLOAD.open() as f:
        tasks = list(csv.DictReader(f))
    seeded = ["--seed", str(seed)]
    with DevCluster(workers=3, port=free_port(), policy="bin_packing", lease_ttl=DEV_LEASE, master_args=seeded) as dev:
        http = httpx.Client(base_url=dev.url, timeout=10.0)
        began = time.monotonic()
        for task in tasks:
            time.sleep(max(0.0, began + float(task["submit_time"]) - time.monotonic()))
            resources = {"cpu": int(task["cpu_milli"]), "memory": int(task["memory_mib"])}
            body = {"name": task["name"], "command": ["sleep", task["seconds"]], "resources": resources}
            http.post("/api/v1/tasks", json=body).raise_for_status()
        wait_completed(lambda: http.get("/api/v1/tasks", params={"limit": 1000}).json(), len(tasks), 120)
        http.close()
        record(dev.url, out, quiet=1.0, lease_ttl=DEV_LEASE)


def run_killed_worker(out: Path, seed: int) -> None:
    """200 tasks under spread; ``w4`` joins late and ``w2`` is killed mid-run (see the module)."""
    work = Path(tempfile.mkdtemp(prefix="orch-record-"))
    etcd = EtcdServer(data_dir=work / "etcd")
    etcd.start()
    cluster = LiveCluster(etcd, work, policy="spread", seed=seed, lease_ttl=LEASE)
    try:
        cluster.start_master()
        for name, (cpu, memory) in KILLED_WORKERS.items():
            cluster.start_worker(name, cpu=cpu, memory=memory)
        began = time.monotonic()
        for i in range(KILLED_TASKS):
            time.sleep(max(0.0, began + i * SLOT - time.monotonic()))
            cpu, memory, seconds = KILLED_SHAPES[i % len(KILLED_SHAPES)]
            body = {"name": f"job{i}", "command": ["sleep", str(seconds)]}
            cluster.submit(body | {"resources": {"cpu": cpu, "memory": memory}})
            if i == W4_AFTER:
                cluster.start_worker("w4", cpu=W4[0], memory=W4[1], wait=False)
            if i == KILL_AFTER:
                time.sleep(max(0.0, began + (i + 0.5) * SLOT - time.monotonic()))
                cluster.kill_worker("w2")
        cluster.wait_until(lambda: cluster.node_state("w2") == "NOT_READY", timeout=30, what="w2 lost")
        wait_completed(lambda: cluster.http.get("/api/v1/tasks", params={"limit": 1000}).json(), KILLED_TASKS, 120)
        record(cluster.url, out, quiet=1.0, lease_ttl=LEASE)
    finally:
        cluster.stop()
        etcd.stop()
    shutil.rmtree(work, ignore_errors=True)


RUNS = {"dev_mixed": run_dev_mixed, "killed_worker": run_killed_worker}


def write_source(out: Path, name: str, argv: list[str], load: LoadSampler, started: datetime) -> None:
    """``SOURCE.txt``: the command that produced the folder, when, and the load average meanwhile."""
    command = "python -m benchmarks.record_shipped " + shlex.join(argv)
    (out / "SOURCE.txt").write_text(
        f"Recorded from a live cluster on this machine by (from the repository root):\n\n    {command}\n\n"
        f"Workload and cluster: benchmarks/record_shipped.py ({name}). Recorded {started:%Y-%m-%d %H:%M} UTC\n"
        f"in {(datetime.now(UTC) - started).total_seconds():.0f} s on {os.cpu_count()} cores; 1-minute load average "
        f"during the run: {load.summary()}.\n"
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RUNS))
    parser.add_argument("--out", type=Path, help="the folder (default scenarios/recordings/NAME); replaced")
    parser.add_argument("--seed", type=int, default=0, help="the master's seed (default 0)")
    args = parser.parse_args(argv)
    if shutil.which("etcd") is None:
        parser.error("no 'etcd' program on PATH (Debian: apt-get install etcd-server)")
    out = args.out or RECORDINGS / args.name
    staging = Path(tempfile.mkdtemp(prefix=f"{args.name}-"))
    started = datetime.now(UTC)
    load = LoadSampler()
    with load.running():
        RUNS[args.name](staging, args.seed)
    out.mkdir(parents=True, exist_ok=True)
    for leftover in (*RECORDING_FILES, "SOURCE.txt"):  # only once the new recording is complete
        (out / leftover).unlink(missing_ok=True)
    for made in staging.iterdir():
        shutil.move(made, out / made.name)
    staging.rmdir()
    write_source(out, args.name, argv, load, started)
    print(f"{out}: recorded; load average {load.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
