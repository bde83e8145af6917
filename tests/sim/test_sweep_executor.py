"""The executor seam: another backend plugs in without touching the sweep, and sees every job once."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pytest

from orchsim.scenario import parse_scenario
from orchsim.sweep import sweep_replications
from orchsim.sweep_executor import BACKENDS, ExecutorSpec, register_executor

from .test_sweep import RATE, tiny_data


class CountingThreads:
    """A backend on a thread pool that records what was submitted (as a Ray or Slurm one would submit)."""

    window = None

    def __init__(self, workers: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=workers)
        self.workers = workers
        self.submitted: list[Any] = []
        submit = self.executor.submit

        def counting_submit(fn: Any, *args: Any, **kwargs: Any) -> Any:
            self.submitted.append(args[1])  # timed(fn, job, shipped): the job
            return submit(fn, *args, **kwargs)

        self.executor.submit = counting_submit  # type: ignore[method-assign]

    def slots(self) -> int:
        return self.workers

    def ship(self, files: dict[str, bytes]) -> Any:
        return files


@pytest.fixture
def threads() -> Iterator[list[CountingThreads]]:
    opened: list[CountingThreads] = []

    @contextmanager
    def factory(spec: ExecutorSpec, jobs: int) -> Iterator[CountingThreads]:
        backend = CountingThreads(spec.workers or 2)
        opened.append(backend)
        with backend.executor:
            yield backend

    register_executor("threads", factory)
    yield opened
    del BACKENDS["threads"]


def test_a_registered_backend_runs_the_sweep_unchanged(threads: list[CountingThreads]) -> None:
    tiny = parse_scenario(tiny_data(), source="tiny")
    grid = {"parameter": RATE, "values": [0.5, 1.0], "seeds": [1, 2], "policies": ["spread", "bin_packing"]}
    here = sweep_replications(tiny, processes=1, **grid)
    there = sweep_replications(tiny, executor="threads", **grid)
    pd.testing.assert_frame_equal(there.drop(columns="wall_seconds"), here.drop(columns="wall_seconds"))
    (backend,) = threads
    assert sorted((job.data["workload"][0]["rate"], job.seed) for job in backend.submitted) == [
        (0.5, 1),
        (0.5, 2),
        (1.0, 1),
        (1.0, 2),
    ]
    assert len({job.key for job in backend.submitted}) == 4  # every job its own key
