"""Gangs in the live cluster: all replicas at once or none, placed where the shared core places them, kept whole.

A gang of ``k`` is ``k`` task records (replica 0's id is the gang's); the master asks the
core (``orchsim.scheduling.gangs.place_gang`` through ``PassExtensions``) and commits every
replica in one transaction, or none.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from orchlive.limits import MAX_REPLICAS
from orchsim.scheduling import NodeMatrix, PreparedPolicy
from orchsim.scheduling.gangs import place_gang

pytestmark = pytest.mark.live

WORKERS = {"w1": 4000, "w2": 8000, "w3": 6000}  # cpu millicores; memory 8192 MiB each


def _gang(name: str, replicas: int, cpu: int, command: list[str], **extra: Any) -> dict[str, Any]:
    body = {"name": name, "command": command, "resources": {"cpu": cpu, "memory": 64}, "replicas": replicas}
    return body | extra


def _replicas(cluster: Any, gang: dict[str, Any]) -> list[dict[str, Any]]:
    """Every replica of a gang, in replica order (ids ``<gang>``, ``<gang>-1``, ...)."""
    ids = [gang["id"]] + [f"{gang['id']}-{i}" for i in range(1, gang["replicas"])]
    return [cluster.task(tid) for tid in ids]


def expected_nodes(policy: str, replicas: int, cpu: int, held: dict[str, int]) -> list[str]:
    """The core's gang decision on the same capacities, with ``held`` cpu already used per node."""
    names = sorted(WORKERS)
    nodes = NodeMatrix.from_capacities(
        {"cpu": [WORKERS[n] for n in names], "memory": [8192] * 3, "gpu": [0] * 3}, ids=names
    )
    for name, used in held.items():
        nodes.allocate(names.index(name), np.array([float(used), 64.0, 0.0]))
    placements = place_gang(nodes, np.array([float(cpu), 64.0, 0.0]), (replicas, replicas), PreparedPolicy(policy))
    return [names[node] for node, _ in placements]


@pytest.mark.parametrize("policy", ["bin_packing", "spread"])
def test_a_gang_lands_where_the_core_places_it(cluster_factory: Any, policy: str) -> None:
    cluster = cluster_factory(policy=policy)
    cluster.start_master()
    for name, cpu in WORKERS.items():
        cluster.start_worker(name, cpu=cpu, memory=8192)
    first = cluster.submit({"name": "single", "command": ["sleep", "600"], "resources": {"cpu": 3000, "memory": 64}})
    first = cluster.wait_for_state(first["id"], {"RUNNING"}, timeout=20)
    gang = cluster.submit(_gang("train", 4, 2000, ["sleep", "600"]))
    assert gang["gang"] == gang["id"] and gang["replicas"] == 4
    cluster.wait_until(
        lambda: all(r["state"] == "RUNNING" for r in _replicas(cluster, gang)), timeout=20, what="the gang running"
    )
    live = [r["node_id"] for r in _replicas(cluster, gang)]
    expected = expected_nodes(policy, 4, 2000, {first["node_id"]: 3000})
    assert live == expected, (live, expected)
    assert len(set(live)) > 1  # the test can tell: the replicas span nodes
    cluster.stop()
