"""The client against a real cluster: tables, ``-o``, ``--master``/``ORCH_MASTER``, logs, describe,
events, delete, drain, and errors as one line naming the field.

The client runs in-process (``orchlive.__main__.main``) for speed; its output is captured.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
import yaml

from orchlive.__main__ import main
from orchlive.client.http import error_line
from orchlive.etcd_server import free_port

pytestmark = pytest.mark.live
EVENT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  [a-z]+\.[a-z]+ +(task|node)/\S+ +\S.*$")


@pytest.fixture
def run(capsys, monkeypatch):  # type: ignore[no-untyped-def]
    """``run(*argv) -> (status, stdout, stderr)`` of one client command."""
    for name in ("ORCH_MASTER", "ORCH_API_TOKEN", "ORCH_HOST", "ORCH_PORT"):
        monkeypatch.delenv(name, raising=False)

    def call(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return call


def column_starts(line: str) -> list[int]:
    return [m.start() for m in re.finditer(r"(?:(?<=   )|^)\S", line)]


def test_tasks_and_nodes_print_aligned_tables_and_every_format(cluster_factory, run) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1", cpu=4000, memory=8192, labels="zone=a")
    status, out, err = run("--master", cluster.url, "submit", "--image", "alpine", "--name", "hi", "--", "echo", "hi")
    assert status == 0, err
    task_id = out.strip()
    assert re.fullmatch(r"[0-9a-f]{16}", task_id), out
    cluster.wait_for_state(task_id, {"COMPLETED"})
    more = ["--env", "G=1", "--node-selector", "zone=b", "--max-attempts", "2", "-o", "json", "--", "true"]
    waiting = json.loads(run("--master", cluster.url, "submit", "--name", "picky", *more)[1])
    assert (waiting["env_names"], waiting["node_selector"], waiting["max_attempts"]) == (["G"], {"zone": "b"}, 2)
    pending = run("--master", cluster.url, "tasks", "--state", "pending")[1].splitlines()
    assert [line.split()[:3] for line in pending[1:]] == [[waiting["id"], "picky", "PENDING"]]
    assert run("--master", cluster.url, "delete", waiting["id"])[0] == 0

    status, out, _ = run("tasks", "--master", cluster.url)
    header, row = out.splitlines()
    assert header.split() == ["ID", "NAME", "STATE", "NODE", "EXIT", "AGE"]
    assert row.split()[:5] == [task_id, "hi", "COMPLETED", "w1", "0"]
    assert column_starts(header) == column_starts(row)  # aligned: every cell starts under its header

    _, out, _ = run("--master", cluster.url, "tasks", "-o", "wide")
    assert out.splitlines()[0].split()[-4:] == ["RESOURCES", "ATTEMPTS", "REASON", "COMMAND"]
    assert out.splitlines()[1].endswith("cpu=100,memory=64   1          <none>   echo hi")
    assert json.loads(run("--master", cluster.url, "tasks", "-o", "json")[1])[0]["id"] == task_id
    assert yaml.safe_load(run("--master", cluster.url, "tasks", "-o", "yaml")[1])[0]["state"] == "COMPLETED"

    _, out, _ = run("--master", cluster.url, "nodes")
    header, row = out.splitlines()
    assert header.split() == ["NAME", "STATE", "TASKS", "CPU(m)", "MEMORY(Mi)", "HEARTBEAT"]
    assert row.split()[:5] == ["w1", "READY", "0", "0/4000", "0/8192"]
    assert column_starts(header) == column_starts(row)
    assert "zone=a" in run("--master", cluster.url, "nodes", "-o", "wide")[1]


def test_the_master_comes_from_orch_master_or_the_flag_either_side(cluster_factory, run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ORCH_MASTER", cluster.url)
    assert run("tasks")[:2] == (0, "ID   NAME   STATE   NODE   EXIT   AGE\n")
    monkeypatch.setenv("ORCH_MASTER", dead)
    status, _, err = run("tasks")
    assert status == 2 and err.startswith(f"error: cannot reach the master at {dead} (")
    assert run("--master", cluster.url, "tasks")[0] == 0  # the flag wins, before the subcommand
    assert run("tasks", "--master", cluster.url)[0] == 0  # and after it


def test_errors_are_one_line_naming_the_field(cluster_factory, run) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    url = cluster.url
    status, out, err = run("--master", url, "submit", "--image", "a", "--name", "x", "--timeout", "-5", "--", "true")
    assert (status, out) == (2, "")
    assert err == "error: submit: timeout: Input should be greater than 0\n"
    assert run("--master", url, "submit", "--name", "x", "--env", "X", "--", "t")[2] == (
        "error: submit: --env 'X': expected NAME=VALUE\n"
    )
    # A 422 on a nested field, as the API answers it, rendered by the client's one function.
    body = {"name": "x", "image": "a", "command": ["t"], "resources": {"cpu": -1}}
    bad = httpx.post(f"{url}/api/v1/tasks", json=body)
    assert bad.status_code == 422
    assert error_line(bad) == "resources.cpu: Input should be greater than or equal to 0"
    assert run("--master", url, "logs", "nope")[2] == "error: logs: task nope not found\n"
    assert run("--master", url, "describe", "node", "nope")[2] == "error: describe: node nope not found\n"

    # No worker yet: a task without a command may still find a docker worker, so it is accepted.
    assert run("--master", url, "submit", "--image", "alpine", "--name", "later")[0] == 0
    cluster.start_worker("w1")
    status, _, err = run("--master", url, "submit", "--image", "alpine", "--name", "nothing")
    assert status == 2
    assert err.startswith("error: submit: command: a command is required: every worker of this cluster runs processes")
    assert err.count("\n") == 1


def test_logs_describe_events_delete_and_drain(cluster_factory, run) -> None:  # type: ignore[no-untyped-def]
    cluster = cluster_factory()
    cluster.start_master()
    cluster.start_worker("w1")
    cluster.start_worker("w2")
    url = cluster.url
    task_id = run("--master", url, "submit", "--image", "a", "--name", "say", "--", "sh", "-c", "sleep 1; echo said")[1]
    task_id = task_id.strip()
    status, out, err = run("--master", url, "logs", "-f", task_id)  # waits for the end
    assert (status, out) == (0, "said\n"), err
    node = cluster.task(task_id)["node_id"]

    _, out, _ = run("--master", url, "describe", "task", task_id)
    assert re.search(r"^State: +COMPLETED \(exit 0\)$", out, re.M) and re.search(rf"^Node: +{node}$", out, re.M)
    events = out.split("Events:\n", 1)[1].splitlines()
    assert [line.split()[1] for line in events] == ["task.created", "task.assigned", "task.running", "task.completed"]
    assert events[1].endswith(f"task/{task_id}   on {node}") and events[3].endswith("exit 0")

    _, out, _ = run("--master", url, "describe", "node", "w1")
    assert re.search(r"^  cpu +4000 +0 +4000$", out, re.M) and "node.joined" in out

    _, out, _ = run("--master", url, "events")
    lines = out.splitlines()
    assert len(lines) == 6 and all(EVENT_LINE.match(line) for line in lines), out  # 2 joins, 4 task events
    assert [json.loads(line)["type"] for line in run("--master", url, "events", "-o", "json")[1].splitlines()] == [
        line.split()[1] for line in lines
    ]

    assert run("--master", url, "delete", task_id)[1] == f"task/{task_id} deleted\n"
    assert cluster.http.get(f"/api/v1/tasks/{task_id}").status_code == 404
    assert run("--master", url, "drain", "w2")[1] == "node/w2 drained (DRAINING)\n"
    assert cluster.nodes()["w2"]["state"] == "DRAINING"
