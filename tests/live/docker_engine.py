"""A Docker engine for the tests: the running one, or a private dockerd started (and stopped) here."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import docker
import docker.errors

BUSYBOX_TOOLS = ("sh", "echo", "sleep", "cat", "true", "false", "head", "tr", "tail", "dd", "ls", "yes")


class DockerEngine:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.process: subprocess.Popen[bytes] | None = None
        self.host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")

    def _ping(self, host: str) -> bool:
        try:
            client = docker.DockerClient(base_url=host, timeout=5)
            client.ping()
            client.close()
            return True
        except docker.errors.DockerException:
            return False

    def start(self) -> str | None:
        """Returns None when an engine answers, else the reason none can run."""
        if self._ping(self.host):
            return None
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            return "no dockerd binary (Debian: apt-get install docker.io)"
        if os.geteuid() != 0:
            return "dockerd needs root"
        sock = self.work / "docker.sock"
        self.host = f"unix://{sock}"
        log = open(self.work / "dockerd.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            [
                dockerd,
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--host",
                self.host,
                "--data-root",
                str(self.work / "data"),
                "--exec-root",
                str(self.work / "exec"),
                "--pidfile",
                str(self.work / "dockerd.pid"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"dockerd exited with {self.process.returncode}; see {self.work / 'dockerd.log'}"
            if self._ping(self.host):
                return None
            time.sleep(0.3)
        self.stop()
        return "dockerd did not answer within 30 s"

    def import_busybox_image(self) -> None:
        """``docker import`` a busybox-static rootfs as orch-busybox:local, tagged alpine:latest."""
        busybox = shutil.which("busybox") or "/bin/busybox"
        if not Path(busybox).is_file():
            raise RuntimeError("no busybox binary (Debian: apt-get install busybox-static)")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for folder in ("bin", "tmp"):
                info = tarfile.TarInfo(folder)
                info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
                tar.addfile(info)
            tar.add(busybox, arcname="bin/busybox")
            for tool in BUSYBOX_TOOLS:
                link = tarfile.TarInfo(f"bin/{tool}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        client = docker.DockerClient(base_url=self.host, timeout=60)
        client.api.import_image_from_data(buffer.getvalue(), repository="orch-busybox", tag="local")
        client.images.get("orch-busybox:local").tag("alpine", "latest")
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        # dockerd leaves its default network namespace bind-mounted under the exec root, which
        # keeps pytest from removing the temp folder later ("Device or resource busy").
        netns = self.work / "exec" / "netns" / "default"
        if os.path.ismount(netns):
            subprocess.run(["umount", str(netns)], check=False, capture_output=True)
