"""What the command line costs (issue 14): no matplotlib or pandas unless asked for; Parquet tables.

A 1,000-task run without plots is mostly start-up, so heavy imports are the cost to
watch: matplotlib is imported only to draw, pandas only to build DataFrames (the files
are written from numpy columns), pyarrow only for ``--format parquet``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .conftest import ROOT

THOUSAND = """\
version: 1
name: thousand
seed: 1
policies: [bin_packing, spread]
cluster:
  nodes:
    - {count: 8, capacity: {cpu: 1000, memory: 1000}}
workload:
  - kind: poisson
    rate: 6.4
    count: 1000
    resources: {cpu: 1000, memory: 1000}
    duration: {dist: exponential, mean: 1}
  - {kind: burst, at: 50, count: 20, resources: {cpu: 2000, memory: 10}, duration: {dist: constant, value: 1}}
"""

HEAVY = ("matplotlib", "pandas", "pyarrow", "scipy")


def loaded_after(code: str) -> list[str]:
    """Which HEAVY modules a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    return [m for m in out.stdout.strip().split(",") if m]


def test_importing_the_entry_points_imports_nothing_heavy() -> None:
    assert loaded_after("import orchsim, orchsim.run, orchsim.__main__") == []


def test_a_run_without_plots_imports_neither_matplotlib_nor_pandas(tmp_path: Path) -> None:
    scenario = tmp_path / "thousand.yaml"
    scenario.write_text(THOUSAND)
    argv = [str(scenario), "--no-plots", "--quiet", "--out", str(tmp_path / "out")]
    loaded = loaded_after(f"from orchsim.__main__ import main\nassert main({argv!r}) == 0")
    assert "matplotlib" not in loaded
    assert "pandas" not in loaded
    assert (tmp_path / "out" / "tasks.csv").exists()


@pytest.fixture(scope="module")
def both_formats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run written as CSV and as Parquet (unschedulable tasks give NaN and reasons)."""
    from orchsim import run

    folder = tmp_path_factory.mktemp("formats")
    scenario = folder / "thousand.yaml"
    scenario.write_text(THOUSAND)
    results = run(scenario)
    results.write(folder / "csv", plots=False)
    results.write(folder / "parquet", plots=False, format="parquet")
    return folder


@pytest.mark.parametrize("table", ["tasks", "summary", "timeseries"])
def test_parquet_holds_the_csv_values_at_full_precision(both_formats: Path, table: str) -> None:
    csv = pd.read_csv(both_formats / "csv" / f"{table}.csv", keep_default_na=False, na_values=[""])
    parquet = pd.read_parquet(both_formats / "parquet" / f"{table}.parquet")
    assert list(parquet.columns) == list(csv.columns)
    assert len(parquet) == len(csv) > 0
    for name in csv.columns:
        if pd.api.types.is_numeric_dtype(parquet[name]) and not pd.api.types.is_bool_dtype(parquet[name]):
            # the CSV rounds to 6 decimals; Parquet keeps every bit
            assert np.allclose(
                parquet[name].to_numpy(float), csv[name].to_numpy(float), rtol=0, atol=5e-7, equal_nan=True
            )
        else:
            assert parquet[name].astype(object).fillna("").astype(str).tolist() == (
                csv[name].astype(object).fillna("").astype(str).tolist()
            ), name


def test_parquet_tasks_equal_the_dataframe(both_formats: Path) -> None:
    from orchsim import run

    frame = run(both_formats / "thousand.yaml").tasks
    parquet = pd.read_parquet(both_formats / "parquet" / "tasks.parquet")
    pd.testing.assert_frame_equal(parquet, frame, check_dtype=False)
    assert (frame["status"] == "unschedulable").sum() == 40  # 20 per policy: the NaN and reason paths ran


def test_format_flag_writes_parquet(tmp_path: Path) -> None:
    scenario = tmp_path / "thousand.yaml"
    scenario.write_text(THOUSAND)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "orchsim", str(scenario), "--no-plots", "--quiet", "--format", "parquet"]
    result = subprocess.run([*argv, "--out", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["summary.parquet", "tasks.parquet", "timeseries.parquet"]
    assert "tasks.parquet, summary.parquet, timeseries.parquet" in result.stdout
