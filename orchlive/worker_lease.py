"""The worker's lease margin and deadline file: what stops a task before its lease can expire.

After each renewal the worker writes ``sent + TTL - margin`` (``CLOCK_MONOTONIC`` seconds)
to ``DATA_DIR/NAME/HEARTBEAT_FILE``; every task's supervisor (``orchlive.runtime.supervisor``)
reads it, and the worker's own watchdog stops its tasks at that time too
(``Worker.lease_watchdog``). README, "At most one copy".
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchlive.worker import Worker

__all__ = ["HEARTBEAT_FILE", "check_lease_margin", "default_lease_margin", "stop_at_deadline"]

log = logging.getLogger("orchlive.worker")

HEARTBEAT_FILE = "lease-deadline"  # in the worker's data directory: read by the tasks' supervisors


def default_lease_margin(lease_ttl: float) -> float:
    """Seconds before the lease could expire at which tasks are stopped: 1 s, or an eighth of a short TTL.

    Small, because the master's grace (``orchlive.master.LOST_GRACE``) is what keeps the
    copies apart; the margin only has to cover the supervisor's poll. A larger one would
    stop tasks whenever etcd answers a renewal slowly (renewals go every TTL / 4, so one
    may take up to ``TTL - TTL/4 - margin`` seconds).
    """
    return min(1.0, lease_ttl / 8)


def check_lease_margin(lease_ttl: float, margin: float) -> None:
    """ValueError (one line) unless ``0 < margin <= TTL / 2`` (renewals go every TTL / 4)."""
    if not 0 < margin <= lease_ttl / 2:
        raise ValueError(f"the lease margin must be > 0 and at most half the lease TTL ({lease_ttl} s), got {margin}")


async def stop_at_deadline(worker: Worker) -> None:
    """Stop every task of ``worker`` at its lease deadline, recording why: the master may soon run them elsewhere.

    The worker's own watchdog, a little ahead of the supervisors (``orchlive.runtime.supervisor``).
    """
    while True:
        # A little ahead of the supervisors (they poll every 0.1 s): the worker says why first.
        due = worker.deadline - 0.15
        await asyncio.sleep(max(due - time.monotonic(), 0.05))
        if time.monotonic() < worker.deadline - 0.15 or not worker.running:
            continue
        if time.monotonic() > worker.deadline + 0.2:
            # Back from a pause: ends noticed late come first (a task that ended is reported, not stopped).
            await asyncio.sleep(0.1)
        ongoing = [task_id for task_id, run in worker.running.items() if not run.ended]
        if time.monotonic() < worker.deadline - 0.15 or not ongoing:
            continue
        since = time.monotonic() - worker.renewal_sent
        reason = (
            f"worker {worker.node_id} could not renew its lease for {since:.1f} s (etcd unreachable, or the "
            f"worker paused; TTL {worker.lease_ttl} s, margin {worker.lease_margin:g} s): stopped before the "
            "lease could expire"
        )
        log.warning("%s; stopping %d task(s)", reason, len(ongoing))
        for task_id in ongoing:
            if (run := worker.running.get(task_id)) is not None:  # not ended or stopped meanwhile
                worker.stranded[task_id] = (run.attempt, reason)
                await worker._stop(task_id, "lease deadline passed")
