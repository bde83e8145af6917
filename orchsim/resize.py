"""Shrink or grow a scenario while keeping its offered load: a model of the cluster at scale.

A 25% model of a scenario has a quarter of the nodes, a quarter of the tasks, and arrivals
a quarter as fast, so utilisation, queueing and the policies' relative behaviour stay
comparable while runs take a fraction of the time (the notebook's small size, smoke tests,
quick looks at a large trace). Durations, request sizes and event times are unchanged,
so tasks that need a large share of a node, or more nodes than the model has, are the
limit of the method: a model of 32 nodes cannot run a 64-node job.
"""

from __future__ import annotations

from typing import Any

from orchsim import scenario as sc
from orchsim.scenario_workload import NodeRecording, OrchliveRecording

__all__ = ["MAX_ROUNDING_ERROR", "scale_scenario"]

# Node counts are whole: a model whose node count is off the factor by more than this share
# would not run at the same load per node, so it is refused rather than silently distorted.
MAX_ROUNDING_ERROR = 0.25


def _count(value: int, factor: float) -> int:
    return max(1, round(value * factor))


def _scaled_node(node: sc.NodeSpec, factor: float, where: str) -> sc.NodeSpec:
    if isinstance(node, sc.NodeGroup):
        return node.model_copy(update={"count": _count(node.count, factor)})
    if factor > 1:
        raise sc.ScenarioError(f"{where}: trace nodes can be sampled down, not up (factor {factor:g} > 1)")
    return node.model_copy(update={"sample": (node.sample or 1.0) * factor})


def _scaled_source(source: Any, factor: float, where: str) -> Any:
    if isinstance(source, sc.OpenbTrace) and source.mode == "arrivals" and source.load is not None:
        # Its pod count follows the cluster's GPU capacity; a cap on it scales with the cluster.
        return source if source.limit is None else source.model_copy(update={"limit": _count(source.limit, factor)})
    if isinstance(source, sc._TraceSource):
        if factor > 1:
            raise sc.ScenarioError(f"{where}: trace workloads can be sampled down, not up (factor {factor:g} > 1)")
        # Thin, never truncate: the first jobs of a trace at full rate would overload the smaller cluster.
        return source.model_copy(update={"sample": (source.sample or 1.0) * factor})
    update: dict[str, Any] = {"count": _count(source.count, factor)}
    if isinstance(source, sc.Poisson | sc.Diurnal):
        update["rate"] = source.rate * factor
    return source.model_copy(update=update)


def _refuse_recordings(scenario: sc.Scenario) -> None:
    """A recording, or an event naming one node, describes one cluster node by node: it has no smaller model.

    Thinning a recording's tasks would keep its node history (a loss, a late join) on a
    cluster it no longer loads alike, and a named event may name a node the model lacks.
    """
    for i, node in enumerate(scenario.cluster.nodes):
        if isinstance(node, NodeRecording):
            raise sc.ScenarioError(
                f"{scenario.source}: cluster.nodes.{i}: a live cluster's recording (kind: orchlive) replays that "
                "cluster node by node; it cannot be resized (record a smaller or larger cluster instead)"
            )
    for i, source in enumerate(scenario.workload):
        if isinstance(source, OrchliveRecording):
            raise sc.ScenarioError(
                f"{scenario.source}: workload.{i}: a live cluster's recording (kind: orchlive) cannot be resized"
            )
    for i, event in enumerate(scenario.events):
        if getattr(event, "node", None) is not None:
            raise sc.ScenarioError(
                f"{scenario.source}: events.{i}: {event.kind} names node {event.node!r}, which a resized "
                "cluster may not have; it cannot be resized"
            )


def scale_scenario(scenario: sc.Scenario, factor: float) -> sc.Scenario:
    """``scenario`` at ``factor`` times its size, at the same offered load.

    Node groups, synthetic task counts, arrival rates, event node counts and the
    autoscaler's bounds and step are multiplied by ``factor`` (counts rounded, at least 1).
    Trace nodes are sampled evenly within each machine shape; trace workloads are thinned
    (``sample``: every 1/factor-th job, same time window), except an openb trace in arrivals
    mode with ``load``, whose size already follows the cluster's GPUs.

    Raises:
        ScenarioError: for a factor that is not positive, trace nodes or jobs scaled up,
            node groups too small to scale (one node cannot become half a node), or a
            recording or an event naming a node (they describe one cluster node by node).
    """
    if not factor > 0:
        raise sc.ScenarioError(f"{scenario.source}: scale factor must be > 0, got {factor!r}")
    if factor == 1:
        return scenario
    _refuse_recordings(scenario)
    nodes = [
        _scaled_node(n, factor, f"{scenario.source}: cluster.nodes.{i}") for i, n in enumerate(scenario.cluster.nodes)
    ]
    before = sum(n.count for n in scenario.cluster.nodes if isinstance(n, sc.NodeGroup))
    after = sum(n.count for n in nodes if isinstance(n, sc.NodeGroup))
    if before and abs(after / before / factor - 1) > MAX_ROUNDING_ERROR:
        raise sc.ScenarioError(
            f"{scenario.source}: cluster.nodes: {before} node(s) cannot be scaled by {factor:g} "
            f"(rounding gives {after}, {after / before:.2f} of the size), so the load would not stay the same"
        )
    workload = [_scaled_source(s, factor, f"{scenario.source}: workload.{i}") for i, s in enumerate(scenario.workload)]
    events = [e.scaled(factor) for e in scenario.events]
    update: dict[str, Any] = {
        "cluster": scenario.cluster.model_copy(update={"nodes": nodes}),
        "workload": workload,
        "events": events,
    }
    if scenario.autoscaler is not None:
        a = scenario.autoscaler
        update["autoscaler"] = a.model_copy(
            update={
                "min_nodes": round(a.min_nodes * factor),
                "max_nodes": _count(a.max_nodes, factor),
                "step": _count(a.step, factor),
            }
        )
    return scenario.model_copy(update=update)
