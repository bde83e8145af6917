"""How long events stay in etcd, and the etcd compaction that keeps its history bounded.

Events are the one record that only grows (2.4 KB of etcd per finished task, most of it
events), so they expire. The design is the one Kubernetes uses for its own Events in
etcd (``--event-ttl``, the apiserver's lease manager, ``--etcd-compaction-interval``),
so an etcd operator meets nothing new:

* **Age, enforced by etcd itself.** Every event is written under a lease whose TTL is
  the window (``max_age``) plus a reuse period of 5 % of it; a writer grants one lease
  per reuse period and attaches every event of that period to it (``EventLease``), so
  the number of leases stays at a few per writer, not one per event. When the lease
  ends, etcd deletes its events, whether or not any master is running. An event lives
  at least ``max_age`` and at most ``max_age`` plus the reuse period.
* **Count, trimmed by the leading master.** Every ``interval`` seconds the leader
  deletes the oldest events beyond ``max_count`` (a burst can write 100k events well
  within an hour), in transactions of ``TRIM_BATCH`` deletes.
* **Compaction, by the leading master, keeping what the window needs.** Deleting a key
  does not shrink etcd: its history stays until compaction. After trimming, the leader
  compacts etcd up to the oldest event still kept, and never past the revision it read
  one interval earlier (so a watcher lagging less than an interval never loses history:
  the same rule as the apiserver's). A resume point older than that is answered with an
  ``events.expired`` event (``orchlive.api.events``). Compaction is etcd-wide: with
  several clusters on one etcd, or an operator who already runs etcd's
  ``--auto-compaction-retention``, turn it off here (``ORCH_COMPACTION=false``).
  Defragmenting (returning the freed space to the file system) stays the operator's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchlive.store_types import StoreUnavailableError

if TYPE_CHECKING:
    from orchlive.store import Store

__all__ = ["TRIM_BATCH", "EventLease", "Retention", "keep_window", "maintain", "maintaining"]

log = logging.getLogger(__name__)

# Deletes per trimming transaction: under etcd's default limit of 128 operations.
TRIM_BATCH = 100
# Oldest events read per trimming round (keys only: about 60 bytes each).
TRIM_PAGE = 5000


@dataclass(frozen=True)
class Retention:
    """The events window and the leader's upkeep; 0 turns a bound off.

    Attributes:
        max_age: seconds an event is kept at least (3600); 0 keeps events without a lease.
        max_count: events kept at most (100,000); 0: no count bound.
        interval: seconds between the leader's trims and compactions (300); 0: none.
        compaction: whether the leader compacts etcd (True).
    """

    max_age: float = 3600.0
    max_count: int = 100_000
    interval: float = 300.0
    compaction: bool = True

    @property
    def reuse(self) -> float:
        """Seconds one events lease is used for: 5 % of the window, at least 1 s."""
        return max(1.0, 0.05 * self.max_age)

    @property
    def lease_ttl(self) -> int:
        """TTL of an events lease in seconds: the window plus the reuse period, rounded up."""
        return math.ceil(self.max_age + self.reuse)

    @classmethod
    def from_env(cls) -> Retention:
        """The window from the ``ORCH_*`` settings (``orchlive.config``)."""
        from orchlive.config import Settings

        settings = Settings()
        return cls(
            max_age=settings.events_max_age,
            max_count=settings.events_max_count,
            interval=settings.retention_interval,
            compaction=settings.compaction,
        )


class EventLease:
    """The lease a writer's events go under: one per reuse period (``Retention.reuse``)."""

    def __init__(self, retention: Retention) -> None:
        self.retention = retention
        self._id = 0
        self._until = 0.0
        self._lock = asyncio.Lock()

    async def current(self, grant: Callable[[int], Awaitable[int]]) -> int | None:
        """The lease id to attach events to now (None: events do not expire by age).

        Args:
            grant: grants a lease of the given TTL in seconds and returns its id.
        """
        if self.retention.max_age <= 0:
            return None
        async with self._lock:
            if not self._id or time.monotonic() >= self._until:
                began = time.monotonic()
                self._id = await grant(self.retention.lease_ttl)
                self._until = began + self.retention.reuse
            return self._id

    def forget(self, lease_id: int) -> None:
        """``lease_id`` is gone (etcd said so): the next event gets a new lease."""
        if self._id == lease_id:
            self._id = 0


async def keep_window(store: Store, retention: Retention, previous_revision: int) -> int:
    """Trim the events beyond ``max_count``, then compact etcd below what the window keeps.

    Args:
        store: the cluster's store (its events prefix is trimmed).
        retention: the window.
        previous_revision: the revision this returned one interval ago (0: none yet, so
            nothing is compacted this time).

    Returns:
        The store's revision now, for the next call.
    """
    prefix = store.keys.events()
    now = await store.revision()
    if retention.max_count > 0:
        excess = await store.count(prefix) - retention.max_count
        while excess > 0:
            oldest = await store.oldest(prefix, min(excess, TRIM_PAGE))
            for start in range(0, len(oldest), TRIM_BATCH):
                txn = store.txn()
                for entry in oldest[start : start + TRIM_BATCH]:
                    txn.delete(entry.key)
                await txn.commit()
            excess -= len(oldest)
            if not oldest:
                break
        log.info("events: trimmed to at most %d", retention.max_count)
    if retention.compaction and previous_revision > 0:
        first = await store.oldest(prefix, 1)
        target = min(previous_revision, first[0].create_revision if first else now)
        if await store.compact(target):
            log.info("etcd compacted below revision %d (the oldest event kept, or one interval ago)", target)
    return now


async def maintain(store: Store) -> None:
    """The leader's upkeep, every ``store.retention.interval`` seconds until cancelled."""
    retention = store.retention
    if retention.interval <= 0:
        return
    previous = 0
    while True:
        await asyncio.sleep(retention.interval)
        try:
            previous = await keep_window(store, retention, previous)
        except StoreUnavailableError as err:
            log.info("retention: etcd unavailable (%s); next try in %.0f s", err, retention.interval)


@contextlib.asynccontextmanager
async def maintaining(store: Store) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``maintain`` for the duration of the block (while this master leads)."""
    task = asyncio.create_task(maintain(store), name="retention")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
