"""The command line: results on disk, and clear exit-2 errors for user mistakes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from .conftest import ROOT, SCENARIOS

GOOD = """\
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


def orchsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # This checkout's code, whatever the editable install points at.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "orchsim", *args], capture_output=True, text=True, cwd=cwd, timeout=120, env=env
    )


def test_run_writes_csvs_and_plots(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(GOOD)
    out = tmp_path / "out"
    result = orchsim(str(scenario), "--out", str(out), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.policy) == ["bin_packing", "spread"]
    for column in [
        "tasks_submitted",
        "tasks_completed",
        "mean_wait",
        "p50_wait",
        "p95_wait",
        "p99_wait",
        "makespan",
        "throughput",
        "mean_util_cpu",
        "mean_util_memory",
        "peak_nodes_used",
        "rescheduled",
        "unschedulable",
        "fragmentation",
        "wall_seconds",
    ]:
        assert column in summary.columns, column
    tasks = pd.read_csv(out / "tasks.csv")
    assert len(tasks) == 100
    assert {
        "policy",
        "task_id",
        "submit_time",
        "start_time",
        "end_time",
        "node",
        "status",
        "attempts",
        "cpu",
        "memory",
    } <= set(tasks.columns)
    series = pd.read_csv(out / "timeseries.csv")
    assert {"time", "queue", "running", "nodes_up", "util_cpu"} <= set(series.columns)
    for png in ("wait_cdf.png", "queue.png", "utilisation_cpu.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "bin_packing" in result.stdout


def test_policy_flag_and_default_out_dir(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(GOOD)
    result = orchsim("tiny.yaml", "--policy", "random", "--policy", "first_fit", "--no-plots", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(tmp_path / "results" / "tiny" / "summary.csv")
    assert list(summary.policy) == ["random", "first_fit"]
    assert "replacing" not in result.stdout
    again = orchsim("tiny.yaml", "--policy", "spread", "--no-plots", "--quiet", cwd=tmp_path)  # the same folder
    assert again.stdout.rstrip().endswith("(replacing an earlier run's files there)"), again.stdout


BAD_CASES = [
    ("unknown field", GOOD.replace("seed: 1", "seed: 1\ncolour: blue"), "colour: unknown field"),
    ("negative rate", GOOD.replace("rate: 1.0", "rate: -1.0"), "workload.0.rate"),
    # One mistake, one problem (not also "rate: Field required"), with the field that was meant.
    (
        "misspelt field",
        GOOD.replace("rate: 1.0", "rat: 1.0"),
        ": workload.0.rat: unknown field (did you mean 'rate'?)\n",
    ),
    ("misspelt kind", GOOD.replace("kind: poisson", "kind: posson"), "'orchlive' (did you mean 'poisson'?)\n"),
    ("unknown policy", GOOD.replace("[bin_packing, spread]", "[bin_packing, tetris]"), "unknown policy 'tetris'"),
    ("unknown distribution", GOOD.replace("dist: exponential", "dist: gamma"), "workload.0.duration"),
    ("missing trace", GOOD + "  - {kind: trace, path: traces/nope.csv}\n", "workload.1.path: file not found"),
    ("bad yaml", GOOD.replace("policies: [bin_packing, spread]", "policies: [bin_packing"), "not valid YAML"),
    ("resource nobody has", GOOD.replace("memory: 256}", "memory: 256, gpu: 1000}"), "workload.0.resources.gpu"),
    ("negative seed", GOOD.replace("seed: 1", "seed: -1"), "seed: Input should be greater than or equal to 0"),
    ("window backwards", GOOD + "metrics: {warmup: 10, until: 5}\n", "metrics: until (5.0) must be after warmup"),
]


@pytest.mark.parametrize(("label", "text", "expected"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_scenarios_exit_2_with_one_clear_message(tmp_path: Path, label: str, text: str, expected: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    result = orchsim("bad.yaml", "--quiet", cwd=tmp_path)
    assert result.returncode == 2, (label, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "bad.yaml" in result.stderr
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_malformed_trace_row_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "jobs.csv").write_text("submit_time,duration,cpu,memory\n0,10,500,256\n1,ten,500,256\n")
    (tmp_path / "t.yaml").write_text(GOOD + "  - {kind: trace, path: traces/jobs.csv}\n")
    result = orchsim("t.yaml", "--quiet", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "jobs.csv" in result.stderr and "line 3" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_policy_flag(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(GOOD)
    result = orchsim("tiny.yaml", "--policy", "nope", "--quiet", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown policy 'nope'" in result.stderr and "bin_packing" in result.stderr
    assert result.stderr.endswith("(a policy of your own? load its file with --plugin FILE.py)\n")
    close = orchsim("tiny.yaml", "--policy", "spred", "--quiet", cwd=tmp_path)  # a typo: the guess, no plugin hint
    assert "unknown policy 'spred' (did you mean 'spread'?)" in close.stderr and "--plugin" not in close.stderr


FLAG_CASES = [
    (["--seed", "-5"], "error: --seed: must be a non-negative integer, got -5"),
    (["--warmup", "-1"], "error: --warmup: must be a finite number of seconds >= 0, got -1.0"),
    (["--warmup", "nan"], "error: --warmup: must be a finite number of seconds >= 0, got nan"),
    (["--warmup", "10", "--until", "5"], "error: --until (5.0) must be after --warmup (10.0)"),
]


@pytest.mark.parametrize(("flags", "expected"), FLAG_CASES, ids=[" ".join(c[0]) for c in FLAG_CASES])
def test_bad_numbers_on_the_command_line_exit_2(tmp_path: Path, flags: list[str], expected: str) -> None:
    (tmp_path / "tiny.yaml").write_text(GOOD)
    result = orchsim("tiny.yaml", *flags, "--quiet", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == expected + "\n"


def test_warmup_flag_windows_the_statistics(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(GOOD)
    whole = orchsim("tiny.yaml", "--no-plots", "--quiet", "--out", "a", cwd=tmp_path)
    windowed = orchsim("tiny.yaml", "--no-plots", "--quiet", "--out", "b", "--warmup", "20", cwd=tmp_path)
    assert whole.returncode == windowed.returncode == 0, windowed.stderr
    a, b = pd.read_csv(tmp_path / "a" / "summary.csv"), pd.read_csv(tmp_path / "b" / "summary.csv")
    tasks = pd.read_csv(tmp_path / "a" / "tasks.csv")
    late = tasks[(tasks.policy == "spread") & (tasks.submit_time >= 20)]
    assert (a.tasks_measured == 50).all()
    assert b.tasks_measured.iloc[1] == len(late) < 50
    assert b.mean_wait.iloc[1] == pytest.approx(late.wait.mean())


def test_unwritable_out_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from orchsim.__main__ import main

    (tmp_path / "tiny.yaml").write_text(GOOD)
    (tmp_path / "file").write_text("not a folder")
    assert main([str(tmp_path / "tiny.yaml"), "--quiet", "--no-plots", "--out", str(tmp_path / "file" / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write ") and "file/out" in err and err.count("\n") == 1, err


def test_missing_scenario_file(tmp_path: Path) -> None:
    result = orchsim("absent.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "absent.yaml" in result.stderr and "Traceback" not in result.stderr


def test_shipped_headline_runs_from_repo_root() -> None:
    assert (SCENARIOS / "burst.yaml").is_file()


def test_orchsim_run_stays_the_function_once_its_module_is_loaded() -> None:
    # orchsim/run.py shares its name with the entry point; the package must keep the function.
    code = (
        "import sys, orchsim, orchsim.run; from orchsim.run import Results; "
        "assert 'pandas' not in sys.modules and 'simpy' not in sys.modules; "
        "assert orchsim.run is sys.modules['orchsim.run'].run; "
        "from orchsim import run; assert run is orchsim.run; "
        "assert callable(orchsim.load_scenario)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
