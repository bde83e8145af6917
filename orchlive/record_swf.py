"""A recording as a Standard Workload Format log (``orchlive record --swf FILE``), for the batch-scheduling tools.

The Parallel Workloads Archive's SWF (version 2.2): one line of 18 fields per job, ``-1``
for what is unknown. A task is a job: its submission, its wait to the first placement,
and the run of its replayed attempt (the last completed one, else the last that ran), as
``orchsim.traces.orchlive`` replays it: from its assignment to its end. Processors are its
cpu request in whole cores (at least 1; SWF counts processors, the recording
millicores), memory is KB per processor. Times keep three decimals: orchlive tasks are
often shorter than a second, and ``orchsim``'s SWF reader takes them. Status: 1
completed, 0 failed, 5 never ran (cancelled, or still pending when recorded).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from orchsim.recording_format import POLICY_FILE, RESOURCE_COLUMNS, TASKS_FILE

__all__ = ["swf_lines", "write_swf"]

_STATUS = {"COMPLETED": 1, "FAILED": 0}


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


def _jobs(rows: list[dict[str, str]]) -> list[tuple[dict[str, str], float | None, dict[str, str]]]:
    """Per task (first-seen order): its first row, its first placement time, and the row replayed."""
    by_task: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_task.setdefault(row["task_id"], []).append(row)
    jobs = []
    for mine in by_task.values():
        placed = [t for t in (_number(r["assigned_time"]) for r in mine) if t is not None]
        ran = [r for r in mine if _number(r["end_time"]) is not None and _number(r["start_time"]) is not None]
        done = [r for r in ran if r["state"] == "COMPLETED"]
        jobs.append((mine[0], min(placed, default=None), (done or ran or mine)[-1]))
    return jobs


def _fields(n: int, first: dict[str, str], placed: float | None, row: dict[str, str]) -> list[str]:
    submit = float(first["submit_time"])
    cpu = _number(row.get(RESOURCE_COLUMNS["cpu"], "") or "") or 0.0
    memory = _number(row.get(RESOURCE_COLUMNS["memory"], "") or "")
    procs = max(1, math.ceil(cpu / 1000))
    held_from = _number(row["assigned_time"]) or _number(row["start_time"])
    end = _number(row["end_time"])
    run = end - held_from if end is not None and held_from is not None else None
    status = _STATUS.get(row["state"], 5) if run is not None else 5
    memory_kb = f"{memory * 1024 / procs:.0f}" if memory else "-1"
    wait = f"{placed - submit:.3f}" if placed is not None else "-1"
    values = [str(n), f"{submit:.3f}", wait, f"{run:.3f}" if run is not None else "-1", str(procs), "-1"]
    values += [memory_kb, str(procs), "-1", memory_kb, str(status)]
    return values + ["-1"] * 7


def swf_lines(directory: str | Path) -> list[str]:
    """The SWF log of the recording in ``directory``: header comments, then one line per task."""
    folder = Path(directory)
    with (folder / TASKS_FILE).open(newline="") as f:
        rows = list(csv.DictReader(f))
    meta: dict[str, Any] = {}
    if (folder / POLICY_FILE).exists():
        meta = json.loads((folder / POLICY_FILE).read_text())
    jobs = _jobs(rows)
    header = [
        "; Version: 2.2",
        "; Computer: orchlive cluster (python -m orchlive record)",
        f"; StartTime: {meta.get('epoch', '?')}",
        f"; MaxJobs: {len(jobs)}",
        f"; Note: scheduled by policy {meta.get('policy', '?')}; times in seconds from the first submission, "
        "processors are whole cores of the cpu request, memory KB per processor",
    ]
    return header + [" ".join(_fields(n, *job)) for n, job in enumerate(jobs, 1)]


def write_swf(directory: str | Path, path: str | Path) -> int:
    """Write the SWF log of the recording in ``directory`` to ``path``; returns the number of jobs."""
    lines = swf_lines(directory)
    Path(path).write_text("\n".join(lines) + "\n")
    return sum(1 for line in lines if not line.startswith(";"))
