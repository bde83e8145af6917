"""`python -m orchlive dev`, the one-command local cluster, and the small client against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from orchlive.etcd_server import free_port

pytestmark = pytest.mark.live


def orchlive(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchlive", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_dev_cluster_runs_tasks_and_stops_cleanly_on_ctrl_c(etcd) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    dev = subprocess.Popen(
        [sys.executable, "-m", "orchlive", "dev", "--workers", "2", "--port", str(port), "--resource", "gpu=2000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        nodes: list[dict] = []
        while time.monotonic() < deadline:
            try:
                nodes = httpx.get(f"{url}/api/v1/nodes", timeout=2).json()
                if len(nodes) == 2 and all(n["state"] == "READY" for n in nodes):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.3)
        assert sorted(n["id"] for n in nodes) == ["w1", "w2"]
        assert all(n["capacity"] == {"cpu": 4000, "memory": 8192, "gpu": 2000} for n in nodes), nodes

        flags = ["--master", url, "--name", "hi", "--image", "alpine", "--cpu", "200m", "--resource", "gpu=500m"]
        submitted = orchlive("submit", *flags, "-o", "json", "--", "echo", "hi there", env=env)
        assert submitted.returncode == 0 and not submitted.stderr, submitted.stderr
        task = json.loads(submitted.stdout)
        assert task["resources"] == {"cpu": 200, "memory": 64, "gpu": 500}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            state = httpx.get(f"{url}/api/v1/tasks/{task['id']}").json()["state"]
            if state in ("COMPLETED", "FAILED"):
                break
            time.sleep(0.2)
        assert state == "COMPLETED"
        listed = orchlive("tasks", "--master", url, "-o", "json", env=env)
        assert listed.returncode == 0 and json.loads(listed.stdout)[0]["id"] == task["id"]
        nodes_json = orchlive("nodes", "--master", url, "-o", "json", env=env).stdout
        assert {n["id"] for n in json.loads(nodes_json)} == {"w1", "w2"}
        # The banner says how to point a client at this port, and the client then needs nothing else.
        output_so_far = dev.stdout.readline() if dev.stdout else ""
        assert output_so_far.startswith(f"orchlive dev: master {url},"), output_so_far
        table = orchlive("tasks", env=env | {"ORCH_MASTER": url})
        assert table.returncode == 0 and table.stdout.split("\n")[1].split()[:3] == [task["id"], "hi", "COMPLETED"]
        # Accepted, but no node could ever hold it: the client says why (the core's words), exit 0.
        flags = ["--master", url, "--name", "big", "--cpu", "16000m", "--memory", "1Gi"]
        big = orchlive("submit", *flags, "--", "true", env=env)
        expected = "warning: never fits: 0/2 nodes could hold it even when empty: 2 insufficient cpu; it stays PENDING"
        assert big.returncode == 0 and big.stderr.startswith(expected), big.stderr
    finally:
        dev.send_signal(signal.SIGINT)
        output, _ = dev.communicate(timeout=40)
    assert dev.returncode == 0, output
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/health", timeout=2)


def test_client_reports_an_unreachable_master_in_one_line() -> None:
    result = orchlive("tasks", "--master", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot reach the master") and "Traceback" not in result.stderr


def test_master_rejects_an_unknown_policy_in_one_line() -> None:
    result = orchlive("master", "--policy", "tetris", "--port", str(free_port()))
    assert result.returncode == 2
    assert "unknown policy 'tetris'" in result.stderr and "bin_packing" in result.stderr
