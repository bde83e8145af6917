"""What happens to nodes: failures, detection, recovery, scale-out, drain, removal; named or drawn.

Cluster events of a scenario are applied through ``HANDLERS``, a table from event class
to handler ``(sim, event) -> None``: a new event kind is one schema class plus one
function registered with ``@handles(EventClass)``; the engine's loop never changes.

Failures are realistic: a failed node stops heartbeating; until its lease expires (last
heartbeat + ``failure_timeout``) the scheduler still believes it up and may place tasks
there, which are then lost too. At detection every task on it goes back to the queue
(at its place in submission order, as the live master's queue puts it) with its attempt
count raised. A node that comes back
before its lease expired heartbeats again and is never declared lost, but its tasks died
with it: they are given up as lost when it returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from simpy.events import Timeout

from orchsim import scenario as sc
from orchsim.engine.records import NodeState, Status

if TYPE_CHECKING:
    from orchsim.engine.core import Simulation

__all__ = ["HANDLERS", "add_nodes", "handle", "handles", "node_index", "remove_node"]

Handler = Callable[["Simulation", Any], None]
HANDLERS: dict[type, Handler] = {}


def handles(kind: type) -> Callable[[Handler], Handler]:
    """Decorator: ``handler(sim, event)`` applies events of class ``kind``."""

    def register(handler: Handler) -> Handler:
        HANDLERS[kind] = handler
        return handler

    return register


def handle(sim: Simulation, event: Any) -> None:
    """Apply ``event`` through its handler; an event class without one is a programming error."""
    try:
        handler = HANDLERS[type(event)]
    except KeyError:
        raise TypeError(f"no handler for cluster event {type(event).__name__}; register one with @handles") from None
    handler(sim, event)


@handles(sc.NodeFailure)
def fail_nodes(sim: Simulation, event: sc.NodeFailure) -> None:
    """``count`` up nodes, drawn with the event stream, die now; detection comes with the lease."""
    up = [i for i, s in enumerate(sim.node_state) if s == NodeState.UP]
    if not up:
        return
    chosen = sim.event_rng.choice(up, size=min(event.count, len(up)), replace=False)
    now = sim.env.now
    hb = sim.cfg.heartbeat_interval
    detect_at = max(now, math.floor(now / hb) * hb + sim.cfg.failure_timeout)
    for node in sorted(int(x) for x in chosen):
        _die(sim, node, detect_at)


@handles(sc.NodeLost)
def lose_node(sim: Simulation, event: sc.NodeLost) -> None:
    """The named node dies now (if up); it is declared lost ``failure_timeout`` later (its last beat is now)."""
    node = node_index(sim, event.node, event.kind)
    if sim.node_state[node] in (NodeState.UP, NodeState.DRAINING):
        _die(sim, node, sim.env.now + sim.cfg.failure_timeout)


def _die(sim: Simulation, node: int, detect_at: float) -> None:
    """``node`` stops now; the scheduler learns it at ``detect_at`` (its lease's expiry)."""
    now = sim.env.now
    sim.node_state[node] = NodeState.DEAD
    sim.dead.add(node)
    sim.failed_at[node] = now
    sim.failed_order.append(node)
    sim.acct.node_leaves(now, sim.nodes.capacity[:, node])  # physically, the capacity is gone now
    for task in sim.running_on[node]:
        sim.tasks.epoch[task] += 1  # its completion event, if any, is now void
    sim.pending_external += 1
    timer = Timeout(sim.env, detect_at - now, value=(node, sim.node_epoch[node]))
    timer.callbacks.append(lambda timer, sim=sim: _detect_failure(sim, timer))


def node_index(sim: Simulation, name: str, kind: str) -> int:
    """The column of the node named ``name``; an unknown name is a one-line error naming the event."""
    try:
        return sim.nodes.ids.index(name)
    except ValueError:
        raise ValueError(f"event {kind}: no node named {name!r} in the cluster") from None


def _detect_failure(sim: Simulation, timer: Timeout) -> None:
    node, node_epoch = timer.value
    sim.pending_external -= 1
    if node_epoch != sim.node_epoch[node]:
        return  # the node came back before its lease expired
    sim.advance()
    sim.node_state[node] = NodeState.DOWN
    sim.dead.discard(node)
    sim.nodes.set_schedulable(node, False)
    if _give_up_tasks(sim, node):
        sim.drain_queue()


def _give_up_tasks(sim: Simulation, node: int) -> bool:
    """Take the tasks that died with ``node`` off it: requeue or fail them. True if any.

    Counted now (at detection, or when the node returns), so tasks placed on the dead node
    before anyone noticed are lost too. Their run, for the metrics, ended when the node
    died (a task placed after that ran for no time at all).
    """
    failed_at = sim.failed_at[node]
    lost = sorted(sim.running_on[node])
    tasks = sim.tasks
    sim.failure_log.append((failed_at, sim.env.now, sim.nodes.ids[node], len(lost)))
    for task in lost:
        sim.acct.lose_run(sim.held_demand(task), float(tasks.start[task]), failed_at)
        sim.stop(task)
        tasks.epoch[task] += 1
        sim.rescheduled += 1
    limit = sim.cfg.max_attempts
    for task in reversed(lost):
        if tasks.attempts[task] >= limit:
            tasks.end[task] = max(float(tasks.start[task]), failed_at)
            sim.reasons[task] = f"lost with its node {tasks.attempts[task]} times (max_attempts {limit})"
            sim.finish(task, Status.FAILED)
        else:
            sim.requeue(task)
    return bool(lost)


@handles(sc.NodeRecovery)
def recover_nodes(sim: Simulation, event: sc.NodeRecovery) -> None:
    """Up to ``count`` failed nodes, longest-failed first, come back empty."""
    back: list[int] = []
    while sim.failed_order and len(back) < event.count:
        node = sim.failed_order.popleft()
        if sim.node_state[node] in (NodeState.DEAD, NodeState.DOWN):
            back.append(node)
    for node in back:
        _come_back(sim, node)
    if back:
        sim.scheduler.forget()
        sim.drain_queue()


def _come_back(sim: Simulation, node: int) -> None:
    """A failed or removed ``node`` is up again, empty (the caller runs the queue)."""
    now = sim.env.now
    if sim.node_state[node] == NodeState.DEAD:
        # Back before its lease expired: never declared lost, but its processes died.
        sim.node_epoch[node] += 1
        sim.dead.discard(node)
        _give_up_tasks(sim, node)
    if sim.node_state[node] == NodeState.REMOVED:
        sim.never_fits_changed()
        sim.removed[node] = False
    sim.node_state[node] = NodeState.UP
    sim.nodes.set_schedulable(node, True)
    sim.acct.node_joins(now, sim.nodes.capacity[:, node])
    sim.idle_since[node] = now


@handles(sc.NodeJoin)
def join_node(sim: Simulation, event: sc.NodeJoin) -> None:
    """The named node joins now, empty, if it is out (drained away, not yet joined, or lost)."""
    node = node_index(sim, event.node, event.kind)
    state = sim.node_state[node]
    if state == NodeState.DRAINING:  # drained but not yet empty: it simply takes tasks again
        sim.node_state[node] = NodeState.UP
        sim.nodes.set_schedulable(node, True)
    elif state in (NodeState.DEAD, NodeState.DOWN, NodeState.REMOVED):
        if node in sim.failed_order:
            sim.failed_order.remove(node)
        _come_back(sim, node)
    else:
        return
    sim.scheduler.forget()
    sim.drain_queue()


@handles(sc.NodeDrain)
def drain_node(sim: Simulation, event: sc.NodeDrain) -> None:
    """The named node takes no new tasks from now, and leaves when its tasks have ended."""
    node = node_index(sim, event.node, event.kind)
    if sim.node_state[node] == NodeState.UP:
        _drain(sim, node)


def _drain(sim: Simulation, node: int) -> None:
    sim.node_state[node] = NodeState.DRAINING
    sim.nodes.set_schedulable(node, False)
    if not sim.running_on[node]:
        remove_node(sim, node)


@handles(sc.ScaleOut)
def scale_out(sim: Simulation, event: sc.ScaleOut) -> None:
    add_nodes(sim, event.count, event.capacity, event.labels)


def add_nodes(sim: Simulation, count: int, capacity: dict[str, float], labels: dict[str, str]) -> None:
    """``count`` new nodes of ``capacity`` join now, empty; the queue is tried again."""
    sim.never_fits_changed()
    start = sim.nodes.n_nodes
    vec = np.array([capacity.get(r, 0.0) for r in sim.w.resources])
    ids = [f"scaled-{start + i}" for i in range(count)]
    sim.nodes.add_nodes(ids, np.repeat(vec[:, None], count, axis=1), labels=[dict(labels)] * count)
    sim.node_state.extend([NodeState.UP] * count)
    sim.node_epoch.extend([0] * count)
    sim.removed = np.concatenate([sim.removed, np.zeros(count, dtype=bool)])
    sim.running_on.extend(set() for _ in range(count))
    sim.idle_since.extend([sim.env.now] * count)
    sim.acct.node_joins(sim.env.now, vec, count)
    sim.scheduler.forget()
    sim.drain_queue()


@handles(sc.ScaleIn)
def scale_in(sim: Simulation, event: sc.ScaleIn) -> None:
    """Drain ``count`` up nodes: fewest tasks first, among equals the newest (as autoscalers do)."""
    up = [i for i, s in enumerate(sim.node_state) if s == NodeState.UP]
    chosen = sorted(up, key=lambda i: (int(sim.nodes.tasks[i]), -i))[: event.count]
    for node in chosen:
        _drain(sim, node)


def remove_node(sim: Simulation, node: int) -> None:
    """``node`` leaves for good. Its column stays (indices stay valid); it is simply gone."""
    sim.never_fits_changed()
    sim.node_state[node] = NodeState.REMOVED
    sim.removed[node] = True
    sim.nodes.set_schedulable(node, False)
    sim.acct.node_leaves(sim.env.now, sim.nodes.capacity[:, node])
