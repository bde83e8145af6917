"""The terminal table of ``python -m orchsim``: it fits the terminal, and says what the CSV says.

Issue 18: at 80, 100 or 120 columns rich squashed 16 columns (``bin_p…``, the ``done``
column gone). The compact default must show every policy's name and every compact
column whole at those widths; ``--wide`` shows every summary column.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchsim.cli import format_number

from .conftest import ROOT, SCENARIOS

POLICIES = ["bin_packing", "spread", "round_robin"]  # burst.yaml's
COMPACT_HEADERS = ["policy", "done", "unplaced", "wait", "mean", "p95", "util", "cpu", "mem", "nodes", "used"]


def orchsim(*args: str, columns: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "orchsim", *args], capture_output=True, text=True, cwd=cwd, timeout=300, env=env
    )


def table_lines(stdout: str) -> list[str]:
    """The printed table: every line before the closing ``wrote ...`` line."""
    lines = stdout.splitlines()
    return lines[: next(i for i, line in enumerate(lines) if line.startswith("wrote "))]


def cells_by_policy(lines: list[str]) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in lines if line.split() and line.split()[0] in POLICIES}


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_compact_table_of_burst_fits_the_terminal(tmp_path: Path, columns: int) -> None:
    result = orchsim(
        str(SCENARIOS / "burst.yaml"), "--quiet", "--no-plots", "--out", str(tmp_path), columns=columns, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = table_lines(result.stdout)
    assert all(len(line) <= columns for line in lines), "\n".join(lines)
    assert "…" not in result.stdout
    header_words = " ".join(lines[:4]).split()
    for header in COMPACT_HEADERS:
        assert header in header_words, header
    assert "gpu" not in header_words  # no task asks for a GPU: its utilisation is 0 for all
    rows = cells_by_policy(lines)
    assert list(rows) == POLICIES
    # The cells say what summary.csv says: done, unplaced, waits, util in %, nodes, stranded cpu in %.
    summary = pd.read_csv(tmp_path / "summary.csv").set_index("policy")
    series = pd.read_csv(tmp_path / "timeseries.csv")
    for policy, cells in rows.items():
        s = summary.loc[policy]
        nodes = series.loc[series.policy == policy, "nodes_used"].mean()
        expected = [
            int(s.tasks_completed),
            int(s.tasks_pending + s.unschedulable),
            s.mean_wait,
            s.p95_wait,
            100 * s.mean_util_cpu,
            100 * s.mean_util_memory,
            nodes,
            100 * s.mean_stranded_cpu,
        ]
        assert len(cells) == len(expected), cells
        for cell, value in zip(cells, expected, strict=True):
            assert float(cell) == pytest.approx(value, rel=5e-3, abs=1e-9), (policy, cells)
    # What the issue says the table must separate: bin-packing keeps fewer nodes busy.
    assert float(rows["bin_packing"][6]) < float(rows["spread"][6]) - 5


def test_wide_shows_every_summary_column_at_80(tmp_path: Path) -> None:
    burst = str(SCENARIOS / "burst.yaml")
    result = orchsim(burst, "--quiet", "--no-plots", "--wide", "--out", str(tmp_path), columns=80, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = table_lines(result.stdout)
    assert all(len(line) <= 80 for line in lines) and "…" not in result.stdout
    # Too wide for 80 columns, so it is turned on its side: one line per metric.
    assert lines[0].split() == ["metric", *POLICIES]
    metrics = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(summary.columns) - {"policy"} <= set(metrics)
    assert metrics["mean_util_gpu"] == ["0", "0", "0"]
    for i in range(len(POLICIES)):
        assert float(metrics["mean_wait"][i]) == pytest.approx(summary.mean_wait[i], rel=5e-3)
        assert int(metrics["decisions"][i]) == summary.decisions[i]


TINY = """\
version: 1
name: tiny
seed: 1
policies: [bin_packing, spread]
cluster:
  nodes:
    - {count: 3, capacity: {cpu: 4000, memory: 8192}}
workload:
  - {kind: poisson, rate: 1.0, count: 50, resources: {cpu: 500, memory: 256}, duration: {dist: exponential, mean: 5}}
"""


def test_columns_picks_columns_and_names_a_wrong_one(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY)
    chosen = orchsim("tiny.yaml", "--quiet", "--no-plots", "--columns", "p50_wait,decisions", columns=80, cwd=tmp_path)
    assert chosen.returncode == 0, chosen.stderr
    assert table_lines(chosen.stdout)[0].split() == ["policy", "p50_wait", "decisions"]
    wrong = orchsim("tiny.yaml", "--quiet", "--no-plots", "--columns", "p50_wait,colour", columns=80, cwd=tmp_path)
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("error: --columns: unknown column colour; use compact, all or: ")
    assert wrong.stderr.count("\n") == 1 and "p99_wait" in wrong.stderr


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (41.118711, "41.1"),
        (192.37026, "192"),
        (0.684353, "0.684"),
        (0.0001234, "0.000123"),
        (3265.159081, "3265"),
        (7000, "7000"),
        (0.0, "0"),
        (-2.5, "-2.5"),
        (math.nan, "n/a"),
        (np.float64(0.1773), "0.177"),
        (np.int64(48), "48"),
        ("spread", "spread"),
    ],
)
def test_numbers_have_three_significant_digits(value: object, text: str) -> None:
    assert format_number(value) == text
