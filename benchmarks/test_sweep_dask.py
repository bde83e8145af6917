"""What the Dask path costs per job beside the process pool (group ``sweep``; issue 16).

The same tiny sweep (a 200-task scenario, 2 policies per job) runs through ``--executor
processes`` with 2 worker processes (the pool started by each sweep, as a user gets it) and
through ``--executor dask`` on a running local cluster of 2 single-threaded workers (warmed
up once: a cluster outlives many sweeps), each with 8 and with 24 jobs. The difference
between the two sizes, over 16, is the marginal seconds per job: fixed costs (starting a
pool, connecting a client) cancel out. ``extra_info``:

* ``processes_per_job_s``, ``dask_per_job_s``: marginal seconds per job (median sweeps);
* ``processes_fixed_s``, ``dask_fixed_s``: what the 8-job sweep costs beyond 8 such jobs;
* ``dask_over_processes``: ``dask_per_job_s / processes_per_job_s`` (1 = the same per job);
* ``per_job_overhead_s``: ``dask_per_job_s - processes_per_job_s``;
* ``ratio``: ``processes_per_job_s / dask_per_job_s`` (higher is better, as in the quick group).

Not in the quick group: a cluster's start-up and the scheduler's latency vary too much on a
loaded 2-core machine to gate CI on them.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from distributed import LocalCluster

from orchsim.scenario import parse_scenario
from orchsim.sweep import sweep_replications

VALUES = [0.5, 1.0]
SMALL, LARGE = 4, 12  # seeds per value: 8 and 24 jobs
ROUNDS = 3

TINY = {
    "version": 1,
    "name": "tiny",
    "seed": 1,
    "policies": ["bin_packing", "spread"],
    "cluster": {"nodes": [{"count": 3, "capacity": {"cpu": 4000, "memory": 8192}}]},
    "workload": [
        {
            "kind": "poisson",
            "rate": 1.0,
            "count": 200,
            "resources": {"cpu": {"dist": "choice", "values": [500, 1000, 2000]}, "memory": 256},
            "duration": {"dist": "exponential", "mean": 10},
        }
    ],
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    ) as local:
        yield local


def _median_seconds(call: Callable[[], Any], rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@pytest.mark.benchmark(group="sweep")
def test_sweep_dask_overhead_per_job_beside_processes(benchmark: Any, cluster: LocalCluster) -> None:
    scenario = parse_scenario(TINY, source="tiny")

    def sweep_on(executor: str, seeds: int) -> Callable[[], Any]:
        where = {"executor": "dask", "scheduler": cluster.scheduler_address} if executor == "dask" else {}
        grid = {"parameter": "workload.0.rate", "values": VALUES, "seeds": seeds}
        return lambda: sweep_replications(scenario, processes=2, **grid, **where)

    sweep_on("dask", SMALL)()  # the workers import orchsim once, as a long-lived cluster would have
    small, large = len(VALUES) * SMALL, len(VALUES) * LARGE
    seconds = {
        (kind, n): _median_seconds(sweep_on(kind, n // len(VALUES))) for kind in ("processes",) for n in (small, large)
    }
    seconds["dask", small] = _median_seconds(sweep_on("dask", SMALL))
    frame = benchmark.pedantic(sweep_on("dask", LARGE), rounds=ROUNDS, iterations=1)
    assert len(frame) == large * 2
    seconds["dask", large] = benchmark.stats.stats.median
    per_job = {kind: (seconds[kind, large] - seconds[kind, small]) / (large - small) for kind in ("processes", "dask")}
    fixed = {kind: seconds[kind, small] - small * per_job[kind] for kind in per_job}
    benchmark.extra_info.update(
        {
            "jobs": [small, large],
            "processes_per_job_s": per_job["processes"],
            "dask_per_job_s": per_job["dask"],
            "processes_fixed_s": fixed["processes"],
            "dask_fixed_s": fixed["dask"],
            "dask_over_processes": per_job["dask"] / per_job["processes"],
            "per_job_overhead_s": per_job["dask"] - per_job["processes"],
            "ratio": per_job["processes"] / per_job["dask"],
        }
    )
