"""The sweep on a Dask cluster: the same files as with processes, shipped traces, a worker killed mid-sweep.

One local cluster (2 single-threaded worker processes under nannies, on 127.0.0.1) serves the
module; the sweep reaches it by address, as it would reach a scheduler on another machine.
The worker-killing test runs last: the nanny restarts the killed worker.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster

from orchsim import sweep_dask
from orchsim.report import write_report
from orchsim.scenario import parse_scenario
from orchsim.sweep import ExecutorSpec, sweep_replications
from orchsim.sweep_cli import main

from .test_sweep import RATE, TINY_YAML, tiny_data
from .test_sweep_resume import csv_rows

GRID = ["--param", RATE, "--values", "0.5,1", "--seeds", "1,2"]  # 4 jobs, 8 rows


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    ) as local:
        yield local


def test_dask_and_processes_write_the_same_files(tmp_path: Path, cluster: LocalCluster) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    common = [str(tmp_path / "tiny.yaml"), *GRID, "--quiet"]
    assert main([*common, "--processes", "2", "--out", str(tmp_path / "processes")]) == 0
    dask = ["--executor", "dask", "--scheduler", cluster.scheduler_address]
    assert main([*common, *dask, "--out", str(tmp_path / "dask")]) == 0
    # Cell for cell as written, but the engine's wall time (which no two runs share).
    for name in ("sweep_replications.csv", "sweep.csv"):
        processes = csv_rows(tmp_path / "processes" / name)
        assert len(processes) == 1 + (8 if name == "sweep_replications.csv" else 4)
        assert csv_rows(tmp_path / "dask" / name) == processes, name
    assert len(list((tmp_path / "dask" / "jobs").glob("*.json"))) == 4


def test_a_shipped_trace_gives_the_same_results(tmp_path: Path, cluster: LocalCluster) -> None:
    rows = "".join(f"{i * 0.5},{5 + i % 7},{500 * (1 + i % 3)},256\n" for i in range(60))
    (tmp_path / "t.csv").write_text("submit_time,duration,cpu,memory\n" + rows)
    data = tiny_data() | {"workload": [{"kind": "trace", "path": "t.csv"}]}
    scenario = parse_scenario(data, source="traced", base_dir=tmp_path)
    here = sweep_replications(scenario, seeds=[1, 2], processes=1)
    shipped = ExecutorSpec("dask", scheduler=cluster.scheduler_address, ship_inputs=True)
    there = sweep_replications(scenario, seeds=[1, 2], executor=shipped)
    assert (here.tasks_submitted == 60).all()
    assert there.drop(columns="wall_seconds").equals(here.drop(columns="wall_seconds"))


def test_an_unreachable_scheduler_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep_dask, "CONNECT_TIMEOUT", "1s")
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    args = [str(tmp_path / "tiny.yaml"), "--seeds", "1,", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1"]
    assert main([*args, "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: --scheduler tcp://127.0.0.1:1: cannot reach a Dask scheduler") and err.count("\n") == 1
    )


def test_report_runs_its_replications_on_the_cluster(tmp_path: Path, cluster: LocalCluster) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    on_dask = ExecutorSpec("dask", scheduler=cluster.scheduler_address)
    page = write_report([tmp_path / "tiny.yaml"], tmp_path, seeds=[1, 2], baseline="spread", executor=on_dask)
    text = page.read_text()
    assert "seeds 1, 2 · 200 tasks" in text and "Paired differences against spread" in text
    assert "Drawn from seed 1, the first of the seeds." in text


def _busy_worker_pid(client: Client, deadline: float) -> int:
    """The PID of a worker process that is running a job now."""
    pids: dict[str, int] = client.run(os.getpid)
    while time.monotonic() < deadline:
        busy = [address for address, keys in client.processing().items() if keys and address in pids]
        if busy:
            return pids[busy[0]]
        time.sleep(0.02)
    raise AssertionError("no job started on the cluster")


def test_a_worker_killed_mid_sweep_loses_nothing(tmp_path: Path, cluster: LocalCluster) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_YAML.replace("count: 200", "count: 600"))  # jobs long enough
    out = tmp_path / "out"
    args = [str(tmp_path / "tiny.yaml"), *GRID, "--executor", "dask", "--scheduler", cluster.scheduler_address]
    status: list[Any] = []
    sweep = threading.Thread(target=lambda: status.append(main([*args, "--out", str(out), "--quiet"])))
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        sweep.start()
        victim = _busy_worker_pid(client, time.monotonic() + 60)
        os.kill(victim, signal.SIGKILL)
        sweep.join(timeout=180)
    assert status == [0]
    assert len(list((out / "jobs").glob("*.json"))) == 4  # the killed worker's job ran again elsewhere
    rows = csv_rows(out / "sweep_replications.csv")
    assert len(rows) == 1 + 8
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)  # the worker really died


EDITED_PLUGIN = """
from orchsim.scheduling import policy

@policy("dask_edit_probe", pure=True)
def dask_edit_probe(nodes, request):
    return {sign} * nodes.tasks.astype(float)
"""
PROBE_YAML = """
version: 1
name: probe
seed: 1
policies: [dask_edit_probe]
cluster: {nodes: [{count: 3, capacity: {cpu: 4000, memory: 1024}}]}
workload:
  - {kind: burst, at: 0, count: 3, resources: {cpu: 500, memory: 64}, duration: 10}
"""


def test_an_edited_plugin_runs_as_edited_on_the_same_workers(tmp_path: Path, cluster: LocalCluster) -> None:
    """Audit: the workers, which outlive a sweep, kept the first version of a plugin file and ran it."""
    from orchsim.scheduling import POLICIES

    plugin, scenario = tmp_path / "probe.py", tmp_path / "probe.yaml"
    scenario.write_text(PROBE_YAML)
    # Four jobs a sweep: both workers run some of each (one job could land on a worker that had not loaded it).
    dask = ["--executor", "dask", "--scheduler", cluster.scheduler_address, "--seeds", "1,2,3,4", "--quiet"]
    peaks = []
    try:
        for sign, out in ((-1, "spread"), (1, "pack")):  # fewest tasks first, then most
            plugin.write_text(EDITED_PLUGIN.format(sign=sign))
            assert main([str(scenario), "--plugin", str(plugin), *dask, "--out", str(tmp_path / out)]) == 0
            rows = csv_rows(tmp_path / out / "sweep_replications.csv")
            peaks.append({row[rows[0].index("peak_nodes_used")] for row in rows[1:]})
    finally:
        if "dask_edit_probe" in POLICIES:
            POLICIES.unregister("dask_edit_probe")
    assert peaks == [{"3"}, {"1"}]
