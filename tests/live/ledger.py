"""A ledger of executions: tasks that stamp a shared file while they run, and the checks over it.

Each task runs ``ledger_task``'s command: a Python loop that appends ``TASK ATTEMPT tick
TIME`` every ``tick`` seconds while it runs and ``TASK ATTEMPT done TIME`` when it ends on
its own (wall-clock seconds; small ``O_APPEND`` writes, so lines never interleave). A copy
that is killed simply stops ticking: its last tick is when it was last seen running.
Two executions of one task overlap when one starts ticking before the other's last tick.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

SCRIPT = """
import os, sys, time
path, seconds, tick = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
task, attempt = os.environ["ORCH_TASK_ID"], os.environ["ORCH_ATTEMPT"]
out = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
end = time.time() + seconds
while True:
    os.write(out, f"{task} {attempt} tick {time.time():.6f}\\n".encode())
    if time.time() >= end:
        break
    time.sleep(min(tick, max(end - time.time(), 0)))
os.write(out, f"{task} {attempt} done {time.time():.6f}\\n".encode())
"""


def ledger_task(name: str, ledger: Path, seconds: float, *, tick: float = 0.1, cpu: int = 500) -> dict[str, Any]:
    """A task body that runs ``seconds`` while stamping ``ledger`` every ``tick`` seconds."""
    return {
        "name": name,
        "image": "alpine",
        "command": [sys.executable, "-I", "-S", "-c", SCRIPT, str(ledger), str(seconds), str(tick)],
        "resources": {"cpu": cpu, "memory": 64},
        "max_attempts": 20,
    }


@dataclass
class Execution:
    """One placement of one task, as the ledger saw it."""

    task: str
    attempt: int
    first: float
    last: float
    done: bool = False


@dataclass
class Ledger:
    """The executions found in a ledger file, by task."""

    runs: dict[str, list[Execution]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Ledger:
        found: dict[tuple[str, int], Execution] = {}
        text = path.read_text() if path.exists() else ""
        for line in text.splitlines():
            parts = line.split()
            if len(parts) != 4:
                continue  # a line cut by a kill in the middle of a write cannot happen (one write), but be lenient
            task, attempt, kind, stamp = parts[0], int(parts[1]), parts[2], float(parts[3])
            run = found.setdefault((task, attempt), Execution(task, attempt, stamp, stamp))
            run.first, run.last = min(run.first, stamp), max(run.last, stamp)
            run.done = run.done or kind == "done"
        runs: dict[str, list[Execution]] = defaultdict(list)
        for run in found.values():
            runs[run.task].append(run)
        for task_runs in runs.values():
            task_runs.sort(key=lambda r: r.first)
        return cls(dict(runs))

    def overlaps(self) -> list[tuple[Execution, Execution, float]]:
        """Pairs of executions of one task that ran at the same time, with the seconds they shared."""
        out = []
        for task_runs in self.runs.values():
            for i, a in enumerate(task_runs):
                for b in task_runs[i + 1 :]:
                    shared = min(a.last, b.last) - max(a.first, b.first)
                    if shared > 0:
                        out.append((a, b, shared))
        return out

    def completions(self, task: str) -> int:
        """How many executions of ``task`` ran to their end."""
        return sum(run.done for run in self.runs.get(task, []))

    def gaps(self) -> list[float]:
        """Seconds between one execution's last stamp and the next one's first, over every rerun."""
        return [b.first - a.last for runs in self.runs.values() for a, b in pairwise(runs)]

    def reruns(self) -> int:
        """Executions beyond the first of each task (sequential retries)."""
        return sum(len(task_runs) - 1 for task_runs in self.runs.values())
