"""The jobs both simulators get in the reference comparison: one plain SWF file, written once.

Standard library only: ``accasim_starts.py`` runs it under AccaSim's own Python, and the
comparison under ours, so the two read byte-identical input.
"""

from __future__ import annotations

import gzip
from typing import TextIO

__all__ = ["open_swf", "rewrite_swf"]


def open_swf(path: str) -> TextIO:
    """Open an SWF log as text, gzipped or plain (told by its first bytes, as our loader does)."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt") if gz else open(path)


def rewrite_swf(source: str, target: str, *, limit: int | None = None, compress: int = 1) -> dict[str, int]:
    """Write the jobs the comparison replays; return job id -> submit time (s), in file order.

    - Jobs with run time <= 0 or an unknown submit time are dropped: our SWF loader drops them
      (nothing to simulate); AccaSim would run them for zero seconds.
    - Field 9 (requested time), AccaSim's expected duration, becomes the run time (field 4): the
      NASA log has no requested times (all -1), and our EASY's estimates are the true durations.
    - ``compress`` divides submit times (integer division: both simulators read the same whole
      seconds), a heavier load on the same jobs: the log as is has almost no queueing on its
      own 128 processors, since its submit times are really its start times.
    - ``limit`` keeps the first N kept jobs (PWA logs are in submit order).
    """
    submits: dict[str, int] = {}
    with open_swf(source) as src, open(target, "w") as out:
        for line in src:
            fields = line.split()
            if not fields or fields[0].startswith(";"):
                continue
            if int(fields[3]) <= 0 or int(fields[1]) < 0:
                continue
            if limit is not None and len(submits) >= limit:
                break
            fields[1] = str(int(fields[1]) // compress)
            fields[8] = fields[3]
            out.write(" ".join(fields) + "\n")
            submits[fields[0]] = int(fields[1])
    return submits
