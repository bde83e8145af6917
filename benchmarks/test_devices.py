"""``select`` with GPU devices (group ``devices``), beside ``select`` on scalar resources.

Issue target: one decision at 10,000 nodes x 8 GPUs stays within 2x of today's decision at
10,000 nodes x 4 scalar resources. Both are timed in the same run: the scalar one with
``timeit`` (median of repeats), the device one by pytest-benchmark; ``extra_info`` records
``scalar_median_s``, ``ratio`` (scalar / device: higher is better, target >= 0.5) and
whether it ``meets_target``. The request is half a GPU (it must fit inside ONE GPU), on a
cluster whose GPUs are randomly part-used, so the device fit and choice do real work.
"""

from __future__ import annotations

import timeit
from statistics import median
from typing import Any

import numpy as np
import pytest

from orchsim.scheduling import NodeMatrix, select

NODES, GPUS = 10_000, 8
TARGET_RATIO = 0.5


def scalar_cluster(rng: np.random.Generator) -> NodeMatrix:
    cap = {"cpu": rng.choice([8000.0, 32000.0], NODES), "memory": rng.choice([16384.0, 131072.0], NODES)}
    cap |= {"gpu": np.full(NODES, GPUS * 1000.0), "disk": np.full(NODES, 200_000.0)}
    nodes = NodeMatrix.from_capacities(cap)
    for i in range(NODES):
        nodes.allocate(i, {"cpu": float(rng.integers(0, 4000)), "memory": float(rng.integers(0, 8000))})
    return nodes


def device_cluster(rng: np.random.Generator) -> NodeMatrix:
    nodes = scalar_cluster(rng)
    nodes = NodeMatrix.from_capacities(
        {r: nodes.capacity[i].tolist() for i, r in enumerate(nodes.resources)}, ids=list(nodes.ids)
    )
    nodes.track_devices("gpu")
    for i in range(NODES):
        for gpu in rng.choice(GPUS, size=int(rng.integers(0, GPUS)), replace=False):
            share = float(rng.choice([250.0, 500.0, 750.0, 1000.0]))
            nodes.allocate(i, {"gpu": share}, {"gpu": (int(gpu),)})
    return nodes


@pytest.mark.benchmark(group="devices")
def test_select_with_gpu_devices_beside_scalar_select(benchmark: Any) -> None:
    rng = np.random.default_rng(3)
    scalar = scalar_cluster(rng)
    devices = device_cluster(np.random.default_rng(3))
    scalar_request = scalar.request_vector({"cpu": 500, "memory": 256, "gpu": 500, "disk": 1024})
    device_request = devices.request_vector({"cpu": 500, "memory": 256, "gpu": 500, "disk": 1024})
    times = timeit.repeat(lambda: select(scalar, scalar_request, "bin_packing"), number=200, repeat=7)
    scalar_median = median(times) / 200
    decision = benchmark(select, devices, device_request, "bin_packing")
    assert decision.node is not None and len(decision.devices["gpu"]) == 1
    ratio = scalar_median / benchmark.stats.stats.median
    benchmark.extra_info.update(
        {
            "scalar_median_s": scalar_median,
            "baseline": "scalar select, 10k x 4",
            "ratio": ratio,
            "target_ratio": TARGET_RATIO,
            "meets_target": ratio >= TARGET_RATIO,
        }
    )
