"""Devices (per-GPU free shares), FGD's fragmentation measure and the FGD paper's GPU policies.

Worked values follow the artifact hkust-adsl/kubernetes-scheduler-simulator: the
fragmentation cases are its own pkg/utils/frag_test.go cases, the packing cases its
pkg/simulator/plugin/gpu_packing_score_test.go.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchsim.scheduling import CapacityError, NodeMatrix, PolicyRegistry, select
from orchsim.scheduling.devices import DeviceNeed, DeviceSet
from orchsim.scheduling.fragmentation import TargetWorkload, fragmentation, fragmentation_after, typical_workload
from orchsim.scheduling.gpu_policies import (
    choose_best_fit,
    choose_fgd,
    choose_random,
    fgd,
    gpu_best_fit,
    gpu_clustering,
    gpu_dot_product,
    gpu_packing,
    register_gpu_policies,
)

# frag_test.go's TestingGenerateGetTypicalPods / ...WithNonGpu: "cpu milli count model percent" ("-" any model).
ARTIFACT_PODS = """6000 465 1 - 9.33; 8000 440 1 2080 9.15; 8000 475 1 T4 8.76; 8000 440 1 P100 8.72;
2000 465 1 - 8.68; 12000 900 1 - 8.65; 4000 900 1 - 8.43; 16000 678 1 T4 8.36; 8000 500 1 - 8.29;
6000 511 1 - 8.11; 14000 1000 2 2080 .54; 4000 1000 1 2080 .43; 32000 1000 2 T4 .43; 16000 1000 1 V100M16 .40;
64000 1000 2 - .40; 10000 1000 2 - .40; 11400 1000 1 T4 .36; 16000 1000 1 T4 .36; 4000 1000 2 - .36;
14000 1000 2 V100M16 .36; 8000 1000 4 - .36; 16000 1000 2 - .32; 2000 1000 1 T4 .32; 6000 1000 1 - .32;
4000 1000 1 - .32; 5000 1000 1 - .32; 32000 1000 4 V100M16 .32; 32000 1000 2 - .32; 24000 1000 8 2080 .32;
40000 1000 4 - .29; 32000 1000 8 - .29; 32000 1000 1 T4 .29; 16000 1000 1 - .25; 7000 1000 1 V100M16 .25;
24000 1000 1 T4 .25"""
ARTIFACT_PODS_NON_GPU = """15700 1000 1 - 28.69; 11900 1000 1 - 18.93; 11400 1000 1 - 12.27; 1000 0 0 - 7.36;
18710 1000 1 - 4.85; 8200 1000 1 - 3.79; 16400 1000 1 - 3.31; 9810 1000 1 - 1.97; 15200 1000 1 - 1.87;
11200 1000 1 - 1.81; 14200 1000 1 - 1.76; 12000 0 0 - 1.65; 14900 1000 1 - 1.39; 60200 1000 4 - 1.23;
64200 1000 8 - 1.07; 32200 1000 4 - 1.01; 17400 1000 2 - .91; 30200 1000 2 - .69; 16000 1000 1 - .64;
15000 1000 1 - .59; 64000 1000 8 - .53; 15000 0 0 - .53; 11910 1000 1 - .53; 120200 1000 8 - .48;
11300 1000 1 - .37; 30000 1000 2 - .32; 9800 1000 1 - .32; 8000 1000 1 - .32; 2000 1000 1 - .27;
2000 80 1 - .27; 1000 1000 1 - .27"""


def artifact_workload(text: str) -> TargetWorkload:
    rows = [r.split() for r in text.replace("\n", " ").split(";")]
    return TargetWorkload(
        cpu=[float(r[0]) for r in rows],
        share=[float(r[1]) for r in rows],
        count=[int(r[2]) for r in rows],
        weight=[float(r[4]) / 100 for r in rows],
        gpu_type=["" if r[3] == "-" else r[3] for r in rows],
    )


def devices_with(free: list[list[float]]) -> DeviceSet:
    """A DeviceSet whose node n has devices with exactly the free shares free[n] (by fractional tasks)."""
    devices = DeviceSet.from_counts([len(row) for row in free])
    for n, row in enumerate(free):
        for d, left in enumerate(row):
            if left < 1000:
                devices.allocate(n, DeviceNeed(1000.0 - left, 1) if left > 0 else DeviceNeed(1000.0, 1), [d])
    return devices


def cluster(cpu_free: list[float], free: list[list[float]], model: str = "1080") -> tuple[NodeMatrix, DeviceSet]:
    n = len(free)
    nodes = NodeMatrix.from_capacities(
        {"cpu": [96000.0] * n, "gpu": [1000.0 * len(r) for r in free]}, labels=[{"gpu_model": model}] * n
    )
    for i, c in enumerate(cpu_free):
        nodes.allocate(i, {"cpu": 96000.0 - c, "gpu": 1000.0 * len(free[i]) - sum(free[i])})
    return nodes, devices_with(free)


# ---------------------------------------------------------------------------- device model
@pytest.mark.parametrize(
    ("total", "need"),
    [
        (0, (0.0, 0)),
        (460, (460.0, 1)),
        (999, (999.0, 1)),
        (1000, (1000.0, 1)),
        (2000, (1000.0, 2)),
        (8000, (1000.0, 8)),
    ],
)
def test_need_from_total(total: float, need: tuple[float, int]) -> None:
    assert DeviceNeed.from_total(total) == need


@pytest.mark.parametrize("total", [1500, -1, 2500.5])
def test_need_that_no_device_layout_can_hold_is_refused(total: float) -> None:
    with pytest.raises(ValueError):
        DeviceNeed.from_total(total)


def test_layout_padding_totals_and_growth() -> None:
    d = DeviceSet.from_counts([2, 4, 0])
    assert d.free.shape == (3, 4)
    assert d.free[0].tolist() == [1000, 1000, 0, 0]  # padding: capacity 0, free 0
    assert d.valid.tolist()[0] == [True, True, False, False]
    assert d.capacity_total.tolist() == [2000, 4000, 0]
    d.allocate(1, DeviceNeed(300.0, 1), [2])
    assert d.free_total.tolist() == [2000, 3700, 0] and d.allocated_total.tolist() == [0, 300, 0]
    before = d.free.copy()
    d.add_nodes([8] * 20)  # grows both axes
    assert d.free.shape == (23, 8) and np.array_equal(d.free[:3, :4], before)
    mapping = d.remove_nodes(range(3, 23))
    assert mapping[:3].tolist() == [0, 1, 2] and d.n_nodes == 3 and d.free[1, 2] == 700


def test_fit_for_fraction_and_whole_devices_and_rejection_reason() -> None:
    # node 0: 500 + 500 free = 1000 in total, but no single device has 600;
    # node 1: one fully free GPU of four; node 2: no GPUs.
    d = devices_with([[500, 500], [1000, 0, 300, 0], []])
    assert d.fits(DeviceNeed(600.0, 1)).tolist() == [False, True, False]
    assert d.fits(DeviceNeed(1000.0, 2)).tolist() == [False, False, False]
    assert d.fits(DeviceNeed(0.0, 0)).tolist() == [True, True, True]
    reason, passes = d.rejection_check(DeviceNeed(600.0, 1))
    assert reason == "insufficient gpu devices" and passes.tolist() == [False, True, False]
    assert d.could_ever_fit(DeviceNeed(1000.0, 2)).tolist() == [True, True, False]


def test_device_choice_rules() -> None:
    d = devices_with([[700, 300, 1000, 300, 1000]])
    assert d.choose_best_fit(0, DeviceNeed(250.0, 1)) == (1,)  # tightest 300, lowest index on the tie with 3
    assert d.choose_best_fit(0, DeviceNeed(400.0, 1)) == (0,)
    assert d.choose_best_fit(0, DeviceNeed(1000.0, 2)) == (2, 4)  # whole: lowest fully free
    assert d.choose_best_fit(0, DeviceNeed(1000.0, 3)) == ()
    drawn = {d.choose_random(0, DeviceNeed(250.0, 1), np.random.default_rng(s))[0] for s in range(200)}
    assert drawn == {0, 1, 2, 3, 4}
    drawn = {d.choose_random(0, DeviceNeed(800.0, 1), np.random.default_rng(s))[0] for s in range(200)}
    assert drawn == {2, 4}
    assert d.choose_by_score(0, DeviceNeed(400.0, 1), np.array([1.0, 9.0, 5.0, 9.0, 5.0])) == (2,)  # 1, 3 unfit


@pytest.mark.parametrize(
    ("need", "devices", "message"),
    [
        (DeviceNeed(300.0, 1), [0, 1], "given 2"),
        (DeviceNeed(1000.0, 2), [1, 1], "twice"),
        (DeviceNeed(300.0, 1), [7], "does not exist"),
        (DeviceNeed(600.0, 1), [0], "500 free"),
        (DeviceNeed(1000.0, 1), [0], "500 free"),  # a whole device must be fully free
        (DeviceNeed(300.0, 2), [1, 2], "never spans"),
    ],
)
def test_allocate_refuses_and_changes_nothing(need: DeviceNeed, devices: list[int], message: str) -> None:
    d = devices_with([[500, 1000, 1000]])
    before = (d.free.copy(), d.classes.copy(), d.max_free.copy(), d.n_whole.copy())
    with pytest.raises(CapacityError, match=message):
        d.allocate(0, need, devices)
    after = (d.free, d.classes, d.max_free, d.n_whole)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_release_refuses_above_capacity_or_without_a_task() -> None:
    d = devices_with([[500, 1000]])
    with pytest.raises(CapacityError, match="exceeds its capacity"):
        d.release(0, DeviceNeed(600.0, 1), [0])
    d.allocate(0, DeviceNeed(500.0, 1), [0])  # device 0 now full, from two fractional tasks
    with pytest.raises(CapacityError, match="no task"):
        d.release(0, DeviceNeed(1000.0, 1), [0])  # no whole-GPU task was ever placed
    d.release(0, DeviceNeed(500.0, 1), [0])
    d.release(0, DeviceNeed(500.0, 1), [0])
    assert d.free[0].tolist() == [1000, 1000] and d.n_whole[0] == 2 and d.classes[0, 0] == 0


# ---------------------------------------------------------------------------- fragmentation
@pytest.mark.parametrize(
    ("pods", "cpu", "free", "model", "expected"),
    [
        (ARTIFACT_PODS, 1000, [200, 1000, 1000, 500], "1080", 2566.62),
        (ARTIFACT_PODS, 1000, [1000] * 4, "1080", 3802.40),
        (ARTIFACT_PODS, 1000, [1000] * 8, "1080", 7604.80),
        (ARTIFACT_PODS.split(";")[0], 1000, [200, 1000, 1000, 500], "1080", 251.91),  # Q4: lacks cpu: all 2700
        (ARTIFACT_PODS_NON_GPU, 64000, [1000] * 8, "P100", 887.20),
        (ARTIFACT_PODS_NON_GPU, 32000, [1000] * 4 + [0] * 4, "P100", 554.4),
        (ARTIFACT_PODS_NON_GPU, 0, [1000] * 4 + [0] * 4, "P100", 4000),
    ],
)
def test_fragmentation_matches_the_artifact(
    pods: str, cpu: float, free: list[float], model: str, expected: float
) -> None:
    workload = artifact_workload(pods)
    got = fragmentation(np.array([cpu], float), np.array([free], float), workload, workload.access([model], 1))
    assert got[0] == pytest.approx(expected, abs=0.01)


def test_fragmentation_worked_by_hand() -> None:
    # One shape, 500 milli-GPU + 1 core, weight 1. Node [800, 400] with 2 cores free:
    # it hosts the shape (800 >= 500, 2000 >= 1000); the 400 device is too small for it: F = 400.
    # Without cpu (500 free < 1000) it cannot host the shape: every free milli-GPU counts, F = 1200.
    workload = TargetWorkload.from_shapes([{"cpu": 1000, "gpu": 500, "weight": 1.0}])
    free = np.array([[800.0, 400.0], [800.0, 400.0]])
    assert fragmentation(np.array([2000.0, 500.0]), free, workload).tolist() == [400.0, 1200.0]


def test_typical_workload_keeps_the_popular_shapes_and_renormalises() -> None:
    # 10 tasks: 5 x (1 core, 0.5 GPU), 3 x (2 cores, 1 GPU), 1 x (4 cores, 2 GPUs), 1 x (1 core, no GPU).
    # 95% of 10 = 9.5 tasks: 5 -> 8 -> 9 -> 10 covers it with all four shapes (the last tie goes to
    # the larger cpu first, the artifact's reversed Less). At 80%: 5 + 3 = 8 >= 8, weights 5/8, 3/8.
    cpu = [1000] * 5 + [2000] * 3 + [4000, 1000]
    gpu = [500] * 5 + [1000] * 3 + [2000, 0]
    w = typical_workload(cpu, gpu)
    assert w.cpu.tolist() == [1000, 2000, 4000, 1000] and w.count.tolist() == [1, 1, 2, 0]
    assert w.weight.tolist() == [0.5, 0.3, 0.1, 0.1]
    w = typical_workload(cpu, gpu, popularity_threshold=80)
    assert w.share.tolist() == [500, 1000] and w.weight.tolist() == [5 / 8, 3 / 8]


# ---------------------------------------------------------------------------- policies, worked
def test_gpu_best_fit_and_dot_product_worked() -> None:
    # 32 cores and [1000, 1000, 500, 0] free (2500 milli-GPU); request 4 cores + 500 milli-GPU.
    nodes, devices = cluster([32000], [[1000, 1000, 500, 0]])
    request = nodes.request_vector({"cpu": 4000, "gpu": 500})
    # best fit: left = 0.5 * 28000/128000 + 0.5 * 2000/8000 = 0.109375 + 0.125 = 0.234375 -> (1 - left) * 100
    assert gpu_best_fit(nodes, request, devices=devices)[0] == pytest.approx(76.5625)
    # dot = (32000/128000)(4000/128000) + (2500/8000)(500/8000) = 0.0078125 + 0.01953125 = 0.02734375
    # score = (1 - dot / 2) * 100 = 98.6328125; quantised (Go's int64): 98
    assert gpu_dot_product(nodes, request, devices=devices)[0] == pytest.approx(98.6328125)
    assert gpu_dot_product(nodes, request, devices=devices, quantize=True)[0] == 98


@pytest.mark.parametrize(
    ("free", "gpu", "expected"),
    [
        ([200, 1000, 1000, 500], 2000, 48),  # artifact case 2: two free GPUs of a used node: 50 - 2
        ([1000] * 4, 2000, 29),  # artifact case 3: idle node: max(33 - 4, 4)
        ([1000] * 8, 2000, 25),  # artifact case 3: max(33 - 8, 8)
        ([200, 1000, 1000, 500], 200, 98),  # case 1: tightest 200 left: 100 - (200 * 100 // 1000) // 10
        ([200, 1000, 1000, 550], 500, 95),  # case 1: tightest 550: 100 - (55 // 10) = 95
        ([200, 1000, 1000, 500], 600, 49),  # no shared GPU fits: a fully free one: 50 - 1
        ([200, 1000, 1000, 500], 0, 0),  # no GPU asked: 0 everywhere
    ],
)
def test_gpu_packing_tiers(free: list[float], gpu: float, expected: float) -> None:
    nodes, devices = cluster([90000], [free])
    assert gpu_packing(nodes, nodes.request_vector({"cpu": 100, "gpu": gpu}), devices=devices)[0] == expected


def test_gpu_clustering_tiers() -> None:
    # node 0 holds fractional tasks only, node 1 a whole-GPU task, node 2 nothing; 8-GPU scale.
    nodes, devices = cluster([90000] * 3, [[1000] * 4] * 3)
    devices.allocate(0, DeviceNeed(800.0, 1), [0])
    devices.allocate(0, DeviceNeed(500.0, 1), [3])  # node 0 free 2700
    devices.allocate(1, DeviceNeed(1000.0, 1), [0])  # node 1 free 3000
    fraction = gpu_clustering(nodes, nodes.request_vector({"gpu": 200}), devices=devices)
    # node 0: 25 * (8000 - 2700) / 8000 = 16.5625 + 75 (only its tag); node 1: 15.625 + 0 (other tags only);
    # node 2: 25 * 4000 / 8000 = 12.5 + 25 (no tag)
    assert fraction.tolist() == [91.5625, 15.625, 37.5]
    one_gpu = gpu_clustering(nodes, nodes.request_vector({"gpu": 1000}), devices=devices, quantize=True)
    assert one_gpu.tolist() == [16, 90, 37]  # integer division first: 16 + 0, 15 + 75, 12 + 25


def test_fgd_worked_and_its_device_differs_from_best_fit() -> None:
    # One shape (1 core, 500 milli-GPU, weight 1); request 300 milli-GPU, no cpu.
    # node 0 [800, 400]: F = 400 (the 400 device is too small for 500).
    #   on device 0 -> [500, 400]: F = 400, delta 0 -> 100 * sigmoid(0) = 50
    #   on device 1 -> [800, 100]: F = 100, delta 300 -> 100 * sigmoid(0.3) = 57.444...
    # node 1 [1000, 600]: F = 0; on device 0 -> [700, 600]: F = 0, 50; on device 1 -> [1000, 300]:
    #   F = 300, delta -300 -> 100 * sigmoid(-0.3) = 42.555...; the node scores its best device: 50.
    nodes, devices = cluster([90000, 90000], [[800, 400], [1000, 600]])
    workload = [{"cpu": 1000, "gpu": 500, "weight": 1.0}]
    request = nodes.request_vector({"gpu": 300})
    scores = fgd(nodes, request, workload=workload, devices=devices)
    assert scores == pytest.approx([100 / (1 + math.exp(-0.3)), 50.0])
    assert choose_fgd(nodes, request, 0, workload=workload, devices=devices) == (1,)
    assert choose_fgd(nodes, request, 1, workload=workload, devices=devices) == (0,)
    assert choose_best_fit(nodes, request, 1, devices=devices) == (1,)  # best fit takes the tight 600 device
    assert choose_random(nodes, request, 1, rng=np.random.default_rng(3), devices=devices) in {(0,), (1,)}


def test_fgd_scores_only_feasible_nodes_and_respects_gpu_models() -> None:
    nodes, devices = cluster([90000, 90000], [[800, 400], [1000, 600]])
    request = nodes.request_vector({"gpu": 300})
    workload = [{"cpu": 1000, "gpu": 500, "weight": 1.0}]
    full = fgd(nodes, request, workload=workload, devices=devices)
    assert fgd(nodes, request, workload=workload, devices=devices, feasible=np.array([False, True])).tolist() == [
        0.0,
        full[1],
    ]
    # A shape only for T4 GPUs cannot use these 1080 nodes: all their free GPU is fragment, before
    # and after alike (1200 -> 900 on node 0: delta 300, whichever device), so both nodes score sigmoid(0.3).
    t4 = [{"cpu": 1000, "gpu": 500, "weight": 1.0, "gpu_type": "T4"}]
    assert fgd(nodes, request, workload=t4, devices=devices) == pytest.approx([100 / (1 + math.exp(-0.3))] * 2)


def test_quantize_truncates_and_ties_go_to_the_lowest_index_unless_random() -> None:
    # gpu_best_fit: node 0 76.5625 (worked above); node 1 has 1 core less free (31 cores):
    # left = 0.5 * 27000/128000 + 0.125 = 0.23046875 -> 76.953125. Both truncate to 76.
    nodes, devices = cluster([32000, 31000], [[1000, 1000, 500, 0], [1000, 1000, 500, 0]])
    request = nodes.request_vector({"cpu": 4000, "gpu": 500})
    assert gpu_best_fit(nodes, request, devices=devices).argmax() == 1
    assert gpu_best_fit(nodes, request, devices=devices, quantize=True).tolist() == [76.0, 76.0]
    # The artifact's scheduler (mental2008/kubernetes selectHost) keeps the smallest node name: node 0.
    registry = register_gpu_policies(PolicyRegistry())
    assert select(nodes, request, "gpu_best_fit", registry=registry, devices=devices, quantize=True).node == 0
    # Upstream kube-scheduler draws among the tied nodes: each wins about half the time.
    wins = [
        gpu_best_fit(nodes, request, devices=devices, quantize=True, random_ties=True, rng=np.random.default_rng(s))
        for s in range(400)
    ]
    assert 150 < sum(int(w.argmax()) for w in wins) < 250
    assert all(np.array_equal(np.floor(w), [76.0, 76.0]) for w in wins)
    with pytest.raises(ValueError, match="rng"):
        gpu_best_fit(nodes, request, devices=devices, quantize=True, random_ties=True)
    with pytest.raises(ValueError, match="quantize"):
        gpu_best_fit(nodes, request, devices=devices, random_ties=True, rng=np.random.default_rng(0))


def test_registered_into_a_registry_and_selected() -> None:
    nodes, devices = cluster([90000, 90000], [[800, 400], [1000, 600]])
    registry = register_gpu_policies(PolicyRegistry())
    assert sorted(registry) == ["fgd", "gpu_best_fit", "gpu_clustering", "gpu_dot_product", "gpu_packing"]
    workload = [{"cpu": 1000, "gpu": 500, "weight": 1.0}]
    decision = select(nodes, {"gpu": 300}, "fgd", registry=registry, devices=devices, workload=workload)
    assert decision.node == 0


# ---------------------------------------------------------------------------- properties
@st.composite
def device_states(draw: st.DrawFn) -> tuple[DeviceSet, list[tuple[int, DeviceNeed, tuple[int, ...]]]]:
    counts = draw(st.lists(st.integers(0, 8), min_size=1, max_size=6))
    devices = DeviceSet.from_counts(counts)
    placed = []
    for _ in range(draw(st.integers(0, 25))):
        need = draw(needs())
        node = draw(st.integers(0, len(counts) - 1))
        chosen = devices.choose_best_fit(node, need)
        if chosen:
            devices.allocate(node, need, chosen)
            placed.append((node, need, chosen))
    return devices, placed


def needs() -> st.SearchStrategy[DeviceNeed]:
    fraction = st.integers(1, 999).map(lambda m: DeviceNeed(float(m), 1))
    whole = st.integers(1, 8).map(lambda k: DeviceNeed(1000.0, k))
    return st.one_of(fraction, whole)


@settings(max_examples=150, deadline=None)
@given(state=device_states(), need=needs(), seed=st.integers(0, 2**16))
def test_chosen_devices_always_fit_and_a_fraction_never_spans_two(state, need: DeviceNeed, seed: int) -> None:
    devices, _ = state
    fits = devices.fits(need)
    for node in range(devices.n_nodes):
        for chosen in (
            devices.choose_best_fit(node, need),
            devices.choose_random(node, need, np.random.default_rng(seed)),
            devices.choose_by_score(node, need, np.random.default_rng(seed).random(devices.max_devices)),
        ):
            assert bool(chosen) == bool(fits[node])  # the vectorised mask and the per-node choice agree
            if chosen:
                assert len(chosen) == need.count and len(set(chosen)) == len(chosen)
                assert all(devices.free[node, d] >= need.share for d in chosen)
                assert all(d < devices.counts[node] for d in chosen)


@settings(max_examples=150, deadline=None)
@given(state=device_states())
def test_caches_agree_with_the_free_shares_and_allocate_release_round_trips(state) -> None:
    devices, placed = state
    free = devices.free
    assert np.array_equal(devices.max_free, free.max(axis=1, initial=0.0))
    assert np.array_equal(devices.n_whole, (free >= 1000).sum(axis=1))
    assert np.allclose(devices.free_total, free.sum(axis=1), atol=1e-9)
    assert np.all(free >= 0) and np.all(free <= 1000)
    empty = DeviceSet.from_counts(devices.counts.tolist())
    for node, need, chosen in reversed(placed):
        devices.release(node, need, chosen)
    assert np.allclose(devices.free, empty.free, atol=1e-9) and not devices.classes.any()
    assert np.array_equal(devices.max_free, empty.max_free) and np.array_equal(devices.n_whole, empty.n_whole)


@settings(max_examples=60, deadline=None)
@given(state=device_states(), need=st.one_of(needs(), st.just(DeviceNeed(0.0, 0))), cpu=st.integers(0, 8000))
def test_fragmentation_after_equals_fragmentation_of_the_placed_node(state, need: DeviceNeed, cpu: int) -> None:
    devices, _ = state
    workload = artifact_workload(ARTIFACT_PODS_NON_GPU)
    cpu_free = np.full(devices.n_nodes, 16000.0)
    after = fragmentation_after(cpu_free, devices.free, workload, float(cpu), need)
    for node in np.flatnonzero(devices.fits(need)):
        fraction = 0 < need.share < 1000
        for d in range(after.shape[1]) if fraction else [0]:
            placed = devices.copy()
            chosen = (d,) if fraction else devices.choose_best_fit(node, need)
            if fraction and devices.free[node, d] < need.share:
                assert after[node, d] == np.inf
                continue
            placed.allocate(node, need, chosen)
            expected = fragmentation(cpu_free[node : node + 1] - cpu, placed.free[node : node + 1], workload)
            assert after[node, d] == pytest.approx(expected[0], abs=1e-6)
