"""Node transitions: a worker registers and beats, a drain cordons, the master records a loss.

And the leader key, the one write of the election. See the package docstring.
"""

from __future__ import annotations

from orchlive.models import Ledger, NodePublic, NodeRecord, node_public, now
from orchlive.store import Store
from orchlive.transitions.core import ConflictError, read_allocation, record_json, until_applied
from orchlive.transitions.tasks import requeue

__all__ = [
    "NodeNameInUseError",
    "beat",
    "claim_leadership",
    "drain_node",
    "node_lost",
    "register_node",
    "remove_node",
    "uncordon_node",
]


async def _placed(store: Store, node_id: str) -> list[str]:
    """The ids of the tasks placed on ``node_id``: its inbox keys (the ledger only counts them)."""
    entries, _ = await store.range(store.keys.assignments(node_id), keys_only=True)
    return [store.keys.last(entry.key) for entry in entries]


async def _public(store: Store, record: NodeRecord, *, alive: bool) -> NodePublic:
    """The public view of ``record`` with its allocation as stored now (for the event of a node transition)."""
    return node_public(record, await read_allocation(store, record.id), await _placed(store, record.id), alive=alive)


class NodeNameInUseError(Exception):
    """Another worker (another instance token) holds this node name, and its lease is alive.

    ``beat``: the mod revision of the holder's ``alive`` key as read: a later one means it beats.
    """

    def __init__(self, node_id: str, beat: int) -> None:
        super().__init__(f"node name {node_id!r} is held by another live worker (another --data-dir)")
        self.node_id, self.beat = node_id, beat


async def register_node(store: Store, record: NodeRecord, lease_id: int) -> int:
    """Write the node record and its ``alive`` key under ``lease_id``; returns the revision.

    Raises ``NodeNameInUseError`` while another worker instance holds the name under a live
    lease: two processes under one name would both take every task placed on it.

    A cordon survives a re-registration: the stored flag wins over ``record``'s, compared
    by revision so that a drain racing the registration is not lost. The ledger is
    created on the first registration only: later ones must not reset what is allocated.
    """
    keys = store.keys

    async def step() -> tuple[bool, int]:
        existing, alive = await store.get_many(keys.node(record.id), keys.alive(record.id))
        stored = NodeRecord.model_validate_json(existing.value) if existing is not None else None
        held_by_another = stored is not None and stored.instance not in ("", record.instance)
        if held_by_another and alive is not None and alive.lease != lease_id:
            raise NodeNameInUseError(record.id, alive.mod_revision)
        cordoned = stored.cordoned if stored is not None else False
        joined = record.model_copy(update={"cordoned": cordoned, "last_heartbeat": now()})
        view = await _public(store, joined, alive=True)
        txn = store.txn().expect_revision(keys.node(record.id), existing.mod_revision if existing else 0)
        txn.put_json(keys.node(record.id), record_json(joined))
        txn.put(keys.alive(record.id), now().isoformat().encode(), lease=lease_id)
        applied, revision = await txn.event("node.joined", view.model_dump(mode="json"), now().isoformat()).commit()
        return applied, revision

    revision = await until_applied(step)
    await store.txn().expect_absent(keys.alloc(record.id)).put_json(keys.alloc(record.id), Ledger().to_json()).commit()
    return revision


async def beat(store: Store, node_id: str, lease_id: int) -> None:
    """The heartbeat's timestamp on the ``alive`` key (the lease is the heartbeat; no compare, no event)."""
    await store.put(store.keys.alive(node_id), now().isoformat().encode(), lease=lease_id)


async def _set_cordon(store: Store, node_id: str, cordoned: bool, kind: str) -> NodeRecord | None:
    """Write the node's cordon flag with event ``kind``; None if there is no such node.

    Raises ``ConflictError`` if the record changed between the read and the write.
    """
    keys = store.keys
    entry = await store.get(keys.node(node_id))
    if entry is None:
        return None
    record = NodeRecord.model_validate_json(entry.value).model_copy(update={"cordoned": cordoned})
    view = await _public(store, record, alive=await store.get(keys.alive(node_id)) is not None)
    applied, _ = await (
        store.txn()
        .expect_revision(keys.node(node_id), entry.mod_revision)
        .put_json(keys.node(node_id), record_json(record))
        .event(kind, view.model_dump(mode="json"), now().isoformat())
        .commit()
    )
    if not applied:
        raise ConflictError("node changed meanwhile; retry")
    return record


async def uncordon_node(store: Store, node_id: str) -> NodeRecord | None:
    """Let a drained node take tasks again (event ``node.uncordoned``); None if there is no such node.

    ``kubectl uncordon``: a drain is not for ever, and the cordon survives re-registration.
    """
    return await _set_cordon(store, node_id, False, "node.uncordoned")


async def remove_node(store: Store, node_id: str) -> NodePublic | None:
    """Forget a node that is gone: its record, ledger and releases (event ``node.removed``).

    Only a node whose lease has expired (``NOT_READY``) and that holds no task: a worker
    still running would register again, and a placed task would lose its node. Returns the
    node as it was, or None if there is no such node.

    Raises:
        ConflictError: the node is alive, holds tasks, or changed meanwhile (the API's 409).
    """
    keys = store.keys

    async def step() -> tuple[bool, NodePublic | None]:
        entry, alive, ledger = await store.get_many(keys.node(node_id), keys.alive(node_id), keys.alloc(node_id))
        if entry is None:
            return True, None
        if alive is not None:
            raise ConflictError(f"node {node_id} is alive: stop its worker first (drain it to move its tasks)")
        view = await _public(store, NodeRecord.model_validate_json(entry.value), alive=False)
        if view.tasks:
            raise ConflictError(f"node {node_id} still holds {len(view.tasks)} task(s): {', '.join(view.tasks[:5])}")
        txn = store.txn().expect_revision(keys.node(node_id), entry.mod_revision).expect_absent(keys.alive(node_id))
        placed = ledger.mod_revision if ledger is not None else 0
        txn.expect_revision(keys.alloc(node_id), placed)  # nothing placed there since the check
        for key in (keys.node(node_id), keys.alloc(node_id), keys.released(node_id)):
            txn.delete(key)
        applied, _ = await txn.event("node.removed", view.model_dump(mode="json"), now().isoformat()).commit()
        return applied, view  # not applied: the master's loss record or a placement came between: again

    return await until_applied(step)


async def drain_node(store: Store, node_id: str, *, evict: bool = False) -> NodeRecord | None:
    """Cordon a node (no new tasks); with ``evict`` its tasks go back to the queue, attempts not counted.

    Returns the record as stored, or None if there is no such node; raises
    ``ConflictError`` if the record changed between the read and the write.
    """
    record = await _set_cordon(store, node_id, True, "node.drained")
    if record is None:
        return None
    if evict:
        for task_id in await _placed(store, node_id):
            reason = f"evicted: node {node_id} drained"
            await requeue(store, task_id, node_id, reason, count_attempt=False, stopping=True)
    return record


async def node_lost(store: Store, view: NodePublic) -> bool:
    """Record that a node's lease expired (event ``node.lost``), if its ``alive`` key is still gone.

    The master requeues the node's tasks first, each with ``requeue``. The node's record
    keeps ``view``'s last heartbeat (the master's last sight of it): once the ``alive`` key
    is gone, the record is all that says when the node was last heard from. Returns whether
    the event was written (False: the worker came back meanwhile).
    """
    keys = store.keys

    async def step() -> tuple[bool, bool]:
        entry = await store.get(keys.node(view.id))
        txn = store.txn().expect_absent(keys.alive(view.id))
        if entry is not None and view.last_heartbeat is not None:
            record = NodeRecord.model_validate_json(entry.value).model_copy(
                update={"last_heartbeat": view.last_heartbeat}
            )
            txn.expect_revision(keys.node(view.id), entry.mod_revision)
            txn.put_json(keys.node(view.id), record_json(record))
        applied, _ = await txn.event("node.lost", view.model_dump(mode="json"), now().isoformat()).commit()
        if applied or await store.get(keys.alive(view.id)) is not None:
            return True, applied
        return False, False  # the record changed (a drain): again

    return await until_applied(step)


async def claim_leadership(store: Store, candidate: str, lease_id: int) -> bool:
    """Become the scheduling leader: ``PREFIX/leader`` = ``candidate`` under ``lease_id``, if vacant."""
    key = store.keys.leader()
    applied, _ = await store.txn().expect_absent(key).put(key, candidate.encode(), lease=lease_id).commit()
    return applied
