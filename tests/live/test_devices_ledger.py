"""Live devices, piece by piece: declaring, the ledger's grants, racing placements, the matrix, the runtimes.

The end-to-end check (workers, master, tasks seeing their GPUs) is ``test_live_devices.py``.
The race runs on a real etcd: two placements (two masters' connections) take shares of
the same GPU from the same ledger revision; the compare-and-swap lets one through, and
the ledger refuses the other once re-read.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchlive import devices as dev
from orchlive import transitions
from orchlive.cache import ClusterCache
from orchlive.models import Ledger, NodeRecord, Resources, Task, TaskCreate, TaskState, node_public
from orchlive.node_matrix import MatrixBuilder
from orchlive.runtime.base import TaskSpec, task_environment
from orchlive.runtime.process import ProcessRuntime
from orchlive.store import Store
from orchsim.scheduling import PreparedPolicy, decide


def gpu_task(gpu: float, devices: list[int] | None = None, cpu: int = 100) -> Task:
    resources = Resources.model_validate({"cpu": cpu, "gpu": gpu})
    return Task(name="g", resources=resources, devices={"gpu": devices} if devices is not None else {})


# ---------------------------------------------------------------------- declaring
def test_a_worker_declares_devices_and_its_gpu_capacity_follows() -> None:
    assert dev.parse_devices("gpu=8, fpga=2") == {"gpu": 8, "fpga": 2}
    for bad in ("gpu", "gpu=x", "gpu=1.5", "=3", "gpu=-1"):
        with pytest.raises(ValueError, match="KIND=COUNT"):
            dev.parse_devices(bad)
    none: dict[str, int] = {}
    # Declared: the capacity of each kind is devices x 1000.
    assert dev.declare({"cpu": 4000}, {"gpu": 8}, lambda: none) == ({"cpu": 4000, "gpu": 8000}, {"gpu": 8})
    # A gpu capacity is whole GPUs, as the simulator reads it; detection is not asked.
    assert dev.declare({"gpu": 4000}, None, lambda: {"gpu": 9}) == ({"gpu": 4000}, {"gpu": 4})
    assert dev.declare({"gpu": 0}, None, lambda: {"gpu": 9}) == ({"gpu": 0}, {})
    # Nothing said: what nvidia-smi lists.
    assert dev.declare({"cpu": 1}, None, lambda: {"gpu": 2}) == ({"cpu": 1, "gpu": 2000}, {"gpu": 2})
    with pytest.raises(ValueError, match=r"^gpu=2500: gpu capacity is whole GPUs"):
        dev.declare({"gpu": 2500}, None, lambda: none)
    with pytest.raises(ValueError, match=r"^gpu=2000 contradicts devices gpu=4"):
        dev.declare({"gpu": 2000}, {"gpu": 4}, lambda: none)


def test_detection_reads_nvidia_smi_and_finds_none_without_it() -> None:
    def smi(lines: str, code: int = 0) -> Any:
        return lambda *a, **k: subprocess.CompletedProcess(a, code, stdout=lines, stderr="")

    assert dev.detect_devices(smi("0\n1\n2\n")) == {"gpu": 3}
    assert dev.detect_devices(smi("", 9)) == {}

    def missing(*a: Any, **k: Any) -> Any:
        raise FileNotFoundError("nvidia-smi")

    assert dev.detect_devices(missing) == {}
    assert dev.detect_devices() == {}  # this machine has no nvidia-smi


def test_a_submission_asks_for_a_share_of_one_gpu_or_whole_gpus() -> None:
    for gpu in (0, 250, 999.5, 1000, 3000):
        TaskCreate(name="x", command=["true"], resources=Resources.model_validate({"gpu": gpu}))
    with pytest.raises(ValueError, match="1500 is neither a share of one device"):
        TaskCreate(name="x", command=["true"], resources=Resources.model_validate({"gpu": 1500}))
    assert TaskCreate(name="x", command=["true"]).image is None  # process tasks need no image


# ---------------------------------------------------------------------- the environment
def test_the_environment_names_the_devices_in_the_documented_format() -> None:
    half = {"gpu": dev.grant_for("gpu", 500, [2])}
    pair = {"gpu": dev.grant_for("gpu", 2000, [0, 1]), "fpga": dev.grant_for("fpga", 1000, [3])}
    assert dev.environment(half, node_has_gpus=True) == {"ORCH_DEVICES": "gpu=2:500", "CUDA_VISIBLE_DEVICES": "2"}
    assert dev.environment(pair, node_has_gpus=True) == {
        "ORCH_DEVICES": "fpga=3 gpu=0,1",
        "CUDA_VISIBLE_DEVICES": "0,1",
    }
    assert dev.environment({}, node_has_gpus=True) == {"CUDA_VISIBLE_DEVICES": ""}  # sees no GPU
    assert dev.environment({}, node_has_gpus=False) == {}
    with pytest.raises(dev.DeviceConflictError, match="needs 2 device"):
        dev.grant_for("gpu", 2000, [0])


def test_the_process_runtime_gives_the_task_its_devices(tmp_path: Path) -> None:
    async def run(spec: TaskSpec) -> dict[str, str]:
        handle = await ProcessRuntime().start(spec)
        assert await handle.wait() == 0
        return dict(line.split("=", 1) for line in spec.log_path.read_text().splitlines())

    base = {"attempt": 1, "image": None, "command": ["env"], "node_has_gpus": True}
    half = TaskSpec(task_id="a", log_path=tmp_path / "a.log", devices={"gpu": dev.Grant((3,), 250)}, **base)
    env = asyncio.run(run(half))
    assert (env["CUDA_VISIBLE_DEVICES"], env["ORCH_DEVICES"], env["ORCH_TASK_ID"]) == ("3", "gpu=3:250", "a")
    plain = TaskSpec(task_id="b", log_path=tmp_path / "b.log", **base)
    env = asyncio.run(run(plain))
    assert env["CUDA_VISIBLE_DEVICES"] == "" and "ORCH_DEVICES" not in env


class _FakeDocker:
    def ping(self) -> bool:
        return True


def test_docker_requests_the_gpus_by_id_only_on_a_node_with_real_gpus() -> None:
    from orchlive.runtime.base import TaskStartError
    from orchlive.runtime.docker import DockerRuntime

    spec = TaskSpec(task_id="a", attempt=1, image="alpine", command=["env"], devices={"gpu": dev.Grant((1, 2), 1000)})
    env = task_environment(spec)
    real = DockerRuntime(client=_FakeDocker(), gpus=True)._gpu_options(spec, env)
    (request,) = real["device_requests"]
    assert request["DeviceIDs"] == ["1", "2"] and request["Capabilities"] == [["gpu"]]
    # Inside, the container numbers its GPUs from 0: host indices stay in ORCH_DEVICES only.
    assert "CUDA_VISIBLE_DEVICES" not in real["environment"] and real["environment"]["ORCH_DEVICES"] == "gpu=1,2"
    fake = DockerRuntime(client=_FakeDocker(), gpus=False)._gpu_options(spec, env)
    assert fake == {"environment": env} and env["CUDA_VISIBLE_DEVICES"] == "1,2"
    no_image = TaskSpec(task_id="b", attempt=1, image=None, command=["env"])
    with pytest.raises(TaskStartError, match="needs an image"):
        asyncio.run(DockerRuntime(client=_FakeDocker(), gpus=False).start(no_image))


# ---------------------------------------------------------------------- the ledger
def test_the_ledger_holds_grants_and_refuses_a_device_past_its_capacity() -> None:
    ledger = Ledger()
    a, b, c = gpu_task(600, [0]), gpu_task(400, [0]), gpu_task(2000, [1, 2])
    for task in (a, b, c):
        ledger.add(task)
    assert dev.used_shares(ledger.devices["gpu"]) == {0: 1000, 1: 1000, 2: 1000}
    with pytest.raises(dev.DeviceConflictError, match="device 0 holds 1000 of 1000; 1 more"):
        ledger.add(gpu_task(1, [0]))
    assert ledger.count == 3 and ledger.allocated["gpu"] == 3000  # nothing changed
    again = Ledger.from_json(ledger.to_json())
    assert again == ledger and again.to_json()["devices"]["gpu"][a.id] == {"ids": [0], "share": 600}
    ledger.remove(a)
    ledger.remove(c)
    assert ledger.devices == {"gpu": {b.id: dev.Grant((0,), 400)}} and ledger.allocated["gpu"] == 400
    ledger.remove(b)
    assert ledger.to_json() == {"allocated": {"cpu": 0, "gpu": 0}, "count": 0}
    # The layout of before (a list of task ids) loads as its count.
    assert Ledger.from_json({"allocated": {"cpu": 5}, "tasks": ["a", "b"]}) == Ledger({"cpu": 5}, 2)


def test_the_api_view_shows_each_device_and_its_tasks() -> None:
    record = NodeRecord(id="w1", capacity=Resources.model_validate({"gpu": 2000}), devices={"gpu": 2})
    ledger = Ledger()
    a, b = gpu_task(250, [1]), gpu_task(500, [1])
    ledger.add(a)
    ledger.add(b)
    use = node_public(record, ledger, [a.id, b.id], alive=True).model_dump(mode="json")["device_use"]["gpu"]
    assert use == [
        {"index": 0, "capacity": 1000, "used": 0, "free": 1000, "tasks": {}},
        {"index": 1, "capacity": 1000, "used": 750, "free": 250, "tasks": {a.id: 250, b.id: 500}},
    ]


# ---------------------------------------------------------------------- the master's matrix
def test_the_master_matrix_tracks_devices_from_records_and_ledgers() -> None:
    cache = ClusterCache()
    gpus = Resources.model_validate({"cpu": 8000, "memory": 8192, "gpu": 4000})
    cache.nodes["w1"] = NodeRecord(id="w1", capacity=gpus, devices={"gpu": 4})
    cache.nodes["w0"] = NodeRecord(id="w0", capacity=Resources.model_validate({"cpu": 8000, "gpu": 2000}))  # older
    cache.nodes["w2"] = NodeRecord(id="w2", capacity=Resources(cpu=8000, memory=8192))  # no GPU
    cache.alive = dict.fromkeys(cache.nodes)
    ledger = Ledger()
    for task in (gpu_task(700, [0]), gpu_task(200, [2]), gpu_task(2000, [1, 3])):
        ledger.add(task)
    cache.ledgers["w1"] = (ledger, 5)
    matrix = MatrixBuilder().build(cache, [])
    gpu = matrix.devices["gpu"]
    assert matrix.ids == ["w0", "w1", "w2"] and gpu.counts.tolist() == [2, 4, 0]
    np.testing.assert_allclose(gpu.free[1], [300, 0, 800, 0])
    np.testing.assert_allclose(matrix.allocated[matrix.row("gpu")], [0, 2900, 0])
    # The core then places a half GPU where it fits (never on w1's full or 300-free GPUs).
    decision = decide(matrix, {"cpu": 100, "gpu": 500}, PreparedPolicy("bin_packing"))
    assert (decision.node_id, decision.devices) == ("w1", {"gpu": (2,)})


# ---------------------------------------------------------------------- racing for one GPU
async def _racing_placements(endpoint: str, prefix: str) -> None:
    async with Store(endpoint, prefix) as one, Store(endpoint, prefix) as two:
        lease = await one.grant_lease(30)
        record = NodeRecord(id="w1", capacity=Resources.model_validate({"cpu": 4000, "gpu": 1000}), devices={"gpu": 1})
        await transitions.register_node(one, record, lease)
        a = await transitions.create_task(one, gpu_task(600))
        b = await transitions.create_task(one, gpu_task(600))
        ledgers = {"w1": await transitions.read_ledger(one, "w1")}
        read_a = await transitions.read_task(one, a.id)
        read_b = await transitions.read_task(two, b.id)
        assert read_a is not None and read_b is not None
        # Two masters, each sure GPU 0 is free, each commit a 600 share of it at once.
        results = await asyncio.gather(
            transitions.place(one, [transitions.Placement(read_a[0], read_a[1], "w1", {"gpu": (0,)})], ledgers),
            transitions.place(two, [transitions.Placement(read_b[0], read_b[1], "w1", {"gpu": (0,)})], ledgers),
        )
        assert sorted(r.applied for r in results) == [False, True]
        stored, _ = await transitions.read_ledger(one, "w1")
        assert dev.used_shares(stored.devices["gpu"]) == {0: 600} and stored.count == 1
        winner, loser = (a, b) if results[0].applied else (b, a)
        assert (await transitions.read_task(one, winner.id))[0].devices == {"gpu": [0]}  # type: ignore[index]
        # The loser re-reads: the ledger itself refuses the share, so nothing is written.
        fresh = {"w1": await transitions.read_ledger(two, "w1")}
        lost = await transitions.read_task(two, loser.id)
        assert lost is not None and lost[0].state == TaskState.PENDING
        with pytest.raises(dev.DeviceConflictError):
            await transitions.place(two, [transitions.Placement(lost[0], lost[1], "w1", {"gpu": (0,)})], fresh)
        # Sent back to the queue, the winner gives its share back and forgets its devices.
        requeued = await transitions.requeue(one, winner.id, "w1", "node lost")
        assert requeued is not None and requeued.devices == {} and requeued.state == TaskState.PENDING
        assert (await transitions.read_ledger(one, "w1"))[0].devices == {}


@pytest.mark.live
def test_two_masters_racing_for_one_gpu_never_oversubscribe_it(etcd) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(_racing_placements(etcd.endpoint, f"/devices-{uuid.uuid4().hex[:8]}"))


@pytest.mark.live
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--devices", "gpu=x"], "error: --devices: 'gpu=x' is not KIND=COUNT"),
        (["--devices", "gpu=4", "--resource", "gpu=2000"], "error: gpu=2000 contradicts devices gpu=4"),
        (["--resource", "gpu=2500"], "error: gpu=2500: gpu capacity is whole GPUs"),
    ],
)
def test_bad_worker_devices_exit_2_with_one_line(args: list[str], line: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")} | {"ORCH_ETCD": "127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-m", "orchlive", "worker", *args], capture_output=True, text=True, timeout=30, env=env
    )
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(line), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.live
def test_the_devices_flag_declares_the_worker_gpus(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    flags = ["--cpu", "2000", "--memory", "1024", "--lease-ttl", "2", "--data-dir", str(cluster.work_dir)]
    cluster.workers["w9"] = cluster._spawn(["worker", "--name", "w9", "--devices", "gpu=2", *flags], "w9.log")
    cluster.wait_until(lambda: cluster.node_state("w9") == "READY", timeout=20, what="w9 READY")
    node = cluster.nodes()["w9"]
    assert (node["devices"], node["capacity"]["gpu"], len(node["device_use"]["gpu"])) == ({"gpu": 2}, 2000, 2)


def test_the_matrix_follows_ledger_changes_as_a_fresh_build_would() -> None:
    cache = ClusterCache()
    for nid in ("w1", "w2"):
        capacity = Resources.model_validate({"cpu": 8000, "gpu": 2000})
        cache.nodes[nid] = NodeRecord(id=nid, capacity=capacity, devices={"gpu": 2})
    cache.alive = dict.fromkeys(cache.nodes)
    a, b, c = gpu_task(300, [0]), gpu_task(1000, [1]), gpu_task(600, [0])
    first = Ledger()
    first.add(a)
    first.add(b)
    cache.ledgers["w1"] = (first, 3)
    builder = MatrixBuilder()
    builder.build(cache, [])
    # The pass places c on w2 (recorded as held), then the ledgers move on: a left w1, c reached w2.
    request = builder.matrix.request_vector({"cpu": 100, "gpu": 600})  # type: ignore[union-attr]
    builder.allocate(1, c.model_copy(update={"devices": {}}), request, {"gpu": (0,)})
    second = first.copy()
    second.remove(a)
    placed = Ledger()
    placed.add(c)
    cache.ledgers["w1"], cache.ledgers["w2"] = (second, 4), (placed, 4)
    again = builder.build(cache, []).devices["gpu"]
    fresh = MatrixBuilder().build(cache, []).devices["gpu"]
    np.testing.assert_allclose(again.free, fresh.free)
    np.testing.assert_allclose(again.free, [[1000, 0], [400, 1000]])
    assert again.classes.tolist() == fresh.classes.tolist()
    # A ledger its node's devices cannot hold: that node is skipped, the next build starts afresh.
    broken = Ledger()
    broken.add(gpu_task(1000, [5]))
    cache.ledgers["w2"] = (broken, 5)
    matrix = builder.build(cache, [])
    assert matrix.schedulable.tolist() == [True, False] and builder.matrix is None
