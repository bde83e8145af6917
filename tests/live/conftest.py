from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchlive.etcd_cluster import EtcdCluster
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
def etcd_cluster() -> Iterator[EtcdCluster]:
    """A real 3-member etcd cluster on loopback (``orchlive.etcd_cluster``), for one test."""
    if shutil.which("etcd") is None:
        pytest.skip("no 'etcd' binary on PATH: install Debian's etcd-server (.ci/run does)")
    cluster = EtcdCluster(3)
    cluster.start()
    yield cluster
    cluster.cleanup()


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


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Docker engine and a local ``alpine`` image imported from busybox (nothing is pulled).

    Uses a running engine when one answers; otherwise starts a private ``dockerd`` with no
    bridge network (``--bridge=none --iptables=false --ip-masq=false``) and stops it after.
    Yields the DOCKER_HOST to give to workers.
    """
    from .docker_engine import DockerEngine

    engine = DockerEngine(tmp_path_factory.mktemp("docker"))
    reason = engine.start()
    if reason is not None:
        pytest.skip(f"no Docker engine can run here: {reason}")
    try:
        engine.import_busybox_image()
        yield engine.host
    finally:
        engine.stop()
