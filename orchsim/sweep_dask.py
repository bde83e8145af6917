"""The ``dask`` executor: a sweep's jobs on a ``dask.distributed`` cluster, here or on many machines.

``--executor dask --scheduler tcp://host:8786`` connects to a running scheduler (started
with ``dask scheduler``, workers with ``dask worker tcp://host:8786``); without an address a
``LocalCluster`` of single-threaded worker processes is started for the run and stopped
after it. Jobs go through ``Client.get_executor``, a ``concurrent.futures.Executor``, so the
sweep drives Dask exactly as it drives a process pool. Dask reschedules the jobs of a
worker that dies; each job is one whole simulation, so nothing is lost but that job's time.

``dask`` and ``distributed`` are an optional extra (``pip install 'orchsim[cluster]'``):
imported here, only when this executor is chosen.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orchsim.intervals import ReplicationError as SweepError

__all__ = ["dask_backend"]

CONNECT_TIMEOUT = "10s"
MISSING = "--executor dask needs dask.distributed, which is not installed: pip install 'orchsim[cluster]'"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise SweepError(MISSING) from None
    return distributed


class _DaskBackend:
    """A connected client: its executor, the cluster's threads (for the ETA), one-time shipping."""

    window = None  # all jobs at once: the scheduler balances them and moves them off lost workers

    def __init__(self, client: Any) -> None:
        self.client = client
        self.executor = client.get_executor(pure=False)
        self._slots, self._asked = 1, -1.0

    def slots(self) -> int:
        """The cluster's worker threads now (asked at most once a second: workers come and go)."""
        if time.monotonic() - self._asked >= 1.0:
            self._slots = max(sum(self.client.nthreads().values()), 1)
            self._asked = time.monotonic()
        return self._slots

    def ship(self, files: dict[str, bytes]) -> Any:
        """Send ``files`` to every worker once; jobs receive them through the returned future."""
        return self.client.scatter([files], broadcast=True)[0]


def _connect(distributed: Any, address: str) -> Any:
    """A client of the scheduler at ``address``, once the scheduler and the workers can import orchsim.

    The scheduler unpickles every job (so needs orchsim too), and a worker without it fails
    every job: checked before the first job with ``exec`` (a builtin, so the check itself
    unpickles anywhere) rather than learnt from a deserialization traceback.
    """
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, ValueError, TypeError) as err:
        raise SweepError(f"--scheduler {address}: cannot reach a Dask scheduler there ({err})") from None
    for where, check in (("scheduler", client.run_on_scheduler), ("workers", client.run)):
        try:
            check(exec, "import orchsim.sweep_jobs")
        except ImportError as err:
            client.close()
            raise SweepError(
                f"--scheduler {address}: the Dask {where} cannot import orchsim ({err}); install "
                "'orchsim[cluster]' on every machine of the cluster, the same version as here"
            ) from None
    return client


@contextmanager
def dask_backend(spec: Any, jobs: int) -> Iterator[_DaskBackend]:
    """A ``Backend`` on the scheduler ``spec.scheduler``, or on a local cluster started for ``jobs`` jobs.

    Raises:
        SweepError: ``distributed`` is not installed, the scheduler cannot be reached, or
            fewer than one worker is asked for.
    """
    distributed = _distributed()
    cluster = None
    if spec.scheduler:
        client = _connect(distributed, spec.scheduler)
    else:
        workers = (os.cpu_count() or 1) if spec.workers is None else spec.workers
        if workers < 1:
            raise SweepError(f"processes: need at least 1, got {workers}")
        cluster = distributed.LocalCluster(
            n_workers=max(min(workers, jobs), 1),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = distributed.Client(cluster, set_as_default=False)
    try:
        yield _DaskBackend(client)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
