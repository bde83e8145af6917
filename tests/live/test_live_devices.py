"""Issue 11, live: GPUs as devices on real workers, placed as the simulator places them.

Two process workers of 4 GPUs each (``ORCH_DEVICES=gpu=4``; ``--resource gpu=4000``) receive fractional and
whole-GPU tasks, one at a time. For each policy the test checks that

* the master's decisions (node and GPU indices, from ``GET /api/v1/tasks/{id}``) are the ones
  the shared core makes on the same capacities in the same order, with the master's seed
  stream (``random_streams(seed)[0]``), as ``test_parity.py`` does for nodes alone;
* no GPU ever holds more than 1000 milli-GPU in the node ledgers (read from etcd after every
  placement) and the API's per-device view says the same;
* each task saw exactly its assignment: it prints its environment, and its log (the logs
  endpoint) has ``CUDA_VISIBLE_DEVICES`` and ``ORCH_DEVICES`` naming the master's devices;
* finishing gives every share back.

The tasks have no ``image`` (process workers need none; issue 18).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from orchlive import transitions
from orchlive.models import Ledger
from orchlive.store import Store
from orchsim.scheduling import NodeMatrix, PreparedPolicy, decide
from orchsim.scheduling.queueing import random_streams

pytestmark = pytest.mark.live

SEED = 7
WORKERS = {"w1": (8000, 16384), "w2": (6000, 16384)}  # cpu millicores, memory MiB; 4 GPUs each
# (cpu, memory, milli-GPU): halves, quarters, odd shares, whole GPUs and a pair.
REQUESTS = [
    (500, 256, 500),
    (1000, 512, 1000),
    (250, 128, 250),
    (500, 256, 2000),
    (300, 128, 700),
    (200, 128, 500),
    (800, 512, 1000),
    (400, 256, 300),
    (600, 256, 500),
    (100, 64, 250),
]
# FGD's target workload, given to the master as a policy parameter (the simulator learns it
# from its workload; a live master cannot know its future tasks).
WORKLOAD = [
    {"cpu": 500, "gpu": 500, "weight": 0.5},
    {"cpu": 1000, "gpu": 1000, "weight": 0.3},
    {"cpu": 300, "gpu": 250, "weight": 0.2},
]
POLICIES = {
    "bin_packing": {},
    "gpu_best_fit": {},
    "fgd": {"workload": WORKLOAD},
    "random": {},
}


def simulated(policy: str) -> list[tuple[str, list[int]]]:
    """Node and GPU indices of each request, decided by the shared core on the same capacities."""
    names = sorted(WORKERS)
    nodes = NodeMatrix.from_capacities(
        {
            "cpu": [WORKERS[n][0] for n in names],
            "memory": [WORKERS[n][1] for n in names],
            "gpu": [4000] * len(names),
        },
        ids=names,
    )
    nodes.track_devices("gpu")
    prepared = PreparedPolicy(policy, rng=random_streams(SEED)[0], params=POLICIES[policy])
    chosen = []
    for cpu, memory, gpu in REQUESTS:
        request = {"cpu": cpu, "memory": memory, "gpu": gpu}
        decision = decide(nodes, request, prepared)
        assert decision.node_id is not None, decision.reason
        nodes.allocate(decision.node, request, decision.devices)
        chosen.append((decision.node_id, list(decision.devices["gpu"])))
    return chosen


def _policy_flags(policy: str) -> list[str]:
    if not POLICIES[policy]:
        return []
    shapes = ", ".join("{" + ", ".join(f"{k}: {v}" for k, v in s.items()) + "}" for s in WORKLOAD)
    return ["--policy-param", f"workload=[{shapes}]"]


async def _ledgers(endpoint: str, prefix: str) -> dict[str, dict[str, Any]]:
    async with Store(endpoint, prefix) as store:
        entries, _ = await store.range(store.keys.allocs())
        return {store.keys.last(e.key): e.json() for e in entries}


async def _allocations(endpoint: str, prefix: str, nodes: list[str]) -> dict[str, Ledger]:
    """What each node holds: its ledger of placements minus its releases (``orchlive.releases``)."""
    async with Store(endpoint, prefix) as store:
        return {node: await transitions.read_allocation(store, node) for node in nodes}


def _device_load(ledger: dict[str, Any]) -> dict[int, float]:
    """Milli-GPU per device, summed from a raw ledger's grants."""
    load: dict[int, float] = {}
    for grant in ledger.get("devices", {}).get("gpu", {}).values():
        for i in grant["ids"]:
            load[i] = load.get(i, 0.0) + grant["share"]
    return load


def _task_env(log: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in log.splitlines() if "=" in line)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_gpu_tasks_get_the_devices_the_simulator_picks(policy: str, cluster_factory, etcd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(policy=policy, seed=SEED)
    cluster.start_master(extra=_policy_flags(policy))
    # Two ways to say 4 GPUs: ORCH_DEVICES, and a gpu capacity (read as whole GPUs, as the simulator does).
    cluster.start_worker("w1", cpu=WORKERS["w1"][0], memory=WORKERS["w1"][1], env={"ORCH_DEVICES": "gpu=4"})
    cluster.start_worker("w2", cpu=WORKERS["w2"][0], memory=WORKERS["w2"][1], resources={"gpu": 4000})
    nodes = cluster.nodes()
    assert {n: nodes[n]["devices"] for n in WORKERS} == {"w1": {"gpu": 4}, "w2": {"gpu": 4}}
    assert nodes["w1"]["capacity"]["gpu"] == 4000  # derived: 4 GPUs x 1000 milli-GPU

    go = tmp_path / f"go-{policy}"
    wait = f"env; while [ ! -e {go} ]; do sleep 0.05; done"
    ids, live = [], []
    for i, (cpu, memory, gpu) in enumerate(REQUESTS):
        body = {"name": f"t{i}", "command": ["sh", "-c", wait], "env": {"PATH": "/usr/bin:/bin"}}
        task = cluster.submit(body | {"resources": {"cpu": cpu, "memory": memory, "gpu": gpu}})
        placed = cluster.wait_for_state(task["id"], {"ASSIGNED", "RUNNING"}, timeout=15)
        ids.append(task["id"])
        live.append((placed["node_id"], placed["devices"]["gpu"]))
        for ledger in asyncio.run(_ledgers(etcd.endpoint, cluster.prefix)).values():
            assert all(load <= 1000 + 1e-6 for load in _device_load(ledger).values()), ledger
    assert live == simulated(policy)

    # The API's per-device view: each task where the master put it, with its share.
    view = cluster.nodes()
    for task_id, (node, picked), (_, _, gpu) in zip(ids, live, REQUESTS, strict=True):
        share = gpu if gpu < 1000 else 1000
        for i in picked:
            device = view[node]["device_use"]["gpu"][i]
            assert device["tasks"][task_id] == share
            assert device["used"] == sum(device["tasks"].values()) <= 1000

    go.touch()
    for task_id, (_, picked), (_, _, gpu) in zip(ids, live, REQUESTS, strict=True):
        cluster.wait_for_state(task_id, {"COMPLETED"}, timeout=20)
        env = _task_env(cluster.http.get(f"/api/v1/tasks/{task_id}/logs").text)
        indices = ",".join(str(i) for i in picked)
        assert env["CUDA_VISIBLE_DEVICES"] == indices
        assert env["ORCH_DEVICES"] == (f"gpu={indices}" if gpu >= 1000 else f"gpu={indices}:{gpu}")
    # Finishing gave every share back.
    cluster.wait_until(
        lambda: all(not n["tasks"] for n in cluster.nodes().values()), timeout=10, what="ledgers emptied"
    )
    ledgers = asyncio.run(_ledgers(etcd.endpoint, cluster.prefix))
    assert all("devices" not in ledger for ledger in ledgers.values()), ledgers
    held = asyncio.run(_allocations(etcd.endpoint, cluster.prefix, list(ledgers)))
    assert all(not ledger.count and not any(ledger.allocated.values()) for ledger in held.values()), held
