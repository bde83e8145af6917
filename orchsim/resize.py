"""Shrink or grow a scenario while keeping its offered load: a model of the cluster at scale.

A 25% model of a scenario has a quarter of the nodes, a quarter of the tasks, and arrivals
a quarter as fast, so utilisation, queueing and the policies' relative behaviour stay
comparable while runs take a fraction of the time (the notebook's small size, smoke tests,
quick looks at a large trace). Durations, request sizes and event times are unchanged.
"""

from __future__ import annotations

from typing import Any

from orchsim import scenario as sc

__all__ = ["scale_scenario"]


def _count(value: int, factor: float) -> int:
    return max(1, round(value * factor))


def _scaled_node(node: sc.NodeSpec, factor: float, where: str) -> sc.NodeSpec:
    if isinstance(node, sc.NodeGroup):
        return node.model_copy(update={"count": _count(node.count, factor)})
    if factor > 1:
        raise sc.ScenarioError(f"{where}: trace nodes can be sampled down, not up (factor {factor:g} > 1)")
    return node.model_copy(update={"sample": (node.sample or 1.0) * factor})


def _scaled_source(source: Any, factor: float, where: str) -> Any:
    if isinstance(source, sc.OpenbTrace) and source.load is not None:
        return source  # its pod count already follows the cluster's GPU capacity
    if isinstance(source, sc._TraceSource):
        if source.limit is None:
            raise sc.ScenarioError(
                f"{where}: a trace workload scales through its 'limit' (or an openb 'load'); set one"
            )
        return source.model_copy(update={"limit": _count(source.limit, factor)})
    update: dict[str, Any] = {"count": _count(source.count, factor)}
    if isinstance(source, sc.Poisson | sc.Diurnal):
        update["rate"] = source.rate * factor
    return source.model_copy(update=update)


def _scaled_event(event: Any, factor: float) -> Any:
    return event.model_copy(update={"count": _count(event.count, factor)})


def scale_scenario(scenario: sc.Scenario, factor: float) -> sc.Scenario:
    """``scenario`` at ``factor`` times its size, at the same offered load.

    Node groups, synthetic task counts, arrival rates, event node counts and the
    autoscaler's bounds are multiplied by ``factor`` (counts rounded, at least 1). Trace
    nodes are sampled evenly within each machine shape; trace workloads scale their
    ``limit``, except an openb trace with ``load``, whose size follows the cluster.

    Raises:
        ScenarioError: for a factor that is not positive, a trace cluster scaled up, or a
            trace workload with neither ``limit`` nor ``load``.
    """
    if not factor > 0:
        raise sc.ScenarioError(f"{scenario.source}: scale factor must be > 0, got {factor!r}")
    if factor == 1:
        return scenario
    nodes = [
        _scaled_node(n, factor, f"{scenario.source}: cluster.nodes.{i}") for i, n in enumerate(scenario.cluster.nodes)
    ]
    workload = [_scaled_source(s, factor, f"{scenario.source}: workload.{i}") for i, s in enumerate(scenario.workload)]
    events = [_scaled_event(e, factor) for e in scenario.events]
    update: dict[str, Any] = {
        "cluster": scenario.cluster.model_copy(update={"nodes": nodes}),
        "workload": workload,
        "events": events,
    }
    if scenario.autoscaler is not None:
        a = scenario.autoscaler
        update["autoscaler"] = a.model_copy(
            update={"min_nodes": round(a.min_nodes * factor), "max_nodes": _count(a.max_nodes, factor)}
        )
    return scenario.model_copy(update=update)
