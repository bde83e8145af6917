"""What a worker checks of a task assigned to it before running it, against what it declared.

The master already decided on this node, so these only catch a master that saw another
capacity or other devices (a worker restarted with new flags): the task is then requeued
with the reason, never run on a node that cannot hold it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from orchlive import devices as dev
from orchlive.models import Resources, Task
from orchsim.scheduling import NodeMatrix, could_ever_fit, explain_never

__all__ = ["AssignmentCheck"]


class AssignmentCheck:
    """A worker's declared capacity and devices, and the two checks an assigned task passes."""

    def __init__(self, capacity: Resources, devices: Mapping[str, int]) -> None:
        self.capacity = capacity
        self.devices = devices
        self._shapes: dict[tuple[str, ...], NodeMatrix] = {}  # this worker as a one-node matrix, per resource names

    def never_fits(self, task: Task) -> str | None:
        """Why this worker could never hold ``task``, even empty; None if it could.

        The scheduling core's own never-fits rule, on this worker alone (a one-node matrix
        of its declared capacity, built once per set of resource names; a resource it does
        not declare counts as 0).
        """
        names = tuple(sorted(set(self.capacity) | {name for name, amount in task.resources.items() if amount > 0}))
        if (shape := self._shapes.get(names)) is None:
            shape = self._shapes[names] = NodeMatrix.from_capacities({n: [self.capacity.get(n, 0)] for n in names})
        request = shape.request_vector(dict(task.resources.items()))
        if could_ever_fit(shape, request, np.ones(1, dtype=bool)):
            return None
        return explain_never(shape, request)

    def grants(self, task: Task) -> dict[str, dev.Grant]:
        """The task's devices as grants, each checked against this worker's devices (ValueError if absent)."""
        grants = {}
        for kind, ids in task.devices.items():
            grant = dev.grant_for(kind, task.resources.get(kind, 0), ids)
            missing = [i for i in grant.ids if not 0 <= i < self.devices.get(kind, 0)]
            if missing:
                raise ValueError(f"{kind} {missing} (it has {self.devices.get(kind, 0)})")
            grants[kind] = grant
        return grants
