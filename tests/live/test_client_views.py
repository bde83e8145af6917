"""The client's views and error lines on fixed inputs (no cluster): exact text, worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from orchlive.client.http import Api, error_line
from orchlive.client.output import age, table
from orchlive.client.views import describe_node, event_line, node_table, task_table

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_a_table_aligns_columns_three_spaces_apart_without_trailing_spaces() -> None:
    text = table(["ID", "NAME"], [["a", "long-name"], ["bbbb", ""]])
    assert text.splitlines() == ["ID     NAME", "a      long-name", "bbbb   <none>"]


def test_ages_read_as_kubectl_writes_them() -> None:
    ages = [age(f"2026-01-01T{t}Z", NOW) for t in ("11:59:18", "11:55:00", "09:00:00", "12:00:05")]
    assert ages == ["42s", "5m", "3h", "0s"]
    assert age("2025-12-30T12:00:00+00:00", NOW) == "2d" and age(None, NOW) == "<none>"


def test_task_and_node_tables() -> None:
    task = {"id": "ab12", "name": "x", "state": "PENDING", "node_id": None, "exit_code": None}
    task |= {"creation_time": "2026-01-01T11:59:00Z", "resources": {"cpu": 500}, "reason": "0/1 nodes fit"}
    assert task_table([task], now=NOW).splitlines() == [
        "ID     NAME   STATE     NODE     EXIT     AGE",
        "ab12   x      PENDING   <none>   <none>   1m",
    ]
    wide = task_table([task], wide=True, now=NOW).splitlines()[1]
    assert wide.endswith("cpu=500     0          0/1 nodes fit   <none>")
    # A PENDING task the master has not tried (behind a fifo queue's head) says so, not <none>.
    untried = task_table([task | {"reason": None}], wide=True, now=NOW).splitlines()[1]
    assert "queued: not tried yet (behind tasks waiting for room, or just submitted)" in untried
    done = task_table([task | {"reason": None, "state": "COMPLETED"}], wide=True, now=NOW).splitlines()[1]
    assert "queued" not in done
    node = {"id": "w1", "state": "READY", "tasks": ["ab12"], "last_heartbeat": "2026-01-01T11:59:59Z"}
    node |= {"capacity": {"cpu": 4000, "gpu": 2000}, "allocated": {"cpu": 500, "gpu": 0.5}}
    assert node_table([node], now=NOW).splitlines() == [
        "NAME   STATE   TASKS   CPU(m)     GPU(m)     HEARTBEAT",
        "w1     READY   1       500/4000   0.5/2000   1s",
    ]


def test_one_line_per_event_time_type_object_reason() -> None:
    event = {"id": 7000, "type": "task.assigned", "timestamp": "2026-01-01T10:00:00.123+00:00"}
    event["object"] = {"id": "ab12", "node_id": "w1"}
    assert event_line(event) == "2026-01-01T10:00:00Z  task.assigned     task/ab12               on w1"
    lost = {"type": "node.lost", "timestamp": "2026-01-01T10:00:01Z", "object": {"id": "w2", "state": "NOT_READY"}}
    assert event_line(lost) == "2026-01-01T10:00:01Z  node.lost         node/w2                 NOT_READY"
    failed = {"type": "task.failed", "timestamp": "2026-01-01T10:00:02Z", "object": {"id": "c", "reason": "OOMKilled"}}
    assert event_line(failed).endswith("task/c                  OOMKilled")


def test_error_lines_name_the_field_and_never_dump_json() -> None:
    detail = [
        {"type": "greater_than_equal", "loc": ["body", "resources", "cpu"], "msg": "Input should be >= 0"},
        {"type": "missing", "loc": ["body", "name"], "msg": "Field required"},
    ]
    response = httpx.Response(422, json={"detail": detail})
    assert error_line(response) == "resources.cpu: Input should be >= 0; name: Field required"
    assert error_line(httpx.Response(404, json={"detail": "task x not found"})) == "task x not found"
    unauthorized = httpx.Response(401, json={"detail": "missing or wrong bearer token"})
    assert error_line(unauthorized) == "missing or wrong bearer token (set ORCH_API_TOKEN)"
    assert error_line(httpx.Response(502, text="<html>\nbad gateway</html>")) == "HTTP 502: <html> bad gateway</html>"


def test_submit_resends_after_no_answer_under_one_idempotency_key() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Idempotency-Key"])
        if len(seen) == 1:
            raise httpx.ReadTimeout("no answer", request=request)  # the master froze: maybe created
        if len(seen) == 2:
            return httpx.Response(503, json={"detail": "etcd unavailable"})
        return httpx.Response(200, json={"id": "t1"})  # the first POST's task

    with Api("http://master", "submit") as api:
        api.http = httpx.Client(base_url="http://master", transport=httpx.MockTransport(answer))
        assert api.submit("/api/v1/tasks", {"name": "x"}, pause=0) == {"id": "t1"}
    assert len(seen) == 3 and len(set(seen)) == 1 and len(seen[0]) == 32


def test_describe_node_shows_each_device_and_who_holds_it() -> None:
    node = {"id": "w1", "state": "READY", "capacity": {"cpu": 4000, "gpu": 2000}, "allocated": {"gpu": 1500}}
    node["device_use"] = {
        "gpu": [
            {"index": 0, "capacity": 1000, "used": 1000, "free": 0, "tasks": {"big": 1000}},
            {"index": 1, "capacity": 1000, "used": 500, "free": 500, "tasks": {"a": 250, "b": 250}},
        ]
    }
    text = describe_node(node, [], now=NOW)
    assert text.split("Devices:\n", 1)[1].splitlines() == [
        "  KIND   DEVICE   USED   FREE   TASKS",
        "  gpu    0        1000   0      big=1000",
        "  gpu    1        500    500    a=250,b=250",
        "Events:     <none>",
    ]
    assert "Devices:    <none>" in describe_node({"id": "w2", "state": "READY"}, [], now=NOW)


def test_orch_master_is_read_by_the_settings_object(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from orchlive.__main__ import _parser
    from orchlive.config import Settings

    monkeypatch.setenv("ORCH_MASTER", "http://10.0.0.5:9000")
    settings = Settings()
    assert settings.master == "http://10.0.0.5:9000"
    assert _parser(settings).parse_args(["tasks"]).master == "http://10.0.0.5:9000"
    monkeypatch.delenv("ORCH_MASTER")
    monkeypatch.setenv("ORCH_PORT", "20080")
    assert _parser(Settings()).parse_args(["tasks"]).master == "http://127.0.0.1:20080"


def test_the_queue_listing_is_the_masters_order() -> None:
    """``tasks --queue``: priority, then ``queued_since`` (a victim's eviction) or creation, then id."""
    from orchlive.client.commands import queue_order

    tasks = [
        {"id": "v", "priority": 0, "creation_time": "2026-01-01T00:00:00Z", "queued_since": "2026-01-01T00:00:10Z"},
        {"id": "o", "priority": 0, "creation_time": "2026-01-01T00:00:05.5Z"},
        {"id": "n", "priority": 0, "creation_time": "2026-01-01T00:00:15+00:00"},
        {"id": "u", "priority": 5, "creation_time": "2026-01-01T00:00:20Z"},
        {"id": "a", "priority": 0, "creation_time": "2026-01-01T00:00:15Z"},
    ]
    assert [t["id"] for t in queue_order(tasks)] == ["u", "o", "v", "a", "n"]
