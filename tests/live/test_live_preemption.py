"""Priorities and preemption in the live cluster: the master evicts the victims the shared core picks.

A cluster of two process workers is filled with long low-priority tasks, each pinned to
its node by a label so the state is known; then high-priority tasks arrive one at a time.
The expected victims come from the core itself: the same pass (``schedule_pass`` with
``PassExtensions``, hence ``preemption.choose_victims``) run on a matrix of the same
capacities holding the same tasks, arrival after arrival. Worked by hand (cpu, millicores;
every node 4000, full):

    w1: a (priority 1, 2000), b (5, 2000)        w2: c (2, 1000), d (3, 1000), e (4, 2000)
    h1 (10, 2000): w1 frees 2000 by evicting a alone (b is reprieved), highest victim 1;
                   w2 needs c and d (e reprieved), highest victim 3 -> w1, victims [a]
    h2 (10, 2000): w1 would evict b (5); w2 evicts d and c (highest 3)  -> w2, victims [d, c]
                   (two victims beat one: the lowest highest-priority victim comes first)
    h3 (10, 2000): w1 would evict b (5); w2 evicts e (4)                -> w2, victims [e]
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from orchlive.cache import ClusterCache
from orchlive.limits import MAX_PRIORITY
from orchlive.models import Task
from orchsim import run
from orchsim.scenario import parse_scenario
from orchsim.scheduling import NodeMatrix, PreparedPolicy, schedule_pass
from orchsim.scheduling.pass_extensions import PassExtensions
from orchsim.scheduling.preemption import RunningTasks

pytestmark = pytest.mark.live

NODES = {"w1": 4000, "w2": 4000}  # cpu millicores each
MEMORY = 4096  # MiB per node; every task asks 64
LOW = {"a": (1, 2000, "w1"), "b": (5, 2000, "w1"), "c": (2, 1000, "w2"), "d": (3, 1000, "w2"), "e": (4, 2000, "w2")}
HIGH = {"h1": (10, 2000), "h2": (10, 2000), "h3": (10, 2000)}


def _task(name: str, priority: int, cpu: int, pin: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "command": ["sleep", "600"],
        "resources": {"cpu": cpu, "memory": 64},
        "priority": priority,
    }
    if pin:
        body["node_selector"] = {"pin": pin}
    return body


def _filled(cluster_factory: Any, preemption: bool, pin: bool = True) -> tuple[Any, dict[str, dict[str, Any]]]:
    """A master (with or without ``--preemption``), both workers, and every low task RUNNING, in order."""
    cluster = cluster_factory()
    cluster.start_master(extra=["--preemption"] if preemption else ["--no-preemption"])
    for name, cpu in NODES.items():
        cluster.start_worker(name, cpu=cpu, memory=MEMORY, labels=f"pin={name}")
    low = {}
    for name, (priority, cpu, node) in LOW.items():
        low[name] = cluster.submit(_task(name, priority, cpu, node if pin else None))
        low[name] = cluster.wait_for_state(low[name]["id"], {"RUNNING"}, timeout=20)
    return cluster, low


def expected_victims(low: dict[str, dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """The core's choice for the same state, arrival after arrival: ``(node, victim names)`` per high task."""
    names = sorted(NODES)
    nodes = NodeMatrix.from_capacities(
        {"cpu": [NODES[n] for n in names], "memory": [MEMORY] * len(names), "gpu": [0] * len(names)},
        ids=names,
        labels=[{"pin": n} for n in names],
    )
    demand = {name: np.array([float(cpu), 64.0, 0.0]) for name, (_, cpu, _) in LOW.items()}
    demand |= {name: np.array([float(cpu), 64.0, 0.0]) for name, (_, cpu) in HIGH.items()}
    priority = {name: spec[0] for name, spec in (LOW | HIGH).items()}
    # The live tasks' nodes and start times: the core sees what the master saw.
    running = {name: (names.index(t["node_id"]), datetime.fromisoformat(t["start_time"])) for name, t in low.items()}
    for name, (node, _) in running.items():
        nodes.allocate(node, demand[name])
    out: list[tuple[str, list[str]]] = []
    victims: list[str] = []  # in eviction order, over all arrivals

    def running_of() -> RunningTasks:
        rows = sorted(running)
        return RunningTasks(
            task=rows,
            node=np.array([running[r][0] for r in rows], dtype=np.int64),
            priority=np.array([priority[r] for r in rows], dtype=np.int64),
            demand=np.stack([demand[r] for r in rows]),
            start=np.array([running[r][1].timestamp() for r in rows]),
        )

    def evict(chosen: list[str], node: int) -> None:
        for victim in chosen:
            nodes.release(node, demand[victim])
            running.pop(victim)
            victims.append(victim)

    def place(task: str, node: int, devices: Any) -> None:
        nodes.allocate(node, demand[task], devices)
        running[task] = (node, datetime.now(UTC))

    extensions = PassExtensions(priority_of=priority.__getitem__, running_of=running_of, evict=evict)
    policy = PreparedPolicy("bin_packing")
    for name in HIGH:  # one pass per arrival, as the master runs one on each submission
        before = len(victims)
        result = schedule_pass(nodes, [name], policy, request_of=demand.__getitem__, place=place, extensions=extensions)
        assert result.placed == [name]
        out.append((names[running[name][0]], victims[before:]))
    return out


def test_live_preemption_evicts_the_cores_victims(cluster_factory: Any) -> None:
    cluster, low = _filled(cluster_factory, preemption=True)
    expected = expected_victims(low)
    assert expected == [("w1", ["a"]), ("w2", ["d", "c"]), ("w2", ["e"])]  # the worked example above
    by_id = {t["id"]: name for name, t in low.items()}
    high, preemptor = {}, {}
    for (name, (priority, cpu)), (node, victims) in zip(HIGH.items(), expected, strict=True):
        high[name] = cluster.submit(_task(name, priority, cpu))
        placed = cluster.wait_for_state(high[name]["id"], {"RUNNING"}, timeout=20)
        assert placed["node_id"] == node, name
        for victim in victims:  # evicted before the preemptor was placed: already PENDING
            back = cluster.task(low[victim]["id"])
            assert back["state"] == "PENDING" and back["node_id"] is None and back["attempts"] == 1, back
            preemptor[victim] = placed["id"]
    evicted = [name for _, victims in expected for name in victims]
    survivors = [name for name in LOW if name not in evicted]
    assert all(cluster.task(low[name]["id"])["state"] == "RUNNING" for name in survivors)
    events = cluster.events(0)
    preempted = [e["object"] for e in events if e["type"] == "task.preempted"]
    assert [by_id[task["id"]] for task in preempted] == evicted
    for task in preempted:  # the event carries the task as it went back to the queue, and why
        assert task["state"] == "PENDING" and task["attempts"] == 1
        assert task["reason"].startswith(f"preempted by task {preemptor[by_id[task['id']]]}"), task["reason"]
    # The high tasks leave; each victim is placed again, one attempt more, on its own node.
    for task in high.values():
        assert cluster.http.delete(f"/api/v1/tasks/{task['id']}").status_code in (200, 204)
    for name in evicted:
        again = cluster.wait_for_state(low[name]["id"], {"RUNNING"}, timeout=20)
        assert again["attempts"] == 2 and again["node_id"] == LOW[name][2], again
    cluster.stop()


def simulated() -> tuple[dict[str, str], dict[str, set[str]]]:
    """The SimPy engine on the same scenario (no pins): each high task's node, and whom it evicted.

    The low tasks arrive one after another and run for good, the high ones 10 s apart. A
    victim's eviction time is its first start plus its lost work, which names its preemptor.
    """
    arrivals = [(name, 1e-3 * i, spec[0], spec[1]) for i, (name, spec) in enumerate(LOW.items())]
    arrivals += [(name, 10.0 * (i + 1), *spec) for i, (name, spec) in enumerate(HIGH.items())]
    scenario = parse_scenario(
        {
            "version": 1,
            "name": "preemption-parity",
            "seed": 1,
            "policies": ["bin_packing"],
            "scheduler": {"preemption": True},
            "cluster": {
                "nodes": [
                    {"name": n, "count": 1, "capacity": {"cpu": c, "memory": MEMORY, "gpu": 0}}
                    for n, c in NODES.items()
                ]
            },
            "workload": [
                {
                    "kind": "burst",
                    "at": at,
                    "count": 1,
                    "resources": {"cpu": cpu, "memory": 64},
                    "duration": 1000,
                    "priority": p,
                }
                for _, at, p, cpu in arrivals
            ],
            "metrics": {"sample_interval": 100},
        }
    )
    tasks = run(scenario).tasks
    names = [name for name, *_ in arrivals]
    nodes = {
        names[row.task_id]: row.node.removesuffix("-0") for row in tasks.itertuples() if names[row.task_id] in HIGH
    }
    victims: dict[str, set[str]] = {name: set() for name in HIGH}
    for row in tasks[tasks.preempted > 0].itertuples():
        evicted_at = arrivals[row.task_id][1] + row.lost_work_s
        victims[names[len(LOW) + round(evicted_at / 10.0) - 1]].add(names[row.task_id])
    return nodes, victims


def test_the_simulators_scenario_preempts_the_same_victims_live(cluster_factory: Any) -> None:
    """Issue 17's acceptance: the engine's scenario, through a live cluster, evicts the same tasks."""
    nodes, victims = simulated()
    assert sum(len(v) for v in victims.values()) >= 3, victims  # several evictions: the test can tell
    cluster, low = _filled(cluster_factory, preemption=True, pin=False)
    by_id = {t["id"]: name for name, t in low.items()}
    live_nodes, live_victims = {}, {}
    for name, (priority, cpu) in HIGH.items():
        since = max([e["id"] for e in cluster.events(0)], default=0)
        placed = cluster.wait_for_state(cluster.submit(_task(name, priority, cpu))["id"], {"RUNNING"}, timeout=20)
        live_nodes[name] = placed["node_id"]
        events = cluster.events(since)
        live_victims[name] = {by_id[e["object"]["id"]] for e in events if e["type"] == "task.preempted"}
    assert (live_nodes, live_victims) == (nodes, victims)
    cluster.stop()


def test_without_preemption_high_priority_tasks_wait(cluster_factory: Any) -> None:
    cluster, low = _filled(cluster_factory, preemption=False)
    high = cluster.submit(_task("h1", 10, 2000))
    cluster.wait_until(lambda: bool(cluster.task(high["id"]).get("reason")), timeout=20, what="h1's reason")
    assert cluster.task(high["id"])["state"] == "PENDING"
    assert all(cluster.task(t["id"])["state"] == "RUNNING" for t in low.values())
    assert not [e for e in cluster.events(0) if e["type"] == "task.preempted"]
    cluster.stop()


def test_live_queue_orders_by_priority_then_creation(cluster_factory: Any, capsys: Any) -> None:
    """One slot: as it frees, the highest priority goes first, then the earliest created.

    ``orchlive tasks --queue`` lists the waiting tasks in that order beforehand.
    """
    from orchlive.__main__ import main

    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1", cpu=1000, memory=1024)
    blocker = cluster.submit(_task("blocker", 0, 1000))
    cluster.wait_for_state(blocker["id"], {"RUNNING"}, timeout=20)
    queued = [cluster.submit(_task(name, p, 1000)) for name, p in [("p0", 0), ("p5a", 5), ("p9", 9), ("p5b", 5)]]
    capsys.readouterr()
    assert main(["--master", cluster.url, "tasks", "--queue"]) == 0
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]] == ["p9", "p5a", "p5b", "p0"]
    order = []
    current = blocker
    for _ in queued:
        assert cluster.http.delete(f"/api/v1/tasks/{current['id']}").status_code in (200, 204)
        cluster.wait_until(
            lambda: any(cluster.task(t["id"])["state"] == "RUNNING" for t in queued if t["name"] not in order),
            timeout=20,
            what="the next task running",
        )
        current = next(t for t in queued if t["name"] not in order and cluster.task(t["id"])["state"] == "RUNNING")
        order.append(current["name"])
    assert order == ["p9", "p5a", "p5b", "p0"]
    cluster.stop()


def test_cache_pending_is_the_queue_order() -> None:
    """``ClusterCache.pending``: priority descending, then creation time, then id (no etcd needed)."""
    cache = ClusterCache()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = [
        Task(name=f"t{i}", priority=p, creation_time=start + timedelta(seconds=i))
        for i, p in enumerate([0, 3, -2, 3, 7, 0])
    ]
    for revision, task in enumerate(made, start=1):
        cache.tasks[task.id] = (task, revision)
    assert [t.name for t, _ in cache.pending()] == ["t4", "t1", "t3", "t0", "t5", "t2"]


def test_cache_puts_a_victim_behind_the_tasks_queued_before_its_eviction() -> None:
    """``queued_since`` (set by ``transitions.preempt``) is a task's place in its priority's queue."""
    cache = ClusterCache()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    victim = Task(name="victim", creation_time=start, queued_since=start + timedelta(seconds=10))
    older = Task(name="older", creation_time=start + timedelta(seconds=5))
    newer = Task(name="newer", creation_time=start + timedelta(seconds=15))
    urgent = Task(name="urgent", priority=5, creation_time=start + timedelta(seconds=20))
    for revision, task in enumerate([victim, older, newer, urgent], start=1):
        cache.tasks[task.id] = (task, revision)
    assert [t.name for t, _ in cache.pending()] == ["urgent", "older", "victim", "newer"]


def test_a_live_victim_waits_behind_the_tasks_queued_before_its_eviction(cluster_factory: Any) -> None:
    """The simulator's case (``tests/sim/test_requeue_order.py``), live: the same task starts next.

    One worker of 2000: a and b (priority 0) run; c (priority 0) queues; h (priority 10)
    evicts one of a and b and runs 5 s. Then c, queued before the eviction, starts, and the
    victim stays PENDING behind it (in its creation's place it would start, and be the next
    victim of the next urgent task).
    """
    cluster = cluster_factory()
    cluster.start_master(extra=["--preemption"])
    cluster.start_worker("w1", cpu=2000, memory=MEMORY)
    low = [cluster.submit(_task(name, 0, 1000)) for name in ("a", "b")]
    for task in low:
        cluster.wait_for_state(task["id"], {"RUNNING"}, timeout=20)
    c = cluster.submit(_task("c", 0, 1000))
    cluster.wait_until(lambda: bool(cluster.task(c["id"]).get("reason")), timeout=20, what="c waiting")
    h = cluster.submit(_task("h", 10, 1000) | {"command": ["sleep", "5"]})
    assert cluster.wait_for_state(h["id"], {"RUNNING", "COMPLETED"}, timeout=20)["start_time"]
    preempted = [e["object"] for e in cluster.events(0) if e["type"] == "task.preempted"]
    assert len(preempted) == 1 and preempted[0]["queued_since"], preempted
    victim = preempted[0]["id"]
    assert cluster.wait_for_state(h["id"], {"COMPLETED"}, timeout=30)["state"] == "COMPLETED"
    assert cluster.wait_for_state(c["id"], {"RUNNING"}, timeout=20)["state"] == "RUNNING"
    assert cluster.task(victim)["state"] == "PENDING"
    cluster.stop()


def test_priority_is_a_bounded_integer_and_the_client_shows_it(cluster_factory: Any, capsys: Any) -> None:
    """The API takes a JSON integer within +-MAX_PRIORITY (422 naming the field otherwise); ``submit --priority``."""
    from orchlive.__main__ import main

    cluster = cluster_factory()
    cluster.start_master()
    for bad in (MAX_PRIORITY + 1, -MAX_PRIORITY - 1, "5", 1.5, True):
        response = cluster.http.post("/api/v1/tasks", json={"name": "x", "command": ["true"], "priority": bad})
        assert response.status_code == 422 and "priority" in response.text, (bad, response.text)
    assert cluster.submit({"name": "edge", "command": ["true"], "priority": -MAX_PRIORITY})["priority"] == -MAX_PRIORITY
    capsys.readouterr()
    assert main(["--master", cluster.url, "submit", "--name", "urgent", "--priority", "7", "--", "true"]) == 0
    task_id = capsys.readouterr().out.strip()
    assert cluster.task(task_id)["priority"] == 7
    assert main(["--master", cluster.url, "tasks", "-o", "wide"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    start = header.index("PRIORITY")  # cells start under their header (empty NODE and EXIT cells too)
    assert {row.split()[0]: row[start:].split()[0] for row in rows}[task_id] == "7", rows
    cluster.stop()


def test_a_victims_gpu_is_given_back_to_the_preemptor(cluster_factory: Any) -> None:
    """A victim's devices leave the matrix and the ledger with it: the preemptor gets that GPU."""
    cluster = cluster_factory()
    cluster.start_master(extra=["--preemption"])
    cluster.start_worker("w1", cpu=4000, memory=MEMORY, resources={"gpu": 1000})  # one GPU
    low = cluster.submit({"name": "low", "command": ["sleep", "600"], "resources": {"cpu": 100, "gpu": 1000}})
    assert cluster.wait_for_state(low["id"], {"RUNNING"}, timeout=20)["devices"] == {"gpu": [0]}
    high = cluster.submit(
        {"name": "high", "command": ["sleep", "600"], "resources": {"cpu": 100, "gpu": 500}, "priority": 5}
    )
    placed = cluster.wait_for_state(high["id"], {"RUNNING"}, timeout=20)
    assert placed["devices"] == {"gpu": [0]}
    back = cluster.task(low["id"])
    assert back["state"] == "PENDING" and back["devices"] == {}, back
    node = cluster.nodes()["w1"]
    assert node["allocated"].get("gpu") == 500 and node["tasks"] == [high["id"]], node
    cluster.stop()


def test_preemption_is_off_unless_asked_and_dev_hands_it_to_its_master(monkeypatch: Any) -> None:
    """``--preemption`` / ``ORCH_PREEMPTION`` on the master; ``dev --preemption`` passes it on."""
    import argparse

    from orchlive.cli.dev_command import _master_args, add_dev_parser
    from orchlive.cli.servers import add_server_parsers
    from orchlive.config import Settings

    def parse(*argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        add_server_parsers(sub, Settings())
        add_dev_parser(sub, Settings())
        return parser.parse_args(argv)

    monkeypatch.delenv("ORCH_PREEMPTION", raising=False)
    assert parse("master").preemption is False
    assert parse("master", "--preemption").preemption is True
    assert "--preemption" in _master_args(parse("dev", "--preemption"), {}, {})
    assert "--preemption" not in _master_args(parse("dev"), {}, {})
    monkeypatch.setenv("ORCH_PREEMPTION", "true")
    assert parse("master").preemption is True
    assert parse("master", "--no-preemption").preemption is False
