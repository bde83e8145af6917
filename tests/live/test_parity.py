"""Placement parity: the live master places exactly where orchsim.scheduling does, for every policy."""

from __future__ import annotations

import pytest
import yaml

from orchsim.scheduling import POLICIES, NodeMatrix, PreparedPolicy, decide
from orchsim.scheduling.queueing import random_streams

pytestmark = pytest.mark.live

WORKERS = {"w1": (4000, 8192), "w2": (8000, 4096), "w3": (6000, 16384)}  # cpu millicores, memory MiB
REQUESTS = [
    (500, 256),
    (1500, 1024),
    (250, 2048),
    (1000, 512),
    (2000, 3000),
    (750, 128),
    (500, 4096),
    (1250, 1024),
    (300, 300),
    (1000, 2048),
]
SEED = 11


def simulated_nodes(policy: str, sample: object = None) -> list[str]:
    """The same tasks placed by the shared core on the same capacities (nodes sorted by id)."""
    names = sorted(WORKERS)
    nodes = NodeMatrix.from_capacities(
        {"cpu": [WORKERS[n][0] for n in names], "memory": [WORKERS[n][1] for n in names], "gpu": [0] * len(names)},
        ids=names,
    )
    # One prepared policy for all the decisions, as the master keeps one: its generator is the
    # master's policy stream for its --seed, and it carries round robin's cursor.
    prepared = PreparedPolicy(policy, rng=random_streams(SEED)[0], sample=sample)
    chosen = []
    for cpu, memory in REQUESTS:
        request = {"cpu": cpu, "memory": memory, "gpu": 0}
        decision = decide(nodes, request, prepared)
        assert decision.node is not None
        nodes.allocate(decision.node, request)
        chosen.append(decision.node_id)
    return chosen


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_live_placements_match_the_simulator(policy: str, cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(policy=policy, seed=SEED)
    cluster.start_master()
    for name, (cpu, memory) in WORKERS.items():
        cluster.start_worker(name, cpu=cpu, memory=memory)
    live = []
    for i, (cpu, memory) in enumerate(REQUESTS):
        task = cluster.submit(
            {
                "name": f"t{i}",
                "image": "alpine",
                "command": ["sleep", "120"],
                "resources": {"cpu": cpu, "memory": memory},
            }
        )
        placed = cluster.wait_for_state(task["id"], {"ASSIGNED", "RUNNING"}, timeout=15)
        live.append(placed["node_id"])
    assert live == simulated_nodes(policy)


@pytest.mark.parametrize(
    ("policy", "sample"), [("bin_packing", "log2"), ("spread", "{candidates: 2, start: rotating}")]
)
def test_live_sampling_matches_the_core(policy: str, sample: str, cluster_factory) -> None:  # type: ignore[no-untyped-def]
    """``--sample`` on the master scans and scores the same nodes as the core's sampling."""
    cluster = cluster_factory(policy=policy, seed=SEED)
    cluster.start_master(extra=["--sample", sample])
    for name, (cpu, memory) in WORKERS.items():
        cluster.start_worker(name, cpu=cpu, memory=memory)
    live = []
    for i, (cpu, memory) in enumerate(REQUESTS):
        task = cluster.submit(
            {"name": f"t{i}", "command": ["sleep", "120"], "resources": {"cpu": cpu, "memory": memory}}
        )
        live.append(cluster.wait_for_state(task["id"], {"ASSIGNED", "RUNNING"}, timeout=15)["node_id"])
    assert live == simulated_nodes(policy, yaml.safe_load(sample))
    assert live != simulated_nodes(policy)  # the sample changed where tasks went: the test can tell


def test_a_bad_sample_flag_is_one_line_before_anything_starts() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "orchlive", "master", "--etcd", "127.0.0.1:1", "--sample", "{fraction: 2}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--sample" in done.stderr and "Traceback" not in done.stderr


def test_dev_hands_sample_to_its_master() -> None:
    import argparse

    from orchlive.cli.dev_command import _master_args, add_dev_parser
    from orchlive.config import Settings

    parser = argparse.ArgumentParser()
    add_dev_parser(parser.add_subparsers(), Settings(sample="all"))
    args = parser.parse_args(["dev", "--sample", "{candidates: 2}"])
    extra = _master_args(args, {}, {})
    assert extra[extra.index("--sample") + 1] == "{candidates: 2}"
    assert "--sample" not in _master_args(parser.parse_args(["dev"]), {}, {})
