"""Edited copies of a validated scenario: command-line overrides and dotted-path changes.

A ``Scenario`` is immutable once validated, and ``model_copy(update=...)`` would skip the
schema; every edit here therefore goes back through ``parse_scenario``, so a bad value gets
the same message, naming the file and the field, that it would get in the YAML file.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchsim import scenario as sc
from orchsim.scheduling import POLICIES

__all__ = ["with_overrides"]


def with_overrides(
    scenario: sc.Scenario,
    *,
    policies: Sequence[str] | None = None,
    seed: int | None = None,
    warmup: float | None = None,
    until: float | None = None,
) -> sc.Scenario:
    """``scenario`` with the command-line style overrides applied, validated like the file.

    ``model_copy(update=...)`` skips validation, so every override goes back through the
    schema: a negative seed or a window that ends before it starts is refused with the
    same message a YAML file would get, naming the field.
    """
    updates: dict[str, object] = {}
    if policies:
        for name in policies:
            POLICIES.spec(name)  # UnknownPolicyError, as the CLIs expect, before any schema message
        updates["policies"] = list(policies)
    if seed is not None:
        updates["seed"] = seed
    metrics = {k: v for k, v in (("warmup", warmup), ("until", until)) if v is not None}
    if metrics:
        updates["metrics"] = scenario.metrics.model_dump() | metrics
    if not updates:
        return scenario
    data = scenario.model_dump(mode="json") | updates
    return sc.parse_scenario(data, source=scenario.source, base_dir=scenario.base_dir)
