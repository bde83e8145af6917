"""Per-job start times of AccaSim's FIFO and EBF dispatchers on an SWF log (the reference for issue 17).

Runs under a Python that has ``accasim`` (``pip install accasim``: the project does not depend
on it) and imports nothing of this project, so the reference stays independent::

    python -m venv /tmp/accasim && /tmp/accasim/bin/pip install accasim
    /tmp/accasim/bin/python tests/reference/accasim_starts.py data/swf/NASA-iPSC-1993-3.1-cln.swf.gz \\
        tests/data/accasim/nasa_starts.csv.gz --nodes 128

The protocol it gives AccaSim, and why (our simulator's side is in ``tests/reference/compare.py``):

- The log is rewritten to a plain SWF file first: jobs with run time <= 0 are dropped (our SWF
  loader drops them: nothing to simulate; AccaSim would run them for zero seconds, where they
  could still hold up a FIFO queue), and field 9 (requested time), which AccaSim takes as the
  expected duration, is set to the run time, field 4 (the NASA log has no requested times: all
  are -1; our EASY uses true durations too). Everything else is AccaSim's own: its SWF reader
  (requested processors, field 8, else allocated, field 5; one node request per processor), a
  system of ``--nodes`` nodes with one ``core`` each, the ``FirstFit`` allocator.
- ``limit`` keeps the first N kept jobs (file order = submit order in PWA logs), for short runs.

Writes ``job,submit,fifo,ebf`` rows (job id, submit time and the two start times, in seconds
as in the log), gzipped when the output name ends in ``.gz``.
"""

from __future__ import annotations

import argparse
import collections
import collections.abc
import csv
import gzip
import io
import json
import os
import sys
import tempfile

# accasim 1.1.3 (2021) imports Mapping from collections, gone since Python 3.10: restore the alias
# before importing it (nothing else of it needs changing).
collections.Mapping = collections.abc.Mapping  # type: ignore[attr-defined]

from accasim.base.additional_data import AdditionalData  # noqa: E402
from accasim.base.allocator_class import FirstFit  # noqa: E402
from accasim.base.scheduler_class import EASYBackfilling, FirstInFirstOut  # noqa: E402
from accasim.base.simulator_class import Simulator  # noqa: E402

from tests.reference.swf_jobs import rewrite_swf  # noqa: E402


class _Starts(AdditionalData):
    """Collects each finished job's start time (AccaSim's hook after a job's resources are released)."""

    def __init__(self, event_manager=None) -> None:
        super().__init__(event_manager)
        self.starts: dict[str, int] = {}

    def exec_after_completion(self, removed_jobs) -> None:
        for job in removed_jobs:
            self.starts[job.id] = job.start_time

    def exec_before_dispatching(self, *args, **kwargs) -> None:
        pass

    def exec_after_dispatching(self, *args, **kwargs) -> None:
        pass

    def exec_before_submission(self, *args, **kwargs) -> None:
        pass

    def exec_after_submission(self, *args, **kwargs) -> None:
        pass

    def exec_before_completion(self, *args, **kwargs) -> None:
        pass

    def stop(self) -> None:
        pass


def run(swf: str, nodes: int, dispatcher, workdir: str) -> dict[str, int]:
    """One AccaSim run; returns job id -> start time (seconds, the log's clock)."""
    config = os.path.join(workdir, "system.json")
    with open(config, "w") as f:
        json.dump({"groups": {"g": {"core": 1}}, "resources": {"g": nodes}}, f)
    sim = Simulator(
        swf,
        config,
        dispatcher,
        additional_data=[_Starts],  # a class: AccaSim builds it around its event manager
        RESULTS_FOLDER_PATH=os.path.join(workdir, "results"),
        scheduling_output=False,
        statistics_output=False,
        show_statistics=False,
        LOG_LEVEL="WARNING",
    )
    sim.start_simulation()
    (starts,) = sim.mapper.additional_data
    return starts.starts


def main(argv: list[str] | None = None) -> int:
    """Command line: SWF in, CSV of start times out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("swf")
    parser.add_argument("out")
    parser.add_argument("--nodes", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--compress", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        swf = os.path.join(workdir, "jobs.swf")
        submits = rewrite_swf(args.swf, swf, limit=args.limit, compress=args.compress)
        fifo = run(swf, args.nodes, FirstInFirstOut(FirstFit()), workdir)
        ebf = run(swf, args.nodes, EASYBackfilling(FirstFit()), workdir)
    missing = [job for job in submits if job not in fifo or job not in ebf]
    if missing:
        print(f"accasim did not finish {len(missing)} jobs, e.g. {missing[:5]}", file=sys.stderr)
        return 1
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["job", "submit", "fifo", "ebf"])
    for job, submit in submits.items():
        writer.writerow([job, submit, fifo[job], ebf[job]])
    opener = gzip.open if args.out.endswith(".gz") else open
    with opener(args.out, "wt") as f:
        f.write(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
