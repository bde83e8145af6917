"""Any resource, live: workers offer any named resource, tasks ask for any, the master places by all.

The model and ledger checks at the top need no servers; the rest run real workers on a
real etcd, like the other live tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from orchlive.cache import ClusterCache
from orchlive.config import parse_resources
from orchlive.models import Ledger, NodeRecord, Resources, Task, node_public, resource_order
from orchlive.store import Keys, Store, WatchEvent

GPU_TASK = {"image": "alpine", "command": ["sleep", "60"], "resources": {"cpu": 100, "memory": 64, "gpu": 1000}}


# ---------------------------------------------------------------------- the model, no servers
def test_resources_are_a_mapping_with_cpu_and_memory_always_present() -> None:
    r = Resources.model_validate({"gpu": 4000, "disk": 0.5})
    assert dict(r) == {"cpu": 0, "memory": 0, "gpu": 4000, "disk": 0.5}
    assert list(r) == ["cpu", "memory", "gpu", "disk"] and len(r) == 4
    assert r["gpu"] == 4000 and r.get("fpga", 0) == 0 and "fpga" not in r
    with pytest.raises(KeyError):
        r["fpga"]
    assert r.as_request() == {"cpu": 0.0, "memory": 0.0, "gpu": 4000.0, "disk": 0.5}
    # Keyword construction, as before; integers stay integers in JSON.
    assert Resources(cpu=500, memory=256, gpu=1000).model_dump_json() == '{"cpu":500,"memory":256,"gpu":1000}'


def test_records_stored_with_fixed_fields_still_load() -> None:
    # A task and a node as the fixed {cpu, memory, gpu} model wrote them.
    task = Task.model_validate_json(
        '{"id": "t1", "name": "old", "image": "alpine", "state": "PENDING",'
        ' "resources": {"cpu": 500, "memory": 256, "gpu": 0}}'
    )
    assert dict(task.resources) == {"cpu": 500, "memory": 256, "gpu": 0}
    # The node record of earlier versions also stored derived fields: they are ignored on load.
    node = NodeRecord.model_validate_json(
        '{"id": "w1", "state": "READY", "capacity": {"cpu": 4000, "memory": 8192, "gpu": 0},'
        ' "allocated": {"cpu": 100, "memory": 0, "gpu": 0}, "tasks": ["x"]}'
    )
    assert "allocated" not in node.model_dump() and "state" not in node.model_dump()
    assert dict(node_public(node, Ledger(), [], alive=True).free) == {"cpu": 4000, "memory": 8192, "gpu": 0}
    # The ledger's old layout {cpu, memory, gpu, tasks}; written back in the new one.
    ledger = Ledger.from_json({"cpu": 1500, "memory": 512, "gpu": 0, "tasks": ["a"]})
    assert ledger.allocated == {"cpu": 1500, "memory": 512, "gpu": 0} and ledger.count == 1
    assert Ledger.from_json(ledger.to_json()) == ledger
    assert ledger.to_json() == {"allocated": {"cpu": 1500, "memory": 512, "gpu": 0}, "count": 1}


def test_ledger_adds_and_releases_every_named_resource() -> None:
    ledger = Ledger()
    a = Task(name="a", image="x", resources=Resources.model_validate({"cpu": 100, "gpu": 0.1}))
    b = Task(name="b", image="x", resources=Resources.model_validate({"cpu": 50, "gpu": 0.2, "disk": 7}))
    ledger.add(a)
    ledger.add(b)
    # Each task is added and released once: the transitions compare the task's own revision.
    assert ledger.allocated == {"cpu": 150, "gpu": pytest.approx(0.3), "disk": 7} and ledger.count == 2
    ledger.remove(a)
    ledger.remove(b)
    # 0.1 + 0.2 - 0.1 - 0.2 leaves a few ulps: read as exactly 0.
    assert ledger.allocated == {"cpu": 0, "gpu": 0, "disk": 0} and ledger.count == 0
    ledger.remove(b)  # a release the ledger never counted (a faulty writer): nothing goes below 0
    assert ledger.allocated == {"cpu": 0, "gpu": 0, "disk": 0} and ledger.count == 0
    ledger.add(a)
    ledger.remove(b)  # more than it holds: clamped at 0, never negative room for others
    assert ledger.allocated == {"cpu": 50, "gpu": 0, "disk": 0} and ledger.count == 0
    # Shown against a capacity: every resource of the node, 0 where nothing is held.
    shown = Ledger({"gpu": 1000}).on(Resources.model_validate({"cpu": 1000, "gpu": 4000, "disk": 9}))
    assert dict(shown) == {"cpu": 0, "memory": 0, "gpu": 1000, "disk": 0}


@pytest.mark.parametrize(
    ("amounts", "field"),
    [
        ({"GPU": 1}, "GPU"),
        ({"gpu card": 1}, "gpu card"),
        ({"9gpu": 1}, "9gpu"),
        ({"gpu": -1}, "gpu"),
        ({"gpu": "1"}, "gpu"),
        ({"gpu": True}, "gpu"),
        ({"gpu": float("inf")}, "gpu"),
        ({"cpu": 1.5}, "cpu"),
    ],
)
def test_resources_refuse_bad_names_and_amounts(amounts: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Resources.model_validate(amounts)
    assert field in str(caught.value)


def test_bad_names_are_refused_from_json_too() -> None:
    # pydantic 2.13 skips the key pattern of typed extras when parsing JSON: the model checks again.
    with pytest.raises(ValidationError, match="GPU"):
        Resources.model_validate_json('{"GPU": 1}')


def test_parse_resources_and_the_row_order() -> None:
    assert parse_resources("gpu=4000, disk=1e5") == {"gpu": 4000, "disk": 100000}
    assert parse_resources(["gpu=1", "gpu=2"]) == {"gpu": 2}
    # Kubernetes quantities, converted as a scenario's amounts are (orchsim.units).
    assert parse_resources("cpu=500m,memory=1.5Gi,gpu=250m") == {"cpu": 500, "memory": 1536, "gpu": 250}
    for bad, words in [
        ("gpu", "is not NAME=AMOUNT"),
        ("gpu=lots", "'lots' is neither a number nor a Kubernetes quantity"),
        ("gpu=-1", ">= 0"),
        ("gpu=nan", "neither a number"),
        ("Gpu=1", "must match"),
        ("cpu=0.5", "would be 0.5 millicores .* write 500 or 500m"),
        ("cpu=1.5", "'1.5': cpu takes a whole number of millicores"),
        ("gpu=0.5", "0.5 milli-GPU"),
        ("memory=1GB", "unknown unit 'GB' [(]1Gi[?][)]"),
        ("memory=1G", "'1G' is 953.674 MiB: memory takes a whole number of MiB"),
        ("cpu=2Gi", "Gi is a byte size, for memory"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_resources(bad)
    assert resource_order(["disk", "gpu", "memory", "cpu", "aaa"]) == ("cpu", "memory", "gpu", "aaa", "disk")


def test_a_node_is_derived_from_its_record_its_heartbeat_and_its_ledger() -> None:
    record = NodeRecord(id="w1", capacity=Resources.model_validate({"cpu": 1000, "gpu": 4000}), cordoned=False)
    ledger = Ledger({"cpu": 250, "gpu": 1000}, 1)
    view = node_public(record, ledger, ["t1"], alive=True)
    assert (view.state, view.tasks) == ("READY", ["t1"])
    assert dict(view.allocated) == {"cpu": 250, "memory": 0, "gpu": 1000}
    assert dict(view.free) == {"cpu": 750, "memory": 0, "gpu": 3000}
    assert node_public(record, ledger, [], alive=False).state == "NOT_READY"
    cordoned = record.model_copy(update={"cordoned": True})
    assert node_public(cordoned, ledger, [], alive=True).state == "DRAINING"
    assert node_public(cordoned, ledger, [], alive=False).state == "NOT_READY"
    # The master and the API both show a node through the cache: the same function.
    # The task list is the node's inbox (its assign keys), not the ledger, which only counts.
    cache = ClusterCache(nodes={"w1": record}, alive={"w1": None}, ledgers={"w1": (ledger, 7)})
    cache.apply(Keys(), WatchEvent("put", Keys().assignment("w1", "t1"), b"1", 8, 8))
    assert cache.node_view("w1") == view


def test_matrix_rows_are_the_union_of_offered_and_pending_names() -> None:
    cache = ClusterCache()
    cache.nodes["w1"] = NodeRecord(id="w1", capacity=Resources.model_validate({"cpu": 1, "disk": 5}))
    pending = Task(name="t", image="x", resources=Resources.model_validate({"fpga": 1, "zero": 0}))
    # gpu always (policy parameters may weight it); "zero" is asked for at 0, so it needs no row.
    assert cache.resource_names([(pending, 1)]) == ("cpu", "memory", "gpu", "disk", "fpga")


# ---------------------------------------------------------------------- live
@pytest.mark.live
def test_only_the_worker_with_gpus_gets_gpu_tasks(cluster_factory, etcd) -> None:  # type: ignore[no-untyped-def]
    # spread sends each task to the node with the fewest tasks: without the gpu check every
    # other gpu task would land on w2. Backfill: the disk task below must not wait behind the
    # fifth gpu task (under the default fifo it would, in the simulator and here alike).
    cluster = cluster_factory(policy="spread")
    cluster.start_master(extra=["--queue", "backfill"])
    # w1's ledger as the fixed-field model wrote it: the worker keeps it, the master reads it.
    asyncio.run(_put_json(etcd.endpoint, cluster.prefix, "alloc/w1", {"cpu": 0, "memory": 0, "gpu": 0, "tasks": []}))
    cluster.start_worker("w1", cpu=4000, memory=8192, resources={"gpu": 4000})
    cluster.start_worker("w2", cpu=4000, memory=8192, resources={"disk": 100000})
    gpu_tasks = [cluster.submit({"name": f"g{i}", **GPU_TASK}) for i in range(4)]
    placed = [cluster.wait_for_state(t["id"], {"ASSIGNED", "RUNNING"}, timeout=20)["node_id"] for t in gpu_tasks]
    assert placed == ["w1"] * 4
    # w1's 4000 milli-GPU are taken: a fifth waits, and w2 never gets it.
    fifth = cluster.submit({"name": "g4", **GPU_TASK})
    cluster.wait_until(lambda: cluster.task(fifth["id"])["reason"] is not None, timeout=10, what="a reason")
    waiting = cluster.task(fifth["id"])
    assert (waiting["state"], waiting["reason"]) == ("PENDING", "0/2 nodes fit: 2 insufficient gpu")
    disk = cluster.submit(
        {"name": "d", "image": "alpine", "command": ["sleep", "60"], "resources": {"cpu": 100, "disk": 2500.5}}
    )
    assert cluster.wait_for_state(disk["id"], {"ASSIGNED", "RUNNING"})["node_id"] == "w2"

    nodes = cluster.nodes()
    w1, w2 = nodes["w1"], nodes["w2"]
    assert w1["capacity"] == {"cpu": 4000, "memory": 8192, "gpu": 4000}
    assert w1["allocated"] == {"cpu": 400, "memory": 256, "gpu": 4000}
    assert w1["free"] == {"cpu": 3600, "memory": 7936, "gpu": 0}
    assert w2["capacity"] == {"cpu": 4000, "memory": 8192, "disk": 100000}
    assert w2["allocated"] == {"cpu": 100, "memory": 0, "disk": 2500.5}
    assert w2["free"] == {"cpu": 3900, "memory": 8192, "disk": 97499.5}
    assert cluster.http.get("/api/v1/nodes/w1").json()["allocated"]["gpu"] == 4000
    metrics = cluster.http.get("/metrics").text
    for line in (
        'orch_node_capacity{node="w1",resource="gpu"} 4000',
        'orch_node_allocated{node="w1",resource="gpu"} 4000',
        'orch_node_free{node="w1",resource="gpu"} 0',
        'orch_node_allocated{node="w2",resource="disk"} 2500.5',
        'orch_node_free{node="w2",resource="cpu"} 3900',
    ):
        assert line in metrics, line
    # The old-layout ledger now carries every name, in the new layout.
    ledger = asyncio.run(_get_json(etcd.endpoint, cluster.prefix, "alloc/w1"))
    assert ledger["allocated"] == {"cpu": 400, "memory": 256, "gpu": 4000} and ledger["count"] == 4

    # Freeing a GPU lets the fifth run, on w1 again.
    assert cluster.http.delete(f"/api/v1/tasks/{gpu_tasks[0]['id']}").status_code == 204
    assert cluster.wait_for_state(fifth["id"], {"ASSIGNED", "RUNNING"})["node_id"] == "w1"


@pytest.mark.live
def test_a_task_asking_for_a_resource_nobody_has_waits_with_the_reason(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1", cpu=2000, memory=1024)
    cluster.start_worker("w2", cpu=2000, memory=1024)
    fpga = cluster.submit({"name": "f", "image": "alpine", "command": ["true"], "resources": {"cpu": 100, "fpga": 1}})
    gpu = cluster.submit({"name": "g", **GPU_TASK})
    # Nobody offers fpga or gpu: with the nodes there are, neither could ever run. They are set
    # aside (a worker may join), not left blocking the fifo queue.
    never = "never fits: 0/2 nodes could hold it even when empty: 2 insufficient"
    for task, reason in ((fpga, f"{never} fpga"), (gpu, f"{never} gpu")):
        cluster.wait_until(lambda t=task: cluster.task(t["id"])["reason"] is not None, timeout=10, what="a reason")
        seen = cluster.task(task["id"])
        assert (seen["state"], seen["reason"]) == ("PENDING", reason)
    # Everything else still runs meanwhile.
    plain = cluster.submit({"name": "p", "image": "alpine", "command": ["true"], "resources": {"cpu": 100}})
    assert cluster.wait_for_state(plain["id"], {"COMPLETED"})["node_id"] in ("w1", "w2")
    # A worker offering fpga (from ORCH_RESOURCES this time) takes the waiting task.
    cluster.start_worker("w3", cpu=2000, memory=1024, env={"ORCH_RESOURCES": "fpga=2,disk=10"})
    done = cluster.wait_for_state(fpga["id"], {"COMPLETED"})
    assert done["node_id"] == "w3"
    assert cluster.nodes()["w3"]["capacity"] == {"cpu": 2000, "memory": 1024, "fpga": 2, "disk": 10}
    assert cluster.task(gpu["id"])["state"] == "PENDING"


@pytest.mark.live
def test_bad_resource_names_and_amounts_get_422_naming_the_field(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cases = [
        ({"GPU": 1000}, "GPU"),
        ({"gpu card": 1}, "gpu card"),
        ({"gpu": -1}, "gpu"),
        ({"gpu": "1000"}, "gpu"),
        ({"memory": 1.5}, "memory"),
    ]
    for resources, field in cases:
        response = cluster.http.post("/api/v1/tasks", json={"name": "x", "image": "alpine", "resources": resources})
        assert response.status_code == 422, resources
        detail = response.json()["detail"]
        named = [err for err in detail if field in [str(p) for p in err["loc"]] or repr(field) in err["msg"]]
        assert named, response.text
    assert cluster.tasks() == []
    # The fixed-field body of before still works, and comes back as it went in.
    task = cluster.submit({"name": "x", "image": "alpine", "resources": {"cpu": 500, "memory": 256}})
    assert task["resources"] == {"cpu": 500, "memory": 256}
    task = cluster.submit({"name": "y", "image": "alpine", "resources": {"gpu": 500, "disk.ssd": 1.5}})
    assert task["resources"] == {"cpu": 0, "memory": 0, "gpu": 500, "disk.ssd": 1.5}


@pytest.mark.live
@pytest.mark.parametrize(
    ("args", "env", "flag"),
    [
        (["worker", "--resource", "gpu"], {}, "--resource"),
        (["worker", "--resource", "GPU=4000"], {}, "--resource"),
        (["worker", "--resource", "gpu=-1"], {}, "--resource"),
        (["worker", "--cpu", "lots"], {}, "--cpu"),
        (["worker"], {"ORCH_RESOURCES": "gpu=x"}, "ORCH_RESOURCES"),
        (["dev", "--resource", "gpu=1.5.1"], {}, "--resource"),
        (["submit", "--name", "x", "--resource", "gpu"], {}, "--resource"),
    ],
)
def test_a_malformed_resource_exits_2_with_one_line(args: list[str], env: dict[str, str], flag: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    # An etcd nobody listens on: the flags must be refused before any connection.
    clean |= {"ORCH_ETCD": "127.0.0.1:9", **env}
    result = subprocess.run(
        [sys.executable, "-m", "orchlive", *args], capture_output=True, text=True, timeout=30, env=clean
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {flag}: "), result.stderr


# ---------------------------------------------------------------------- helpers
async def _put_json(endpoint: str, prefix: str, key: str, value: dict[str, Any]) -> None:
    async with Store(endpoint, prefix) as store:
        await store.put(f"{store.keys.prefix}/{key}", json.dumps(value).encode())


async def _get_json(endpoint: str, prefix: str, key: str) -> Any:
    async with Store(endpoint, prefix) as store:
        entry = await store.get(f"{store.keys.prefix}/{key}")
        assert entry is not None
        return entry.json()


def test_a_worker_refuses_what_it_could_never_hold_by_the_cores_rule() -> None:
    from orchlive.worker_checks import AssignmentCheck

    check = AssignmentCheck(Resources.model_validate({"cpu": 2000, "memory": 1024, "gpu": 1000}), {})
    fits = Task(name="a", image="x", resources=Resources.model_validate({"cpu": 2000, "gpu": 1000}))
    assert check.never_fits(fits) is None
    too_big = Task(name="b", image="x", resources=Resources.model_validate({"cpu": 2500, "disk": 1}))
    reason = check.never_fits(too_big)
    assert reason is not None and "0/1 nodes could hold it even when empty: 1 insufficient cpu" in reason
