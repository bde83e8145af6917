"""What the store hands out and raises, without the etcd client: records, watch events, errors, retries.

Apart from ``orchlive.store`` (the one module that imports the client) so that the store
stays one readable page; ``orchlive.store`` re-exports all of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Entry", "StoreUnavailableError", "WatchEvent", "dumps", "parse_endpoints", "retrying"]

log = logging.getLogger("orchlive.store")
T = TypeVar("T")


class StoreUnavailableError(ConnectionError):
    """etcd could not be reached (or answered with an error) for this call."""


@dataclass(frozen=True)
class Entry:
    """One key as read from etcd."""

    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    lease: int = 0

    def json(self) -> Any:
        return json.loads(self.value)


@dataclass(frozen=True)
class WatchEvent:
    """A change seen by a watch: ``kind`` is "put" or "delete" (or "compacted", when asked: ``Store.watch``)."""

    kind: str
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


def parse_endpoints(endpoints: str | Sequence[str]) -> list[tuple[str, int]]:
    """``"a:2379,b:2379"`` (``--etcd``, ``ORCH_ETCD``) or a list of ``host:port`` -> ``[("a", 2379), ...]``.

    Raises:
        ValueError: one line naming the endpoint that is not host:port, or an empty list.
    """
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    parsed = []
    for item in filter(None, (part.strip() for part in items)):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"etcd endpoint must be host:port, got {item!r}")
        parsed.append((host, int(port)))
    if not parsed:
        raise ValueError(f"no etcd endpoint given ({endpoints!r}); expected host:port[,host:port...]")
    return parsed


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (pydantic models go through ``model_dump(mode="json")`` first)."""
    return json.dumps(value, separators=(",", ":")).encode()


async def retrying(call: Callable[[], Awaitable[T]], *, what: str, delay: float = 0.2, max_delay: float = 2.0) -> T:
    """Run ``call`` until etcd answers, backing off between tries (for loops that must not die)."""
    pause = delay
    while True:
        try:
            return await call()
        except StoreUnavailableError as err:
            log.info("%s: etcd unavailable (%s); retrying in %.1fs", what, err, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, max_delay)
