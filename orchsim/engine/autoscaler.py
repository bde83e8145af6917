"""The cluster autoscaler: its own SimPy process beside the engine, acting through node events.

Every ``interval`` it looks at the queue: when the oldest task has waited longer than
``scale_out_wait`` it provisions ``step`` nodes (ready after ``provision_delay``), up to
``max_nodes``; when nothing waits it removes nodes idle for ``scale_in_idle``, down to
``min_nodes``. One provisioning at a time, as the Kubernetes cluster autoscaler does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from orchsim.engine import node_events
from orchsim.engine.records import NodeState

if TYPE_CHECKING:
    from orchsim.engine.core import Simulation

__all__ = ["autoscale", "can_help"]


def can_help(sim: Simulation) -> bool:
    """Could the autoscaler still change anything for the tasks that wait?"""
    a = sim.cfg.autoscaler
    return a is not None and bool(sim.queue) and (sim.nodes_believed_up() < a.max_nodes or sim.provisioning)


def autoscale(sim: Simulation) -> Iterator[Any]:
    """The autoscaler's loop, until the run is finished."""
    a = sim.cfg.autoscaler
    assert a is not None
    while not sim.finished():
        yield sim.env.timeout(a.interval)
        active = sim.nodes_believed_up()
        if sim.queue and not sim.provisioning and _oldest_wait(sim) > a.scale_out_wait and active < a.max_nodes:
            sim.advance()
            sim.provisioning = True
            sim.env.process(_provision(sim, min(a.step, a.max_nodes - active)))
        elif not sim.queue:
            _scale_in(sim, removable=max(0, active - a.min_nodes))


def _oldest_wait(sim: Simulation) -> float:
    """How long the longest-waiting queued task has waited.

    Not always the head's wait: a task coming back rejoins at its arrival's place, and its
    wait counts from its return.
    """
    queued = np.fromiter(sim.queue, dtype=np.int64, count=len(sim.queue))
    return sim.env.now - float(sim.tasks.enqueued_at[queued].min())


def _scale_in(sim: Simulation, removable: int) -> None:
    """Remove up to ``removable`` nodes idle for ``scale_in_idle``, newest first."""
    a = sim.cfg.autoscaler
    assert a is not None
    now = sim.env.now
    idle = [
        i
        for i, s in enumerate(sim.node_state)
        if s == NodeState.UP and sim.nodes.tasks[i] == 0 and now - sim.idle_since[i] >= a.scale_in_idle
    ]
    if idle and removable:
        sim.advance()
    for node in sorted(idle, reverse=True)[:removable]:
        sim.node_state[node] = NodeState.DRAINING
        node_events.remove_node(sim, node)


def _provision(sim: Simulation, count: int) -> Iterator[Any]:
    a = sim.cfg.autoscaler
    assert a is not None
    if a.provision_delay:
        yield sim.env.timeout(a.provision_delay)
    sim.advance()
    node_events.add_nodes(sim, count, a.capacity, a.labels)
    sim.provisioning = False
