"""The worker's lease margin and deadline file: what stops a task before its lease can expire.

After each renewal the worker writes ``sent + TTL - margin`` (``CLOCK_MONOTONIC`` seconds)
to ``DATA_DIR/NAME/HEARTBEAT_FILE``; every task's supervisor (``orchlive.runtime.supervisor``)
reads it, and the worker's own watchdog stops its tasks at that time too
(``Worker.lease_watchdog``). README, "At most one copy".
"""

from __future__ import annotations

__all__ = ["HEARTBEAT_FILE", "check_lease_margin", "default_lease_margin"]

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
