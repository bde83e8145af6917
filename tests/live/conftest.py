from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchlive.etcd_server import EtcdServer

from .harness import LiveCluster


@pytest.fixture(scope="session")
def etcd() -> Iterator[EtcdServer]:
    """One real etcd (Debian's etcd-server) for the session, on free loopback ports."""
    if shutil.which("etcd") is None:
        pytest.skip("no 'etcd' binary on PATH: install Debian's etcd-server (.ci/run does)")
    server = EtcdServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def cluster_factory(etcd: EtcdServer, tmp_path: Path) -> Iterator:
    made: list[LiveCluster] = []

    def make(**kwargs) -> LiveCluster:  # type: ignore[no-untyped-def]
        work = tmp_path / f"cluster{len(made)}"
        work.mkdir()
        cluster = LiveCluster(etcd, work, **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()
