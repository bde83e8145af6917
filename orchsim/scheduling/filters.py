"""Feasibility: which nodes can take a request at all.

Every filter returns a bool mask of shape ``(N,)``. ``feasible`` is the fast path used
on every decision; ``rejections`` is the slow path used only to explain a task that
fits nowhere, attributing each node to the first check it fails (so the counts add up
to N, as in "0/40 nodes fit: 31 insufficient cpu, 9 insufficient memory").
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from orchsim.scheduling.matrix import NodeMatrix

__all__ = ["feasible", "fits_resources", "infeasible", "rejections", "schedulable"]


def schedulable(nodes: NodeMatrix) -> np.ndarray:
    """Bool ``(N,)``: node is up and not cordoned or draining (a copy)."""
    return nodes.schedulable.copy()


def fits_resources(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray:
    """Bool ``(N,)``: free capacity covers ``request`` in every dimension.

    Dimensions requested at zero are skipped: free capacity is never negative, so they
    always fit, and skipping them keeps a 2-resource request on a 4-resource cluster at
    two comparisons.
    """
    free = nodes.free
    mask = np.ones(nodes.n_nodes, dtype=bool)
    for r in np.flatnonzero(request):
        mask &= free[r] >= request[r]
    return mask


def infeasible(nodes: NodeMatrix, request: np.ndarray, node_selector: Mapping[str, str] | None = None) -> np.ndarray:
    """Bool ``(N,)``: True where the node is rejected (the complement of ``feasible``).

    ``select`` works with the rejected set because it is usually small: its indices are
    cheap to list, and the feasible count is N minus their number.
    """
    free = nodes.free
    bad = ~nodes.schedulable
    for r, amount in enumerate(request.tolist()):
        if amount > 0:
            bad |= free[r] < amount
    if node_selector:
        bad |= ~nodes.label_mask(node_selector)
    return bad


def feasible(nodes: NodeMatrix, request: np.ndarray, node_selector: Mapping[str, str] | None = None) -> np.ndarray:
    """Bool ``(N,)``: schedulable, label constraints met, and resources fit."""
    return ~infeasible(nodes, request, node_selector)


def rejections(
    nodes: NodeMatrix,
    request: np.ndarray,
    node_selector: Mapping[str, str] | None = None,
    *,
    available: np.ndarray | None = None,
    candidates: tuple[str, np.ndarray] | None = None,
) -> dict[str, int]:
    """Count nodes rejected by each check, each node under the first check it fails.

    Order: ``unschedulable``, ``node_selector mismatch``, then ``insufficient <resource>``
    in resource order. Checks that reject nobody are left out.

    Args:
        nodes: The cluster; read only.
        request: Float64 ``(R,)`` request vector.
        node_selector: Labels the node must carry.
        available: ``(R, N)`` amounts to compare the request with; default the free
            capacity. Pass ``nodes.capacity`` to ask whether the task could ever fit
            (on an empty node).
        candidates: ``(label, mask)`` replacing the first check: nodes outside ``mask``
            are counted under ``label`` (default ``("unschedulable", nodes.schedulable)``).
    """
    counts: dict[str, int] = {}
    remaining = np.ones(nodes.n_nodes, dtype=bool)
    checks: list[tuple[str, np.ndarray]] = [candidates or ("unschedulable", nodes.schedulable)]
    if node_selector:
        checks.append(("node_selector mismatch", nodes.label_mask(node_selector)))
    free = nodes.free if available is None else available
    for r, name in enumerate(nodes.resources):
        if request[r] > 0:
            checks.append((f"insufficient {name}", free[r] >= request[r]))
    for label, passes in checks:
        failed = remaining & ~passes
        n_failed = int(failed.sum())
        if n_failed:
            counts[label] = n_failed
        remaining &= passes
    return counts
