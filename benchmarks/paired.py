"""Paired CPU-time ratios: the measure that survives a shared, loaded machine.

One wall-clock measurement of a baseline beside a few of the engine is a ratio of two
different moments of the machine's load (issue 14 saw Ciw's single run fall in a heavy
moment and the ratio jump from 0.77x to 1.23x). Here each pair times the baseline and
the candidate back to back in CPU time (``time.process_time``: time this process ran,
not time it waited for a core), alternating which goes first, and the ratio is the
median of the per-pair ratios.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from statistics import median
from typing import Any

__all__ = ["cpu_seconds", "paired_ratio"]


def cpu_seconds(fn: Callable[[], Any]) -> float:
    """CPU seconds of one call of ``fn``."""
    began = time.process_time()
    fn()
    return time.process_time() - began


def paired_ratio(baseline: Callable[[], float], candidate: Callable[[], float], pairs: int) -> dict[str, Any]:
    """Median over ``pairs`` of ``baseline() / candidate()``, each returning its own CPU seconds.

    Each callable times only what it should (building a network or a scenario left out)
    and returns the seconds. Higher is better: the candidate is that many times faster.

    Returns:
        ``ratio`` (the median), ``ratios`` (every pair's), and the median seconds of each side.
    """
    ratios, base_s, cand_s = [], [], []
    for i in range(pairs):
        if i % 2:
            c = candidate()
            b = baseline()
        else:
            b = baseline()
            c = candidate()
        ratios.append(b / c)
        base_s.append(b)
        cand_s.append(c)
    return {
        "ratio": median(ratios),
        "ratios": ratios,
        "baseline_cpu_s": median(base_s),
        "candidate_cpu_s": median(cand_s),
        "loadavg": load_average(),
    }


def load_average() -> str:
    """The machine's 1, 5 and 15-minute load averages, for the record beside a number."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"
