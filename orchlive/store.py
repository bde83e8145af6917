"""All cluster state in etcd: the only module that imports the etcd client (``aetcd``).

Key layout (``PREFIX`` defaults to ``/orch``; one cluster per prefix)::

    PREFIX/tasks/<task>            Task JSON: the task record and its state
    PREFIX/nodes/<node>            NodeRecord JSON: capacity, labels, cordon flag (worker registration, drain)
    PREFIX/alive/<node>            heartbeat: exists while the worker's lease lives; value = last beat time
    PREFIX/alloc/<node>            the node's allocation ledger {"allocated": {"cpu", "memory", ...}, "tasks"}
    PREFIX/assign/<node>/<task>    a worker's inbox: present while the task is placed there;
                                   deleting it tells the worker to stop the task (fencing, drain, delete)
    PREFIX/events/<uuid>           Event JSON; the event id is the key's create revision
    PREFIX/logs/<task>             the tail of the task's output
    PREFIX/leader                  the scheduling leader's id, under its lease

Every state transition is one transaction that compares the mod revisions it read
(the task, and the node's ledger when resources move), so a task is never assigned
twice and a node is never over-committed, even with masters racing. The event that
describes a transition is written in the same transaction. This module only provides
the means (``Store``, ``Txn``); every write of orchlive is a named function of
``orchlive.transitions``.

Watches resume from the last revision seen after any disconnect (etcd restart,
network blip); the store hides the reconnection from its callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aetcd
import aetcd.exceptions

__all__ = ["Entry", "Keys", "Store", "StoreUnavailableError", "Txn", "WatchEvent", "retrying"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreUnavailableError(ConnectionError):
    """etcd could not be reached (or answered with an error) for this call."""


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    """Turn any error of the etcd client into ``StoreUnavailableError``, the one error callers handle."""
    try:
        yield
    except aetcd.exceptions.ClientError as err:
        raise StoreUnavailableError(str(err)) from err


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
    """A change seen by a watch: ``kind`` is "put" or "delete"."""

    kind: str
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


class Keys:
    """The key layout, in one place."""

    def __init__(self, prefix: str = "/orch") -> None:
        self.prefix = prefix.rstrip("/")

    def tasks(self) -> str:
        return f"{self.prefix}/tasks/"

    def task(self, task_id: str) -> str:
        return f"{self.prefix}/tasks/{task_id}"

    def nodes(self) -> str:
        return f"{self.prefix}/nodes/"

    def node(self, node_id: str) -> str:
        return f"{self.prefix}/nodes/{node_id}"

    def alive_all(self) -> str:
        return f"{self.prefix}/alive/"

    def alive(self, node_id: str) -> str:
        return f"{self.prefix}/alive/{node_id}"

    def allocs(self) -> str:
        return f"{self.prefix}/alloc/"

    def alloc(self, node_id: str) -> str:
        return f"{self.prefix}/alloc/{node_id}"

    def assignments(self, node_id: str | None = None) -> str:
        return f"{self.prefix}/assign/" if node_id is None else f"{self.prefix}/assign/{node_id}/"

    def assignment(self, node_id: str, task_id: str) -> str:
        return f"{self.prefix}/assign/{node_id}/{task_id}"

    def events(self) -> str:
        return f"{self.prefix}/events/"

    def new_event(self) -> str:
        return f"{self.prefix}/events/{uuid.uuid4().hex}"

    def logs(self, task_id: str) -> str:
        return f"{self.prefix}/logs/{task_id}"

    def leader(self) -> str:
        return f"{self.prefix}/leader"

    def root(self) -> str:
        return f"{self.prefix}/"

    @staticmethod
    def last(key: str) -> str:
        """The last path segment of a key (an id)."""
        return key.rsplit("/", 1)[-1]


def _b(text: str) -> bytes:
    return text.encode()


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (pydantic models go through ``model_dump(mode="json")`` first)."""
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass
class Txn:
    """A compare-and-swap transaction, built up then committed once."""

    store: Store
    _compares: list[Any] = field(default_factory=list)
    _ops: list[Any] = field(default_factory=list)

    def expect_revision(self, key: str, mod_revision: int) -> Txn:
        """The key must still be at ``mod_revision`` (0: must not exist)."""
        t = self.store.client.transactions
        if mod_revision == 0:
            self._compares.append(t.create(_b(key)) == 0)
        else:
            self._compares.append(t.mod(_b(key)) == mod_revision)
        return self

    def expect_exists(self, key: str) -> Txn:
        self._compares.append(self.store.client.transactions.create(_b(key)) > 0)
        return self

    def expect_absent(self, key: str) -> Txn:
        self._compares.append(self.store.client.transactions.create(_b(key)) == 0)
        return self

    def put(self, key: str, value: bytes, lease: int | None = None) -> Txn:
        self._ops.append(self.store.client.transactions.put(_b(key), value, lease=lease))
        return self

    def put_json(self, key: str, value: Any) -> Txn:
        return self.put(key, dumps(value))

    def delete(self, key: str) -> Txn:
        self._ops.append(self.store.client.transactions.delete(_b(key)))
        return self

    def event(self, kind: str, obj: dict[str, Any], timestamp: str) -> Txn:
        """Record a cluster event atomically with the transition it describes."""
        return self.put_json(self.store.keys.new_event(), {"type": kind, "object": obj, "timestamp": timestamp})

    async def commit(self) -> tuple[bool, int]:
        """Apply if every comparison holds; returns (applied, revision of the transaction)."""
        with _unavailable():
            ok, responses = await self.store.client.transaction(compare=self._compares, success=self._ops, failure=[])
        revision = 0
        for response in responses:
            header = getattr(getattr(response, "response_put", None), "header", None)
            if header is not None:
                revision = max(revision, header.revision)
        return bool(ok), revision


class Store:
    """A connection to etcd plus the key layout; every method may raise StoreUnavailableError."""

    def __init__(self, endpoint: str = "127.0.0.1:2379", prefix: str = "/orch", timeout: float = 5.0) -> None:
        host, _, port = endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"etcd endpoint must be host:port, got {endpoint!r}")
        self.endpoint = endpoint
        self.keys = Keys(prefix)
        self.client = aetcd.Client(host=host, port=int(port), timeout=timeout)

    async def connect(self) -> None:
        with _unavailable():
            await self.client.connect()

    async def close(self) -> None:
        await self.client.close()

    async def __aenter__(self) -> Store:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ reads and writes
    async def get(self, key: str) -> Entry | None:
        with _unavailable():
            kv = await self.client.get(_b(key))
        if kv is None:
            return None
        return Entry(key, kv.value, kv.mod_revision, kv.create_revision, kv.lease)

    async def range(self, prefix: str) -> tuple[list[Entry], int]:
        """Every key under ``prefix`` (ordered by key) and the store revision of the read."""
        with _unavailable():
            result = await self.client.get_prefix(_b(prefix))
        entries = [Entry(kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision, kv.lease) for kv in result.kvs]
        return entries, result.header.revision

    async def put(self, key: str, value: bytes, lease: int | None = None) -> int:
        with _unavailable():
            result = await self.client.put(_b(key), value, lease=lease)
        return result.header.revision

    def txn(self) -> Txn:
        return Txn(self)

    # ------------------------------------------------------------------ leases
    async def grant_lease(self, ttl: int) -> int:
        with _unavailable():
            lease = await self.client.lease(ttl)
        return int(lease.id)

    async def refresh_lease(self, lease_id: int) -> int:
        """Keep a lease alive; returns its remaining TTL in seconds (0: it has expired)."""
        with _unavailable():
            reply = await self.client.refresh_lease(lease_id)
        return int(reply.TTL) if reply is not None else 0

    async def revoke_lease(self, lease_id: int) -> None:
        with _unavailable():
            await self.client.revoke_lease(lease_id)

    # ------------------------------------------------------------------ watches
    async def watch(self, prefix: str, start_revision: int, *, retry_delay: float = 0.5) -> AsyncIterator[WatchEvent]:
        """Every change under ``prefix`` from ``start_revision`` on, across reconnects.

        After a failure the watch is re-created from the revision after the last event
        delivered, so nothing is missed and nothing is delivered twice.
        """
        next_revision = start_revision
        while True:
            watch = None
            try:
                watch = await self.client.watch_prefix(_b(prefix), start_revision=next_revision)
                async for event in watch:
                    kv = event.kv
                    next_revision = kv.mod_revision + 1
                    yield WatchEvent(
                        "put" if event.kind == "PUT" else "delete",
                        kv.key.decode(),
                        kv.value,
                        kv.mod_revision,
                        kv.create_revision,
                    )
            except aetcd.exceptions.RevisionCompactedError as err:
                log.warning("watch %s: revision %s compacted; resuming at %s", prefix, next_revision, err)
                next_revision = err.compacted_revision
            except (aetcd.exceptions.ClientError, ConnectionError, OSError) as err:
                log.info("watch %s interrupted (%s); resuming from revision %d", prefix, err, next_revision)
            finally:
                if watch is not None:
                    with contextlib.suppress(Exception):  # the stream may already be broken
                        await watch.cancel()
            await asyncio.sleep(retry_delay)


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
