"""The end of a run: why the tasks left over never ran, and the records the run leaves behind."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from orchsim.engine.records import RunRecords
from orchsim.scheduling import select
from orchsim.scheduling.node_devices import format_assignment

if TYPE_CHECKING:
    from orchsim.engine.core import Simulation

__all__ = ["pending_reasons", "records"]


def pending_reasons(sim: Simulation) -> None:
    """Why each task still queued at the end never ran: once per task, not per decision."""
    n = sim.nodes.n_nodes
    for position, task in enumerate(sim.queue):
        decision = select(
            sim.nodes,
            sim._demand_rows[task],
            sim.cfg.policy,
            rng=np.random.default_rng(0),  # the run's own stream is left untouched
            node_selector=sim._selector(task),
            filters=sim._filters,
            **sim._params,
        )
        if decision.node is None:
            reason = decision.reason
        else:
            reason = (
                f"fits on {decision.feasible}/{n} nodes at the end, but waited behind "
                f"{position} task(s) in the {sim.cfg.queue} queue"
            )
        sim.reasons[task] = reason if np.isnan(sim.tasks.start[task]) else f"lost with its node; then {reason}"
    if sim.ext is not None:
        sim.ext.held_reasons()


def records(sim: Simulation, wall_seconds: float) -> RunRecords:
    """What the run leaves behind: task columns, samples, exact integrals (a gang's use counts per replica)."""
    acct, tasks, resources = sim.acct, sim.tasks, sim.w.resources
    acct.capacity_changing(acct.last_t)
    demand = sim.w.demand if sim.ext is None else sim.w.demand * sim.ext.replicas[:, None]
    integrals = {f"used_{r}": float(v) for r, v in zip(resources, acct.used(tasks, demand), strict=True)}
    integrals |= {f"capacity_{r}": float(v) for r, v in zip(resources, acct.capacity, strict=True)}
    integrals |= {"queue": acct.queue, "running": acct.running, "nodes_up": acct.nodes_up_time}
    return RunRecords(
        policy=sim.cfg.policy,
        node_ids=list(sim.nodes.ids),
        start_time=tasks.start,
        end_time=tasks.end,
        node=tasks.node,
        status=tasks.status,
        attempts=tasks.attempts,
        wait=tasks.wait,
        samples={k: np.asarray(v, dtype=np.float64) for k, v in sim._samples.items()},
        integrals=integrals,
        horizon=float(acct.last_t),
        peak_nodes_used=sim.peak_nodes_used,
        rescheduled=sim.rescheduled,
        wall_seconds=wall_seconds,
        decisions=sim.decisions,
        failures=list(sim.failure_log),
        reasons=dict(sim.reasons),
        window=acct.window(),
        devices={task: format_assignment(picked) for task, picked in sim.devices.items()},
        task_extras=sim.ext.task_columns() if sim.ext is not None else {},
        summary_extras=sim.ext.summary() if sim.ext is not None else {},
        dags=sim.ext.dag_table() if sim.ext is not None and sim.ext.deps is not None else None,
    )
