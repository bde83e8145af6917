"""``orchlive record --follow``: continuous recording that resumes after a restart without duplicates."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchlive.record import EVENTS_FILE, follow

pytestmark = pytest.mark.live


def _run_tasks(cluster, names: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    ids = [cluster.submit({"name": n, "command": ["sleep", "0.2"], "resources": {"cpu": 100}})["id"] for n in names]
    for task_id in ids:
        cluster.wait_for_state(task_id, {"COMPLETED"}, timeout=30)
    return ids


def test_a_restarted_follower_resumes_after_its_last_event_and_keeps_none_twice(cluster_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1")
    first = _run_tasks(cluster, ["a", "b"])
    out = tmp_path / "rec"
    done = follow(cluster.url, out, flush=1.0, rounds=1, lease_ttl=2)
    assert done is not None and done.tasks == 2
    kept = [json.loads(line) for line in (out / EVENTS_FILE).read_text().splitlines()]
    cursor = json.loads((out / "cursor.json").read_text())["last_event_id"]
    assert cursor == max(e["id"] for e in kept)

    second = _run_tasks(cluster, ["c", "d"])  # while no recorder runs: it catches up when restarted
    done = follow(cluster.url, out, flush=1.0, rounds=1, lease_ttl=2)
    assert done is not None and done.tasks == 4
    ids = [json.loads(line)["id"] for line in (out / EVENTS_FILE).read_text().splitlines()]
    assert len(ids) == len(set(ids)) and ids == sorted(ids) and ids[: len(kept)] == [e["id"] for e in kept]
    rows = list(csv.DictReader((out / "tasks.csv").open()))
    assert [r["task_id"] for r in rows] == first + second and all(r["state"] == "COMPLETED" for r in rows)
    # A task deleted from the store stays in the recording, from the events that showed it.
    assert cluster.http.delete(f"/api/v1/tasks/{first[0]}").status_code < 300
    done = follow(cluster.url, out, flush=1.0, rounds=1, lease_ttl=2)
    assert [r["task_id"] for r in csv.DictReader((out / "tasks.csv").open())] == first + second

    # The command line: --follow --rounds 1 --swf, one line on stdout.
    env = cluster._env()
    command = [sys.executable, "-m", "orchlive", "record", "--master", cluster.url, "--out", str(out)]
    command += ["--follow", "--flush", "1", "--rounds", "1", "--swf", str(tmp_path / "rec.swf")]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=True).stdout
    assert shown.startswith("recorded 4 tasks") and Path(tmp_path / "rec.swf").read_text().count("\n") == 5 + 4
