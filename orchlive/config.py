"""One settings object for every process: command-line flags over ``ORCH_*`` environment variables.

=====================  ============================  ==========================================
flag                   environment                   meaning (default)
=====================  ============================  ==========================================
--etcd                 ORCH_ETCD                     etcd endpoints host:port[,host:port...] of one etcd
                                                     cluster: the first healthy one is used, the next on
                                                     a connection loss (127.0.0.1:2379)
--prefix               ORCH_PREFIX                   key prefix of this cluster (/orch)
--host / --port        ORCH_HOST / ORCH_PORT         master API address (127.0.0.1:8080)
--policy               ORCH_POLICY                   placement policy (bin_packing)
--policy-params        ORCH_POLICY_PARAMS            its parameters, JSON or YAML ({}); --policy-param k.k=v adds one
--plugin               ORCH_PLUGINS                  modules or .py files registering policies (comma-separated)
--queue                ORCH_QUEUE                    queue discipline: fifo | backfill (fifo, as the simulator)
--backfill-window      ORCH_BACKFILL_WINDOW          tasks a backfill pass looks at (100)
--filters              ORCH_FILTERS                  extra filters, JSON or YAML ({max_tasks_per_node: {limit: 8}})
--sample               ORCH_SAMPLE                   node sampling: all | log2 | {candidates: k} | {percentage: p} (all)
--preemption           ORCH_PREEMPTION               a task that fits nowhere evicts lower-priority ones (false)
--seed                 ORCH_SEED                     seed of the random policies (0)
--lease-ttl            ORCH_LEASE_TTL                worker heartbeat lease, seconds (5)
--lease-margin         ORCH_LEASE_MARGIN             the worker stops its tasks this many seconds before its
                                                     lease could expire (min(1, TTL/8); at most TTL/2)
--lost-grace           ORCH_LOST_GRACE               the master waits this long past a node's lease expiry
                                                     before rerunning its tasks elsewhere, seconds (2)
--run-as               ORCH_RUN_AS                   process runtime: run tasks as this user (the worker's;
                                                     another user needs a root worker)
--leader-ttl           ORCH_LEADER_TTL               master leadership lease, seconds (5)
--name                 ORCH_NAME                     worker node id (the host name)
--runtime              ORCH_RUNTIME                  process | docker (process)
--cpu / --memory       ORCH_CPU / ORCH_MEMORY        worker capacity, millicores / MiB (the machine's)
--resource             ORCH_RESOURCES                worker resources NAME=AMOUNT, e.g. gpu=4000 (repeatable;
                                                     comma-separated in the variable; wins over --cpu/--memory)
--labels               ORCH_LABELS                   worker labels, k=v,k=v
--devices              ORCH_DEVICES                  worker devices KIND=COUNT, e.g. gpu=8 (1000 milli units each;
                                                     default: gpu from --resource gpu=N000, else nvidia-smi's)
--network              ORCH_NETWORK                  docker runtime network mode: none | host (none)
--data-dir             ORCH_DATA_DIR                 worker scratch space for task output
(none)                 ORCH_LOG_TAIL_BYTES           bytes of a task's output kept in etcd (65536; at most 1 MiB)
--master               ORCH_MASTER                   the master's URL, for the client commands
                                                     (http://ORCH_HOST:ORCH_PORT)
(none)                 ORCH_API_TOKEN                bearer token every /api/v1 request needs (none: open)
--protect-system       ORCH_PROTECT_SYSTEM           /health and /metrics need the token too (false)
(none)                 ORCH_EVENTS_MAX_AGE           seconds events are kept, under an etcd lease (3600; 0: no
                                                     age bound). Every process that writes events reads it
(none)                 ORCH_EVENTS_MAX_COUNT         events kept at most, trimmed by the leader (100000; 0: none)
(none)                 ORCH_RETENTION_INTERVAL       seconds between the leader's trims and compactions (300;
                                                     0: neither)
(none)                 ORCH_COMPACTION               the leader compacts etcd below the oldest event kept (true;
                                                     false with several clusters on one etcd, or when the
                                                     operator runs etcd's --auto-compaction-retention)
=====================  ============================  ==========================================
"""

from __future__ import annotations

import math
import os
import re
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchlive.limits import check_amounts
from orchlive.models import RESOURCE_NAME_PATTERN, Resources
from orchsim.units import Rejected, resource_amount

__all__ = ["NODE_NAME_PATTERN", "Settings", "check_node_name", "machine_capacity", "parse_labels", "parse_resources"]

# A node's name is a key segment (``PREFIX/nodes/<name>``) and a label value: a host-name-like
# word, so that no name can contain a ``/`` and be stored where the master never looks.
NODE_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$"


def check_node_name(name: str) -> str:
    """``name``, if it can name a node; raises ValueError saying what a name may hold."""
    if not re.fullmatch(NODE_NAME_PATTERN, name):
        raise ValueError(
            f"{name!r} cannot name a node: letters, digits, '.', '_' and '-', starting and ending with a letter "
            "or digit, at most 253 characters"
        )
    return name


def machine_capacity() -> tuple[int, int]:
    """This machine's cpu (millicores) and memory (MiB): the worker's default capacity."""
    cpu = (os.cpu_count() or 1) * 1000
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = pages // (1024 * 1024)
    except (ValueError, OSError):
        memory = 1024
    return cpu, int(memory)


def parse_labels(text: str) -> dict[str, str]:
    """``"zone=a,disk=ssd"`` -> ``{"zone": "a", "disk": "ssd"}``; raises ValueError naming a bad item."""
    labels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"label {item!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels


def parse_resources(items: str | Iterable[str]) -> dict[str, int | float]:
    """``"gpu=4000,disk=1e5"`` or ``["gpu=4000", "disk=100000"]`` -> ``{"gpu": 4000, "disk": 100000}``.

    An amount is a number in the resource's unit or a Kubernetes quantity, converted as a
    scenario's (``orchsim.units``: ``cpu=500m`` is 500 millicores, ``memory=1Gi`` 1024 MiB).
    Whole numbers become integers (cpu and memory must be whole); a name given twice
    keeps its last amount.

    Raises:
        ValueError: one line naming the bad item: not NAME=AMOUNT, not a finite number
            >= 0, a name not matching ``RESOURCE_NAME_PATTERN``, a fractional cpu or memory.
    """
    parts = items.split(",") if isinstance(items, str) else items
    amounts: dict[str, int | float] = {}
    typed: dict[str, str] = {}  # what the user wrote, for an error about the converted amount
    for item in filter(None, (part.strip() for part in parts)):
        name, sep, text = (piece.strip() for piece in item.partition("="))
        if not sep or not name or not text:
            raise ValueError(f"{item!r} is not NAME=AMOUNT")
        try:
            amount: int | float = int(text)
        except ValueError:
            converted = resource_amount(name, text)  # a float, a Kubernetes quantity (500m, 1Gi), or Rejected
            if isinstance(converted, Rejected):
                raise ValueError(converted.message) from None
            amount = converted
            if math.isfinite(amount) and amount.is_integer():
                amount = int(amount)
        if not math.isfinite(amount) or amount < 0:
            raise ValueError(f"{item!r}: the amount must be a finite number >= 0")
        amounts[name], typed[name] = amount, text
    try:
        check_amounts(amounts)  # a worker may declare no more than a task may ask for
        Resources.model_validate(amounts)
    except ValidationError as err:
        problem = err.errors(include_url=False)[0]
        name = str(problem["loc"][0])
        if problem["type"] == "string_pattern_mismatch":
            raise ValueError(f"resource name {name!r} must match {RESOURCE_NAME_PATTERN}") from None
        if problem["type"] == "int_type":
            unit = {"cpu": "millicores", "memory": "MiB"}.get(name, "units")
            text = typed.get(name, str(amounts.get(name)))
            shown = repr(text) if _is_number(text) else f"{text!r} is {amounts[name]:g} {unit}"
            raise ValueError(f"{shown}: {name} takes a whole number of {unit}") from None
        raise ValueError(f"{name}={amounts.get(name)}: {problem['msg']}") from None
    return amounts


class Settings(BaseSettings):
    """Settings shared by master, worker and client; see the module table."""

    model_config = SettingsConfigDict(env_prefix="ORCH_", extra="ignore")

    etcd: str = "127.0.0.1:2379"
    prefix: str = "/orch"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    policy: str = "bin_packing"
    policy_params: str = ""
    plugins: str = ""
    queue: str = "fifo"  # orchsim.scheduling.DEFAULTS.queue: the simulator's default too
    backfill_window: int = Field(default=100, ge=1)
    filters: str = ""
    sample: str = "all"
    preemption: bool = False  # scheduler.preemption in scenario files: opt-in, as there
    seed: int = 0
    lease_ttl: int = Field(default=5, ge=1)
    lease_margin: float | None = Field(default=None, gt=0)  # None: orchlive.worker.default_lease_margin
    lost_grace: float = Field(default=2.0, ge=0, le=3600)  # orchlive.master.LOST_GRACE
    run_as: str | None = None
    leader_ttl: int = Field(default=5, ge=1)
    name: str = Field(default_factory=socket.gethostname)
    runtime: str = "process"
    network: str = "none"
    cpu: int | None = Field(default=None, ge=0)
    memory: int | None = Field(default=None, ge=0)
    resources: str = ""
    labels: str = ""
    devices: str = ""
    data_dir: Path = Field(default_factory=lambda: Path(tempfile.gettempdir()) / "orchlive")
    master: str | None = None  # the client's default --master; None: http://host:port
    api_token: str | None = None
    protect_system: bool = False
    log_tail_bytes: int = Field(default=64 * 1024, ge=0, le=1024 * 1024)
    # The events window (orchlive.retention): at most a year, and no lease TTL etcd refuses.
    events_max_age: float = Field(default=3600.0, ge=0, le=365 * 86400)
    events_max_count: int = Field(default=100_000, ge=0)
    retention_interval: float = Field(default=300.0, ge=0, le=86400)
    compaction: bool = True
    master_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
