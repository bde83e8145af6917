"""The fault campaign (issue 13's acceptance): 3-member etcd, 2 masters, 4 process workers, faults on repeat.

While ledgered tasks run (``tests/live/ledger.py``), the campaign kills workers (-9),
freezes them beyond their lease (SIGSTOP, then SIGCONT), kills and freezes the leading
master, kills and restarts etcd members, and deletes running tasks. Then:

* 0 lost, 0 stuck: every task not deleted COMPLETED, and ran to its end (more than once only
  when its worker froze or died after the end and before reporting it: counted);
* 0 leaked allocations: every node's ledger is empty;
* 0 overlapping executions of one task (sequential retries are allowed and counted);
* every event delivered exactly once, in order, to a subscriber that switches masters
  every few seconds with ``Last-Event-ID``.

CI runs the short schedule (80 tasks, each fault once or twice, about 90 s of faults);
``ORCH_FULL_CAMPAIGN=1`` runs the full one (300 tasks, three rounds of every fault).
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pytest

from orchlive.etcd_cluster import EtcdCluster

from .campaign import AnyMaster, Faults, Subscriber, run_schedule
from .harness import LiveCluster
from .ledger import Ledger, ledger_task

pytestmark = pytest.mark.live
FULL = os.environ.get("ORCH_FULL_CAMPAIGN") == "1"
TASKS = 300 if FULL else 80
ROUNDS = 3 if FULL else 1
LEASE_TTL, GRACE = 3, 2.0  # GRACE: the master's default (--lost-grace)
LONG = {f"c{i}" for i in range(0, TASKS, 8)}  # tasks of 12 s: they outlive a frozen worker's lease


def _submit_all(client: AnyMaster, ledger: Path, ids: list[str], rng: random.Random, over: float) -> None:
    """Submit ``TASKS`` ledgered tasks of 2 to 6 s (every 8th: 12 s), spread over ``over`` seconds.

    The long ones outlive a frozen worker's lease: without the supervisors they are the
    copies that would still run when the master reruns them.
    """
    for i in range(TASKS):
        seconds = 12.0 if f"c{i}" in LONG else round(rng.uniform(2, 6), 2)
        body = ledger_task(f"c{i}", ledger, seconds, tick=0.2)
        # Resent after a timeout or a 5xx (``AnyMaster``) under the same key: created once.
        reply = client.request("POST", "/api/v1/tasks", json=body, headers={"Idempotency-Key": f"campaign-{i}"})
        assert reply.status_code in (200, 201), reply.text
        ids.append(reply.json()["id"])
        time.sleep(over / TASKS)


def _schedule(faults: Faults) -> list:  # type: ignore[type-arg]
    one_round = [
        faults.delete_running,
        faults.worker_kill_9,
        faults.etcd_member_restart,
        faults.worker_freeze,
        faults.leader_kill_9,
        faults.delete_running,
        faults.leader_freeze,
    ]
    return one_round * ROUNDS


def _settle(client: AnyMaster, ids: list[str], deleted: set[str], timeout: float) -> dict[str, dict]:  # type: ignore[type-arg]
    """Wait until every task not deleted is COMPLETED or FAILED; returns the final tasks by id.

    Every task listed, not only ``ids``: a task created twice by a resent POST (which the
    ``Idempotency-Key`` prevents) must show up, and fail the check.
    """
    deadline = time.monotonic() + timeout
    while True:
        tasks = {t["id"]: t for t in client.tasks()}
        open_ = [i for i in set(ids) - deleted if i not in tasks]
        open_ += [i for i, t in tasks.items() if t["state"] not in ("COMPLETED", "FAILED")]
        if not open_ or time.monotonic() > deadline:
            return tasks
        time.sleep(1)


def test_fault_campaign(etcd_cluster: EtcdCluster, tmp_path: Path) -> None:
    rng, submit_rng = random.Random(13), random.Random(14)  # the faults' choices do not hang on the submitter's timing
    cluster = LiveCluster(etcd_cluster, tmp_path, policy="spread", lease_ttl=LEASE_TTL, leader_ttl=2)  # type: ignore[arg-type]
    subscriber = Subscriber(cluster)
    try:
        for _ in range(2):
            cluster.start_master()
        for i in range(4):
            cluster.start_worker(f"w{i + 1}", cpu=4000, memory=8192)
        client = AnyMaster(cluster)
        listening = threading.Thread(target=subscriber.run, daemon=True)
        listening.start()
        ledger = tmp_path / "ledger.txt"
        ids: list[str] = []
        faults = Faults(cluster, etcd_cluster, client, rng, LEASE_TTL, GRACE, long_names=LONG)
        steps = _schedule(faults)
        submitting = threading.Thread(target=_submit_all, args=(client, ledger, ids, submit_rng, 6.0 * len(steps)))
        submitting.start()
        run_schedule(steps, gap=2.0)
        submitting.join()
        # Every fault hit something: each kill and freeze found its target (or raised), and
        # every delete step deleted a running task.
        deletes = [done for done in faults.done if done.startswith("delete")]
        assert len(faults.done) == len(steps) and len(deletes) == steps.count(faults.delete_running), faults.done
        tasks = _settle(client, ids, faults.deleted, timeout=180)
        _check_tasks(tasks, ids, faults.deleted, Ledger.read(ledger))
        _check_no_leak(client)
        _check_events(client, subscriber, cluster)
        print(f"campaign: {len(ids)} tasks, faults: {', '.join(faults.done)}")
    finally:
        subscriber.stop.set()
        cluster.stop()


def _check_tasks(tasks: dict, ids: list[str], deleted: set[str], seen: Ledger) -> None:  # type: ignore[type-arg]
    kept = [i for i in ids if i not in deleted]
    lost = [i for i in kept if i not in tasks]
    stuck = [i for i, task in tasks.items() if task["state"] != "COMPLETED"]  # resubmitted ones too
    assert not lost, f"lost: {lost}"
    assert not stuck, f"not COMPLETED: {[(i, tasks[i]['state'], tasks[i].get('reason')) for i in stuck]}"
    assert not [i for i in deleted if i in tasks], "a deleted task came back"
    twice = sorted(set(tasks) - set(ids))
    assert not twice, f"created twice by a resent POST: {twice}"
    overlaps = seen.overlaps()
    assert not overlaps, f"{len(overlaps)} overlapping executions, e.g. {overlaps[:3]}"
    never = [i for i in tasks if seen.completions(i) == 0]
    assert not never, f"COMPLETED but never ran to its end: {never}"
    # A run that ended while its worker was frozen or killed, before it could report, is run
    # again once the lease expires: at least once, one copy at a time.
    again = sum(seen.completions(i) > 1 for i in tasks)
    gap = f", the closest {min(seen.gaps()):.2f} s apart" if seen.gaps() else ""
    print(
        f"campaign: {seen.reruns()} sequential reruns ({again} after an end its worker could not report){gap}, "
        f"{len(deleted)} deleted mid-run, 0 created twice, 0 overlaps"
    )


def _check_no_leak(client: AnyMaster) -> None:
    nodes = client.nodes()
    leaked = {n: (v["allocated"], v["tasks"]) for n, v in nodes.items() if v["tasks"] or any(v["allocated"].values())}
    assert not leaked, f"allocations left: {leaked}"


def _check_events(client: AnyMaster, subscriber: Subscriber, cluster: LiveCluster) -> None:
    """The subscriber saw exactly the events etcd holds, once each, in order, across its switches."""
    reference = [int(e["id"]) for e in cluster.events(0, until_idle=3.0)]
    assert reference, "no events recorded"
    cluster.wait_until(lambda: subscriber.last_id >= reference[-1], timeout=60, what="the subscriber catching up")
    got = [int(e["id"]) for e in subscriber.events]
    assert len(got) == len(set(got)), "an event was delivered twice"
    assert got[: len(reference)] == reference, "the subscriber missed events or got them out of order"
    assert subscriber.switches > 3
    print(f"campaign: {len(reference)} events, subscriber switched masters {subscriber.switches} times")
