"""``/api/v1/nodes``: list and inspect workers, and drain them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status

from orchlive import transitions
from orchlive.api.deps import MasterDep, StoreDep, require_token
from orchlive.models import Node, NodeState, now
from orchlive.store import StoreUnavailableError

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])


async def _nodes(store: StoreDep) -> dict[str, Node]:
    """Every node as stored, with its state derived from its heartbeat and its ledger."""
    entries, _ = await store.range(store.keys.root())
    keys = store.keys
    records: dict[str, Node] = {}
    alive: dict[str, datetime] = {}
    ledgers: dict[str, transitions.Ledger] = {}
    for entry in entries:
        ident = keys.last(entry.key)
        if entry.key.startswith(keys.nodes()):
            records[ident] = Node.model_validate_json(entry.value)
        elif entry.key.startswith(keys.alive_all()):
            alive[ident] = datetime.fromisoformat(entry.value.decode())
        elif entry.key.startswith(keys.allocs()):
            ledgers[ident] = transitions.Ledger.from_json(entry.json())
    out = {}
    for ident, node in sorted(records.items()):
        ledger = ledgers.get(ident, transitions.Ledger())
        state = NodeState.NOT_READY if ident not in alive else NodeState.DRAINING if node.cordoned else NodeState.READY
        out[ident] = node.model_copy(
            update={
                "state": state,
                "allocated": ledger.on(node.capacity),
                "tasks": list(ledger.tasks),
                "last_heartbeat": alive.get(ident, node.last_heartbeat),
            }
        )
    return out


@router.get("")
async def list_nodes(store: StoreDep) -> list[Node]:
    """Every worker that ever registered: capacity, allocated and free per resource; ``[]`` when none."""
    try:
        return list((await _nodes(store)).values())
    except StoreUnavailableError as err:
        raise HTTPException(status_code=503, detail=f"etcd unavailable: {err}") from err


@router.get("/{node_id}")
async def get_node(node_id: str, store: StoreDep) -> Node:
    """One worker, with its state, allocations and tasks; 404 if unknown."""
    try:
        nodes = await _nodes(store)
    except StoreUnavailableError as err:
        raise HTTPException(status_code=503, detail=f"etcd unavailable: {err}") from err
    if node_id not in nodes:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"node {node_id} not found")
    return nodes[node_id]


@router.post("/{node_id}/drain", dependencies=[Depends(require_token)])
async def drain_node(
    node_id: str,
    store: StoreDep,
    master: MasterDep,
    evict: Annotated[bool, Query(description="also send its running tasks elsewhere")] = False,
) -> Node:
    """Cordon the node (no new tasks); with ``evict=true`` its tasks are placed elsewhere."""
    try:
        entry = await store.get(store.keys.node(node_id))
        if entry is None:
            raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"node {node_id} not found")
        node = Node.model_validate_json(entry.value).model_copy(update={"cordoned": True})
        body = node.model_dump(mode="json")
        applied, _ = await (
            store.txn()
            .expect_revision(store.keys.node(node_id), entry.mod_revision)
            .put_json(store.keys.node(node_id), body)
            .event("node.drained", body, now().isoformat())
            .commit()
        )
        if not applied:
            raise HTTPException(status_code=status.HTTP_409_CONFLICT, detail="node changed meanwhile; retry")
        if evict:
            ledger, _ = await transitions.read_ledger(store, node_id)
            for task_id in list(ledger.tasks):
                await transitions.requeue(
                    store, task_id, node_id, f"evicted: node {node_id} drained", count_attempt=False
                )
        return (await _nodes(store))[node_id]
    except StoreUnavailableError as err:
        raise HTTPException(status_code=503, detail=f"etcd unavailable: {err}") from err
