"""GPUs as devices in the simulator: a share of one GPU fits inside ONE GPU, whole GPUs are whole.

Summed into one number per node, two 0.6-GPU tasks fit a 2-GPU node beside a third (1.8 of
2.0); on real GPUs the third does not fit, because no GPU has 0.6 left. The engine now
places on devices, names them in ``tasks.csv``, and refuses capacities and requests that
devices cannot represent, naming the field.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchsim import run
from orchsim.scenario import ScenarioError, parse_scenario


def scenario(gpu_request: float, devices: list[str] | None = None, capacity_gpu: float = 2000) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": 1,
        "name": "devices",
        "policies": ["bin_packing", "spread"],
        "cluster": {"nodes": [{"count": 1, "capacity": {"cpu": 8000, "memory": 8192, "gpu": capacity_gpu}}]},
        "workload": [
            {"kind": "burst", "at": 0, "count": 3, "resources": {"cpu": 100, "gpu": gpu_request}, "duration": 10}
        ],
    }
    if devices is not None:
        data["cluster"]["devices"] = devices
    return data


def test_a_share_of_a_gpu_never_straddles_two() -> None:
    tasks = run(parse_scenario(scenario(600))).tasks
    for _, frame in tasks.groupby("policy"):
        first = frame[frame.start_time == 0].sort_values("task_id")
        assert list(first.devices) == ["0", "1"]  # one per GPU; the third waits for one
        assert frame.start_time.max() == 10.0


def test_devices_can_be_turned_off_for_a_divisible_gpu() -> None:
    tasks = run(parse_scenario(scenario(600, devices=[]))).tasks
    assert (tasks.start_time == 0).sum() == 2 * 3  # 1,800 of 2,000: all three at once, per policy
    assert (tasks.devices == "").all()


def test_whole_gpus_take_fully_free_devices() -> None:
    tasks = run(parse_scenario(scenario(1000, capacity_gpu=4000))).tasks
    first = tasks[tasks.policy == "spread"].sort_values("task_id")
    assert list(first.devices) == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (scenario(1500), r"workload\.0\.resources\.gpu: 1500 is neither a share of one device"),
        (scenario(500, capacity_gpu=2500), r"has gpu 2500, not whole devices of 1000"),
    ],
)
def test_what_devices_cannot_represent_is_refused_naming_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        run(parse_scenario(data))
