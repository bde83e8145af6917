"""The docker runtime on a real engine, on a worker declaring GPUs the machine does not have.

Without real GPUs (no nvidia-smi here) the container gets the variables only, as a process
would; a task without an image is failed by the docker worker with the reason (issue 18).
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.live


def test_a_container_sees_its_gpu_share_and_a_task_without_image_fails(cluster_factory, docker_engine) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory(lease_ttl=10)
    cluster.docker_host = docker_engine
    cluster.start_master()
    cluster.start_worker("d1", cpu=2000, memory=2048, runtime="docker", env={"ORCH_DEVICES": "gpu=2"})
    show = "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES; echo ORCH_DEVICES=$ORCH_DEVICES"
    body: dict[str, Any] = {"name": "g", "image": "alpine", "command": ["sh", "-c", show]}
    body["resources"] = {"cpu": 100, "gpu": 500}
    first = cluster.submit(body)
    whole = cluster.submit(body | {"resources": {"cpu": 100, "gpu": 2000}})
    for task, devices, orch in ((first, [0], "gpu=0:500"), (whole, [0, 1], "gpu=0,1")):
        assert cluster.wait_for_state(task["id"], {"COMPLETED"})["devices"] == {"gpu": devices}
        log = cluster.http.get(f"/api/v1/tasks/{task['id']}/logs").text
        env = dict(line.split("=", 1) for line in log.splitlines() if "=" in line)
        assert (env["CUDA_VISIBLE_DEVICES"], env["ORCH_DEVICES"]) == (",".join(map(str, devices)), orch)
    bare = cluster.submit({"name": "bare", "command": ["true"]})
    failed = cluster.wait_for_state(bare["id"], {"FAILED"})
    assert failed["reason"] == "the docker runtime needs an image; this task has none"
    assert cluster.nodes()["d1"]["device_use"]["gpu"][0]["used"] == 0  # every share given back
