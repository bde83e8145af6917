"""A recording replays how the live master scheduled: its filters, its node sampling and its plugins.

An audit ran a master with ``--filters '{max_tasks_per_node: {limit: 1}}'``: live, two tasks
ran at a time; replayed, three shared one node (which the filter forbids), and the check still
said "within". A master running a plugin's policy could not be replayed at all: the recording
did not say where the policy came from and ``orchsim replay`` had no ``--plugin``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchlive.record import record
from orchsim.replay_cli import replay

pytestmark = pytest.mark.live

PLUGIN = '''
from orchsim.scheduling import policy

@policy("recorded_probe", pure=True)
def recorded_probe(nodes, request):
    """Most tasks first: packs by count."""
    return nodes.tasks.astype(float)
'''


def test_filters_sampling_and_plugins_are_recorded_and_replayed(cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plugin = tmp_path / "recorded_probe.py"
    plugin.write_text(PLUGIN)
    cluster = cluster_factory(policy="recorded_probe")
    filters = "{max_tasks_per_node: {limit: 1}}"
    cluster.start_master(extra=["--plugin", str(plugin), "--filters", filters, "--sample", "{candidates: 8}"])
    for name in ("w1", "w2"):
        cluster.start_worker(name, cpu=4000, memory=4096)
    ids = [
        cluster.submit({"name": f"t{i}", "command": ["sleep", "0.8"], "resources": {"cpu": 100, "memory": 64}})["id"]
        for i in range(4)
    ]
    for task_id in ids:
        cluster.wait_for_state(task_id, {"COMPLETED"}, timeout=30)
    health = cluster.http.get("/health").json()["scheduler"]
    assert health["filters"] == {"max_tasks_per_node": {"limit": 1}}
    assert health["sampling"] == {"candidates": 8} and health["plugins"] == [str(plugin)]

    out = tmp_path / "rec"
    record(cluster.url, out, quiet=1.0)
    meta = json.loads((out / "policy.json").read_text())
    assert (meta["policy"], meta["filters"], meta["sampling"]) == (
        "recorded_probe",
        health["filters"],
        health["sampling"],
    )
    assert meta["plugins"] == [str(plugin)]

    results, check = replay(out)  # the recorded plugin, filters and sampling
    scheduler = results.scenario.scheduler
    assert scheduler.filters == {"max_tasks_per_node": {"limit": 1}} and scheduler.sampling == {"candidates": 8}
    tasks = results.table("tasks")
    starts = sorted(float(s) for s in tasks["start_time"])
    # Two nodes, one task each at a time: never three tasks running at once.
    ends = sorted(float(e) for e in tasks["end_time"])
    assert all(sum(s <= t < e for s, e in zip(starts, ends, strict=True)) <= 2 for t in starts)
    assert check.decisions is not None and check.decisions.unexplained == 0
    assert any("node sampling" in why for why in check.decisions.not_checked)  # a scan's start is not rebuilt

    moved = tmp_path / "elsewhere.py"  # the plugin found somewhere else: --plugin replaces the recorded one
    moved.write_text(PLUGIN)
    plugin.unlink()
    command = [sys.executable, "-m", "orchsim", "replay", str(out), "--plugin", str(moved)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "recorded policy recorded_probe" in done.stdout
    without = subprocess.run(command[:5], capture_output=True, text=True, timeout=120)
    assert without.returncode == 2 and "recorded_probe.py: file not found" in without.stderr, without.stderr
    assert "Traceback" not in without.stderr
