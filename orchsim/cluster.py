"""Turn a scenario's cluster section into the initial ``NodeMatrix``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from orchsim import scenario as sc
from orchsim.scenario_workload import NodeRecording
from orchsim.scheduling import NodeMatrix
from orchsim.workload import evenly_spaced

__all__ = ["InitialCluster", "build_cluster", "recorded_node_events", "scenario_resources"]

_PREFERRED_ORDER = ("cpu", "memory", "gpu")


@dataclass(frozen=True)
class InitialCluster:
    """Node ids, capacities ``(R, N)`` and labels of the nodes present at time 0."""

    ids: list[str]
    capacity: np.ndarray
    labels: list[dict[str, str]]

    devices: tuple[str, ...] = ()  # resources backed by devices (NodeMatrix.track_devices)
    # Cluster events the node lists bring (a recording's joins, losses, drains), besides the scenario's.
    events: tuple[Any, ...] = ()

    def matrix(self, resources: tuple[str, ...]) -> NodeMatrix:
        """A fresh matrix of these nodes (one per policy run)."""
        nodes = NodeMatrix(resources)
        nodes.add_nodes(self.ids, self.capacity, labels=self.labels)
        for kind in self.devices:
            nodes.track_devices(kind)
        return nodes


def scenario_resources(scenario: sc.Scenario, node_trace_resources: set[str]) -> tuple[str, ...]:
    """All resource names any node may have: cpu, memory, gpu first, then the rest as met."""
    seen: list[str] = []
    groups: list[Iterable[str]] = [n.capacity for n in scenario.cluster.nodes if isinstance(n, sc.NodeGroup)]
    groups += [e.capacity_names() for e in scenario.events]
    if scenario.autoscaler is not None:
        groups.append(scenario.autoscaler.capacity)
    for capacity in groups:
        seen.extend(capacity)
    seen.extend(sorted(node_trace_resources))
    unique = list(dict.fromkeys(seen))
    ordered = [r for r in _PREFERRED_ORDER if r in unique] + [r for r in unique if r not in _PREFERRED_ORDER]
    return tuple(ordered)


def stratified_sample(
    capacities: dict[str, np.ndarray], fraction: float, labels: Sequence[dict[str, str]] = ()
) -> np.ndarray:
    """Indices of about ``fraction`` of the nodes, in their original order.

    Nodes are ordered by shape (labels, every capacity column, then position) and every
    ``1 / fraction``-th one is kept, so each shape keeps its share of the cluster within one
    node. A plain prefix would not: trace node lists are grouped by machine type.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    n = len(next(iter(capacities.values()))) if capacities else 0
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = [np.arange(n), *(capacities[r] for r in sorted(capacities, reverse=True))]
    if labels:
        keys.append(np.unique([repr(sorted(x.items())) for x in labels], return_inverse=True)[1])
    order = np.lexsort(keys)
    return np.sort(order[evenly_spaced(n, fraction)])


def _load_trace_nodes(
    group: sc.NodeTrace | NodeRecording, scenario: sc.Scenario
) -> tuple[list[str], dict[str, np.ndarray], list[dict[str, str]]]:
    """Ids, capacities and labels of a node trace (openb) or of a live cluster's recording."""
    from orchsim import traces  # only scenarios with trace files need the loaders

    if isinstance(group, NodeRecording):
        return traces.load_orchlive_nodes(scenario.resolve(group.path))
    ids, caps, labels = traces.load_openb_nodes(scenario.resolve(group.path))
    keep = np.arange(len(ids))
    if group.limit is not None:
        keep = keep[: group.limit]
    if group.sample is not None:
        chosen = stratified_sample({k: v[keep] for k, v in caps.items()}, group.sample, [labels[i] for i in keep])
        keep = keep[chosen]
    if group.shuffle:
        keep = keep[np.random.default_rng(np.random.SeedSequence([scenario.seed, 11])).permutation(len(keep))]
    return [ids[i] for i in keep], {k: v[keep] for k, v in caps.items()}, [labels[i] for i in keep]


def recorded_node_events(
    history: dict[str, list[tuple[float, str]]], capacity: dict[str, dict[str, float]], failure_timeout: float
) -> list[sc.ClusterEvent]:
    """A recording's node history as named cluster events, for the replay to live through it.

    Args:
        history: Per node, its joins, losses and drains in time order, ``(seconds, kind)``
            (``orchsim.traces.load_orchlive_node_history``), any number of each.
        capacity: Per node, its capacity (so that tasks only it could hold wait for its join).
        failure_timeout: The scenario's lease (s): a node declared lost at ``lost`` died
            that long before (its last heartbeat, but not before it last joined), and is
            declared lost at ``lost`` again.

    A node that joined after the first submission is drained away at 0 and joins then; a
    join while the node is in service (a worker registering again without a loss) changes
    nothing.
    """
    events: list[sc.ClusterEvent] = []
    for node, seen in history.items():
        state = "out" if seen and seen[0][1] == "joined" and seen[0][0] > 0 else "serving"
        since = 0.0  # the last join: a loss cannot date from before it
        if state == "out":
            events.append(sc.NodeDrain(kind="node_drain", at=0.0, node=node))
        for at, kind in seen:
            if kind == "joined" and state != "serving":
                events.append(sc.NodeJoin(kind="node_join", at=max(at, 0.0), node=node, capacity=capacity[node]))
                state, since = "serving", max(at, 0.0)
            elif kind == "lost" and state in ("serving", "drained"):  # a drained node's tasks die with it too
                events.append(sc.NodeLost(kind="node_lost", at=max(at - failure_timeout, since), node=node))
                state = "lost"
            elif kind == "drained" and state == "serving":
                events.append(sc.NodeDrain(kind="node_drain", at=max(at, 0.0), node=node))
                state = "drained"
    return events


def _recording_events(scenario: sc.Scenario, resources: tuple[str, ...]) -> tuple[Any, ...]:
    from orchsim import traces

    events: list[sc.ClusterEvent] = []
    for group in scenario.cluster.nodes:
        if isinstance(group, NodeRecording):
            folder = scenario.resolve(group.path)
            ids, caps, _ = traces.load_orchlive_nodes(folder)
            shape = {node: {r: float(caps[r][i]) for r in resources if r in caps} for i, node in enumerate(ids)}
            history = traces.load_orchlive_node_history(folder)
            happened = recorded_node_events(history, shape, scenario.cluster.failure_timeout)
            events += [e for e in happened if group.failures or not isinstance(e, sc.NodeLost)]
    return tuple(events)


def build_cluster(scenario: sc.Scenario) -> tuple[tuple[str, ...], InitialCluster]:
    """Resource names and the initial nodes of ``scenario``."""
    loaded = [
        _load_trace_nodes(group, scenario)
        for group in scenario.cluster.nodes
        if isinstance(group, sc.NodeTrace | NodeRecording)
    ]
    resources = scenario_resources(scenario, {r for _, caps, _ in loaded for r in caps})

    ids: list[str] = []
    columns: list[np.ndarray] = []
    labels: list[dict[str, str]] = []
    trace_iter = iter(loaded)
    for g, group in enumerate(scenario.cluster.nodes):
        if isinstance(group, sc.NodeTrace | NodeRecording):
            t_ids, caps, t_labels = next(trace_iter)
            ids.extend(t_ids)
            columns.append(np.array([caps.get(r, np.zeros(len(t_ids))) for r in resources], dtype=np.float64))
            labels.extend(t_labels)
            continue
        prefix = group.name or f"g{g}"
        ids.extend(f"{prefix}-{i}" for i in range(group.count))
        vec = np.array([group.capacity.get(r, 0.0) for r in resources], dtype=np.float64)
        columns.append(np.repeat(vec[:, None], group.count, axis=1))
        labels.extend(dict(group.labels) for _ in range(group.count))
    if len(set(ids)) != len(ids):
        raise sc.ScenarioError(
            f"{scenario.source}: cluster.nodes: node names collide; give each group a distinct 'name'"
        )
    capacity = np.concatenate(columns, axis=1)
    devices = tuple(kind for kind in scenario.cluster.devices if kind in resources)
    for kind in devices:
        _check_whole_devices(scenario, kind, capacity[resources.index(kind)], ids)
    return resources, InitialCluster(ids, capacity, labels, devices, _recording_events(scenario, resources))


def _check_whole_devices(scenario: sc.Scenario, kind: str, capacity: np.ndarray, ids: list[str]) -> None:
    """A device resource's capacity must be whole devices of 1000 on every node."""
    odd = np.flatnonzero(capacity % 1000 != 0)
    if len(odd):
        i = int(odd[0])
        raise sc.ScenarioError(
            f"{scenario.source}: cluster.nodes: node {ids[i]!r} has {kind} {capacity[i]:g}, not whole devices of "
            f"1000; {kind} is a device resource (cluster.devices: set [] to treat it as one divisible amount)"
        )
