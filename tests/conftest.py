"""Suite-wide: under pytest-xdist, the simulator's CPU-bound tests yield the CPU to the live ones.

The README runs the suite in two workers. A live test measures a real cluster's timing (who
got placed where as tasks raced, how long tasks waited), and a simulator test on the other
worker takes a whole core: on a two-core machine the live master then decides late, and a
recording's waits and races stop being the cluster's own. So on an xdist worker each test
that is not live runs at nice 10 and each live test at nice 0: the kernel gives a live
cluster (its master and workers inherit the nice value when the test starts them) the core
it needs, and the simulator's tests take what is left. Without root (no way to lower the
value again) everything stays at nice 0.
"""

from __future__ import annotations

import os

import pytest

_NICE_FOR_CPU_BOUND = 10


def _is_live(item: pytest.Item) -> bool:
    return item.get_closest_marker("live") is not None or "tests/live/" in item.nodeid


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ or os.geteuid() != 0:
        return  # raising the value is one-way without root: then everything stays at nice 0
    wanted = 0 if _is_live(item) else _NICE_FOR_CPU_BOUND
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) != wanted:
            os.setpriority(os.PRIO_PROCESS, 0, wanted)
    except PermissionError:  # a container without CAP_SYS_NICE: stay as we are
        pass
