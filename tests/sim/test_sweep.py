"""Parameter sweeps: grid shape, intervals, determinism across processes, path errors, CLI."""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from orchsim.scenario import Scenario, ScenarioError, parse_scenario
from orchsim.scheduling import UnknownPolicyError
from orchsim.sweep import (
    DEFAULT_METRICS,
    SweepError,
    paired_differences,
    summarize,
    sweep,
    sweep_replications,
)
from orchsim.sweep_cli import main
from orchsim.sweep_tables import cell

from .conftest import PAIRED_YAML, ROOT

run_module = importlib.import_module("orchsim.run")  # the module: `orchsim.run` is the function

RATE = "workload.0.rate"
POLICIES = ["spread", "bin_packing"]  # not alphabetical: the output keeps this order
SEEDS = [1, 2, 3]

TINY_YAML = """\
version: 1
name: tiny
seed: 1
policies: [bin_packing, spread]
cluster:
  nodes:
    - {count: 3, capacity: {cpu: 4000, memory: 8192}}
workload:
  - kind: poisson
    rate: 1.0
    count: 200
    resources: {cpu: {dist: choice, values: [500, 1000, 2000]}, memory: 256}
    duration: {dist: exponential, mean: 10}
"""


def tiny_data() -> dict[str, Any]:
    return {
        "version": 1,
        "name": "tiny",
        "seed": 1,
        "policies": ["bin_packing", "spread"],
        "cluster": {"nodes": [{"count": 3, "capacity": {"cpu": 4000, "memory": 8192}}]},
        "workload": [
            {
                "kind": "poisson",
                "rate": 1.0,
                "count": 300,
                "resources": {"cpu": {"dist": "choice", "values": [500, 1000, 2000]}, "memory": 256},
                "duration": {"dist": "exponential", "mean": 10},
            }
        ],
    }


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return parse_scenario(tiny_data(), source="tiny")


@pytest.fixture(scope="module")
def raw(tiny: Scenario) -> pd.DataFrame:
    # Values out of order on purpose: the output is sorted by value.
    return sweep_replications(tiny, parameter=RATE, values=[1.0, 0.5], policies=POLICIES, seeds=SEEDS, processes=1)


@pytest.fixture(scope="module")
def table(raw: pd.DataFrame) -> pd.DataFrame:
    return summarize(raw)


# --------------------------------------------------------------------- the grid
def test_replications_frame_has_a_row_per_value_policy_seed(raw: pd.DataFrame) -> None:
    assert list(raw.columns[:3]) == [RATE, "policy", "seed"]
    assert {"mean_wait", "makespan", "mean_util_cpu", "wall_seconds"} <= set(raw.columns)
    assert len(raw) == 2 * len(POLICIES) * len(SEEDS)
    assert list(raw[RATE]) == [0.5] * 6 + [1.0] * 6
    assert list(raw.policy[:6]) == ["spread"] * 3 + ["bin_packing"] * 3
    assert list(raw.seed[:6]) == SEEDS * 2
    assert (raw.tasks_submitted == 300).all()


def test_table_has_one_row_per_cell_with_intervals_around_the_mean(raw: pd.DataFrame, table: pd.DataFrame) -> None:
    assert len(table) == 2 * len(POLICIES)
    assert list(zip(table[RATE], table.policy, strict=True)) == [
        (0.5, "spread"),
        (0.5, "bin_packing"),
        (1.0, "spread"),
        (1.0, "bin_packing"),
    ]
    assert (table.replications == len(SEEDS)).all()
    assert list(table.columns[:3]) == [RATE, "policy", "replications"]
    assert {"mean_wait", "p95_wait", "makespan", "mean_util_cpu", "wall_seconds"} <= set(DEFAULT_METRICS)
    for metric in [m for m in DEFAULT_METRICS if m in raw.columns]:
        mean, low, high = (table[f"{metric}_{s}"] for s in ("mean", "ci_low", "ci_high"))
        assert (low <= mean + 1e-12).all() and (mean <= high + 1e-12).all(), metric


def test_higher_arrival_rate_gives_longer_waits(table: pd.DataFrame) -> None:
    waits = table.pivot(index="policy", columns=RATE, values="mean_wait_mean")
    assert (waits[1.0] > waits[0.5]).all(), waits


def test_parallel_processes_give_the_same_numbers(tiny: Scenario, raw: pd.DataFrame) -> None:
    parallel = sweep_replications(tiny, parameter=RATE, values=[1.0, 0.5], policies=POLICIES, seeds=SEEDS, processes=2)
    pd.testing.assert_frame_equal(parallel.drop(columns="wall_seconds"), raw.drop(columns="wall_seconds"))


def test_sweep_without_parameter_replicates_the_scenario(tiny: Scenario) -> None:
    table = sweep(tiny, seeds=2, processes=1, metrics=["mean_wait", "makespan"])
    assert list(table.columns) == ["policy", "replications"] + [
        f"{m}_{s}" for m in ("mean_wait", "makespan") for s in ("mean", "ci_low", "ci_high")
    ]
    assert list(table.policy) == ["bin_packing", "spread"]  # the scenario's own policies
    assert (table.replications == 2).all()


# --------------------------------------------------------------------- intervals
def test_interval_is_student_t_over_seeds() -> None:
    raw = pd.DataFrame(
        {
            "x": [1, 1, 1, 2],
            "policy": ["a", "a", "a", "a"],
            "seed": [1, 2, 3, 1],
            "m": [1.0, 2.0, 3.0, 5.0],
            "w": [1.0, np.nan, 3.0, np.nan],
        }
    )
    table = summarize(raw, metrics=["m", "w"])
    first, second = table.iloc[0], table.iloc[1]
    assert first.replications == 3
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) * s / sqrt(n), s = 1
    assert first.m_mean == pytest.approx(2.0)
    assert (first.m_ci_low, first.m_ci_high) == pytest.approx((2.0 - half, 2.0 + half))
    # A NaN result (no task started) is left out: two values, t(0.975, 1) * sqrt(2) / sqrt(2)
    assert (first.w_mean, first.w_ci_high) == pytest.approx((2.0, 2.0 + 12.706204736174696))
    # One seed: a mean, no interval; no value at all: NaN throughout.
    assert second.m_mean == 5.0 and math.isnan(second.m_ci_low) and math.isnan(second.m_ci_high)
    assert math.isnan(second.w_mean)
    narrower = summarize(raw, metrics=["m"], confidence=0.9).iloc[0]
    assert first.m_ci_low < narrower.m_ci_low < narrower.m_mean < narrower.m_ci_high < first.m_ci_high


# --------------------------------------------------------------------- paired comparisons
@pytest.fixture(scope="module")
def paired_raw() -> pd.DataFrame:
    scenario = parse_scenario(__import__("yaml").safe_load(PAIRED_YAML), source="paired")
    return sweep_replications(scenario, seeds=[10, 11, 12], processes=1)


@pytest.mark.parametrize("metric", ["mean_wait", "fragmentation"])
def test_paired_interval_excludes_0_where_unpaired_intervals_overlap(paired_raw: pd.DataFrame, metric: str) -> None:
    # Seed by seed bin_packing waits less (and leaves more free capacity stranded) than spread,
    # but the load differs so much between seeds that the per-policy intervals overlap widely.
    table = summarize(paired_raw, metrics=[metric]).set_index("policy")
    packing, spread = table.loc["bin_packing"], table.loc["spread"]
    assert packing[f"{metric}_ci_low"] < spread[f"{metric}_ci_high"]
    assert spread[f"{metric}_ci_low"] < packing[f"{metric}_ci_high"]
    paired = paired_differences(paired_raw, "spread", metrics=[metric]).iloc[0]
    assert (paired.policy, paired.baseline, paired.pairs) == ("bin_packing", "spread", 3)
    assert paired[f"{metric}_excludes_0"]
    low, high = paired[f"{metric}_diff_ci_low"], paired[f"{metric}_diff_ci_high"]
    assert (high < 0) if metric == "mean_wait" else (low > 0)
    # The paired interval is the t interval of the per-seed differences.
    per_seed = paired_raw.pivot(index="seed", columns="policy", values=metric)
    diffs = (per_seed.bin_packing - per_seed.spread).to_numpy()
    half = 4.302652729911275 * diffs.std(ddof=1) / math.sqrt(3)
    assert (low, high) == pytest.approx((diffs.mean() - half, diffs.mean() + half))


def test_paired_differences_per_parameter_value(raw: pd.DataFrame) -> None:
    paired = paired_differences(raw, "spread", metrics=["mean_wait"])
    assert list(paired.columns[:4]) == [RATE, "policy", "baseline", "pairs"]
    assert list(zip(paired[RATE], paired.policy, paired.pairs, strict=True)) == [
        (0.5, "bin_packing", 3),
        (1.0, "bin_packing", 3),
    ]


# --------------------------------------------------------------------- measurement window
def test_warmup_and_until_reach_every_run(tiny: Scenario) -> None:
    kwargs = {"policies": ["spread"], "seeds": [1], "processes": 1}
    windowed = sweep_replications(tiny, warmup=20.0, until=150.0, **kwargs)
    direct = run_module.run(tiny, policies=["spread"], seed=1, warmup=20.0, until=150.0).summary
    pd.testing.assert_frame_equal(
        windowed.drop(columns=["policy", "seed", "wall_seconds"]),
        direct.drop(columns=["policy", "wall_seconds"]),
    )
    whole = sweep_replications(tiny, **kwargs)
    assert windowed.mean_util_cpu[0] != whole.mean_util_cpu[0]  # the window changed what was measured
    table = sweep(tiny, warmup=20.0, until=150.0, metrics=["mean_util_cpu"], **kwargs)
    assert table.mean_util_cpu_mean[0] == windowed.mean_util_cpu[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"warmup": -1.0}, r"tiny: metrics\.warmup: .*greater than or equal to 0"),
        ({"warmup": 50.0, "until": 20.0}, r"tiny: metrics: until \(20\.0\) must be after warmup"),
        ({"seeds": [3, -1]}, r"tiny: seed: Input should be greater than or equal to 0 \(got -1\)"),
    ],
)
def test_window_and_seed_mistakes_are_refused_before_any_run(
    tiny: Scenario, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], match: str
) -> None:
    monkeypatch.setattr(run_module, "run", lambda *a, **k: pytest.fail("a run started"))
    with pytest.raises(ScenarioError, match=match):
        sweep_replications(tiny, processes=1, **{"seeds": 1, **kwargs})


# --------------------------------------------------------------------- parameter paths
def test_integer_field_gets_integer_values(tiny: Scenario) -> None:
    raw = sweep_replications(tiny, parameter="cluster.nodes.0.count", values=[3.0, 2], policies=["spread"], seeds=1)
    assert pd.api.types.is_integer_dtype(raw["cluster.nodes.0.count"])
    assert list(raw["cluster.nodes.0.count"]) == [2, 3]
    assert raw.peak_nodes_used.max() <= 3
    with pytest.raises(ScenarioError, match=r"cluster\.nodes\.0\.count.*integer"):
        sweep_replications(tiny, parameter="cluster.nodes.0.count", values=[2.5], seeds=1, processes=1)


def test_constant_distribution_takes_a_bare_number(tiny: Scenario) -> None:
    table = sweep(
        tiny,
        parameter="workload.0.resources.memory",
        values=[128, 1024],
        policies=["spread"],
        seeds=1,
        processes=1,
        metrics=["mean_util_memory"],
    )
    assert list(table["workload.0.resources.memory"]) == [128.0, 1024.0]  # a float field
    low, high = table.mean_util_memory_mean
    assert high == pytest.approx(8 * low)  # same tasks and schedule, 8x the memory each


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ("workload.0.rat", "has no field 'rat'"),
        ("workload.4.rate", "index from 0 to 0"),
        ("cluster.nodes.0.count.x", "has no field 'x'"),
        ("scheduler.queue", "not a numeric field"),
        ("workload.0.duration", "workload.0.duration.mean"),
        ("autoscaler.step", "autoscaler is null"),
        ("seed", "per replication"),
        ("workload..rate", "not a dotted path"),
    ],
)
def test_bad_path_raises_scenario_error_naming_it(tiny: Scenario, path: str, hint: str) -> None:
    with pytest.raises(ScenarioError) as err:
        sweep(tiny, parameter=path, values=[1], seeds=1, processes=1)
    assert path in str(err.value) and hint in str(err.value)


def test_bad_value_is_rejected_before_any_run(tiny: Scenario) -> None:
    with pytest.raises(ScenarioError, match=r"workload\.0\.rate.*greater than 0"):
        sweep(tiny, parameter=RATE, values=[1, -1], seeds=1, processes=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"parameter": RATE}, SweepError, "go together"),
        ({"parameter": RATE, "values": []}, SweepError, "empty"),
        ({"parameter": RATE, "values": [1, 1.0]}, SweepError, "twice"),
        ({"parameter": RATE, "values": [True]}, SweepError, "not a number"),
        ({"parameter": RATE, "values": [float("nan")]}, SweepError, "finite"),
        ({"seeds": 0}, SweepError, "at least 1"),
        ({"seeds": [1, 1]}, SweepError, "twice"),
        ({"policies": ["nope"]}, UnknownPolicyError, "nope"),
        ({"processes": 0}, SweepError, "processes"),
        ({"confidence": 1.5}, SweepError, "confidence"),
        ({"metrics": ["nope"]}, SweepError, "metric nope"),
    ],
)
def test_argument_mistakes(tiny: Scenario, kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        sweep(tiny, **{"seeds": 1, **kwargs})


# --------------------------------------------------------------------- command line
def orchsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH: the package under test, whatever copy an editable install points at.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "orchsim", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def test_cli_writes_both_csvs_to_the_default_folder(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    args = ["sweep", "tiny.yaml", "--param", RATE, "--values", "1,0.5", "--seeds", "1,2", "--processes", "1"]
    result = orchsim(*args, "--policy", "spread", "--policy", "bin_packing", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "results" / "tiny" / "sweep"
    table = pd.read_csv(out / "sweep.csv")
    assert list(zip(table[RATE], table.policy, strict=True)) == [
        (0.5, "spread"),
        (0.5, "bin_packing"),
        (1.0, "spread"),
        (1.0, "bin_packing"),
    ]
    assert (table.replications == 2).all()
    assert {"mean_wait_mean", "mean_wait_ci_low", "mean_wait_ci_high"} <= set(table.columns)
    raw = pd.read_csv(out / "sweep_replications.csv")
    assert len(raw) == 8 and set(raw.seed) == {1, 2}
    pd.testing.assert_frame_equal(
        summarize(raw).drop(columns=list(table.filter(like="wall"))),
        table.drop(columns=list(table.filter(like="wall"))),
        atol=1e-5,
    )
    assert "bin_packing" in result.stdout and "95% Student-t" in result.stdout
    assert "sweep.csv" in result.stdout
    # A shortened header names the CSVs' column: the table and the file read alike.
    assert result.stdout.startswith("wait_mean_s  (mean_wait in the CSVs)\n") and "\nnever_started  (" in result.stdout


def test_cli_bad_path_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    result = orchsim(
        "sweep", "tiny.yaml", "--param", "workload.0.rat", "--values", "1,2", "--processes", "1", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "workload.0.rat" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--param", RATE, "--values", "1,x"], "--values: 'x' is not a number"),
        (["--param", RATE], "go together"),
        (["--seeds", "many"], "--seeds"),
        (["--policy", "nope"], "--policy: unknown policy 'nope'"),
        (["--param", "cluster.nodes.0.count", "--values", "2.5"], "cluster.nodes.0.count"),
    ],
)
def test_cli_user_mistakes_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], match: str
) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    assert main([str(tmp_path / "tiny.yaml"), "--processes", "1", "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and match in err, err


def test_cli_missing_scenario_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: cannot read" in capsys.readouterr().err


# --------------------------------------------------------------------- --baseline, clipping, bad seeds
def test_cli_baseline_writes_and_prints_the_paired_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "paired.yaml").write_text(PAIRED_YAML)
    out = tmp_path / "out"
    args = ["--seeds", "10,11,12", "--baseline", "spread", "--processes", "1", "--quiet", "--out", str(out)]
    assert main([str(tmp_path / "paired.yaml"), *args, "--metric", "mean_wait", "--metric", "fragmentation"]) == 0
    stdout = capsys.readouterr().out
    paired = pd.read_csv(out / "sweep_paired.csv")
    assert list(paired.columns) == ["policy", "baseline", "pairs"] + [
        f"{m}_{s}"
        for m in ("mean_wait", "fragmentation")
        for s in ("diff", "diff_ci_low", "diff_ci_high", "excludes_0")
    ]
    assert paired.policy.tolist() == ["bin_packing"] and paired.mean_wait_excludes_0.all()
    assert paired.mean_wait_diff_ci_high[0] < 0  # not clipped: a difference can be negative
    assert "paired differences: policy minus spread" in stdout and "Δ wait_mean_s" in stdout
    row = next(line for line in stdout.splitlines() if "Δ wait_mean_s" in line and "*" in line)
    assert f"{paired.mean_wait_diff[0]:.3g} ± " in row
    assert "* the interval excludes 0" in stdout
    assert "sweep_paired.csv" in stdout


def test_cli_clips_the_printed_interval_but_not_the_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "paired.yaml").write_text(PAIRED_YAML)
    out = tmp_path / "out"
    args = ["--seeds", "10,11,12", "--processes", "1", "--quiet", "--out", str(out), "--metric", "mean_wait"]
    assert main([str(tmp_path / "paired.yaml"), *args]) == 0
    stdout = capsys.readouterr().out
    table = pd.read_csv(out / "sweep.csv").set_index("policy")
    assert (table.mean_wait_ci_low < 0).all()  # the raw t interval: a wait of 1.5 ± 2.9
    # No parameter: one row per metric, the policies side by side.
    headers = next(line for line in stdout.splitlines() if "metric" in line and "spread" in line)
    line = next(line for line in stdout.splitlines() if "wait_mean_s" in line)
    for policy in ("bin_packing", "spread"):
        assert policy in headers
        expected = f"{table.mean_wait_mean[policy]:.3g} [0, {table.mean_wait_ci_high[policy]:.3g}]"
        assert expected in line, line
    assert line.index(f"{table.mean_wait_mean['bin_packing']:.3g}") < line.index(
        f"{table.mean_wait_mean['spread']:.3g}"
    ), "columns in the order of the policies"
    assert "clipped at 0 (and 1 for shares)" in stdout and "sweep.csv keeps the raw t interval" in stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("mean_wait", 1.5, -1.5, 4.5), ("1.5 [0, 4.5]", True)),
        (("mean_util_cpu", 0.9, 0.7, 1.1), ("0.9 [0.7, 1]", True)),
        (("mean_wait", 3.0, 1.0, 5.0), ("3 ± 2", False)),
        (("my_score", -1.0, -4.0, 2.0), ("-1 ± 3", False)),
        (("mean_wait", 3.0, math.nan, math.nan), ("3", False)),
        (("mean_wait", math.nan, math.nan, math.nan), ("n/a", False)),
    ],
)
def test_printed_cell(args: tuple[str, float, float, float], expected: tuple[str, bool]) -> None:
    assert cell(*args) == expected


@pytest.mark.parametrize(
    ("baseline", "match"),
    [
        ("nope", "error: baseline: unknown policy 'nope'; valid policies: "),
        ("round_robin", "error: baseline: 'round_robin' is not among the policies run (bin_packing, spread)"),
    ],
)
def test_cli_bad_baseline_exits_2_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, baseline: str, match: str
) -> None:
    monkeypatch.setattr(run_module, "run", lambda *a, **k: pytest.fail("a run started"))
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    out = tmp_path / "out"
    assert main([str(tmp_path / "tiny.yaml"), "--baseline", baseline, "--processes", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(match) and err.count("\n") == 1, err
    assert not out.exists()


def test_cli_baseline_with_an_unknown_metric_keeps_the_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    out = tmp_path / "out"
    args = ["--seeds", "1,", "--baseline", "spread", "--metric", "nope", "--processes", "1", "--quiet"]
    assert main([str(tmp_path / "tiny.yaml"), *args, "--out", str(out)]) == 2
    assert "the runs are saved in" in capsys.readouterr().err
    assert len(pd.read_csv(out / "sweep_replications.csv")) == 2
    assert not (out / "sweep_paired.csv").exists()


def test_cli_negative_seed_exits_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    result = orchsim("sweep", "scenarios/burst.yaml", "--seeds=-3,4", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == "error: scenarios/burst.yaml: seed: Input should be greater than or equal to 0 (got -3)\n"
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--seeds=-3"], "seeds: need at least 1 replication, got -3"),
        (["--seeds=2,-3"], "burst.yaml: seed: Input should be greater than or equal to 0 (got -3)"),
        (["--warmup", "-5"], "burst.yaml: metrics.warmup: Input should be greater than or equal to 0"),
        (["--warmup", "60", "--until", "30"], "burst.yaml: metrics: until (30.0) must be after warmup (60.0)"),
    ],
)
def test_cli_bad_seeds_and_window_exit_2_before_any_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    match: str,
) -> None:
    monkeypatch.setattr(run_module, "run", lambda *a, **k: pytest.fail("a run started"))
    out = tmp_path / "out"
    assert main([str(ROOT / "scenarios" / "burst.yaml"), *args, "--processes", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and match in err, err
    assert not out.exists()
