"""Leader election among masters through an etcd lease: one schedules, the others stand by.

Every master serves the API; only the leader runs the scheduling loop and the health
monitor. The leader holds ``PREFIX/leader`` under a lease it keeps alive; if it dies,
the lease expires within ``ttl`` seconds, the key vanishes, and a standby that was
watching it campaigns and takes over. Leadership is an optimisation, not the safety
net: every placement is a compare-and-swap transaction, so even two masters that both
believe they lead (a paused process waking up late) can never assign a task twice.

The leader also keeps the events window (``orchlive.retention.maintain``: trimming the
events beyond the count bound, compacting etcd) for as long as it leads: one process
does it, whichever master that is, and a standby takes it over with the leadership.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from orchlive import transitions
from orchlive.retention import maintaining
from orchlive.store import Store, StoreUnavailableError

__all__ = ["Election"]

log = logging.getLogger(__name__)


class Election:
    """Campaign for ``PREFIX/leader`` and keep ``leading`` set exactly while we hold it."""

    def __init__(self, store: Store, candidate: str, leading: asyncio.Event, *, ttl: int = 5) -> None:
        self.store = store
        self.candidate = candidate
        self.leading = leading
        self.ttl = ttl
        self.lease_id = 0

    async def campaign(self) -> bool:
        """Try once to become leader; True if we now lead."""
        self.lease_id = await self.store.grant_lease(self.ttl)
        applied = await transitions.claim_leadership(self.store, self.candidate, self.lease_id)
        if not applied:
            await self.store.revoke_lease(self.lease_id)
            self.lease_id = 0
        return applied

    async def _hold(self) -> None:
        """Keep the lease alive (and the events window) while leading; return when leadership is lost."""
        interval = max(self.ttl / 3, 0.2)
        async with maintaining(self.store):
            while await self._renewed():
                await asyncio.sleep(interval)

    async def _renewed(self) -> bool:
        """Refresh the lease; False once we cannot prove we still lead (stand down: the CAS keeps us safe).

        The lease lives in the etcd cluster, not in the member we talk to: with several
        endpoints, a refresh that failed on a lost member is tried once more on the next.
        """
        for _ in range(2 if len(self.store.endpoints) > 1 else 1):
            try:
                return await self.store.refresh_lease(self.lease_id) > 0
            except StoreUnavailableError:
                continue
        return False

    async def _wait_for_vacancy(self) -> None:
        """Return once no leader key exists (watching it, not polling)."""
        key = self.store.keys.leader()
        entry = await self.store.get(key)
        if entry is None:
            return
        async for change in self.store.watch(key, entry.mod_revision + 1):
            if change.kind == "delete":
                return

    async def run(self) -> None:
        while True:
            try:
                if await self.campaign():
                    log.info("%s leads", self.candidate)
                    self.leading.set()
                    await self._hold()
                    self.leading.clear()
                    log.warning("%s lost the leadership", self.candidate)
                else:
                    await self._wait_for_vacancy()
            except StoreUnavailableError as err:
                self.leading.clear()
                log.info("election: etcd unavailable (%s)", err)
                await asyncio.sleep(0.5)

    async def resign(self) -> None:
        """Give the leadership up now (a clean shutdown), so a standby need not wait for the TTL."""
        self.leading.clear()
        if self.lease_id:
            with contextlib.suppress(StoreUnavailableError):
                await self.store.revoke_lease(self.lease_id)
