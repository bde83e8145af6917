"""Devices on a live node: what a worker declares, what a node's ledger holds, what a task sees.

The model is the shared core's (``orchsim.scheduling.devices``), so that the live master and
the simulator place on the same devices:

* A node has ``count`` devices of a kind (``gpu``; any kind works the same way), each of
  ``DEVICE_UNIT`` = 1000 milli units (a GPU is 1000 milli-GPU). Its scalar capacity of the
  kind is ``count x 1000``, so policies that look at totals keep working.
* A task's amount of the kind says its need (``DeviceNeed.from_total``): below 1000 a share
  of ONE device (500 = half a GPU), a multiple of 1000 that many whole, fully free devices;
  anything else (1500) is refused at submission (``check_amount``).
* The master's decision names the devices (``{"gpu": [2]}``). The assignment is stored on
  the task and, as a ``Grant`` per task, in the node's ledger, in the same compare-and-swap
  transaction as the scalar amounts, so that no device ever holds more than 1000 milli
  units, whatever masters race (``check_grant``).
* The worker passes the assignment on (``environment``): ``ORCH_DEVICES`` (``gpu=0,1`` for
  whole devices, ``gpu=2:500`` for a 500 milli share of device 2, kinds separated by
  spaces) and ``CUDA_VISIBLE_DEVICES`` (the gpu indices, comma-separated; empty for a task
  without GPUs on a node with GPUs, so that it sees none).

A worker's devices (``declare``): ``--devices gpu=8`` / ``ORCH_DEVICES``; else its ``gpu``
capacity read as whole GPUs (``--resource gpu=4000`` is 4 GPUs, as the simulator reads a
node's ``gpu``); else what ``nvidia-smi`` lists (``detect_devices``; none without it).
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from orchsim.scheduling.devices import GPU_UNIT, DeviceNeed

__all__ = [
    "DEVICE_UNIT",
    "GPU",
    "DeviceConflictError",
    "DeviceUse",
    "Grant",
    "check_amount",
    "check_grant",
    "declare",
    "detect_devices",
    "device_use",
    "environment",
    "grant_for",
    "node_counts",
    "parse_devices",
    "used_shares",
]

DEVICE_UNIT = GPU_UNIT  # milli units per device, for every kind (a GPU is 1000 milli-GPU)
GPU = "gpu"
_SLACK = 1e-6  # shares are sums of the very numbers later subtracted: drift is a few ulps
Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class DeviceConflictError(ValueError):
    """An assignment a ledger cannot hold: a device past its capacity, or the wrong number of devices."""


@dataclass(frozen=True)
class Grant:
    """What one task holds of one device kind on its node.

    Attributes:
        ids: Device indices on the node.
        share: Milli units taken from each of them: below 1000 a fraction of the one
            device ``ids`` names, 1000 for whole devices.
    """

    ids: tuple[int, ...]
    share: float

    def to_json(self) -> dict[str, Any]:
        return {"ids": list(self.ids), "share": _number(self.share)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Grant:
        return cls(tuple(int(i) for i in data["ids"]), float(data["share"]))

    def describe(self, kind: str) -> str:
        """``gpu=2:500`` (a share of one device) or ``gpu=0,1`` (whole devices): the ``ORCH_DEVICES`` item."""
        ids = ",".join(str(i) for i in self.ids)
        return f"{kind}={ids}" if self.share >= DEVICE_UNIT else f"{kind}={ids}:{_number(self.share)}"


def _number(value: float) -> int | float:
    """Whole amounts as integers (500, not 500.0), in JSON and in the environment."""
    return int(value) if float(value).is_integer() else value


def need_of(kind: str, amount: float) -> DeviceNeed:
    """The core's need behind an amount of a device kind; ValueError (one line naming ``kind``) if neither form."""
    try:
        return DeviceNeed.from_total(float(amount), DEVICE_UNIT)
    except ValueError:
        raise ValueError(
            f"resource {kind}: {_number(amount)} is neither a share of one device (below {DEVICE_UNIT:g}) "
            f"nor whole devices (a multiple of {DEVICE_UNIT:g})"
        ) from None


def check_amount(kind: str, amount: float) -> None:
    """Refuse a device amount the core could not place (``1500`` milli-GPU: neither form)."""
    need_of(kind, amount)


def grant_for(kind: str, amount: float, ids: Iterable[int]) -> Grant:
    """The grant of a task asking ``amount`` of ``kind`` and assigned ``ids``.

    Raises:
        DeviceConflictError: the number of devices does not match the need, or one is listed twice.
    """
    need = need_of(kind, amount)
    picked = tuple(int(i) for i in ids)
    if len(picked) != need.count or len(set(picked)) != len(picked):
        raise DeviceConflictError(f"{kind}: {_number(amount)} needs {need.count} device(s), assigned {list(picked)}")
    return Grant(picked, need.share)


def used_shares(grants: Mapping[str, Grant]) -> dict[int, float]:
    """Milli units held on each device by ``grants`` (task id -> grant)."""
    used: dict[int, float] = {}
    for grant in grants.values():
        for i in grant.ids:
            used[i] = used.get(i, 0.0) + grant.share
    return used


def check_grant(kind: str, grants: Mapping[str, Grant], grant: Grant) -> None:
    """Refuse ``grant`` if any of its devices would hold more than ``DEVICE_UNIT`` beside ``grants``.

    The ledger's own rule, checked in the transaction that assigns: the compare-and-swap
    then makes it hold across racing masters (the loser re-reads and finds the device taken).
    """
    used = used_shares(grants)
    for i in grant.ids:
        if i < 0:
            raise DeviceConflictError(f"{kind} device {i} does not exist")
        if used.get(i, 0.0) + grant.share > DEVICE_UNIT + _SLACK:
            raise DeviceConflictError(
                f"{kind} device {i} holds {_number(used.get(i, 0.0))} of {DEVICE_UNIT:g}; "
                f"{_number(grant.share)} more does not fit"
            )


def environment(grants: Mapping[str, Grant], *, node_has_gpus: bool) -> dict[str, str]:
    """``ORCH_DEVICES`` and ``CUDA_VISIBLE_DEVICES`` for a task holding ``grants`` (kind -> grant).

    A task without devices gets no ``ORCH_DEVICES``; on a node with GPUs it gets an empty
    ``CUDA_VISIBLE_DEVICES`` (CUDA then shows it no GPU), elsewhere none.
    """
    env: dict[str, str] = {}
    if grants:
        env["ORCH_DEVICES"] = " ".join(grants[kind].describe(kind) for kind in sorted(grants))
    if GPU in grants:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in grants[GPU].ids)
    elif node_has_gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def parse_devices(text: str | Iterable[str]) -> dict[str, int]:
    """``"gpu=8,fpga=2"`` (or a list of items) -> ``{"gpu": 8, "fpga": 2}``.

    Raises:
        ValueError: one line naming the bad item (not KIND=COUNT, not a whole number >= 0).
    """
    parts = text.split(",") if isinstance(text, str) else text
    devices: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in parts)):
        kind, sep, count = (piece.strip() for piece in item.partition("="))
        if not sep or not kind or not count.isdigit():
            raise ValueError(f"{item!r} is not KIND=COUNT (a whole number of devices, e.g. gpu=8)")
        devices[kind] = int(count)
    return devices


def detect_devices(run: Runner = subprocess.run) -> dict[str, int]:
    """The GPUs ``nvidia-smi`` lists (``{"gpu": n}``); ``{}`` without it or when it fails.

    ``run`` is the seam tests replace (the machine that runs them has no GPU).
    """
    if shutil.which("nvidia-smi") is None and run is subprocess.run:
        return {}
    try:
        result = run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    if result.returncode != 0:
        return {}
    count = sum(1 for line in result.stdout.splitlines() if line.strip().isdigit())
    return {GPU: count} if count else {}


def declare(
    capacity: Mapping[str, int | float],
    devices: Mapping[str, int] | None,
    detect: Callable[[], dict[str, int]] = detect_devices,
) -> tuple[dict[str, int | float], dict[str, int]]:
    """A worker's capacity and devices, each device kind's capacity derived as ``count x 1000``.

    ``devices`` (``--devices``/``ORCH_DEVICES``) are taken as given. ``gpu`` is always a
    device kind, as in the simulator: without ``gpu`` in ``devices``, a ``gpu`` capacity is
    read as whole GPUs (4000 -> 4); with neither, and no ``devices`` at all, ``detect()``.

    Raises:
        ValueError: one line: a capacity contradicting the declared devices, or a ``gpu``
            capacity that is not whole GPUs.
    """
    amounts, declared = dict(capacity), dict(devices or {})
    if GPU not in declared:
        if GPU in amounts:
            gpu = float(amounts[GPU])
            if not (math.isfinite(gpu) and gpu >= 0 and (gpu / DEVICE_UNIT).is_integer()):
                raise ValueError(
                    f"gpu={_number(gpu)}: gpu capacity is whole GPUs of {DEVICE_UNIT:g} milli-GPU "
                    "(--devices gpu=N declares N GPUs)"
                )
            declared[GPU] = int(gpu // DEVICE_UNIT)
        elif devices is None:
            declared |= detect()
    for kind, count in declared.items():
        derived = count * int(DEVICE_UNIT)
        if kind in amounts and amounts[kind] != derived:
            raise ValueError(
                f"{kind}={_number(amounts[kind])} contradicts devices {kind}={count} "
                f"({derived} milli units: {DEVICE_UNIT:g} per device)"
            )
        amounts[kind] = derived
    return amounts, {kind: count for kind, count in declared.items() if count > 0}


class DeviceUse(BaseModel):
    """One device of a node as the API shows it: its capacity, what is used, and by which tasks."""

    index: int
    capacity: int | float = DEVICE_UNIT
    used: int | float = 0
    free: int | float = DEVICE_UNIT
    tasks: dict[str, int | float] = {}


def device_use(counts: Mapping[str, int], grants: Mapping[str, Mapping[str, Grant]]) -> dict[str, list[DeviceUse]]:
    """Per kind, every device of a node (``counts``) with the shares its ledger's ``grants`` hold."""
    view: dict[str, list[DeviceUse]] = {}
    for kind in sorted(set(counts) | set(grants)):
        held = grants.get(kind, {})
        count = max([counts.get(kind, 0), *(i + 1 for g in held.values() for i in g.ids)])
        rows = [DeviceUse(index=i, capacity=_number(DEVICE_UNIT), tasks={}) for i in range(count)]
        for task_id, grant in held.items():
            for i in grant.ids:
                rows[i].tasks[task_id] = _number(grant.share)
        for row in rows:
            used = sum(row.tasks.values())
            row.used, row.free = _number(used), _number(max(DEVICE_UNIT - used, 0.0))
        view[kind] = rows
    return view


def node_counts(devices: Mapping[str, int], capacity: Mapping[str, int | float]) -> dict[str, int]:
    """A node record's devices per kind; a record of before devices has its ``gpu`` capacity read as whole GPUs."""
    counts = {kind: int(count) for kind, count in devices.items() if count > 0}
    gpu = float(capacity.get(GPU, 0))
    if GPU not in counts and gpu >= DEVICE_UNIT:
        counts[GPU] = int(gpu // DEVICE_UNIT)
    return counts
