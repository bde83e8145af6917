"""Devices on the matrix: what a request needs of each device kind, where it fits, taking it.

A ``NodeMatrix`` may carry, beside its scalar rows, a ``DeviceSet`` per device kind
(``nodes.devices["gpu"]``). The scalar row of that kind stays the node's total (capacity
``count x unit``, allocation the sum of the devices' allocations), so policies that look
at totals keep working; the device set adds what totals cannot say: a fraction of a GPU
must fit inside one GPU, and whole GPUs must be fully free. The request format does not
change: its scalar amount says the need (``DeviceNeed.from_total``: 460 milli-GPU is a
fraction of one GPU, 2000 is two whole GPUs).

The filters (``infeasible``, ``rejections``, ``fits_node``, ``could_ever_fit``) add the
device checks from here; ``select`` picks the devices on the chosen node
(``choose``); ``NodeMatrix.allocate``/``release`` take and give back an assignment
(``take``/``give_back``), which is ``{kind: device indices}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from orchsim.scheduling.devices import DeviceNeed, DeviceSet
from orchsim.scheduling.errors import CapacityError

if TYPE_CHECKING:
    from orchsim.scheduling.matrix import NodeMatrix

__all__ = [
    "Assignment",
    "choose",
    "could_ever_fit_mask",
    "device_checks",
    "fits_at",
    "fits_mask",
    "format_assignment",
    "give_back",
    "needs",
    "take",
]

Assignment = Mapping[str, tuple[int, ...]]
NO_DEVICES: Assignment = {}
Chooser = Callable[..., tuple[int, ...]]


def needs(nodes: NodeMatrix, request: np.ndarray) -> list[tuple[str, DeviceSet, DeviceNeed]]:
    """``(kind, devices, need)`` for every device kind the request asks for (empty: none)."""
    found = []
    for kind, devices in nodes.devices.items():
        amount = float(request[nodes.row(kind)])
        if amount > 0:
            found.append((kind, devices, devices.need(amount)))
    return found


def fits_mask(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray | None:
    """Bool ``(N,)``: every device need fits now; None when the request needs no devices."""
    return _every(device_checks(nodes, request, ever=False))


def fits_at(nodes: NodeMatrix, request: np.ndarray, node: int) -> bool:
    """Do the request's device needs fit ``node`` now (one node: O(kinds), not O(N))?"""
    for _, devices, need in needs(nodes, request):
        if need.share < devices.unit:
            if devices.max_free[node] < need.share:
                return False
        elif devices.n_whole[node] < need.count:
            return False
    return True


def could_ever_fit_mask(nodes: NodeMatrix, request: np.ndarray) -> np.ndarray | None:
    """Bool ``(N,)``: every device need would fit the node empty; None without needs."""
    return _every(device_checks(nodes, request, ever=True))


def _every(checks: list[tuple[str, np.ndarray]]) -> np.ndarray | None:
    """The nodes passing every check (None when there are no checks)."""
    mask = None
    for _, passes in checks:
        mask = passes if mask is None else mask & passes
    return mask


def device_checks(nodes: NodeMatrix, request: np.ndarray, *, ever: bool) -> list[tuple[str, np.ndarray]]:
    """``(reason, passes)`` per device need, for ``rejections`` (``ever``: on empty nodes)."""
    return [
        (devices.reason, devices.could_ever_fit(need) if ever else devices.fits(need))
        for _, devices, need in needs(nodes, request)
    ]


def choose(
    nodes: NodeMatrix, request: np.ndarray, node: int, chooser: Chooser | None = None, **params: Any
) -> Assignment:
    """The devices the request takes on ``node``: ``{kind: indices}`` (empty without needs).

    ``chooser(nodes, request, node, **params)`` picks the ``gpu`` devices when the policy
    has its own rule (FGD, random); every other case takes the tightest fitting device
    (best fit) or, for whole devices, the lowest-index fully free ones.
    """
    picked: dict[str, tuple[int, ...]] = {}
    for kind, devices, need in needs(nodes, request):
        if chooser is not None and kind == "gpu":
            chosen = chooser(nodes, request, node, **params)
        else:
            chosen = devices.choose_best_fit(node, need)
        if len(chosen) != need.count:
            raise CapacityError(f"node {nodes.ids[node]!r}: no {kind} devices fit {need}")
        picked[kind] = tuple(chosen)
    return picked


def take(nodes: NodeMatrix, node: int, request: np.ndarray, assignment: Assignment | None) -> Assignment:
    """Allocate the request's device needs on ``node``: the given assignment, or best fit.

    All kinds or none: a failure part-way gives back what was taken before raising.

    Raises:
        CapacityError: an assignment that does not match the needs or does not fit.
    """
    wanted = needs(nodes, request)
    if not wanted:
        if assignment:
            raise CapacityError(f"devices {dict(assignment)} given for a request that needs none")
        return NO_DEVICES
    chosen = dict(assignment) if assignment is not None else dict(choose(nodes, request, node))
    done: list[tuple[DeviceSet, DeviceNeed, Sequence[int]]] = []
    try:
        for kind, devices, need in wanted:
            if kind not in chosen:
                raise CapacityError(f"the request needs {kind} devices; the assignment names none")
            devices.allocate(node, need, chosen[kind])
            done.append((devices, need, chosen[kind]))
    except CapacityError:
        for devices, need, picked in done:
            devices.release(node, need, picked)
        raise
    return {kind: tuple(chosen[kind]) for kind, _, _ in wanted}


def give_back(nodes: NodeMatrix, node: int, request: np.ndarray, assignment: Assignment) -> None:
    """Release the request's device needs from the devices ``assignment`` names on ``node``."""
    for kind, devices, need in needs(nodes, request):
        if kind not in assignment:
            raise CapacityError(f"release of a {kind} need without its devices")
        devices.release(node, need, assignment[kind])


def format_assignment(assignment: Assignment) -> str:
    """``"0;3"`` for one kind, ``"gpu:0;3 fpga:1"`` for several, ``""`` for none (the CSV form)."""
    if not assignment:
        return ""
    if len(assignment) == 1:
        return ";".join(str(d) for d in next(iter(assignment.values())))
    return " ".join(f"{kind}:{';'.join(str(d) for d in picked)}" for kind, picked in assignment.items())


def device_counts(capacity: np.ndarray, unit: float, kind: str, ids: Sequence[str]) -> np.ndarray:
    """Devices per node: capacity over ``unit``, refused unless whole."""
    counts = np.asarray(capacity, dtype=np.float64) / unit
    whole = np.rint(counts)
    bad = np.flatnonzero(np.abs(counts - whole) > 1e-9)
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"node {ids[i]!r}: {kind} capacity {capacity[i]:g} is not a whole number of devices of {unit:g}"
        )
    return whole.astype(np.int64)
