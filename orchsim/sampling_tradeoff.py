"""What node sampling buys and costs: decision time and placement quality against the share sampled.

Kube-scheduler and Nomad score only some feasible nodes of a large cluster
(``orchsim.scheduling.sampling``). Whether that is worth it is a trade-off between the time
a decision takes and how good the placements stay, so both are measured on the same
tasks from the same start state, one row per sampling rule. ``plots.plot_sampling_tradeoff``
draws the table; ``benchmarks/test_sampling.py`` writes the figure on 100,000 nodes and the
notebook draws a small one.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from orchsim.scheduling import NodeMatrix, PreparedPolicy, decide, parse_sampling

__all__ = ["SHARE_SWEEP", "label", "sampling_tradeoff"]

# Sampling rules from Nomad's log2 candidates to every node: kube's percentage (its floor
# of 100 feasible nodes applies) and its adaptive default in between.
SHARE_SWEEP: tuple[Any, ...] = (
    "log2",
    {"candidates": 50},
    {"percentage": 5},
    {"percentage": 10},
    {"percentage": "adaptive"},
    {"percentage": 60},
    "all",
)


def label(sample: str | Mapping[str, Any] | None) -> str:
    """A sampling rule in a few characters, for tables and figures: ``log2``, ``50 nodes``, ``5%``, ``all``."""
    if sample is None or isinstance(sample, str):
        return sample or "all"
    if "candidates" in sample:
        return "log2" if sample["candidates"] == "log2" else f"{sample['candidates']} nodes"
    percentage = sample.get("percentage")
    return "kube adaptive" if percentage in (0, "adaptive") else f"{percentage:g}%"


def sampling_tradeoff(
    nodes: NodeMatrix,
    requests: np.ndarray,
    samples: Iterable[str | Mapping[str, Any]] = SHARE_SWEEP,
    policy: str = "bin_packing",
    seed: int = 0,
) -> pd.DataFrame:
    """Place the same tasks under each sampling rule; time and quality per rule.

    Args:
        nodes: The start state; copied for each rule, never changed.
        requests: Float64 ``(T, R)``: the tasks' request vectors, placed in order (nothing ends).
        samples: Sampling rules (``select``'s ``sample``).
        policy: The policy deciding.
        seed: Seed of the policy's generator (random scan starts), the same for every rule.

    Returns:
        One row per rule: ``sample`` (the rule, ``label``), ``share`` (nodes the rule looks
        for over all nodes, 0-1), ``decision_us`` (mean CPU time of one decision,
        microseconds), ``nodes_used`` (nodes running a task at the end), ``stranded_share``
        (free capacity on those nodes over all capacity, mean over the requested
        resources, 0-1) and ``unplaced`` (tasks that found no node).
    """
    n = nodes.n_nodes
    asked = np.flatnonzero(requests.sum(axis=0)) if len(requests) else np.zeros(0, dtype=np.int64)
    rows = []
    for sample in samples:
        work = nodes.copy()
        prepared = PreparedPolicy(policy, rng=np.random.default_rng(seed), sample=sample)
        spent, unplaced = 0.0, 0
        for request in requests:
            began = time.process_time()  # CPU time: on a shared machine wall time measures the neighbours
            decision = decide(work, request, prepared, explain=False)
            spent += time.process_time() - began
            if decision.node is None:
                unplaced += 1
            else:
                work.allocate(decision.node, request, decision.devices or None)
        rule = parse_sampling(sample)
        busy = (work.tasks > 0).astype(np.float64)
        capacity = work.capacity.sum(axis=1)
        stranded = (work.free @ busy)[asked] / np.where(capacity[asked] > 0, capacity[asked], 1.0)
        rows.append(
            {
                "sample": label(sample),
                "share": (n if rule is None else rule.wanted(n)) / max(n, 1),
                "decision_us": spent / max(len(requests), 1) * 1e6,
                "nodes_used": int(busy.sum()),
                "stranded_share": float(stranded.mean()) if len(stranded) else 0.0,
                "unplaced": unplaced,
            }
        )
    return pd.DataFrame(rows)
