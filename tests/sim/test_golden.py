"""Golden runs: each shipped scenario, seeded, reproduces its stored summary exactly.

To accept a deliberate change in results, regenerate the files and review the diff:
``ORCHSIM_UPDATE_GOLDEN=1 python -m pytest tests/sim/test_golden.py``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
import pytest

from orchsim.api import run

from .conftest import SCENARIOS

EXPECTED = SCENARIOS / "expected"
SHIPPED = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
# Wall-clock time is the one column that is not a function of the seed.
NONDETERMINISTIC = ["wall_seconds"]


def summary_csv(name: str) -> str:
    summary = run(SCENARIOS / f"{name}.yaml").summary.drop(columns=NONDETERMINISTIC)
    buffer = io.StringIO()
    summary.to_csv(buffer, index=False)  # full float precision: "exactly" means exactly
    return buffer.getvalue()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenario_reproduces_its_golden_summary(name: str) -> None:
    expected_path = EXPECTED / f"{name}.summary.csv"
    actual = summary_csv(name)
    if os.environ.get("ORCHSIM_UPDATE_GOLDEN"):
        EXPECTED.mkdir(exist_ok=True)
        expected_path.write_text(actual)
    assert expected_path.is_file(), f"no golden file for {name}: run with ORCHSIM_UPDATE_GOLDEN=1"
    expected = expected_path.read_text()
    if actual != expected:
        a = pd.read_csv(io.StringIO(actual)).set_index("policy")
        e = pd.read_csv(io.StringIO(expected)).set_index("policy")
        diff = a.compare(e, result_names=("now", "golden")) if a.shape == e.shape else f"{a.shape} vs {e.shape}"
        pytest.fail(f"{name}: summary differs from {expected_path.name}:\n{diff}")


def test_same_seed_gives_byte_identical_tasks_csv(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    run(SCENARIOS / "failures.yaml").write(first, plots=False)
    run(SCENARIOS / "failures.yaml").write(second, plots=False)
    assert (first / "tasks.csv").read_bytes() == (second / "tasks.csv").read_bytes()
    assert (first / "timeseries.csv").read_bytes() == (second / "timeseries.csv").read_bytes()


def test_another_seed_gives_other_tasks(tmp_path: Path) -> None:
    a = run(SCENARIOS / "burst.yaml", policies=["spread"], seed=1).tasks
    b = run(SCENARIOS / "burst.yaml", policies=["spread"], seed=2).tasks
    assert not a["submit_time"].equals(b["submit_time"])
