"""The time-series sampler: a SimPy process that samples the run and ends it.

It lives beside the engine rather than in it because it only reads the simulation's
state (queue, running count, the node matrix, the physical accounting) and appends to
its sample lists; the values themselves are pure functions in ``sampling``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import simpy

from orchsim.engine.sampling import cluster_sample

if TYPE_CHECKING:
    from orchsim.engine.core import Simulation

__all__ = ["sample_until_over", "take_sample"]


def sample_until_over(sim: Simulation, ended: simpy.Event) -> Iterator[Any]:
    """Sample every ``sample_interval``; at the first tick that finds the run over, end it.

    At most ``max_samples`` are kept whatever the run's real length (a queue that drains
    long after the last arrival, a tail of long tasks): past it, every other sample is
    dropped and the interval doubles, so the kept ones stay evenly spaced and span the
    whole run, tail included.
    """
    interval = sim.cfg.sample_interval
    samples = sim._samples
    while True:
        take_sample(sim)
        if sim.finished():
            ended.succeed()
            return
        if len(samples["time"]) > sim.cfg.max_samples:
            keep = slice((len(samples["time"]) - 1) % 2, None, 2)  # the newest stays
            for values in samples.values():
                values[:] = values[keep]
            interval *= 2
        yield sim.env.timeout(interval)


def take_sample(sim: Simulation) -> None:
    """Append one sample of every series at the simulation's current time."""
    s = sim._samples
    s["time"].append(sim.env.now)
    s["queue"].append(len(sim.queue))
    s["running"].append(sim.physically_running())
    s["nodes_up"].append(sim.acct.nodes_up)
    s["nodes_used"].append(sim.physically_used_nodes())
    for name, value in cluster_sample(sim.nodes, sim.dead, sim.acct.cap_total, sim._typical).items():
        s[name].append(value)
