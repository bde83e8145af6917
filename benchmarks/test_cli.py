"""What the command line costs (group ``cli``; issue 14).

(a) Writing the tasks table of the 200,000-task M/M/8 run as CSV: ``orchsim.csv_writer``
    against ``DataFrame.to_csv(index=False, float_format="%.6f")`` on the same table in
    the same run (the same bytes; ``ratio`` = pandas' seconds / ours, target >= 3).
(b) ``python -m orchsim`` on a 1,000-task scenario with ``--no-plots``: the process time
    (user + system CPU seconds of the child; target < 1.5 s). Its ``ratio`` is the process
    time of a bare interpreter importing what the command used to import eagerly (the
    scenario schema, pandas, matplotlib's pyplot) over the run's own: above 1 means the
    whole run costs less than those imports alone did.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_simulation import TASKS, mmc_scenario

from orchsim import run
from orchsim.csv_writer import write_csv

ROOT = Path(__file__).resolve().parent.parent
CLI_TASKS = 1_000
CLI_TARGET_SECONDS = 1.5
CSV_TARGET_RATIO = 3.0
EAGER_IMPORTS = "import orchsim.scenario, pandas, matplotlib.pyplot"

THOUSAND_TASKS = f"""\
version: 1
name: cli-bench
seed: 1
policies: [bin_packing]
cluster:
  nodes:
    - {{count: 8, capacity: {{cpu: 1000, memory: 1000}}}}
workload:
  - kind: poisson
    rate: 6.4
    count: {CLI_TASKS}
    resources: {{cpu: 1000, memory: 1000}}
    duration: {{dist: exponential, mean: 1.0}}
"""


def process_seconds(argv: list[str], cwd: Path) -> float:
    """User + system CPU seconds of one child process (``getrusage`` of the children, before and after)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True, timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cli_process_seconds(benchmark: Any, folder: Path, rounds: int = 3) -> None:
    """Benchmark the 1,000-task run without plots; record its process time and the ratio."""
    scenario = folder / "thousand.yaml"
    scenario.write_text(THOUSAND_TASKS)
    argv = [sys.executable, "-m", "orchsim", str(scenario), "--no-plots", "--quiet", "--out", str(folder / "out")]
    eager = min(process_seconds([sys.executable, "-c", EAGER_IMPORTS], folder) for _ in range(rounds))
    times: list[float] = []
    benchmark.pedantic(lambda: times.append(process_seconds(argv, folder)), rounds=rounds, iterations=1)
    best = min(times)
    benchmark.extra_info.update(
        {
            "tasks": CLI_TASKS,
            "process_seconds": best,
            "process_seconds_all": times,
            "target_process_seconds": CLI_TARGET_SECONDS,
            "meets_target": best < CLI_TARGET_SECONDS,
            "baseline": "eager_imports",
            "eager_imports_process_seconds": eager,
            "ratio": eager / best,
        }
    )
    print(f"\npython -m orchsim, {CLI_TASKS} tasks, --no-plots: {best:.2f} s of process time (imports {eager:.2f} s)")


def csv_beside_pandas(benchmark: Any, columns: Mapping[str, np.ndarray], folder: Path, pandas_rounds: int = 2) -> None:
    """Benchmark ``write_csv`` on ``columns``; the same table through ``to_csv`` is the in-run baseline."""
    frame = pd.DataFrame(dict(columns))
    pandas_seconds = min(
        _timed(lambda: frame.to_csv(folder / "pandas.csv", index=False, float_format="%.6f"))
        for _ in range(pandas_rounds)
    )
    benchmark.pedantic(write_csv, args=(columns, folder / "fast.csv"), rounds=3, iterations=1)
    assert (folder / "fast.csv").read_bytes() == (folder / "pandas.csv").read_bytes()
    ratio = pandas_seconds / benchmark.stats.stats.median
    benchmark.extra_info.update(
        {
            "rows": len(frame),
            "pandas_to_csv_seconds": pandas_seconds,
            "baseline": "pandas_to_csv",
            "ratio": ratio,
            "target_ratio": CSV_TARGET_RATIO,
            "meets_target": ratio >= CSV_TARGET_RATIO,
        }
    )
    print(f"\ntasks.csv, {len(frame):,} rows: {ratio:.1f}x DataFrame.to_csv ({pandas_seconds:.2f} s)")


def _timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


@pytest.mark.benchmark(group="cli")
def test_tasks_csv_200k_beside_pandas(benchmark: Any, tmp_path: Path) -> None:
    results = run(mmc_scenario(TASKS))
    csv_beside_pandas(benchmark, results.table("tasks"), tmp_path)


@pytest.mark.benchmark(group="cli")
def test_cli_1000_tasks_process_time(benchmark: Any, tmp_path: Path) -> None:
    cli_process_seconds(benchmark, tmp_path)
