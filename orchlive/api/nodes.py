"""``/api/v1/nodes``: list and inspect workers, drain and uncordon them, forget those gone.

A node is served as ``NodePublic``, derived by the same function the master uses
(``ClusterCache.node_view``); store errors (503) and conflicts (409) are answered by the
app's exception handlers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from orchlive import transitions
from orchlive.api.deps import StoreDep
from orchlive.cache import read_nodes
from orchlive.models import NodePublic

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])
NodeId = Annotated[str, Path(max_length=253)]


def _not_found(node_id: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"node {node_id} not found")


@router.get("")
async def list_nodes(store: StoreDep) -> list[NodePublic]:
    """Every worker that ever registered: capacity, allocated and free per resource; ``[]`` when none.

    ``device_use`` shows each device (each GPU): its capacity, the share used and the tasks holding it.
    """
    return list((await read_nodes(store)).values())


@router.get("/{node_id}")
async def get_node(node_id: NodeId, store: StoreDep) -> NodePublic:
    """One worker, with its state, allocations and tasks; 404 if unknown."""
    nodes = await read_nodes(store)
    if node_id not in nodes:
        raise _not_found(node_id)
    return nodes[node_id]


@router.post("/{node_id}/drain")
async def drain_node(
    node_id: NodeId,
    store: StoreDep,
    evict: Annotated[bool, Query(description="also send its running tasks elsewhere")] = False,
) -> NodePublic:
    """Cordon the node (no new tasks); with ``evict=true`` its tasks are placed elsewhere."""
    if await transitions.drain_node(store, node_id, evict=evict) is None:
        raise _not_found(node_id)
    return (await read_nodes(store))[node_id]


@router.post("/{node_id}/uncordon")
async def uncordon_node(node_id: NodeId, store: StoreDep) -> NodePublic:
    """Let a drained node take new tasks again (``kubectl uncordon``)."""
    if await transitions.uncordon_node(store, node_id) is None:
        raise _not_found(node_id)
    return (await read_nodes(store))[node_id]


@router.delete("/{node_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_node(node_id: NodeId, store: StoreDep) -> None:
    """Forget a node whose worker is gone (``NOT_READY``, no tasks); 409 while it lives or holds tasks."""
    if await transitions.remove_node(store, node_id) is None:
        raise _not_found(node_id)
