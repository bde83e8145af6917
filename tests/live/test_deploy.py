"""Deployment files: the compose file validates, and (opt-in) the Dockerfile builds."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_describes_etcd_master_and_scalable_workers() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {name for name, service in services.items() if "profiles" not in service} == {"etcd", "master", "worker"}
    worker = services["worker"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in worker["volumes"]
    assert "container_name" not in worker, "a fixed name would prevent --scale worker=3"
    assert worker["command"][:3] == ["worker", "--runtime", "docker"]
    assert services["master"]["ports"] == ["127.0.0.1:8080:8080"]


def test_compose_file_has_optional_dask_services_for_sweeps() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    scheduler, worker = services["dask-scheduler"], services["dask-worker"]
    assert scheduler["profiles"] == worker["profiles"] == ["dask"]  # `docker compose up` alone leaves them out
    assert scheduler["ports"] == ["127.0.0.1:8786:8786"]
    assert worker["command"][:2] == ["worker", "tcp://dask-scheduler:8786"] and "container_name" not in worker
    assert (ROOT / scheduler["build"]["dockerfile"]).is_file()


def test_docker_compose_config_accepts_the_file() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (Debian: apt-get install docker-compose)")
    out = subprocess.run(
        [tool, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(
    not os.environ.get("ORCH_TEST_DOCKER_BUILD"),
    reason="opt-in (minutes, downloads Debian packages and PyPI wheels): ORCH_TEST_DOCKER_BUILD=1",
)
def test_dockerfile_builds_on_a_locally_imported_base(docker_engine: str) -> None:
    env = {**os.environ, "DOCKER_HOST": docker_engine}
    have = subprocess.run(["docker", "image", "inspect", "orch-base:bookworm"], capture_output=True, env=env)
    if have.returncode != 0:
        subprocess.run([str(ROOT / "deploy" / "build-base-image.sh")], check=True, env=env, timeout=1200)
    build = subprocess.run(
        ["docker", "build", "--network", "host", "--build-arg", "BASE=orch-base:bookworm", "-t", "orchlive:test", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    version = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "orchlive:test", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert version.returncode == 0 and "master" in version.stdout
