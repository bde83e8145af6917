"""The scheduler's decision latency in the simulator (``scheduler.decision_latency``).

The live master acts on a change (a submission, a task's end) some milliseconds after it
is in the store: its watch delivers it, a pass reads the cluster and decides, a
transaction commits. With a latency, the engine runs each pass that long after the
change that woke it, and the pass takes in whatever else happened meanwhile, as the
master's loop does. Without one (the default) passes take no time and every run is
exactly what it was before this module existed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["PassDelay"]


class PassDelay:
    """Seconds before the next pass: a fixed value, or draws from an empirical distribution.

    The draws come from their own stream of the scenario's seed, so every policy of a
    scenario sees the same sequence of latencies (common random numbers), and the
    policy's and the cluster events' streams are not shifted by them.
    """

    def __init__(self, samples: Sequence[float], seed: int) -> None:
        self.samples = np.asarray(samples, dtype=np.float64)
        self.active = bool(self.samples.size) and bool((self.samples > 0).any())
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, 29]))

    def __call__(self) -> float:
        """The next pass's delay (s): 0 when inactive, the one value if fixed, else a draw."""
        if not self.active:
            return 0.0
        if self.samples.size == 1:
            return float(self.samples[0])
        return float(self.samples[self._rng.integers(self.samples.size)])
