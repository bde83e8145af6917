"""What every transition shares: the reads, the one retry loop, the conflict error, the release of resources.

Reads return the record with the mod revision the transition will compare; only races
repeat (``until_applied``), while etcd being unreachable raises ``StoreUnavailableError``
at once, for the caller's own loop (``store.retrying``) or the API's 503.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from orchlive.models import Ledger, NodeRecord, Task
from orchlive.releases import KnownTotals, Release, Released, allocation, drop_grants
from orchlive.store import Entry, Store, Txn

__all__ = [
    "ConflictError",
    "Release",
    "commit_released",
    "commit_releasing",
    "keep_totals",
    "read_allocation",
    "read_ledger",
    "read_ledger_and_released",
    "read_released",
    "read_task",
    "read_tasks",
    "record_json",
    "record_size",
    "until_applied",
]

T = TypeVar("T")
# One lock per node ledger per process: a worker finishing many tasks at once (or the
# master placing many) takes turns instead of racing itself; only cross-process races
# are left to the compare-and-swap, with a jittered back-off.
_ledger_locks: dict[tuple[int, str], asyncio.Lock] = {}
# The nodes whose totals this process keeps between its releases (``keep_totals``).
_kept_totals: dict[tuple[int, str], KnownTotals] = {}


def keep_totals(store: Store, node_id: str) -> None:
    """Keep ``node_id``'s totals between this process's releases there (``KnownTotals``): a worker, for its node.

    Its releases then read the ledger and releases only when what they kept cannot answer,
    one request less per report. Only for a process that does most of a node's releases:
    anyone else's release makes the next one lose its compare and read again.
    """
    _kept_totals.setdefault((id(store), node_id), KnownTotals())


class ConflictError(Exception):
    """A transition that must not be retried blindly lost its compare-and-swap (the API answers 409)."""


async def read_task(store: Store, task_id: str) -> tuple[Task, int] | None:
    """A task and its mod revision, or None if it does not exist."""
    entry = await store.get(store.keys.task(task_id))
    return None if entry is None else (Task.model_validate_json(entry.value), entry.mod_revision)


async def read_tasks(store: Store, task_ids: list[str]) -> list[tuple[Task, int] | None]:
    """``read_task`` for several tasks, in one request."""
    entries = await store.get_many(*(store.keys.task(task_id) for task_id in task_ids))
    return [None if e is None else (Task.model_validate_json(e.value), e.mod_revision) for e in entries]


async def read_ledger(store: Store, node_id: str) -> tuple[Ledger, int]:
    """A node's ledger of placements and its mod revision (0 if it has none yet: an empty ledger).

    What a placement compares; what the node holds is ``read_allocation``.
    """
    entry: Entry | None = await store.get(store.keys.alloc(node_id))
    if entry is None:
        return Ledger(), 0
    return Ledger.from_json(entry.json()), entry.mod_revision


async def read_released(store: Store, node_id: str) -> tuple[Released, int]:
    """What a node's tasks gave back and its mod revision (0 if nothing yet: ``orchlive.releases``)."""
    entry: Entry | None = await store.get(store.keys.released(node_id))
    if entry is None:
        return Released(), 0
    return Released.from_json(entry.json()), entry.mod_revision


async def read_ledger_and_released(store: Store, node_id: str) -> tuple[tuple[Ledger, int], tuple[Released, int]]:
    """``read_ledger`` and ``read_released`` in one request (at one revision): what a release compares."""
    placed, released = await store.get_many(store.keys.alloc(node_id), store.keys.released(node_id))
    return (
        (Ledger(), 0) if placed is None else (Ledger.from_json(placed.json()), placed.mod_revision),
        (Released(), 0) if released is None else (Released.from_json(released.json()), released.mod_revision),
    )


async def read_allocation(store: Store, node_id: str) -> Ledger:
    """What a node holds now: its ledger minus its releases (read one after the other).

    The releases are read first: a placement landing between the two reads shows, a
    release does not yet, so the view errs on the side of more allocated.
    """
    released, _ = await read_released(store, node_id)
    placed, _ = await read_ledger(store, node_id)
    return allocation(placed, released)


def record_json(record: Task | NodeRecord) -> dict[str, Any]:
    """The record as it is stored and carried by events."""
    return record.model_dump(mode="json")


def record_size(task: Task) -> int:
    """An upper estimate of the bytes of ``task``'s stored JSON, without writing it.

    JSON escapes non-ASCII text (up to 6 bytes a character), so text counts 6 bytes a
    character, plus a fixed allowance for the fixed fields. Cheap enough for every placement.
    """
    texts = [task.name, task.image or "", task.reason or "", *task.command, *task.env, *task.env.values()]
    texts += [*task.node_selector, *task.node_selector.values()]
    return 1024 + 64 * len(task.resources) + sum(6 * len(t) + 4 for t in texts)


def _ledger_lock(store: Store, node_id: str) -> asyncio.Lock:
    return _ledger_locks.setdefault((id(store), node_id), asyncio.Lock())


async def until_applied(step: Callable[[], Awaitable[tuple[bool, T]]]) -> T:
    """Run ``step`` until it is done, backing off (jittered) after each lost compare-and-swap.

    ``step`` reads, decides and commits once; it returns ``(done, result)``: done when its
    transaction applied or when the transition no longer applies (the result says which).
    Only races repeat: etcd being unreachable raises ``StoreUnavailableError`` at once.
    """
    attempt = 0
    while True:
        done, result = await step()
        if done:
            return result
        attempt += 1
        await asyncio.sleep(min(0.001 * 2**attempt, 0.1) * random.random())


async def commit_releasing(store: Store, txn: Txn, *tasks: Task) -> bool:
    """Commit ``txn``, first adding the release of the resources ``tasks`` hold, if any.

    The release compares the node's ``released`` key (``orchlive.releases``), not its
    ledger, so it never makes a placement lose; it pulls the tasks from the worker's inbox.
    It is built under the node's lock so that this process does not race itself.
    """
    applied, _, _ = await commit_released(store, txn, *tasks)
    return applied


async def commit_released(store: Store, txn: Txn, *tasks: Task) -> tuple[bool, int, Release | None]:
    """``commit_releasing``, also returning the revision and what the release wrote.

    None when no task held anything. The master keeps what was written (``preempt``), so
    that its placements right after see the room the victims left. Several tasks (a
    worker's reports going together, ``runs.finish_many``) must all be on one node.
    """
    holding = [task for task in tasks if task.node_id and task.state.holds_resources]
    if not holding:
        applied, revision = await txn.commit()
        return applied, revision, None
    keys, node_id = store.keys, holding[0].node_id
    assert node_id is not None and all(task.node_id == node_id for task in holding), "one node's tasks"
    kept = _kept_totals.get((id(store), node_id))
    async with _ledger_lock(store, node_id):
        if kept is not None and (known := kept.usable(holding)) is not None:
            (placed, released, released_revision), placed_revision = known, 0  # no devices: the ledger is not written
        else:
            (placed, placed_revision), (released, released_revision) = await read_ledger_and_released(store, node_id)
        ledger_changed = False
        for task in holding:
            released.release(task, placed)
            ledger_changed |= drop_grants(placed, task.id)
            txn.delete(keys.assignment(node_id, task.id))
        txn.expect_revision(keys.released(node_id), released_revision)
        txn.put_json(keys.released(node_id), released.to_json())
        ledger = placed if ledger_changed else None
        if ledger is not None:  # a device's share is per task: the ledger itself must change
            txn.expect_revision(keys.alloc(node_id), placed_revision).put_json(keys.alloc(node_id), ledger.to_json())
        applied, revision = await txn.commit()
        if kept is not None and applied:
            kept.keep(None if ledger_changed else placed, released, revision)
        elif kept is not None:
            kept.forget()
    return applied, revision, Release(released, ledger)
