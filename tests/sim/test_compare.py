"""orchsim.compare, orchsim.resize and the failure records behind the notebook's tables."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from orchsim import compare, run
from orchsim.cluster import build_cluster, stratified_sample
from orchsim.resize import scale_scenario
from orchsim.scenario import ScenarioError, load_scenario, parse_scenario
from orchsim.scheduling import UnknownPolicyError
from orchsim.workload import evenly_spaced

from .conftest import SCENARIOS

TWO = ["bin_packing", "spread"]


def test_scaling_multiplies_counts_rates_and_events() -> None:
    base = load_scenario(SCENARIOS / "failures.yaml")
    half = scale_scenario(base, 0.5)
    assert half.cluster.nodes[0].count == 15
    assert half.workload[0].count == 1500
    assert half.workload[0].rate == pytest.approx(0.3)
    assert [e.count for e in half.events] == [2, 2, 2]  # 2.5 rounds to even, never below 1
    assert [e.at for e in half.events] == [e.at for e in base.events]
    assert scale_scenario(base, 1.0) is base
    with pytest.raises(ScenarioError, match=r"30 node\(s\) cannot be scaled by 0\.001 \(rounding gives 1, 0\.03"):
        scale_scenario(base, 0.001)


def test_scaling_keeps_the_offered_load() -> None:
    base = load_scenario(SCENARIOS / "steady.yaml")
    full = run(base, policies=["spread"]).summary.iloc[0]
    small = run(scale_scenario(base, 0.25), policies=["spread"]).summary.iloc[0]
    assert small["tasks_submitted"] == pytest.approx(full["tasks_submitted"] / 4, abs=2)
    assert small["mean_util_cpu"] == pytest.approx(full["mean_util_cpu"], abs=0.05)


@pytest.mark.parametrize("factor", [0.0, -1.0, float("nan")])
def test_scaling_rejects_a_factor_that_is_not_positive(factor: float) -> None:
    with pytest.raises(ScenarioError, match="scale factor must be > 0"):
        scale_scenario(load_scenario(SCENARIOS / "burst.yaml"), factor)


def test_trace_nodes_sample_down_not_up() -> None:
    openb = load_scenario(SCENARIOS / "openb.yaml")
    with pytest.raises(ScenarioError, match=r"cluster\.nodes\.0: trace nodes can be sampled down"):
        scale_scenario(openb, 2.0)
    quarter = scale_scenario(openb, 0.25)
    assert quarter.cluster.nodes[0].sample == 0.25
    assert quarter.workload == openb.workload  # the pod count follows the GPUs through 'load'
    capped = openb.model_copy(update={"workload": [openb.workload[0].model_copy(update={"limit": 5000})]})
    assert scale_scenario(capped, 0.25).workload[0].limit == 1250  # a cap on the pods scales with the cluster


def test_trace_workloads_are_thinned_not_truncated(tmp_path) -> None:
    """A quarter of the nodes gets a quarter of the jobs over the same time window, not the first quarter."""
    rng = np.random.default_rng(5)
    submit = np.cumsum(rng.exponential(1 / 3.0, size=4000))
    rows = [f"{t:.3f},{d:.3f},500,256" for t, d in zip(submit, rng.exponential(10.0, size=4000), strict=True)]
    (tmp_path / "jobs.csv").write_text("submit_time,duration,cpu,memory\n" + "\n".join(rows) + "\n")
    data = {
        "version": 1,
        "name": "thin",
        "policies": ["spread"],
        "cluster": {"nodes": [{"count": 12, "capacity": {"cpu": 4000, "memory": 8192}}]},
        "workload": [{"kind": "trace", "path": "jobs.csv", "limit": 4000}],
    }
    full = parse_scenario(data, source="thin.yaml", base_dir=tmp_path)
    quarter = scale_scenario(full, 0.25)
    assert quarter.workload[0].sample == 0.25 and quarter.workload[0].limit == 4000
    big, small = run(full).summary.iloc[0], run(quarter).summary.iloc[0]
    assert small["tasks_submitted"] == 1000
    assert small["makespan"] == pytest.approx(big["makespan"], rel=0.05)  # same window
    assert small["mean_util_cpu"] == pytest.approx(big["mean_util_cpu"], abs=0.05)  # same load per node
    nasa = load_scenario(SCENARIOS / "nasa.yaml")
    with pytest.raises(ScenarioError, match=r"workload\.0: trace workloads can be sampled down, not up"):
        scale_scenario(nasa, 2.0)


def test_evenly_spaced() -> None:
    assert evenly_spaced(10, 0.5).tolist() == [1, 3, 5, 7, 9]
    assert evenly_spaced(3, 0.01).tolist() == [1]
    assert evenly_spaced(0, 0.5).tolist() == []
    assert evenly_spaced(7, 1.0).tolist() == list(range(7))
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
            evenly_spaced(10, bad)


def test_autoscaler_bounds_and_step_scale() -> None:
    auto = load_scenario(SCENARIOS / "autoscale.yaml")
    a, half = auto.autoscaler, scale_scenario(auto, 0.5).autoscaler
    assert half.max_nodes == max(1, round(a.max_nodes / 2)) and half.min_nodes <= half.max_nodes
    assert half.step == max(1, round(a.step / 2))


def test_stratified_sample_keeps_each_shape_share() -> None:
    rng = np.random.default_rng(3)
    gpus = rng.choice([0, 2000, 8000], size=400, p=[0.2, 0.3, 0.5]).astype(float)
    cpu = np.where(gpus > 0, 96000.0, 32000.0)
    picked = stratified_sample({"cpu": cpu, "gpu": gpus}, 0.25)
    assert len(picked) == 100
    assert np.all(np.diff(picked) > 0), "original order, no repeats"
    whole, part = Counter(gpus.tolist()), Counter(gpus[picked].tolist())
    for shape, count in whole.items():
        assert abs(part[shape] - count / 4) <= 1, shape
    assert np.array_equal(stratified_sample({"cpu": cpu}, 1.0), np.arange(400))
    assert len(stratified_sample({"cpu": np.zeros(0)}, 0.5)) == 0
    with pytest.raises(ValueError, match="fraction must be in"):
        stratified_sample({"cpu": cpu}, 1.6)


def test_stratified_sample_separates_labels() -> None:
    cpu = np.full(8, 1000.0)
    labels = [{"model": "A"}] * 6 + [{"model": "B"}] * 2
    picked = stratified_sample({"cpu": cpu}, 0.5, labels)
    assert sorted(labels[i]["model"] for i in picked) == ["A", "A", "A", "B"]


def test_sampled_openb_cluster_keeps_the_gpu_mix() -> None:
    openb = load_scenario(SCENARIOS / "openb.yaml")
    resources, full = build_cluster(openb)
    _, quarter = build_cluster(scale_scenario(openb, 0.25))
    g = resources.index("gpu")
    assert quarter.capacity.shape[1] == round(full.capacity.shape[1] / 4)
    assert quarter.capacity[g].sum() / full.capacity[g].sum() == pytest.approx(0.25, abs=0.01)


def test_failure_records_match_rescheduled_counts() -> None:
    result = run(scale_scenario(load_scenario(SCENARIOS / "failures.yaml"), 0.5), policies=TWO)
    failures = result.failures
    assert set(failures["policy"]) == set(TWO)
    assert (failures["failed_at"] <= failures["detected_at"]).all()
    per_policy = failures.groupby("policy")["tasks_lost"].sum()
    for row in result.summary.itertuples():
        assert per_policy[row.policy] == row.rescheduled
        assert (failures["policy"] == row.policy).sum() == 4  # two failure events of 2 nodes each
    series = result.timeseries
    assert series["max_tasks_per_node"].max() >= 2
    assert (series.loc[series["running"] == 0, "max_tasks_per_node"] == 0).all()
    assert (series["max_tasks_per_node"] <= series["running"]).all()


def test_failure_cost_table() -> None:
    cost, failures = compare.failure_cost(SCENARIOS / "failures.yaml", TWO, scale=0.25, seeds=(0, 1))
    assert list(cost["policy"]) == TWO
    assert set(failures["seed"]) == {0, 1}
    for row in cost.itertuples():
        lost = failures.loc[failures["policy"] == row.policy, "tasks_lost"]
        assert row.failures == len(lost)
        assert row.mean_lost == pytest.approx(lost.mean())
        assert row.max_lost == lost.max()
        assert row.empty_failures == pytest.approx((lost == 0).mean())
        assert row.blast_radius >= 1


@pytest.mark.parametrize("name", ["steady.yaml", "autoscale.yaml"])  # no events; only scaling events
def test_failure_cost_needs_failure_events(name: str) -> None:
    with pytest.raises(ScenarioError, match="needs a scenario with node_failure events"):
        compare.failure_cost(SCENARIOS / name, TWO, scale=0.5)


def test_nodes_in_use_and_stranded_tables() -> None:
    result = compare.run_scaled(SCENARIOS / "burst.yaml", TWO, scale=0.25)
    nodes = compare.nodes_in_use(result).set_index("policy")
    assert list(nodes.index) == TWO
    assert (nodes["mean_nodes_used"] <= nodes["peak_nodes_used"]).all()
    assert (nodes["peak_nodes_used"] <= nodes["max_nodes_up"]).all()
    assert (nodes["max_nodes_up"] == 12).all()
    stranded = compare.stranded(result)
    assert {"mean_stranded_cpu", "mean_stranded_memory", "fragmentation"} <= set(stranded.columns)
    assert ((stranded.filter(like="mean_stranded") >= 0) & (stranded.filter(like="mean_stranded") <= 1)).all().all()


def test_load_curve_and_unplaced_by_request() -> None:
    curve = compare.load_curve(SCENARIOS / "openb.yaml", (0.6, 1.2), TWO, scale=0.1)
    assert set(curve["load"]) == {0.6, 1.2}
    assert curve["unplaced_share"].between(0, 1).all()
    submitted = curve.groupby("load")["submitted"].first()
    assert submitted[1.2] > 1.8 * submitted[0.6]
    result = compare.run_scaled(SCENARIOS / "openb.yaml", TWO, scale=0.1)
    table = compare.unplaced_by_request(result, "gpu")
    for row in result.summary.itertuples():
        assert table[row.policy].sum() == row.tasks_pending + row.unschedulable
    with pytest.raises(KeyError, match="no 'disk' column"):
        compare.unplaced_by_request(result, "disk")


def test_with_load_needs_an_openb_load() -> None:
    burst = load_scenario(SCENARIOS / "burst.yaml")
    with pytest.raises(ScenarioError, match="no workload source has a 'load' to vary"):
        compare.with_load(burst, 0.9)


def test_scenario_sample_field_is_validated() -> None:
    data = {
        "version": 1,
        "name": "x",
        "cluster": {"nodes": [{"trace": "openb", "path": "nodes.csv", "sample": 1.5}]},
        "workload": [
            {
                "kind": "burst",
                "at": 0,
                "count": 1,
                "resources": {"cpu": 1},
                "duration": {"dist": "constant", "value": 1},
            }
        ],
    }
    with pytest.raises(ScenarioError, match=r"cluster\.nodes\.0\.sample: Input should be less than or equal to 1"):
        parse_scenario(data, source="x.yaml", base_dir=SCENARIOS / "../data/openb")


def test_policy_params_are_merged_and_checked() -> None:
    aware = {"most_allocated": {"weights": {"gpu": 1}}}
    plain = compare.run_scaled(SCENARIOS / "openb.yaml", ["most_allocated"], scale=0.1)
    by_gpu = compare.run_scaled(SCENARIOS / "openb.yaml", ["most_allocated"], scale=0.1, policy_params=aware)
    assert by_gpu.scenario.policy_params["most_allocated"] == {"weights": {"gpu": 1}}
    assert not plain.scenario.policy_params
    # Packing by GPU changes where pods land, so the GPU allocated at the end differs.
    assert not plain.tasks["node"].equals(by_gpu.tasks["node"])
    with pytest.raises(ScenarioError, match=r"policy_params\.spread: no parameter weights; it takes: none"):
        compare.run_scaled(SCENARIOS / "burst.yaml", ["spread"], scale=0.1, policy_params={"spread": {"weights": {}}})
    with pytest.raises(UnknownPolicyError, match="no_such_policy"):
        compare.run_scaled(SCENARIOS / "burst.yaml", ["spread"], scale=0.1, policy_params={"no_such_policy": {}})


def test_load_curve_plot_checks_its_metric() -> None:
    import pandas as pd
    from matplotlib.figure import Figure

    from orchsim import plots

    curve = pd.DataFrame(
        {"policy": ["a", "a"], "load": [0.5, 1.0], "unplaced_share": [0.0, 0.1], "final_util_gpu": [0.5, 0.9]}
    )
    ax = plots.plot_load_curve(curve, Figure().add_subplot(), metric="final_util_gpu", of="GPUs")
    assert ax.get_ylabel() == "GPUs allocated at the end (% of GPUs)"
    assert ax.get_xlabel() == "offered load (% of GPUs)"
    assert list(ax.get_lines()[0].get_ydata()) == [50.0, 90.0]
    with pytest.raises(ValueError, match="metric must be one of unplaced_share, final_util_gpu"):
        plots.plot_load_curve(curve, Figure().add_subplot(), metric="wait")


def test_a_cluster_too_small_to_scale_is_refused() -> None:
    nasa = load_scenario(SCENARIOS / "nasa.yaml")  # one 128-processor partition
    with pytest.raises(ScenarioError, match=r"cluster\.nodes: 1 node\(s\) cannot be scaled by 0\.5 \(rounding gives 1"):
        scale_scenario(nasa, 0.5)
    for name in ("burst", "steady", "failures"):
        scale_scenario(load_scenario(SCENARIOS / f"{name}.yaml"), 0.25)  # the notebook's size
    scale_scenario(load_scenario(SCENARIOS / "autoscale.yaml"), 0.5)  # 6 nodes: a quarter would be 2
