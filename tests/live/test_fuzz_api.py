"""Schemathesis on the master's own ``/openapi.json``, bounded: no input gets a 5xx.

Positive and negative cases for every operation but the event stream (an endless
response; its resume points are covered by ``test_event_stream``). Eighty examples per
operation (about 25 s in all); hypothesis derandomises the run so that a failure
reproduces.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402

from .harness import LiveCluster  # noqa: E402

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def live_master(etcd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:  # type: ignore[no-untyped-def]
    cluster = LiveCluster(etcd, tmp_path_factory.mktemp("fuzz"))
    cluster.start_master()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def api_schema(live_master: LiveCluster):  # type: ignore[no-untyped-def]
    # The examples and fuzzing phases only: the coverage phase enumerates every boundary of
    # every field (thousands of requests), beyond a bounded run.
    config = schemathesis.Config.from_dict(
        {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}, "generation": {"mode": "all"}}
    )
    schema = schemathesis.openapi.from_url(f"{live_master.url}/openapi.json", config=config)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/api/v1/events")


@schema.parametrize()
@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_input_gets_a_server_error(case, live_master: LiveCluster) -> None:  # type: ignore[no-untyped-def]
    response = case.call(base_url=live_master.url, timeout=10)
    case.validate_response(response, checks=[not_a_server_error])


def test_no_traceback_in_the_master_log(live_master: LiveCluster) -> None:
    text = "".join(p.read_text(errors="replace") for p in Path(live_master.work_dir).glob("*.log"))
    assert "Traceback" not in text, text[text.find("Traceback") :][:3000]
