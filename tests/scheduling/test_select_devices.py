"""``select`` on a matrix with GPU devices: the node AND the devices, always physically valid.

Every registered policy, on random clusters with 0-8 GPUs per node and random earlier
placements: the decision's devices fit (a share inside ONE GPU with room for it, whole
GPUs fully free), ``allocate`` accepts them, and a node is chosen whenever one fits.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from orchsim.scheduling import POLICIES, NodeMatrix, select
from orchsim.scheduling.fragmentation import typical_workload

GPU_SHARES = [100.0, 250.0, 460.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0]
WORKLOAD = typical_workload([4000.0, 8000.0, 16000.0], [500.0, 1000.0, 2000.0])


def params_of(name: str) -> dict[str, object]:
    return {"workload": WORKLOAD} if "workload" in POLICIES.spec(name).params else {}


@st.composite
def clusters(draw: st.DrawFn) -> tuple[NodeMatrix, list[float], dict[str, float]]:
    gpus = draw(st.lists(st.integers(0, 8), min_size=1, max_size=6))
    nodes = NodeMatrix.from_capacities(
        {"cpu": [64000.0] * len(gpus), "memory": [262144.0] * len(gpus), "gpu": [1000.0 * g for g in gpus]}
    )
    nodes.track_devices("gpu")
    earlier = draw(st.lists(st.sampled_from(GPU_SHARES), max_size=12))
    for share in earlier:  # fill the cluster a little, as earlier decisions would
        d = select(nodes, {"cpu": 1000, "gpu": share}, "first_fit", explain=False)
        if d.node is not None:
            nodes.allocate(d.node, {"cpu": 1000, "gpu": share}, d.devices)
    request = {"cpu": 2000.0, "gpu": draw(st.sampled_from(GPU_SHARES))}
    return nodes, gpus, request


def fits_by_hand(nodes: NodeMatrix, request: dict[str, float]) -> list[bool]:
    free = nodes.devices["gpu"].free
    share = request["gpu"]
    out = []
    for n in range(nodes.n_nodes):
        row = free[n, : nodes.devices["gpu"].counts[n]]
        gpu_ok = (row >= share).any() if share < 1000 else (row >= 1000).sum() >= share // 1000
        out.append(bool(gpu_ok and nodes.free[0, n] >= request["cpu"]))
    return out


@settings(max_examples=60, deadline=None)
@given(clusters())
def test_every_policy_picks_devices_that_fit(case: tuple[NodeMatrix, list[float], dict[str, float]]) -> None:
    nodes, _, request = case
    fits = fits_by_hand(nodes, request)
    for name in sorted(POLICIES):
        d = select(nodes, request, name, rng=np.random.default_rng(1), **params_of(name))
        assert (d.node is not None) == any(fits), (name, fits)
        if d.node is None:
            continue
        assert fits[d.node], name
        picked = d.devices["gpu"]
        expected = 1 if request["gpu"] < 1000 else int(request["gpu"] // 1000)
        assert len(picked) == expected == len(set(picked)), (name, picked)  # a share never spans two GPUs
        free = nodes.devices["gpu"].free[d.node]
        need = min(request["gpu"], 1000.0)
        assert all(free[g] >= need for g in picked), (name, picked, free)
        trial = nodes.copy()
        trial.allocate(d.node, request, d.devices)  # the matrix agrees
        assert trial.free[2, d.node] == nodes.free[2, d.node] - request["gpu"]


def test_rejections_name_devices_when_the_total_fits_but_no_gpu_does() -> None:
    nodes = NodeMatrix.from_capacities({"cpu": [8000.0], "gpu": [2000.0]})
    nodes.track_devices("gpu")
    nodes.allocate(0, {"gpu": 600}, {"gpu": (0,)})
    nodes.allocate(0, {"gpu": 600}, {"gpu": (1,)})
    decision = select(nodes, {"gpu": 600}, "bin_packing")  # 800 left in total, 400 per GPU
    assert decision.node is None
    assert decision.reason == "0/1 nodes fit: 1 insufficient gpu devices"
