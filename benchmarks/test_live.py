"""Live cluster throughput (group ``live``): 1,000 tasks through the API to 3 process workers.

Reports placements per second and submit-to-running latency (p50, p99), beside the raw
rate of etcd compare-and-swap transactions measured in the same run on the same etcd:
a placement costs one such transaction plus the decision, so the ratio shows how much
of etcd's capacity the master turns into placements.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from orchlive.etcd_server import EtcdServer
from orchlive.store import Store
from tests.live.harness import LiveCluster

TASKS = 1000
WORKERS = 3
CLIENTS = 16


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdServer]:
    if shutil.which("etcd") is None:
        pytest.skip("no 'etcd' binary on PATH: install Debian's etcd-server")
    server = EtcdServer()
    server.start()
    yield server
    server.cleanup()


def raw_txn_rate(endpoint: str, n: int = 2000) -> float:
    """Sequential compare-and-swap transactions per second (one key, like a task transition)."""

    async def measure() -> float:
        async with Store(endpoint, "/bench-raw") as store:
            key = "/bench-raw/k"
            revision = await store.put(key, b"0")
            began = time.perf_counter()
            for i in range(n):
                applied, revision = await store.txn().expect_revision(key, revision).put(key, str(i).encode()).commit()
                assert applied
            return n / (time.perf_counter() - began)

    return asyncio.run(measure())


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


@pytest.mark.benchmark(group="live")
def test_live_placement_throughput(benchmark, etcd: EtcdServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    baseline = raw_txn_rate(etcd.endpoint)
    cluster = LiveCluster(etcd, tmp_path, policy="spread", lease_ttl=5)
    try:
        cluster.start_master()
        for i in range(1, WORKERS + 1):
            cluster.start_worker(f"w{i}", cpu=1_000_000, memory=1_000_000)
        body = {"name": "bench", "image": "alpine", "command": ["true"], "resources": {"cpu": 100, "memory": 64}}

        async def post_all() -> None:
            # 16 clients at once, as many users' scripts would: the master, not one
            # sequential client, should be what limits the rate.
            async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as http:
                gate = asyncio.Semaphore(CLIENTS)

                async def post() -> None:
                    async with gate:
                        assert (await http.post("/api/v1/tasks", json=body)).status_code == 201

                await asyncio.gather(*(post() for _ in range(TASKS)))

        def submit_all() -> float:
            began = time.perf_counter()
            asyncio.run(post_all())
            cluster.wait_until(
                lambda: sum(t["state"] in ("RUNNING", "COMPLETED") for t in cluster.tasks()) == TASKS,
                timeout=300,
                what="every task started",
                interval=0.5,
            )
            return time.perf_counter() - began

        elapsed = benchmark.pedantic(submit_all, rounds=1, iterations=1)
        tasks = cluster.tasks()
        latency = np.array([(_parse(t["start_time"]) - _parse(t["creation_time"])).total_seconds() for t in tasks])
        created = [_parse(t["creation_time"]) for t in tasks]
        started = [_parse(t["start_time"]) for t in tasks]
        placement_window = (max(started) - min(created)).total_seconds()
        placements_per_second = TASKS / placement_window
        benchmark.extra_info.update(
            {
                "tasks": TASKS,
                "workers": WORKERS,
                "wall_seconds": elapsed,
                "placements_per_second": placements_per_second,
                "submit_to_running_p50_s": float(np.percentile(latency, 50)),
                "submit_to_running_p99_s": float(np.percentile(latency, 99)),
                "baseline": "raw etcd CAS transactions per second, same etcd, same run",
                "baseline_txn_per_second": baseline,
                "ratio": placements_per_second / baseline,
            }
        )
        print(
            f"\nlive: {placements_per_second:.0f} placements/s; submit->running p50 "
            f"{np.percentile(latency, 50) * 1000:.1f} ms, p99 {np.percentile(latency, 99) * 1000:.1f} ms; "
            f"raw etcd CAS {baseline:.0f} txn/s (ratio {placements_per_second / baseline:.3f})"
        )
    finally:
        cluster.stop()
