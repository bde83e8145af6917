"""Golden runs: each shipped scenario, seeded, reproduces its stored summary.

Integers and strings must match exactly; floats to a relative tolerance of 1e-9 (and an
absolute one of 1e-12 for values near zero). A time integral summed in another order by a
newer numpy or BLAS differs in the last bit; that must not decide a test, while any real
change in behaviour moves a number by far more than 1e-9.

To accept a deliberate change in results, regenerate the files and review the diff:
``ORCHSIM_UPDATE_GOLDEN=1 python -m pytest tests/sim/test_golden.py``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchsim import run

from .conftest import SCENARIOS

EXPECTED = SCENARIOS / "expected"
SHIPPED = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
# Wall-clock time is the one column that is not a function of the seed.
NONDETERMINISTIC = ["wall_seconds"]
RTOL, ATOL = 1e-9, 1e-12


def device_overcommits(tasks: pd.DataFrame) -> list[str]:
    """Every way the tasks running at the end break their node's GPUs (empty: physically valid).

    A fraction (< 1000 milli-GPU) must sit on ONE device, k whole GPUs on k devices, and no
    device may carry more than 1000 milli-GPU of tasks.
    """
    problems = []
    running = tasks[(tasks.status == "running") & (tasks.get("gpu", 0) > 0)]
    load: dict[tuple[str, str, int], float] = {}
    for row in running.itertuples():
        devices = [int(d) for d in str(row.devices).split(";") if d not in ("", "nan")]
        share, count = (row.gpu, 1) if row.gpu < 1000 else (1000.0, int(row.gpu // 1000))
        if len(devices) != count or len(set(devices)) != count:
            problems.append(f"{row.policy}: task {row.task_id} asks {row.gpu:g} milli-GPU, holds devices {devices}")
        for d in devices:
            key = (row.policy, row.node, d)
            load[key] = load.get(key, 0.0) + share
    problems += [f"{p}: node {n} GPU {d} carries {v:g} milli-GPU" for (p, n, d), v in load.items() if v > 1000 + 1e-6]
    return problems


def test_the_audit_catches_a_straddling_or_overcommitted_gpu() -> None:
    tasks = pd.DataFrame(
        {
            "policy": "p",
            "task_id": [0, 1, 2, 3],
            "node": ["n", "n", "n", "m"],
            "status": "running",
            "gpu": [600.0, 600.0, 2000.0, 500.0],
            "devices": ["0", "0", "1;2", "0;1"],
        }
    )
    problems = device_overcommits(tasks)
    assert "p: node n GPU 0 carries 1200 milli-GPU" in problems
    assert any("task 3 asks 500 milli-GPU, holds devices [0, 1]" in p for p in problems)
    assert device_overcommits(tasks.iloc[[0, 2]]) == []


def golden_differences(actual: pd.DataFrame, expected: pd.DataFrame) -> list[str]:
    """Every cell that differs: integers and strings exactly, floats beyond RTOL/ATOL."""
    problems = []
    if list(actual.columns) != list(expected.columns):
        return [f"columns differ: {list(actual.columns)} vs golden {list(expected.columns)}"]
    if len(actual) != len(expected):
        return [f"{len(actual)} rows vs golden {len(expected)}"]
    for column in actual.columns:
        now, gold = actual[column].to_numpy(), expected[column].to_numpy()
        if pd.api.types.is_float_dtype(actual[column].dtype) or pd.api.types.is_float_dtype(expected[column].dtype):
            now, gold = now.astype(float), gold.astype(float)
            same = np.isclose(now, gold, rtol=RTOL, atol=ATOL, equal_nan=True)
        else:
            same = np.array([str(a) == str(b) for a, b in zip(now, gold, strict=True)])
        for row in np.flatnonzero(~same):
            problems.append(f"{actual['policy'].iloc[row]}: {column} = {now[row]!r}, golden {gold[row]!r}")
    return problems


def test_comparison_tolerates_the_last_bit_and_nothing_more() -> None:
    golden = pd.DataFrame({"policy": ["a"], "count": [3], "util": [0.30625242295503535]})
    last_bit = golden.assign(util=np.nextafter(golden.util, 1.0))
    assert golden_differences(last_bit, golden) == []
    assert golden_differences(golden.assign(util=golden.util * (1 + 1e-6)), golden)
    assert golden_differences(golden.assign(count=4), golden)
    assert golden_differences(golden.assign(policy=["b"]), golden)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenario_reproduces_its_golden_summary_on_valid_devices(name: str) -> None:
    expected_path = EXPECTED / f"{name}.summary.csv"
    results = run(SCENARIOS / f"{name}.yaml")
    actual = results.summary.drop(columns=NONDETERMINISTIC)
    # Physically valid whatever the policy: the tasks on each node fit on its real GPUs.
    assert not device_overcommits(results.tasks), device_overcommits(results.tasks)[:5]
    if os.environ.get("ORCHSIM_UPDATE_GOLDEN"):
        EXPECTED.mkdir(exist_ok=True)
        actual.to_csv(expected_path, index=False)  # full float precision
    assert expected_path.is_file(), f"no golden file for {name}: run with ORCHSIM_UPDATE_GOLDEN=1"
    # Round-trip through CSV so both sides are parsed the same way.
    buffer = io.StringIO()
    actual.to_csv(buffer, index=False)
    parsed = pd.read_csv(io.StringIO(buffer.getvalue()))
    problems = golden_differences(parsed, pd.read_csv(expected_path))
    assert not problems, f"{name}: summary differs from {expected_path.name}:\n" + "\n".join(problems)


def test_same_seed_gives_byte_identical_tasks_csv(tmp_path: Path) -> None:
    # Same install, same process: a run is a pure function of its seed, to the last bit.
    first, second = tmp_path / "a", tmp_path / "b"
    run(SCENARIOS / "failures.yaml").write(first, plots=False)
    run(SCENARIOS / "failures.yaml").write(second, plots=False)
    assert (first / "tasks.csv").read_bytes() == (second / "tasks.csv").read_bytes()
    assert (first / "timeseries.csv").read_bytes() == (second / "timeseries.csv").read_bytes()


def test_another_seed_gives_other_tasks(tmp_path: Path) -> None:
    a = run(SCENARIOS / "burst.yaml", policies=["spread"], seed=1).tasks
    b = run(SCENARIOS / "burst.yaml", policies=["spread"], seed=2).tasks
    assert not a["submit_time"].equals(b["submit_time"])
