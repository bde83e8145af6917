"""FCFS, EASY and greedy backfilling from their textbook definitions, on P identical processors.

An independent reference for our scheduling of SWF gangs (it shares no code with ``orchsim``):
a job asks for ``procs`` of ``P`` processors, runs ``runtime`` seconds, and its estimate is its
run time. At each time with an arrival or an end, ends are applied first, then arrivals join
the queue (in input order), then one pass:

- ``fcfs``: start jobs from the head while they fit; the first that does not stops the pass.
- ``easy`` (Lifka 1995; Mu'alem & Feitelson 2001, section 2): the same, then the blocked head
  gets the shadow time (the earliest expected end after which enough processors are free) and
  the extra processors (free then, every job ending then included, beyond the head's need); a
  later job that fits now starts if it ends by the shadow time or uses no more than the extra
  processors (which it then uses up).
- ``greedy``: every job that fits now starts, in queue order (no reservation).
"""

from __future__ import annotations

import heapq

__all__ = ["schedule"]


def schedule(jobs: list[tuple[int, int, int]], processors: int, mode: str) -> list[int]:
    """Start times of ``jobs`` (``(submit, runtime, procs)``, seconds and processors) under ``mode``."""
    if mode not in ("fcfs", "easy", "greedy"):
        raise ValueError(f"mode must be fcfs, easy or greedy, not {mode!r}")
    order = sorted(range(len(jobs)), key=lambda j: jobs[j][0])
    start = [-1] * len(jobs)
    running: list[tuple[int, int]] = []  # (end, procs), a heap
    queue: list[int] = []
    free, nxt = processors, 0
    while nxt < len(order) or queue:
        arrivals = jobs[order[nxt]][0] if nxt < len(order) else None
        now = min(t for t in (arrivals, running[0][0] if running else None) if t is not None)
        while running and running[0][0] <= now:
            free += heapq.heappop(running)[1]
        while nxt < len(order) and jobs[order[nxt]][0] <= now:
            queue.append(order[nxt])
            nxt += 1
        free = _pass(jobs, queue, running, free, now, mode, start)
    return start


def _pass(
    jobs: list[tuple[int, int, int]],
    queue: list[int],
    running: list[tuple[int, int]],
    free: int,
    now: int,
    mode: str,
    start: list[int],
) -> int:
    """One scheduling pass at ``now``: starts jobs (removing them from ``queue``); returns free processors."""

    def begin(j: int) -> None:
        nonlocal free
        start[j] = now
        free -= jobs[j][2]
        heapq.heappush(running, (now + jobs[j][1], jobs[j][2]))

    while queue and jobs[queue[0]][2] <= free:
        begin(queue.pop(0))
    if not queue or mode == "fcfs":
        return free
    shadow, extra = None, None
    if mode == "easy":
        need, avail, ends = jobs[queue[0]][2], free, sorted(running)
        for i, (end, procs) in enumerate(ends):
            avail += procs
            if avail >= need and (i + 1 == len(ends) or ends[i + 1][0] > end):  # all ending then have ended
                shadow, extra = end, avail - need
                break
    kept = [queue[0]]
    for j in queue[1:]:
        procs = jobs[j][2]
        if procs > free:
            kept.append(j)
        elif mode == "greedy" or now + jobs[j][1] <= shadow:
            begin(j)
        elif procs <= extra:
            extra -= procs
            begin(j)
        else:
            kept.append(j)
    queue[:] = kept
    return free
