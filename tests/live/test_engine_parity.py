"""Decisions, not just select: the simulator's engine and the live master make the same ones.

The same burst (tasks arriving together, some that must wait for capacity, one that can
never fit) goes to the SimPy engine and to a live cluster (real etcd, real process
workers), under both queue disciplines and several policies, including a policy loaded
from a plugin file. Both run the shared ``schedule_pass``; the test checks that the
placements (task -> node), the order they were made in and the never-fits set are
identical. Time differs (a live task starts when its process does); decisions must not.

The burst is written to etcd before the master starts, so its first pass sees every task
at once, as the engine sees them arrive one instant after another; one short task then
frees capacity, and the waiting tasks are placed on what it freed.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from orchlive.models import Resources, Task
from orchlive.store import Store
from orchsim import run
from orchsim.plugins import load_plugin
from orchsim.scenario import parse_scenario

pytestmark = pytest.mark.live

SEED = 5
WORKERS = {"w1": (4000, 4096), "w2": (3000, 8192), "w3": (2000, 2048)}  # cpu millicores, memory MiB
SHORT = 2.0  # seconds: the one task that finishes during the test
# name, cpu, memory, short? -- in submission order; 13,000 millicores asked of 9,000.
BURST = [
    ("a", 1500, 1024, True),
    ("b", 2000, 2048, False),
    ("c", 1000, 512, False),
    ("d", 2500, 1024, False),
    ("e", 9000, 512, False),  # no node has 9,000 millicores: never fits
    ("f", 1500, 3000, False),
    ("g", 500, 256, False),
    ("h", 1200, 1024, False),
    ("i", 800, 4096, False),
    ("j", 2000, 1024, False),
]

PLUGIN = '''\
from orchsim.scheduling import policy


@policy("parity_fewest_tasks")
def parity_fewest_tasks(nodes, request):
    """Fewest tasks, then the emptiest cpu (the README's example, under its own name)."""
    cpu = nodes.row("cpu")
    return -nodes.tasks - (nodes.allocated[cpu] + request[cpu]) * nodes.inv_capacity[cpu]
'''


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "parity_policy.py"
    path.write_text(PLUGIN)
    load_plugin(str(path))  # for the engine, in this process
    return path


def simulated(policy: str, queue: str, window: int = 100) -> tuple[list[tuple[str, str]], set[str]]:
    """(task, node) in the order the engine placed them, and the tasks it found never fit."""
    scenario = parse_scenario(
        {
            "version": 1,
            "name": "parity",
            "seed": SEED,
            "policies": [policy],
            "scheduler": {"queue": queue, "backfill_window": window},
            "cluster": {
                "nodes": [
                    {"name": name, "count": 1, "capacity": {"cpu": cpu, "memory": memory, "gpu": 0}}
                    for name, (cpu, memory) in WORKERS.items()
                ]
            },
            "workload": [
                {
                    "kind": "burst",
                    "at": i * 1e-3,  # one after another, in submission order, before anything ends
                    "count": 1,
                    "resources": {"cpu": cpu, "memory": memory},
                    "duration": SHORT if short else 1000,
                }
                for i, (_, cpu, memory, short) in enumerate(BURST)
            ],
            "metrics": {"sample_interval": 100},
        }
    )
    tasks = run(scenario).tasks
    names = [name for name, *_ in BURST]
    tasks["name"] = [names[i] for i in tasks.task_id]
    # Only what happens while the long tasks run (the engine goes on to their end at 1000 s).
    started = tasks[tasks.start_time < 500].sort_values(["start_time", "task_id"])
    placed = [(row.name, row.node.removesuffix("-0")) for row in started.itertuples()]
    return placed, set(tasks.name[tasks.status == "unschedulable"])


async def alive(endpoint: str, prefix: str) -> int:
    """Workers holding a live lease (read from etcd: no master runs yet)."""
    async with Store(endpoint, prefix) as store:
        entries, _ = await store.range(store.keys.alive_all())
    return len(entries)


async def write_burst(endpoint: str, prefix: str) -> list[Task]:
    tasks = []
    async with Store(endpoint, prefix) as store:
        base = time.time()
        for i, (name, cpu, memory, short) in enumerate(BURST):
            task = Task(
                name=name,
                image="alpine",
                command=["sleep", str(SHORT if short else 120)],
                resources=Resources(cpu=cpu, memory=memory),
            )
            # Creation times in submission order: the master's queue order.
            from datetime import UTC, datetime

            task = task.model_copy(update={"creation_time": datetime.fromtimestamp(base + i * 1e-3, UTC)})
            await store.txn().put_json(store.keys.task(task.id), task.model_dump(mode="json")).commit()
            tasks.append(task)
    return tasks


POLICIES = ["bin_packing", "spread", "round_robin", "random", "parity_fewest_tasks"]


@pytest.mark.parametrize("queue", ["fifo", "backfill"])
@pytest.mark.parametrize("policy", POLICIES)
def test_engine_and_master_decide_alike(policy: str, queue: str, cluster_factory, etcd, plugin_file) -> None:  # type: ignore[no-untyped-def]
    check_parity(policy, queue, 100, cluster_factory, etcd, plugin_file)


@pytest.mark.parametrize("policy", ["bin_packing", "random"])
def test_a_short_backfill_window_decides_alike(policy: str, cluster_factory, etcd, plugin_file) -> None:  # type: ignore[no-untyped-def]
    # A window of 2: a new task is tried when it arrives, however deep in the queue; only
    # the first two waiting tasks are retried when capacity frees. Both sides must agree.
    check_parity(policy, "backfill", 2, cluster_factory, etcd, plugin_file)


def check_parity(policy: str, queue: str, window: int, cluster_factory, etcd, plugin_file) -> None:  # type: ignore[no-untyped-def]
    expected, never = simulated(policy, queue, window)
    assert never == {"e"}
    assert 4 <= len(expected) < len(BURST) - 1, expected  # some wait for good: the test needs both kinds

    cluster = cluster_factory(policy=policy, seed=SEED)
    for name, (cpu, memory) in WORKERS.items():
        cluster.start_worker(name, cpu=cpu, memory=memory, wait=False)
    cluster.wait_until(
        lambda: asyncio.run(alive(etcd.endpoint, cluster.prefix)) == len(WORKERS), timeout=20, what="workers alive"
    )
    tasks = asyncio.run(write_burst(etcd.endpoint, cluster.prefix))
    by_id = {t.id: t.name for t in tasks}
    cluster.start_master(extra=["--plugin", str(plugin_file), "--queue", queue, "--backfill-window", str(window)])

    def assigned() -> list[tuple[str, str]]:
        events = cluster.events(until_idle=0.5)
        return [(by_id[e["object"]["id"]], e["object"]["node_id"]) for e in events if e["type"] == "task.assigned"]

    cluster.wait_until(lambda: len(assigned()) >= len(expected), timeout=40, what=f"{len(expected)} placements")
    time.sleep(1.0)  # nothing more may come
    live = assigned()
    assert live == expected
    reason = cluster.task(next(t.id for t in tasks if t.name == "e"))["reason"]
    assert reason.startswith("never fits: 0/3 nodes could hold it even when empty"), reason
