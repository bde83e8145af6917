"""Our simulator's per-job start times beside a reference's, on the same SWF jobs.

Used by ``tests/sim/test_reference_nasa.py`` and, to print the table,
``python -m tests.reference.compare [--compress K] [--limit N]``. Our side runs the jobs that
``swf_jobs.rewrite_swf`` wrote (the file AccaSim reads too) as ``swf`` gangs on ``nodes``
nodes of one processor each (1000 millicores, as the README's NASA setting), first-fit.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchsim import run
from orchsim.scenario import parse_scenario
from tests.reference.swf_jobs import rewrite_swf

__all__ = ["REFERENCE_DIR", "PYSS_DIR", "NASA_LOG", "Mismatch", "mismatches", "our_starts", "read_reference"]

ROOT = Path(__file__).resolve().parents[2]
NASA_LOG = ROOT / "data" / "swf" / "NASA-iPSC-1993-3.1-cln.swf.gz"
REFERENCE_DIR = ROOT / "tests" / "data" / "accasim"
PYSS_DIR = ROOT / "tests" / "data" / "pyss"

#: ``backfill`` and ``easy`` look at the whole queue, as AccaSim and the textbook do (our default
#: window of 100 tasks is a cap like Slurm's ``bf_max_job_test``, which no reference has).
WINDOW = 1_000_000


@dataclass(frozen=True)
class Mismatch:
    """One job whose start differs: ``ours`` and ``reference`` are start times in seconds."""

    job: str
    submit: int
    ours: float
    reference: float


def our_starts(
    swf: str | os.PathLike[str], queue: str, nodes: int = 128, passes: str = "per_instant"
) -> dict[str, float]:
    """Start time (s, the file's clock) of every job of an already rewritten ``swf``, under ``queue``.

    ``passes``: the protocol's ``per_instant`` (AccaSim's one pass per second), or our default
    ``per_event``, to see how far the default departs from the references.
    """
    scheduler: dict[str, object] = {"queue": queue, "passes": passes}
    if queue != "fifo":
        scheduler["backfill_window"] = WINDOW
    scenario = parse_scenario(
        {
            "version": 1,
            "name": "reference",
            "policies": ["first_fit"],
            "scheduler": scheduler,
            "cluster": {"nodes": [{"count": nodes, "capacity": {"cpu": 1000, "memory": 0}}]},
            "workload": [{"kind": "swf", "path": os.fspath(swf), "gangs": True}],
        }
    )
    jobs, submits = [], []
    with open(swf) as f:
        for line in f:
            fields = line.split()
            jobs.append(fields[0])
            submits.append(int(fields[1]))
    # The loader stable-sorts by submit time and rebases to the first submit: undo both.
    order = np.argsort(np.array(submits), kind="stable")
    tasks = run(scenario).tasks.sort_values("task_id")
    start = tasks.start_time.to_numpy() + min(submits)
    return {jobs[i]: float(start[k]) for k, i in enumerate(order)}


def read_reference(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows ``job, submit, fifo, ebf`` of a CSV written by ``accasim_starts.py`` (gzipped or not)."""
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rt") as f:  # type: ignore[operator]
        return list(csv.DictReader(f))


def mismatches(ours: dict[str, float], rows: list[dict[str, str]], column: str) -> list[Mismatch]:
    """Jobs whose start differs from the reference's ``column`` by more than float representation."""
    out = []
    for row in rows:
        job, reference = row["job"], float(row[column])
        if abs(ours[job] - reference) > 1e-6 * max(1.0, abs(reference)):
            out.append(Mismatch(job, int(row["submit"]), ours[job], reference))
    return out


def stored(compress: int, limit: int | None) -> str:
    """The stored reference file that covers the first ``limit`` jobs at ``compress``."""
    if compress == 1:
        return "nasa_c1.csv.gz"
    for n in (1000, 3000):
        if compress == 2 and limit is not None and limit <= n:
            return f"nasa_c2_first{n}.csv.gz"
    raise SystemExit(f"no stored reference for --compress {compress} --limit {limit} (c1, or c2 up to 3000 jobs)")


def main(argv: list[str] | None = None) -> int:
    """Print, for each discipline, how many jobs start as the stored references say, and the rest."""
    parser = argparse.ArgumentParser(description="our start times against AccaSim's and pyss's on the NASA log")
    parser.add_argument("--compress", type=int, default=1, help="divide submit times by K (a stored reference)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N jobs")
    parser.add_argument("--show", type=int, default=20, help="rows of differing jobs to print per comparison")
    parser.add_argument(
        "--passes", default="per_instant", choices=["per_instant", "per_event"], help="our scheduler's passes"
    )
    args = parser.parse_args(argv)
    name = stored(args.compress, args.limit)
    references = {"AccaSim": read_reference(REFERENCE_DIR / name)[: args.limit]}
    references["pyss"] = read_reference(PYSS_DIR / name)[: args.limit]
    pairs = [("fifo", "AccaSim", "fifo"), ("backfill", "AccaSim", "ebf"), ("easy", "AccaSim", "ebf")]
    pairs += [("fifo", "pyss", "fcfs"), ("easy", "pyss", "easy")]
    with tempfile.TemporaryDirectory() as tmp:
        swf = os.path.join(tmp, "jobs.swf")
        rewrite_swf(os.fspath(NASA_LOG), swf, limit=args.limit, compress=args.compress)
        ours = {queue: our_starts(swf, queue, passes=args.passes) for queue in ("fifo", "backfill", "easy")}
    for queue, source, column in pairs:
        rows = references[source]
        bad = mismatches(ours[queue], rows, column)
        waits = sum(float(r[column]) > int(r["submit"]) for r in rows)
        print(f"ours {queue:8} vs {source} {column:4}: {len(rows) - len(bad)}/{len(rows)} equal ({waits} wait there)")
        for m in bad[: args.show]:
            print(f"  job {m.job:>6} submit {m.submit:>8}  ours {m.ours:>10.0f}  {source} {m.reference:>10.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
