"""Sweeps that survive being stopped (kept results, resume, --force), their progress and their tables."""

from __future__ import annotations

import csv
import importlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from orchsim.scenario import parse_scenario
from orchsim.sweep import sweep_replications
from orchsim.sweep_cli import _parser, attach_negative_values, main
from orchsim.sweep_jobs import Job, absolute_inputs, run_job, scenario_hash
from orchsim.sweep_progress import Progress
from orchsim.sweep_tables import fmt, print_intervals

from .conftest import ROOT
from .test_sweep import RATE, TINY_YAML, tiny_data

run_module = importlib.import_module("orchsim.run")

THREE_POLICIES = ["--policy", "bin_packing", "--policy", "spread", "--policy", "round_robin"]
GRID = ["--param", RATE, "--values", "0.5,1", "--seeds", "1,2"]  # 4 jobs
JOBS = 4


def csv_rows(path: Path, drop: tuple[str, ...] = ("wall_seconds",)) -> list[list[str]]:
    """The CSV's cells as written (text, not parsed numbers), without ``drop``'s columns, rows sorted."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    keep = [i for i, name in enumerate(rows[0]) if not any(name.startswith(d) for d in drop)]
    return [[rows[0][i] for i in keep], *sorted([row[i] for i in keep] for row in rows[1:])]


class RunCounter:
    """Replaces ``orchsim.run.run`` and counts the simulations that really started."""

    def __init__(self) -> None:
        self.calls = 0
        self.real = run_module.run

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.real(*args, **kwargs)


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> RunCounter:
    spy = RunCounter()
    monkeypatch.setattr(run_module, "run", spy)
    return spy


# The sweep as a separate process that is SIGKILLed as its third job starts: the first two
# are finished, kept, and nothing else is (--processes 1 runs the jobs one by one).
KILLED_AT_THIRD_JOB = """
import os, signal, sys
import importlib
module = importlib.import_module("orchsim.run")
real, started = module.run, []
def run(*args, **kwargs):
    started.append(1)
    if len(started) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
module.run = run
from orchsim.sweep_cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_sweep_rerun_runs_only_the_missing_jobs(tmp_path: Path, counter: RunCounter) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    out = tmp_path / "out"
    args = [str(tmp_path / "tiny.yaml"), *GRID, "--processes", "1", "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AT_THIRD_JOB, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == -9, killed.stderr
    kept = sorted((out / "jobs").glob("*.json"))
    assert len(kept) == 2 and not list((out / "jobs").glob(".*"))  # nothing half-written
    assert not (out / "sweep_replications.csv").exists()

    assert main(args) == 0
    assert counter.calls == JOBS - 2  # only the missing two ran
    resumed = csv_rows(out / "sweep_replications.csv")
    assert len(resumed) == 1 + JOBS * 2  # header + (value, seed, policy) rows

    counter.calls = 0
    assert main(args) == 0
    assert counter.calls == 0  # everything kept: nothing runs
    assert main([*args, "--force"]) == 0
    assert counter.calls == JOBS
    # Results read back from the kept files build the same CSV as results just computed.
    assert csv_rows(out / "sweep_replications.csv") == resumed


def test_no_resume_runs_again_and_another_grid_reuses_the_shared_jobs(tmp_path: Path, counter: RunCounter) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    common = [str(tmp_path / "tiny.yaml"), "--param", RATE, "--processes", "1", "--out", str(tmp_path), "--quiet"]
    assert main([*common, "--values", "0.5", "--seeds", "1,2"]) == 0
    assert counter.calls == 2
    assert main([*common, "--values", "0.5,1", "--seeds", "1,2"]) == 0
    assert counter.calls == 2 + 2  # the value 0.5's two jobs were kept
    assert main([*common, "--values", "0.5", "--seeds", "1,2", "--no-resume"]) == 0
    assert counter.calls == 4 + 2
    (tmp_path / "tiny.yaml").write_text(TINY_YAML.replace("count: 200", "count: 150"))
    assert main([*common, "--values", "0.5", "--seeds", "1,2"]) == 0
    assert counter.calls == 6 + 2  # another scenario content: other keys


def test_the_key_follows_a_trace_files_content_not_its_path(tmp_path: Path) -> None:
    trace = "submit_time,duration,cpu,memory\n0,5,500,256\n1,5,1000,256\n"
    data = tiny_data() | {"workload": [{"kind": "trace", "path": "a.csv"}]}
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "a.csv").write_text(trace)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "a.csv").write_text(trace)
    assert scenario_hash(data, tmp_path / "a") == scenario_hash(data, tmp_path / "b")
    (tmp_path / "b" / "a.csv").write_text(trace + "2,5,500,256\n")
    assert scenario_hash(data, tmp_path / "a") != scenario_hash(data, tmp_path / "b")


def test_a_shipped_trace_is_read_from_a_local_copy_where_the_path_does_not_exist(tmp_path: Path) -> None:
    trace = "submit_time,duration,cpu,memory\n" + "".join(f"{i},5,{500 * (1 + i % 3)},256\n" for i in range(40))
    (tmp_path / "t.csv").write_text(trace)
    data, inputs = absolute_inputs(tiny_data() | {"workload": [{"kind": "trace", "path": "t.csv"}]}, tmp_path)
    job = Job(data, "tiny", str(tmp_path), ("spread",), 1, inputs=inputs)
    here = run_job(job)
    shipped = {inputs[0]: (tmp_path / "t.csv").read_bytes()}
    (tmp_path / "t.csv").unlink()  # as on a worker without the shared folder
    there = run_job(job, shipped)
    assert [dict(row, wall_seconds=0) for row in there] == [dict(row, wall_seconds=0) for row in here]
    assert here[0]["tasks_submitted"] == 40


# --------------------------------------------------------------------- progress (issue 18)
def wait_for(capsys: pytest.CaptureFixture[str], text: str) -> str:
    """Stderr once ``text`` is in it (the progress line comes from a timer thread), up to 30 s."""
    seen = ""
    for _ in range(600):
        seen += capsys.readouterr().err
        if text in seen:
            break
        time.sleep(0.05)
    return seen


def test_the_progress_line_shows_before_the_first_job_ends(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = run_module.run

    def spy(*args: Any, **kwargs: Any) -> Any:
        # The first job waits here until the line is out, or gives up: shown before any job ended.
        seen.append(wait_for(capsys, "sweep: 0/2 runs") if not seen else capsys.readouterr().err)
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "run", spy)
    tiny = parse_scenario(tiny_data(), source="tiny")
    sweep_replications(tiny, seeds=[1, 2], processes=1, progress=True)
    assert "sweep: 0/2 runs, 1 at a time" in seen[0] and "ETA after the first run" in seen[0]
    assert "sweep: 1/2 runs" in seen[1] and "ETA 0:00:" in seen[1]  # an estimate after the first job
    assert "sweep: 2/2 runs" in capsys.readouterr().err


def test_a_job_failing_at_once_leaves_only_its_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "jobs.csv").write_text("submit_time,duration,cpu,memory\n0,5,500,256\n1,ten,500,256\n")
    yaml_text = TINY_YAML.split("workload:")[0] + "workload:\n  - {kind: trace, path: jobs.csv}\n"
    (tmp_path / "traced.yaml").write_text(yaml_text)
    assert main([str(tmp_path / "traced.yaml"), "--seeds", "1,", "--processes", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "jobs.csv line 3" in err, err


def test_the_eta_is_remaining_jobs_times_mean_job_seconds_over_the_slots() -> None:
    now = [100.0]
    stream = io.StringIO()
    bar = Progress(10, done=2, stream=stream, clock=lambda: now[0], every=1e9, delay=0)
    bar.start(slots=2)
    assert bar.eta() is None and "2/10 runs (2 kept from an earlier run), 2 at a time" in stream.getvalue()
    now[0] += 30.0
    bar.advance(30.0, slots=2)  # the first of two parallel jobs: 7 left, 30 s each, 2 at a time
    assert bar.eta() == pytest.approx(7 * 30.0 / 2)
    assert stream.getvalue().splitlines()[-1].endswith("0:00:30 elapsed, ETA 0:01:45")
    bar.advance(50.0, slots=3)  # a worker joined the cluster
    assert bar.eta() == pytest.approx(6 * 40.0 / 3)
    assert len(stream.getvalue().splitlines()) == 2  # off a terminal: not a line per job


# --------------------------------------------------------------------- tables (issue 18)
def test_the_sweep_tables_fit_80_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    args = [str(tmp_path / "tiny.yaml"), *GRID, *THREE_POLICIES, "--baseline", "spread", "--processes", "1"]
    assert main([*args, "--out", str(tmp_path / "out"), "--quiet"]) == 0
    stdout = capsys.readouterr().out
    lines = [line for line in stdout.splitlines() if not line.startswith("wrote ")]  # a path is a path
    assert any("±" in line for line in lines) and max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert "…" not in stdout
    headers = [line for line in stdout.splitlines() if RATE in line]
    assert all(policy in headers[0] for policy in ("bin_packing", "spread", "round_robin")), headers[0]
    assert "wait_mean_s" in stdout and "Δ wait_mean_s" in stdout
    raw = pd.read_csv(tmp_path / "out" / "sweep.csv")
    mean = raw[(raw[RATE] == 1.0) & (raw.policy == "spread")].mean_wait_mean.item()
    assert f" {fmt(mean)} " in stdout and len(fmt(mean).replace(".", "").lstrip("0")) <= 3


def test_a_table_too_wide_for_the_terminal_is_printed_long(capsys: pytest.CaptureFixture[str]) -> None:
    policies = [f"a_rather_long_policy_name_{i}" for i in range(3)]
    table = pd.DataFrame(
        {
            "x": [1] * 3,
            "policy": policies,
            "replications": 3,
            "m_mean": [1234.5, 2.0, 0.012345],
            "m_ci_low": [1200.0, 1.0, 0.01],
            "m_ci_high": [1269.0, 3.0, 0.014],
        }
    )
    print_intervals(table, ["m"], width=60)
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert any("a_rather_long_policy_name_0" in line and "1230 ± 34.5" in line for line in lines), lines
    assert any("0.0123 ± 0.002" in line for line in lines)


def test_negative_values_are_values_not_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _parser().parse_args(attach_negative_values(["s.yaml", "--values", "-1,1"])).values == "-1,1"
    assert _parser().parse_args(attach_negative_values(["s.yaml", "--values", "-.5"])).values == "-.5"
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    args = [str(tmp_path / "tiny.yaml"), "--param", "workload.0.count", "--values", "-1,1", "--out", str(tmp_path)]
    assert main(args) == 2  # the scenario's own check, not argparse's "expected one argument"
    err = capsys.readouterr().err
    assert "workload.0.count: Input should be greater than or equal to 1 (parameter workload.0.count = -1)" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--executor", "dask"], "error: --executor dask needs dask.distributed, which is not installed: "),
        (["--executor", "ray"], "error: --executor: unknown 'ray'; choose one of processes, dask"),
        (["--scheduler", "tcp://127.0.0.1:8786"], "error: --scheduler: only with --executor dask"),
    ],
)
def test_executor_mistakes_are_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    expected: str,
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if orchsim[cluster] were not installed
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    assert main([str(tmp_path / "tiny.yaml"), "--seeds", "1,", "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
