"""Per-job start times of pyss's FCFS and EASY schedulers on an SWF log (a published EASY, issue 17).

pyss is a Python scheduler simulator from the Hebrew University (its README names Ori Peleg;
its schedulers are the EASY variants of that line of work: EASY++ of Tsafrir, Etsion and
Feitelson 2007, double, shrinking, lookahead, probabilistic EASY). Unlike AccaSim's "EBF",
its ``EasyBackfillScheduler`` enforces the head's reservation: it places the head at its
earliest time in a copy of the processor-time profile and backfills a job only if the job can
still start now there. It is Python 2 (2.4-era
syntax), so it runs under its own interpreter and is never imported here::

    PYTHONPATH=. python -m tests.reference.pyss_starts data/swf/NASA-iPSC-1993-3.1-cln.swf.gz \\
        tests/data/pyss/nasa_c2_first1000.csv.gz --pyss /tmp/pyss/src --compress 2 --limit 1000

The protocol: the log is rewritten by ``swf_jobs.rewrite_swf`` (the file AccaSim and our side
read too: run time 0 dropped, requested time := run time, submit times divided by
``--compress``); pyss then reads it with its own SWF parser (``_job_inputs_to_jobs``: estimate
= max(requested, run time), processors = allocated, capped at the machine) on ``--nodes``
processors. Nothing of pyss is changed: the driver below only builds its ``Simulator`` and
prints each job's ``start_to_run_at_time``.
Its events at one time run submissions first (each followed by a pass), then ends; with
estimates = run times its profile already has an ending job's processors free at its end time,
so an arrival sees every end of its second, as ``passes: per_instant`` gives on our side.

Writes ``job,submit,fcfs,easy`` rows (job id, submit time, the two start times, seconds in the
rewritten file's clock), gzipped when the output name ends in ``.gz``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import subprocess
import sys
import tempfile

from tests.reference.swf_jobs import rewrite_swf

__all__ = ["pyss_starts"]

#: Runs under pyss's Python 2: argv = pyss source dir, SWF file, processors, scheduler class.
DRIVER = """
import sys
sys.path.insert(0, sys.argv[1])
from base.workload_parser import parse_lines
from base.prototype import _job_inputs_to_jobs
from schedulers.simulator import Simulator
from schedulers.fcfs_scheduler import FcfsScheduler
from schedulers.easy_scheduler import EasyBackfillScheduler
processors = int(sys.argv[3])
scheduler = {"fcfs": FcfsScheduler, "easy": EasyBackfillScheduler}[sys.argv[4]](processors)
jobs = list(_job_inputs_to_jobs(parse_lines(open(sys.argv[2])), processors))
Simulator(jobs, processors, scheduler).run()
for job in jobs:
    sys.stdout.write("%s %d %d\\n" % (job.id, job.submit_time, job.start_to_run_at_time))
"""


def pyss_starts(swf: str, pyss: str, python: str, nodes: int = 128) -> list[dict[str, str]]:
    """Rows ``job, submit, fcfs, easy`` for an already rewritten ``swf``, from pyss at ``pyss`` (its src dir)."""
    columns: dict[str, list[list[str]]] = {}
    for name in ("fcfs", "easy"):
        command = [python, "-c", DRIVER, pyss, swf, str(nodes), name]
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800).stdout
        columns[name] = [line.split() for line in out.splitlines()]
    fcfs, easy = columns["fcfs"], columns["easy"]
    if [r[:2] for r in fcfs] != [r[:2] for r in easy]:
        raise RuntimeError("pyss gave its FCFS and EASY runs different jobs")
    return [{"job": f[0], "submit": f[1], "fcfs": f[2], "easy": e[2]} for f, e in zip(fcfs, easy, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pyss's FCFS and EASY start times on an SWF log")
    parser.add_argument("log", help="SWF log (gzipped or plain)")
    parser.add_argument("out", help="CSV to write (.gz: gzipped)")
    parser.add_argument("--pyss", default=os.environ.get("ORCH_PYSS_SRC"), help="pyss's src directory")
    parser.add_argument("--python", default=os.environ.get("ORCH_PYSS_PYTHON", "python2.7"), help="a Python 2.7")
    parser.add_argument("--nodes", type=int, default=128, help="processors of the machine")
    parser.add_argument("--compress", type=int, default=1, help="divide submit times by K")
    parser.add_argument("--limit", type=int, default=None, help="only the first N jobs")
    args = parser.parse_args(argv)
    if not args.pyss:
        parser.error("--pyss (or ORCH_PYSS_SRC) must name pyss's src directory")
    with tempfile.TemporaryDirectory() as tmp:
        swf = os.path.join(tmp, "jobs.swf")
        rewrite_swf(args.log, swf, limit=args.limit, compress=args.compress)
        rows = pyss_starts(swf, args.pyss, args.python, args.nodes)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["job", "submit", "fcfs", "easy"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    if args.out.endswith(".gz"):
        # mtime=0: the same starts give the same bytes, so a regenerated file shows no diff.
        with open(args.out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(text.getvalue().encode())
    else:
        with open(args.out, "w") as f:
            f.write(text.getvalue())
    print(f"{len(rows)} jobs -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
