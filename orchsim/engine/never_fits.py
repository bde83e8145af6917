"""Could this task ever fit? Asked of the simulated cluster once per task and cached per shape.

A task no node could hold even empty, now or later (a scale-out still to come, the
autoscaler's node shape), is rejected as unschedulable instead of waiting for ever; the
queue's pass asks after a task's first failed try.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from orchsim import scenario as sc
from orchsim.scheduling import could_ever_fit

if TYPE_CHECKING:
    from orchsim.engine.core import Simulation

__all__ = ["NeverFits"]


class NeverFits:
    """The pass's ``never_fits`` for one simulation: asked once per task, answered once per shape."""

    def __init__(self, sim: Simulation, n_tasks: int) -> None:
        self.sim = sim
        self._checked = [False] * n_tasks  # the first failed try decides
        # ... and answered once per (request, selector, gang) until nodes join or leave for good.
        self._cache: dict[tuple[bytes, int, Any], bool] = {}

    def forget(self) -> None:
        """Nodes joined or left for good: every shape must be asked again."""
        self._cache.clear()

    def __call__(self, task: int) -> bool:
        if self._checked[task]:
            return False
        self._checked[task] = True
        sim = self.sim
        gang = sim.ext.gang_size(task) if sim.ext is not None else None
        key = (sim._demand_rows[task].tobytes(), sim._selector_of[task], gang)
        never = self._cache.get(key)
        if never is None:
            never = self._cache[key] = self._never(task)
        return never

    def _never(self, task: int) -> bool:
        """True if no node that exists or may return could hold ``task`` even when empty."""
        sim = self.sim
        demand = sim._demand_rows[task]
        if could_ever_fit(sim.nodes, demand, ~sim.removed, sim._selector(task), extra=sim._filters) and (
            sim.ext is None or sim.ext.gang_could_fit(task)
        ):
            return False
        # New nodes may still arrive: the autoscaler's shape or a pending scale-out.
        future = [e.capacity for e in sim.cfg.events if isinstance(e, sc.ScaleOut) and e.at > sim.env.now]
        if sim.cfg.autoscaler is not None:
            future.append(sim.cfg.autoscaler.capacity)
        for capacity in future:
            vec = np.array([capacity.get(r, 0.0) for r in sim.w.resources])
            if np.all(vec >= demand):
                return False
        return True
