"""All cluster state in etcd: the only module that imports the etcd client (``aetcd``).

Key layout (``PREFIX`` defaults to ``/orch``; one cluster per prefix)::

    PREFIX/tasks/<task>            Task JSON: the task record and its state
    PREFIX/nodes/<node>            NodeRecord JSON: capacity, labels, cordon flag (worker registration, drain)
    PREFIX/alive/<node>            heartbeat: exists while the worker's lease lives; value = last beat time
    PREFIX/alloc/<node>            the node's ledger of placements {"allocated": {"cpu", "memory", ...}, "count"}
                                   (totals only: its size does not grow with the tasks it counts)
    PREFIX/released/<node>         what the node's tasks gave back, same layout: the allocation is alloc
                                   minus released (``orchlive.releases``), so a finish never moves alloc
    PREFIX/assign/<node>/<task>    a worker's inbox: present while the task is placed there (the node's task
                                   list); deleting it tells the worker to stop the task (fencing, drain, delete)
    PREFIX/events/<uuid>           Event JSON {type, object, timestamp, index}; the event id is the
                                   key's create revision and its index in the transaction (``event_ids``);
                                   under the writer's events lease, so it expires (``retention``)
    PREFIX/logs/<task>             the tail of the task's output
    PREFIX/deps/<parent>/<child>   dependency index: ``child`` waits for ``parent`` (its DELETE cascades)
    PREFIX/leader                  the scheduling leader's id, under its lease

Every state transition is one transaction that compares the mod revisions it read
(the task, and the node's ledger or releases when resources move), so a task is never assigned
twice and a node is never over-committed, even with masters racing. The event that
describes a transition is written in the same transaction. This module only provides
the means (``Store``, ``Txn``); every write of orchlive is a named function of
``orchlive.transitions``.

Watches resume from the last revision seen after any disconnect (etcd restart,
network blip); the store hides the reconnection from its callers.

A store may be given several endpoints of one etcd cluster (``"a:2379,b:2379,c:2379"``):
it uses the first that answers a linearizable read (a member with a quorum), and when a
call finds the connection lost (unreachable, timed out, no leader) it moves to the next
healthy one. The call that saw the loss still fails (``StoreUnavailableError``: callers
retry, and a transaction's outcome is never guessed); watches end on the old member and
resume on the new one from their last revision. Events expire (``orchlive.retention``):
they are written under the writer's current events lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aetcd
import aetcd.exceptions
import aetcd.rpc
import aetcd.utils

from orchlive.event_ids import MAX_REVISION, PER_REVISION
from orchlive.keys import Keys
from orchlive.retention import EventLease, Retention
from orchlive.store_connection import Connection
from orchlive.store_types import Entry, StoreUnavailableError, WatchEvent, dumps, retrying

__all__ = ["Entry", "Keys", "Store", "StoreUnavailableError", "Txn", "WatchEvent", "retrying"]

log = logging.getLogger(__name__)


def _b(text: str) -> bytes:
    return text.encode()


@dataclass(frozen=True)
class _EventPut:
    """An event's put, given its lease when the transaction is sent."""

    key: str
    value: bytes


@dataclass
class Txn:
    """A compare-and-swap transaction, built up then committed once."""

    store: Store
    _compares: list[Any] = field(default_factory=list)
    _ops: list[Any] = field(default_factory=list)
    _events: int = 0

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
        """Record a cluster event atomically with the transition it describes.

        Events of one transaction share its revision; ``index`` (their order here) tells
        them apart, and with the revision makes the event's id (``event_ids``).
        """
        if self._events >= PER_REVISION:
            raise ValueError(f"a transaction records at most {PER_REVISION} events")
        body = {"type": kind, "object": obj, "timestamp": timestamp, "index": self._events}
        self._events += 1
        self._ops.append(_EventPut(self.store.keys.new_event(), dumps(body)))
        return self

    async def commit(self) -> tuple[bool, int]:
        """Apply if every comparison holds; returns (applied, revision of the transaction).

        The events go under the writer's events lease (``orchlive.retention``); if etcd no
        longer knows that lease (it expired while this process was paused), the
        transaction was refused as a whole, so it is sent once more under a new lease.
        """
        await self.store.connect()
        for attempt in (1, 2):
            lease = await self.store.event_lease.current(self.store.grant_lease) if self._events else None
            t = self.store.client.transactions
            ops = [t.put(_b(op.key), op.value, lease=lease) if isinstance(op, _EventPut) else op for op in self._ops]
            try:
                with self.store.unavailable():
                    ok, responses = await self.store.client.transaction(compare=self._compares, success=ops, failure=[])
                break
            except StoreUnavailableError as err:
                if lease is None or attempt == 2 or "lease not found" not in str(err):
                    raise
                self.store.event_lease.forget(lease)
        revision = 0
        for response in responses:
            header = getattr(getattr(response, "response_put", None), "header", None)
            if header is not None:
                revision = max(revision, header.revision)
        return bool(ok), revision


class Store:
    """A connection to etcd (one endpoint of its cluster at a time) plus the key layout.

    Every method may raise ``StoreUnavailableError``.
    """

    def __init__(
        self,
        endpoints: str | Sequence[str] = "127.0.0.1:2379",
        prefix: str = "/orch",
        timeout: float = 5.0,
        retention: Retention | None = None,
    ) -> None:
        self.keys = Keys(prefix)
        self.timeout = timeout
        self.connection = Connection(endpoints, timeout=timeout, probe_key=self.keys.root())
        self.endpoints = self.connection.endpoints
        self.retention = retention or Retention.from_env()
        self.event_lease = EventLease(self.retention)
        # Watches are created one at a time by this process (see ``_open_watch``).
        self._watch_lock = asyncio.Lock()

    @property
    def client(self) -> aetcd.Client:
        """The etcd client of the endpoint in use (replaced on failover: look it up per call)."""
        return self.connection.client

    @property
    def endpoint(self) -> str:
        return self.connection.endpoint

    async def connect(self) -> None:
        await self.connection.connect()

    def unavailable(self) -> contextlib.AbstractContextManager[None]:
        """Turn the client's errors into ``StoreUnavailableError``, noting a lost connection."""
        return self.connection.unavailable()

    def note_failure(self, err: BaseException) -> None:
        self.connection.note_failure(err)

    async def close(self) -> None:
        await self.connection.close()

    async def __aenter__(self) -> Store:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ reads and writes
    async def get(self, key: str) -> Entry | None:
        await self.connect()
        with self.unavailable():
            kv = await self.client.get(_b(key))
        if kv is None:
            return None
        return Entry(key, kv.value, kv.mod_revision, kv.create_revision, kv.lease)

    async def get_many(self, *keys: str) -> list[Entry | None]:
        """Several keys in one request (one transaction of reads: one revision), in the order asked."""
        await self.connect()
        t = self.client.transactions
        with self.unavailable():
            _, responses = await self.client.transaction(compare=[], success=[t.get(_b(k)) for k in keys], failure=[])
        entries: list[Entry | None] = []
        for key, found in zip(keys, responses, strict=True):
            kv = found[0][1] if found else None
            entries.append(None if kv is None else Entry(key, kv.value, kv.mod_revision, kv.create_revision, kv.lease))
        return entries

    async def range(self, prefix: str, *, revision: int = 0, keys_only: bool = False) -> tuple[list[Entry], int]:
        """Every key under ``prefix`` (ordered by key) and the store revision of the read.

        Read in pages (``scan``), all at one revision: a consistent snapshot, however large
        the prefix, without any one reply reaching the client's message limit.
        """
        entries: list[Entry] = []
        async for page, read_at in self.scan(prefix, revision=revision, keys_only=keys_only):
            entries.extend(page)
            revision = read_at
        return entries, revision

    async def scan(
        self, prefix: str, *, revision: int = 0, keys_only: bool = False, by_creation: bool = False
    ) -> AsyncIterator[tuple[list[Entry], int]]:
        """The keys under ``prefix`` a page at a time, with the revision every page is read at.

        Pages are read at the revision of the first (or at ``revision``), so together they
        are one snapshot. In key order, or in creation order with ``by_creation`` (the
        order tasks were submitted in; keys created together in key order). A page holds
        about ``PAGE`` keys and shrinks by half while a reply is too large for the client
        (values of up to etcd's 1.5 MiB request limit each). ``keys_only`` reads no values.

        Creation order pages by create revision, and one transaction creates many keys at
        one revision (a DAG, a gang, a batch of the API's creates): a page that ends inside
        such a group would lose the rest of it if the next began one revision later. So a
        page that is not the last keeps only the groups it holds whole, and the group at its
        edge is read on its own, in key order, and joins it.
        """
        start, end = _b(prefix), aetcd.utils.prefix_range_end(_b(prefix))
        if not by_creation:
            async for page, read_at in self._key_pages(start, end, revision, keys_only):
                yield page, read_at
            return
        min_create, limit = 0, [PAGE]
        while True:
            query = _Query(start, end, revision, keys_only, min_create=min_create)
            page, revision, more = await self._page(query, limit)
            page.sort(key=_creation_order)  # etcd's sort leaves ties in no set order
            if not more or not page:
                yield page, revision
                return
            edge = page[-1].create_revision
            group = [e async for part, _ in self._key_pages(start, end, revision, keys_only, edge, limit) for e in part]
            yield [entry for entry in page if entry.create_revision < edge] + group, revision
            min_create = edge + 1

    async def _key_pages(
        self, start: bytes, end: bytes, revision: int, keys_only: bool, created: int = 0, limit: list[int] | None = None
    ) -> AsyncIterator[tuple[list[Entry], int]]:
        """Pages of ``start:end`` in key order at one revision (only keys created at ``created``, if given)."""
        limit = limit or [PAGE]
        while True:
            page, revision, more = await self._page(_Query(start, end, revision, keys_only, created=created), limit)
            yield page, revision
            if not more or not page:
                return
            start = _b(page[-1].key) + b"\x00"

    async def _page(self, query: _Query, limit: list[int]) -> tuple[list[Entry], int, bool]:
        """One page of ``query``: its entries, the revision read at, whether more keys follow.

        At most ``limit[0]`` keys (``PAGE`` at first), halved while the reply is too large for
        the client; the halving is kept in ``limit`` for the read's next pages, so a prefix of
        large values does not pay a too-large reply per page.
        """
        while True:
            try:
                reply = await self._range(query.request(limit[0]))
                break
            except _ReplyTooLargeError:
                if limit[0] == 1:
                    where = query.start.decode(errors="replace")
                    raise StoreUnavailableError(f"one key under {where} is larger than the client accepts") from None
                limit[0] = max(1, limit[0] // 2)
        page = [Entry(kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision, kv.lease) for kv in reply.kvs]
        return page, query.revision or reply.header.revision, bool(reply.more)

    async def _range(self, request: Any) -> Any:
        await self.connect()
        try:
            return await self.client.kvstub.Range(request, timeout=self.timeout, metadata=self.client.metadata)
        except aetcd.rpc.AioRpcError as err:
            if err.code() == aetcd.rpc.StatusCode.RESOURCE_EXHAUSTED:
                raise _ReplyTooLargeError from err
            self.note_failure(err)
            raise StoreUnavailableError(f"{err.code().name}: {err.details()}") from err

    async def count(self, prefix: str) -> int:
        """How many keys are under ``prefix`` (etcd counts them: nothing is sent back)."""
        start = _b(prefix)
        request = aetcd.rpc.RangeRequest(key=start, range_end=aetcd.utils.prefix_range_end(start), count_only=True)
        return int((await self._range(request)).count)

    async def oldest(self, prefix: str, n: int) -> list[Entry]:
        """The ``n`` keys under ``prefix`` created first, oldest first, without values."""
        start = _b(prefix)
        reply = await self._range(_Query(start, aetcd.utils.prefix_range_end(start), 0, True, min_create=0).request(n))
        return [Entry(kv.key.decode(), b"", kv.mod_revision, kv.create_revision, kv.lease) for kv in reply.kvs]

    async def compact(self, revision: int) -> bool:
        """Compact etcd's history below ``revision`` (etcd-wide); False if it already was."""
        await self.connect()
        try:
            with self.unavailable():
                await self.client.compact(revision)
        except StoreUnavailableError as err:
            if "compacted" in str(err):
                return False
            raise
        return True

    async def put(self, key: str, value: bytes, lease: int | None = None) -> int:
        await self.connect()
        with self.unavailable():
            result = await self.client.put(_b(key), value, lease=lease)
        return result.header.revision

    async def revision(self) -> int:
        """The store's current revision (a read of one key that does not exist)."""
        _, revision = await self.range(self.keys.root() + "\x00-none", keys_only=True)
        return revision

    def txn(self) -> Txn:
        return Txn(self)

    # ------------------------------------------------------------------ leases
    async def grant_lease(self, ttl: int) -> int:
        await self.connect()
        with self.unavailable():
            lease = await self.client.lease(ttl)
        return int(lease.id)

    async def refresh_lease(self, lease_id: int) -> int:
        """Keep a lease alive; returns its remaining TTL in seconds (0: it has expired)."""
        await self.connect()
        with self.unavailable():
            reply = await self.client.refresh_lease(lease_id)
        return int(reply.TTL) if reply is not None else 0

    async def revoke_lease(self, lease_id: int) -> None:
        await self.connect()
        with self.unavailable():
            await self.client.revoke_lease(lease_id)

    # ------------------------------------------------------------------ watches
    async def watch(
        self, prefix: str, start_revision: int, *, retry_delay: float = 0.5, tell_compacted: bool = False
    ) -> AsyncIterator[WatchEvent]:
        """Every change under ``prefix`` from ``start_revision`` on, across reconnects.

        After a failure the watch is re-created from the revision after the last event
        delivered, so nothing is missed and nothing is delivered twice. If etcd has
        compacted the history it would start from, it resumes at the oldest revision left;
        with ``tell_compacted`` it first yields a ``WatchEvent`` of kind "compacted" whose
        ``mod_revision`` is that revision (what was lost is for the caller to report).

        Raises:
            ValueError: ``start_revision`` is not a revision etcd could hold (checked first).
        """
        _check_revision(start_revision)
        next_revision = start_revision
        while True:
            watch = None
            try:
                watch = await self._open_watch(prefix, next_revision)
                async for event in watch:
                    kv = event.kv
                    next_revision = kv.mod_revision + 1
                    kind = "put" if event.kind == "PUT" else "delete"
                    yield WatchEvent(kind, kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision)
            except aetcd.exceptions.RevisionCompactedError as err:
                log.warning("watch %s: revision %s compacted; resuming at %s", prefix, next_revision, err)
                next_revision = err.compacted_revision
                if tell_compacted:
                    yield WatchEvent("compacted", "", b"", next_revision, 0)
            except (aetcd.exceptions.ClientError, ConnectionError, OSError) as err:
                self.note_failure(err)
                log.info("watch %s interrupted (%s); resuming from revision %d", prefix, err, next_revision)
            finally:
                if watch is not None:
                    with contextlib.suppress(Exception):  # the stream may already be broken
                        await watch.cancel()
            await asyncio.sleep(retry_delay)

    async def _open_watch(self, prefix: str, start_revision: int) -> Any:
        """Create one watch with the client library, containing the library's failures.

        aetcd 1.0 keeps one "watch being created" slot per connection and leaves it taken
        when a creation fails before it is sent (a start revision out of range, a
        cancellation at the wrong moment): every later watch of the process then waits
        for ever. So watches are created one at a time, each within a deadline, and a
        slot left taken (whatever took it) is cleared by reconnecting: the other watches
        end, and resume from their last revision (``watch``).
        """
        _check_revision(start_revision)
        async with self._watch_lock:
            if self._watch_slot_taken():
                await self._reconnect("the client's watch slot was left taken")
            try:
                async with asyncio.timeout(2 * self.timeout):
                    await self.connect()
                    _ask_for_fragments(self.client)
                    return await self.client.watch_prefix(_b(prefix), start_revision=start_revision)
            except aetcd.exceptions.ClientError:
                raise
            except BaseException as err:
                if self._watch_slot_taken() or not isinstance(err, asyncio.CancelledError):
                    await asyncio.shield(self._reconnect(f"creating a watch failed: {err!r}"))
                if isinstance(err, Exception):
                    raise StoreUnavailableError(f"cannot create a watch on {prefix}: {err!r}") from err
                raise

    def _watch_slot_taken(self) -> bool:
        """Whether aetcd's pending-watch slot is taken (only ever while we create one, under our lock)."""
        watcher = getattr(self.client, "_watcher", None)
        return getattr(watcher, "_new_callback", None) is not None

    async def _reconnect(self, why: str) -> None:
        log.error("etcd client: %s; reconnecting (every watch resumes from its last revision)", why)
        with contextlib.suppress(Exception):
            await self.client.close()
        with contextlib.suppress(Exception):
            await self.client.connect()


# Keys per page of a range read: small enough that ordinary records never make a reply
# large, large enough that a cluster of thousands of tasks loads in a few round trips.
PAGE = 256


class _ReplyTooLargeError(Exception):
    """etcd's reply to a range would exceed the client's message limit (``MAX_MESSAGE_BYTES``)."""


def _ask_for_fragments(client: aetcd.Client) -> None:
    """Have etcd split large watch replies (``fragment``), which aetcd 1.0 accepts but never sends.

    Catching up on history, etcd packs up to 1,000 revisions into one reply: past the
    client's message limit the reply kills the connection's one watch stream, every watch
    of the process with it, again at every retry. Fragmented, no reply exceeds etcd's
    request limit (1.5 MiB). Wrapped once per watcher (a reconnect makes a new one).
    """
    watcher = getattr(client, "_watcher", None)
    build = getattr(watcher, "_build_watch_create_request", None)
    if build is None or getattr(build, "asks_for_fragments", False):
        return

    def with_fragments(*args: Any, **kwargs: Any) -> Any:
        request = build(*args, **kwargs)
        request.create_request.fragment = True
        return request

    with_fragments.asks_for_fragments = True  # type: ignore[attr-defined]
    watcher._build_watch_create_request = with_fragments  # type: ignore[union-attr]


def _check_revision(revision: int) -> None:
    if isinstance(revision, bool) or not isinstance(revision, int) or not 0 <= revision <= MAX_REVISION:
        raise ValueError(f"a start revision is a whole number in [0, {MAX_REVISION}], got {revision!r}")


def _creation_order(entry: Entry) -> tuple[int, str]:
    """Creation order, and key order among keys one transaction created."""
    return entry.create_revision, entry.key


@dataclass(frozen=True)
class _Query:
    """A range read of ``start:end`` at ``revision`` (0: now), in key order or by creation.

    ``min_create``: creation order from that create revision on (-1: key order);
    ``created``: only keys created at that revision (0: any).
    """

    start: bytes
    end: bytes
    revision: int
    keys_only: bool
    min_create: int = -1
    created: int = 0

    def request(self, limit: int) -> Any:
        """A RangeRequest with what aetcd's own builder leaves out (limit, revision, creation order or revision)."""
        request = aetcd.rpc.RangeRequest(
            key=self.start, range_end=self.end, limit=limit, revision=self.revision, keys_only=self.keys_only
        )
        if self.min_create >= 0:
            request.sort_target = aetcd.rpc.RangeRequest.CREATE
            request.sort_order = aetcd.rpc.RangeRequest.ASCEND
            request.min_create_revision = self.min_create
        if self.created:
            request.min_create_revision = request.max_create_revision = self.created
        return request
