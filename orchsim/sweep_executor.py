"""Where a sweep's (or a report's) jobs run: a seam shaped like ``concurrent.futures``.

A backend is a context manager yielding an object with a ``concurrent.futures.Executor``,
how many jobs run at once (for the ETA) and a way to ship input files. ``processes`` (the
default) is this process for one worker, else a ``ProcessPoolExecutor``; ``dask`` is a
``dask.distributed`` cluster (``orchsim.sweep_dask``). Another system (Ray, a Slurm job
array) is one more factory in ``BACKENDS`` (``register_executor``); the sweep logic, the
result store and the progress bar do not change.

Each job depends only on its data, so results are the same whatever process or machine runs
it and in whatever order; only ``wall_seconds`` varies. Process workers start with the
platform's default method; a policy registered at run time (in a notebook) reaches them with
``fork`` (Linux), and elsewhere must live in an importable module (a plugin, which the
scenario data names), or use ``processes=1``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from orchsim.intervals import ReplicationError as SweepError
from orchsim.sweep_jobs import read_inputs, run_job, timed
from orchsim.sweep_progress import Progress
from orchsim.sweep_store import JobStore

__all__ = ["BACKENDS", "Backend", "ExecutorSpec", "InlineExecutor", "register_executor", "run_jobs"]


@dataclass(frozen=True)
class ExecutorSpec:
    """Which executor runs the jobs.

    Attributes:
        kind: A name in ``BACKENDS``: ``processes`` or ``dask``.
        workers: ``processes``: worker processes (default the CPU count; 1 runs here).
            ``dask`` without ``scheduler``: workers of the local cluster it starts.
        scheduler: ``dask``: the scheduler's address (``tcp://host:8786``); ``None``
            starts a local cluster for the run.
        ship_inputs: Send input files' bytes to the workers once, for workers that do not
            see them at the same path (no shared mount).
    """

    kind: str = "processes"
    workers: int | None = None
    scheduler: str | None = None
    ship_inputs: bool = False


class Backend(Protocol):
    """An open executor: where jobs go, how many run at once, how files reach the workers."""

    executor: Executor
    window: int | None  # jobs submitted ahead at most (None: all at once)

    def slots(self) -> int:
        """How many jobs run at once now."""
        ...

    def ship(self, files: dict[str, bytes]) -> Any:
        """A handle for ``files`` that every job receives (sent to the workers once)."""
        ...


class InlineExecutor(Executor):
    """Runs each job in this process when submitted: one worker, no pickling, tests can patch it."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as err:  # handed to the caller through the future, as a pool does
            future.set_exception(err)
        return future


@dataclass
class _LocalBackend:
    executor: Executor
    workers: int
    window: int | None = None

    def slots(self) -> int:
        return self.workers

    def ship(self, files: dict[str, bytes]) -> Any:
        return files  # same machine: pickled with each job, only when asked for


@contextmanager
def _processes(spec: ExecutorSpec, jobs: int) -> Iterator[Backend]:
    workers = (os.cpu_count() or 1) if spec.workers is None else spec.workers
    if workers < 1:
        raise SweepError(f"processes: need at least 1, got {workers}")
    workers = max(min(workers, jobs), 1)
    if workers == 1:
        yield _LocalBackend(InlineExecutor(), 1, window=1)  # one at a time: each result is kept as it ends
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield _LocalBackend(pool, workers)


@contextmanager
def _dask(spec: ExecutorSpec, jobs: int) -> Iterator[Backend]:
    from orchsim.sweep_dask import dask_backend

    with dask_backend(spec, jobs) as backend:
        yield backend


BackendFactory = Callable[[ExecutorSpec, int], AbstractContextManager[Backend]]
BACKENDS: dict[str, BackendFactory] = {"processes": _processes, "dask": _dask}


def register_executor(name: str, factory: BackendFactory) -> None:
    """Make ``ExecutorSpec(kind=name)`` (``--executor name``) open ``factory(spec, number_of_jobs)``."""
    BACKENDS[name] = factory


def _open(spec: ExecutorSpec, jobs: int) -> AbstractContextManager[Backend]:
    if spec.kind not in BACKENDS:
        raise SweepError(f"executor: unknown {spec.kind!r}; choose one of {', '.join(sorted(BACKENDS))}")
    return BACKENDS[spec.kind](spec, jobs)


def _drive(
    backend: Backend,
    fn: Callable[..., Any],
    todo: Sequence[tuple[int, Any]],
    shipped: Any,
    on_done: Callable[[int, Any, float], None],
) -> None:
    """Submit ``todo`` (at most ``backend.window`` ahead), hand each result to ``on_done`` as it ends.

    The first failure cancels what has not started and is raised as the job raised it.
    """
    window = backend.window or len(todo)
    queue = iter(todo)
    pending: dict[Future[Any], int] = {}

    def fill() -> None:
        for index, job in queue:
            pending[backend.executor.submit(timed, fn, job, shipped)] = index
            if len(pending) >= window:
                return

    fill()
    while pending:
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            index = pending.pop(future)
            error = future.exception()
            if error is not None:
                for other in pending:
                    other.cancel()
                raise error
            result, seconds = future.result()
            on_done(index, result, seconds)
        fill()


def run_jobs(
    jobs: Sequence[Any],
    spec: ExecutorSpec | None = None,
    *,
    fn: Callable[..., Any] = run_job,
    progress: Progress | None = None,
    store: JobStore | None = None,
    resume: bool = True,
) -> list[Any]:
    """Run ``jobs`` through the executor ``spec`` names; results in job order.

    Args:
        jobs: The jobs, each passed as ``fn(job, shipped)``.
        spec: The executor (default: ``processes`` with one worker per CPU).
        fn: A module-level function (pickled by reference to reach the workers).
        progress: Counts finished jobs (started here, closed at the end).
        store: Keeps each result as it ends (jobs need keys); read back first when ``resume``.
        resume: Take results already in ``store`` instead of running those jobs again.

    Raises:
        SweepError: an unknown executor, fewer than one worker, an unreachable scheduler.
        Exception: the first job's error, as raised where it ran.
    """
    spec = spec or ExecutorSpec()
    progress = progress or Progress(len(jobs), enabled=False)
    results: dict[int, Any] = {}
    if store is not None and resume:
        results = {i: found for i, job in enumerate(jobs) if (found := store.load(job)) is not None}
    progress.done = len(results)
    todo = [(i, job) for i, job in enumerate(jobs) if i not in results]
    if not todo and jobs:
        progress.nothing_to_do()
    if todo:
        with _open(spec, len(todo)) as backend:
            inputs = read_inputs([job for _, job in todo]) if spec.ship_inputs else {}
            shipped = backend.ship(inputs) if inputs else None

            def done(index: int, result: Any, seconds: float) -> None:
                results[index] = result
                if store is not None:
                    store.save(jobs[index], result)
                progress.advance(seconds, backend.slots())

            progress.start(backend.slots())
            try:
                _drive(backend, fn, todo, shipped, done)
            finally:
                progress.close()
    return [results[i] for i in range(len(jobs))]
