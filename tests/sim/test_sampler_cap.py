"""The time series keeps at most ``metrics.samples`` samples, evenly spaced over the whole run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from orchsim import run
from orchsim.scenario import load_scenario

# 400 tasks of 100 s each on one 1-task node: the queue drains for ~40,000 s, where the
# expected length the default interval is computed from is ~100 s (last arrival + a duration).
SCENARIO = """
version: 1
name: long_tail
seed: 1
policies: [bin_packing]
cluster:
  nodes:
    - {{name: n, count: 1, capacity: {{cpu: 1000, memory: 1000}}}}
workload:
  - {{kind: burst, at: 0, count: 400, resources: {{cpu: 1000, memory: 10}}, duration: {{dist: constant, value: 100}}}}
metrics: {{samples: {samples}}}
"""


def series(tmp_path: Path, samples: int):  # type: ignore[no-untyped-def]
    path = tmp_path / "long.yaml"
    path.write_text(SCENARIO.format(samples=samples))
    result = run(load_scenario(path))
    return result.timeseries, float(result.summary["makespan"].iloc[0])


def test_a_long_tail_is_sampled_evenly_within_the_cap(tmp_path: Path) -> None:
    ts, makespan = series(tmp_path, 100)
    times = ts["time"].to_numpy()
    assert 50 <= len(times) <= 100  # thinned by halves: never more than the cap, never under half
    steps = np.diff(times)
    assert np.allclose(steps, steps[0])  # evenly spaced after thinning
    assert times[-1] >= makespan - steps[0]  # the tail is covered to the end of the run
    assert times[0] == 0.0


def test_the_cap_is_the_scenarios_own(tmp_path: Path) -> None:
    few, _ = series(tmp_path, 10)
    many, _ = series(tmp_path, 400)
    assert len(few) <= 10 < 200 <= len(many) <= 400
