"""Statistics over replications: paired differences worked by hand, natural bounds, display clipping."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from orchsim.intervals import (
    ReplicationError,
    display_bounds,
    metric_bounds,
    paired_differences,
    summarize,
    t_interval,
)
from orchsim.sweep import SweepError

T2 = 4.302652729911275  # t(0.975, 2 dof)
T1 = 12.706204736174696  # t(0.975, 1 dof)
INF = math.inf
NAN = math.nan


def hand_frame() -> pd.DataFrame:
    # Cell x=1: baseline a and policy b on seeds 1-3; c on seeds 2 and 4 (seed 4 has no baseline).
    # Cell x=2: a and b on seed 1 only.
    return pd.DataFrame(
        [
            (1, "a", 1, 10.0, 1.0),
            (1, "a", 2, 20.0, NAN),
            (1, "a", 3, 30.0, 3.0),
            (1, "b", 1, 12.0, 2.0),
            (1, "b", 2, 24.0, 5.0),
            (1, "b", 3, 33.0, 1.0),
            (1, "c", 2, 19.0, 4.0),
            (1, "c", 4, 50.0, 4.0),
            (2, "a", 1, 5.0, 0.0),
            (2, "b", 1, 5.0, 1.0),
        ],
        columns=["x", "policy", "seed", "m", "w"],
    )


def test_paired_differences_worked_by_hand() -> None:
    paired = paired_differences(hand_frame(), "a", metrics=["m", "w"])
    assert list(paired.columns) == ["x", "policy", "baseline", "pairs"] + [
        f"{m}_{s}" for m in ("m", "w") for s in ("diff", "diff_ci_low", "diff_ci_high", "excludes_0")
    ]
    assert list(zip(paired.x, paired.policy, paired.pairs, strict=True)) == [(1, "b", 3), (1, "c", 1), (2, "b", 1)]
    assert (paired.baseline == "a").all()
    b, c, b2 = (paired.iloc[i] for i in range(3))

    # b - a on m, per seed: 12-10 = 2, 24-20 = 4, 33-30 = 3 -> mean 3, s = 1,
    # half = t(0.975, 2) * 1 / sqrt(3) = 2.4841 -> [0.5159, 5.4841]: excludes 0.
    half = T2 / math.sqrt(3)
    assert (b.m_diff, b.m_diff_ci_low, b.m_diff_ci_high) == pytest.approx((3.0, 3.0 - half, 3.0 + half))
    assert b.m_excludes_0
    # Unpaired, the same numbers say nothing: a = 20 ± 24.8, b = 23 ± 26.2 overlap widely.
    table = summarize(hand_frame()[lambda f: f.x == 1], metrics=["m"]).set_index("policy")
    assert table.loc["a", "m_ci_high"] > table.loc["b", "m_ci_low"]
    assert table.loc["a", "m_ci_low"] < 0 < table.loc["a", "m_ci_high"]  # raw: the frame is not clipped

    # b - a on w: 2-1 = 1, 5-NaN (seed 2 left out), 1-3 = -2 -> [1, -2]: mean -0.5,
    # s = 1.5 * sqrt(2), half = t(0.975, 1) * s / sqrt(2) = 1.5 * 12.706 = 19.059.
    assert (b.w_diff, b.w_diff_ci_low, b.w_diff_ci_high) == pytest.approx((-0.5, -0.5 - 1.5 * T1, -0.5 + 1.5 * T1))
    assert not b.w_excludes_0

    # c pairs with a on seed 2 only: 19-20 = -1, no interval; w: 4-NaN -> nothing at all.
    assert c.m_diff == -1.0 and math.isnan(c.m_diff_ci_low) and math.isnan(c.m_diff_ci_high)
    assert not c.m_excludes_0
    assert math.isnan(c.w_diff) and not c.w_excludes_0

    # x=2: one pair, 5-5 = 0 and 1-0 = 1, no interval.
    assert (b2.m_diff, b2.w_diff) == (0.0, 1.0) and math.isnan(b2.m_diff_ci_low)


def test_paired_differences_without_a_parameter_and_with_another_level() -> None:
    raw = hand_frame()[lambda f: f.x == 1].drop(columns="x")
    paired = paired_differences(raw, "a", metrics=["m"], confidence=0.9)
    assert list(paired.policy) == ["b", "c"]
    row = paired.iloc[0]
    half = 2.919985580355516 / math.sqrt(3)  # t(0.95, 2)
    assert (row.m_diff_ci_low, row.m_diff_ci_high) == pytest.approx((3.0 - half, 3.0 + half))
    # The sign flips with the baseline; the interval mirrors.
    mirrored = paired_differences(raw, "b", metrics=["m"], confidence=0.9).iloc[0]
    assert mirrored.policy == "a"
    assert (mirrored.m_diff, mirrored.m_diff_ci_low) == pytest.approx((-3.0, -3.0 - half))


def test_zero_variance_differences() -> None:
    # Every seed differs by exactly -2: a zero-width interval that excludes 0; equal runs do not.
    raw = pd.DataFrame(
        {"policy": ["a", "a", "b", "b", "c", "c"], "seed": [1, 2] * 3, "m": [5.0, 9.0, 3.0, 7.0, 5.0, 9.0]}
    )
    paired = paired_differences(raw, "a", metrics=["m"]).set_index("policy")
    assert paired.loc["b", ["m_diff", "m_diff_ci_low", "m_diff_ci_high"]].tolist() == [-2.0, -2.0, -2.0]
    assert paired.loc["b", "m_excludes_0"] and not paired.loc["c", "m_excludes_0"]


@pytest.mark.parametrize(
    ("frame", "baseline", "kwargs", "match"),
    [
        (hand_frame(), "z", {}, r"baseline: 'z' is not among the policies run \(a, b, c\)"),
        (hand_frame()[lambda f: f.policy == "a"], "a", {}, "the only policy"),
        (pd.concat([hand_frame(), hand_frame().iloc[:1]]), "a", {}, "appears twice"),
        (hand_frame(), "a", {"metrics": ["nope"]}, "metric nope"),
        (hand_frame(), "a", {"confidence": 1.0}, "confidence"),
        (hand_frame().drop(columns="seed"), "a", {}, "needs 'policy' and 'seed'"),
    ],
)
def test_paired_mistakes(frame: pd.DataFrame, baseline: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ReplicationError, match=match):
        paired_differences(frame, baseline, **kwargs)


def test_sweep_error_is_the_replication_error() -> None:
    assert SweepError is ReplicationError and issubclass(SweepError, ValueError)


def test_t_interval_edge_cases() -> None:
    assert all(math.isnan(v) for v in t_interval(np.array([]), 0.95))
    mean, low, high = t_interval(np.array([4.0]), 0.95)
    assert mean == 4.0 and math.isnan(low) and math.isnan(high)
    assert t_interval(np.array([1.0, 2.0, 3.0]), 0.95) == pytest.approx((2.0, 2.0 - T2 / math.sqrt(3), 2 + T2 / 3**0.5))


@pytest.mark.parametrize(
    ("metric", "bounds"),
    [
        ("mean_wait", (0, INF)),
        ("p95_wait", (0, INF)),
        ("mean_wait_censored", (0, INF)),
        ("tasks_never_started", (0, INF)),
        ("tasks_pending", (0, INF)),
        ("unschedulable", (0, INF)),
        ("makespan", (0, INF)),
        ("throughput", (0, INF)),
        ("peak_nodes_used", (0, INF)),
        ("wall_seconds", (0, INF)),
        ("mean_util_cpu", (0, 1)),
        ("final_util_gpu", (0, 1)),
        ("mean_stranded_memory", (0, 1)),
        ("fragmentation", (0, 1)),
        ("prob_wait", (0, 1)),
        ("my_own_score", (-INF, INF)),  # unknown: never clipped
    ],
)
def test_metric_bounds(metric: str, bounds: tuple[float, float]) -> None:
    assert metric_bounds(metric) == bounds


@pytest.mark.parametrize(
    ("metric", "low", "high", "expected"),
    [
        ("mean_wait", -1.5, 4.4, (0.0, 4.4, True)),  # a wait cannot be negative
        ("mean_wait", 1.0, 2.0, (1.0, 2.0, False)),
        ("mean_util_cpu", 0.7, 1.3, (0.7, 1.0, True)),  # nor a share above 1
        ("fragmentation", -0.1, 1.2, (0.0, 1.0, True)),
        ("my_own_score", -3.0, 2.0, (-3.0, 2.0, False)),
    ],
)
def test_display_bounds_clip_at_the_natural_bound(
    metric: str, low: float, high: float, expected: tuple[float, float, bool]
) -> None:
    assert display_bounds(metric, low, high) == expected


def test_display_bounds_leave_nan_alone() -> None:
    low, high, clipped = display_bounds("mean_wait", NAN, NAN)
    assert math.isnan(low) and math.isnan(high) and not clipped
