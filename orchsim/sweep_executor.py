"""Runs a sweep's jobs, in this process or a process pool, and returns their summaries in order.

A job is one simulation (every policy, one seed, one parameter value) as plain data: it
pickles cheaply and is re-validated by the schema in the worker, so a ``Scenario`` object
never crosses a process boundary. Each job depends only on its data, so the results are the
same whatever process runs it and in whatever order; only ``wall_seconds`` varies. Workers
start with the platform's default method; a policy registered at run time (in a notebook)
reaches them with ``fork`` (Linux), and elsewhere must live in an importable module (a
plugin, which the scenario data names), or use ``processes=1``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchsim.intervals import ReplicationError as SweepError

__all__ = ["Job", "execute", "run_job"]

Summaries = list[dict[str, Any]]  # one summary row (a dict of columns) per policy


@dataclass(frozen=True)
class Job:
    """One simulation (all policies, one seed, one parameter value), as picklable plain data."""

    data: dict[str, Any]
    source: str
    base_dir: str
    policies: tuple[str, ...]
    seed: int


def run_job(job: Job) -> Summaries:
    """Run one job; module-level so a process pool can pickle it. Returns the summary rows."""
    # Looked up at call time: tests replace orchsim.run.run to prove nothing ran.
    from orchsim.run import run
    from orchsim.scenario import parse_scenario

    scenario = parse_scenario(job.data, source=job.source, base_dir=Path(job.base_dir))
    return run(scenario, policies=list(job.policies), seed=job.seed).summary.to_dict("records")


def _in_process(jobs: list[Job], done: Callable[[], object]) -> list[Summaries]:
    results = []
    for job in jobs:
        results.append(run_job(job))
        done()
    return results


def _in_pool(jobs: list[Job], workers: int, done: Callable[[], object]) -> list[Summaries]:
    """Run in ``workers`` processes; the first failure cancels what has not started and is raised."""
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures: dict[Future[Summaries], int] = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
        collected: dict[int, Summaries] = {}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in finished:
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    raise error
                collected[futures[future]] = future.result()
                done()
        return [collected[i] for i in range(len(jobs))]


def execute(jobs: list[Job], processes: int | None, progress: bool) -> list[Summaries]:
    """Run ``jobs``, in a process pool unless one process; results in job order.

    Args:
        jobs: The simulations to run.
        processes: Worker processes (default ``os.cpu_count()``); 1 runs in this process.
        progress: Show a progress bar over the jobs (after a second).

    Raises:
        SweepError: fewer than one process.
        Exception: the first job's error, as raised in its worker.
    """
    workers = (os.cpu_count() or 1) if processes is None else processes
    if workers < 1:
        raise SweepError(f"processes: need at least 1, got {workers}")
    workers = min(workers, len(jobs))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="run", desc="sweep", delay=1.0, leave=False)
    done = bar.update if bar is not None else (lambda: None)
    try:
        if workers == 1:
            return _in_process(jobs, done)
        return _in_pool(jobs, workers, done)
    finally:
        if bar is not None:
            bar.close()
