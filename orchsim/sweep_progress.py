"""Progress over a sweep's (or a report's) jobs: shown from the start, with an ETA that means something.

A bar that appears only when the first job ends (a minute into a trace-driven sweep) looks
hung, and an ETA from the rate of finished jobs is wrong by the number of workers until
the first wave ends (the first of 8 parallel jobs finishing after 60 s does not mean 60 s
per job). Here the bar is drawn at once (``0/N``, the number of parallel slots), and the ETA
is ``remaining jobs x mean job seconds / slots``, where a job's seconds are measured where it
ran (a remote Dask worker too) and ``slots`` is the executor's current parallelism (workers
that join a Dask cluster mid-sweep count from then on).

On a terminal it is a live ``rich`` bar (erased when done); elsewhere (a CI log, ``nohup``)
one line ``delay`` seconds after the start (so a mistake found by the first job, such as a bad
trace line, still ends the command with its one error line), after the first job, at most
every ``every`` seconds, and at the end.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["Progress", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """``h:mm:ss``, the way the bar shows elapsed time and the ETA."""
    whole = max(round(seconds), 0)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class Progress:
    """Jobs finished of ``total``, the elapsed time and an ETA; a no-op when not ``enabled``.

    Args:
        total: All jobs, including those already done (read back from a previous run).
        done: Jobs already done before this run started.
        desc: What is counted (``sweep``, ``report``).
        enabled: ``False`` shows nothing.
        stream: Where to draw (default stderr).
        clock: Seconds now (replaced in tests).
        every: Seconds between lines when the stream is not a terminal.
        delay: Seconds before the first line when the stream is not a terminal (0: at once).
    """

    def __init__(
        self,
        total: int,
        *,
        done: int = 0,
        desc: str = "sweep",
        enabled: bool = True,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float = 5.0,
        delay: float = 1.0,
    ) -> None:
        self.total, self.done, self.desc, self.enabled = total, done, desc, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.clock, self.every, self.delay = clock, every, delay
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._closed = False
        self.durations: list[float] = []
        self.slots = 1
        self._started = self._last_line = 0.0
        self._live: Any = None
        self._task: Any = None

    def eta(self) -> float | None:
        """Seconds until every job is done, or ``None`` before the first job of this run ends."""
        if not self.durations:
            return None
        mean = sum(self.durations) / len(self.durations)
        return (self.total - self.done) * mean / max(self.slots, 1)

    def _eta_text(self) -> str:
        eta = self.eta()
        if self.done >= self.total:
            return "done"
        return "ETA after the first run" if eta is None else f"ETA {format_seconds(eta)}"

    def line(self) -> str:
        """The progress as one line of text (what a non-terminal stream gets)."""
        elapsed = format_seconds(self.clock() - self._started)
        kept = f" ({self.kept} kept from an earlier run)" if self.kept else ""
        at_once = f"{self.slots} at a time"
        return f"{self.desc}: {self.done}/{self.total} runs{kept}, {at_once}, {elapsed} elapsed, {self._eta_text()}"

    @property
    def kept(self) -> int:
        """Jobs done before this run (results kept from an earlier one)."""
        return self.done - len(self.durations)

    def nothing_to_do(self) -> None:
        """Say that every job was already done (kept results), so nothing runs."""
        if self.enabled:
            print(f"{self.desc}: all {self.total} runs kept from an earlier run; none to run", file=self.stream)

    def start(self, slots: int) -> None:
        """Draw the bar now, before any job ends; ``slots`` jobs run at once."""
        self.slots, self._started = max(slots, 1), self.clock()
        if not self.enabled:
            return
        from rich.console import Console

        console = Console(file=self.stream)
        if console.is_terminal:
            self._live = _live_bar(console)
            first = f"{self._eta_text()}" + (f" ({self.kept} kept)" if self.kept else "")
            self._task = self._live.add_task(self.desc, total=self.total, completed=self.done, eta=first)
            self._live.start()
        elif self.delay <= 0:
            self._print()
        else:
            self._timer = threading.Timer(self.delay, self._print)
            self._timer.daemon = True
            self._timer.start()

    def advance(self, seconds: float, slots: int | None = None) -> None:
        """One more job done, which took ``seconds`` where it ran; ``slots`` the parallelism now."""
        self.done += 1
        self.durations.append(seconds)
        if slots is not None:
            self.slots = max(slots, 1)
        if not self.enabled:
            return
        if self._live is not None:
            self._live.update(self._task, completed=self.done, eta=f"{self._eta_text()} ({self.slots} at a time)")
        elif len(self.durations) == 1 or self.done >= self.total or self.clock() - self._last_line >= self.every:
            self._print()

    def _print(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._timer is not None:
                self._timer.cancel()  # the first line is due now anyway
                self._timer = None
            self._last_line = self.clock()
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        """Erase the live bar (the lines of a non-terminal stream stay); no line is printed after this."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if self._live is not None:
            self._live.stop()
            self._live = None


def _live_bar(console: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[eta]}"),
        console=console,
        transient=True,
    )
