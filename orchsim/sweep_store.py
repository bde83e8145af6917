"""The folder of a sweep's finished jobs: one JSON file per job, named by the job's key.

Why one file per job, written as the job finishes: a sweep stopped at 90% (killed, a lost
connection, a machine going down) keeps the 90%, and the rerun of the same sweep reads
them back instead of simulating again. Why JSON: the summary rows are a few dozen scalars,
JSON keeps a float exactly (``repr`` round-trips) and NaN, and a half-written file is
impossible because every file is written beside its target and renamed into place.

Files are written by the process that drives the sweep, not by the workers, so remote
workers need no access to ``--out``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from orchsim.sweep_jobs import Job, Summaries

__all__ = ["JobStore"]


class JobStore:
    """Finished jobs' summary rows in ``folder`` (``<key>.json``), read back on a rerun."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, job: Job) -> Path:
        """Where ``job``'s result is kept."""
        if not job.key:
            raise ValueError("a job without a key cannot be stored")
        return self.folder / f"{job.key}.json"

    def load(self, job: Job) -> Summaries | None:
        """``job``'s stored rows, or ``None`` if it has not finished (or its file is unreadable)."""
        try:
            stored: dict[str, Any] = json.loads(self.path(job).read_text())
        except (OSError, ValueError):
            return None
        summaries = stored.get("summaries")
        return summaries if isinstance(summaries, list) and stored.get("key") == job.key else None

    def save(self, job: Job, summaries: Summaries, **about: Any) -> None:
        """Keep ``job``'s rows (atomically: written beside the target, then renamed)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(job)
        record = {"key": job.key, "seed": job.seed, "policies": list(job.policies), **about, "summaries": summaries}
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(record, allow_nan=True))
        os.replace(partial, target)

    def count(self) -> int:
        """How many finished jobs the folder holds (of any sweep)."""
        return sum(1 for _ in self.folder.glob("*.json")) if self.folder.is_dir() else 0
