"""What every trace loader returns (``TraceTasks``) and raises (``TraceError``).

Loaders of any format end the same way, sorting their columns by submit time
(``sorted_tasks``), so the engine gets one layout whatever the file was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TraceError", "TraceTasks", "sorted_tasks"]


class TraceError(ValueError):
    """A trace file that cannot be read.

    ``str(err)`` names the file, the line (1-based, as a text editor counts, header =
    line 1) when there is one, the column, and the problem, e.g.
    ``"traces/jobs.csv line 7, column 'cpu': 'abc' is not a number"``.
    """


@dataclass(frozen=True)
class TraceTasks:
    """Tasks of a trace, columnar, sorted by submit_time (stable sort).

    Attributes:
        submit_time: float64 ``(T,)``, seconds, >= 0; relative to the trace's first
            submission when loaded with ``rebase=True``.
        duration: float64 ``(T,)``, seconds, > 0; ``inf`` means the task never ends
            (arrival-only traces).
        resources: Resource name -> float64 ``(T,)`` demand, >= 0. Units: ``cpu`` in
            millicores, ``memory`` in MiB, ``gpu`` in milli-GPU.
        names: Task names (object array ``(T,)``) when the trace has them, else None.
        skipped: Records of the file left out (SWF jobs with no run time or no
            processors), so callers can report how much of the trace was used.
        clamped: Records kept but with their duration raised to ``orchsim.traces.openb.MIN_POD_DURATION``
            (openb pods deleted at their creation time).
        node_selectors: Per task, the node labels it requires (object array of dicts,
            empty for none), when the trace says (openb's ``gpu_spec``); else None.
    """

    submit_time: np.ndarray
    duration: np.ndarray
    resources: dict[str, np.ndarray]
    names: np.ndarray | None = None
    skipped: int = 0
    clamped: int = 0
    node_selectors: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.submit_time)
        lengths = [len(self.duration), *(len(v) for v in self.resources.values())]
        if self.names is not None:
            lengths.append(len(self.names))
        if self.node_selectors is not None:
            lengths.append(len(self.node_selectors))
        if any(length != n for length in lengths):
            raise ValueError(f"TraceTasks columns differ in length: submit_time has {n}, others {lengths}")

    def __len__(self) -> int:
        return len(self.submit_time)


def sorted_tasks(
    submit: np.ndarray,
    duration: np.ndarray,
    resources: dict[str, np.ndarray],
    names: np.ndarray | None,
    *,
    rebase: bool,
    limit: int | None = None,
    skipped: int = 0,
    clamped: int = 0,
    node_selectors: np.ndarray | None = None,
) -> TraceTasks:
    """Stable-sort by submit time, keep the first ``limit``, shift to start at 0 if ``rebase``."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    order = np.argsort(submit, kind="stable")[:limit]
    submit = submit[order]
    if rebase and submit.size:
        submit = submit - submit[0]
    return TraceTasks(
        submit_time=submit,
        duration=duration[order],
        resources={name: values[order] for name, values in resources.items()},
        names=None if names is None else names[order],
        skipped=skipped,
        clamped=clamped,
        node_selectors=None if node_selectors is None else node_selectors[order],
    )
