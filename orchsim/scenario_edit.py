"""Edited copies of a validated scenario: command-line overrides and dotted-path changes.

A ``Scenario`` is immutable once validated, and ``model_copy(update=...)`` would skip the
schema; every edit here therefore goes back through ``parse_scenario``, so a bad value gets
the same message, naming the file and the field, that it would get in the YAML file.

A dotted path (``workload.0.rate``, ``cluster.nodes.0.count``) names one field of the
scenario data (``Scenario.model_dump(mode="json")``): mapping keys and list indices. A path
that misses names the step that failed and what was there instead, so a typo in a sweep's
``--param`` reads like a schema error, not a ``KeyError``.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Sequence
from typing import Any

from orchsim import scenario as sc
from orchsim.scheduling import POLICIES

__all__ = ["check_numeric_path", "is_number", "set_number", "with_overrides"]

Number = int | float


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


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _step(node: Any, part: str, path: str, parent: str, source: str) -> str | int:
    """The key ``part`` reads as inside ``node``; a missing one names the path and what is there."""
    if isinstance(node, list):
        if not part.isdigit() or int(part) >= len(node):
            raise sc.ScenarioError(
                f"{source}: parameter {path}: {parent} is a list of {len(node)}, "
                f"so {part!r} must be an index from 0 to {len(node) - 1}"
            )
        return int(part)
    if isinstance(node, dict):
        if part not in node:
            fields = ", ".join(map(str, node)) or "nothing"
            raise sc.ScenarioError(f"{source}: parameter {path}: {parent} has no field {part!r} (it has: {fields})")
        return part
    raise sc.ScenarioError(f"{source}: parameter {path}: {parent} is {_kind(node)}, it has no field {part!r}")


def _walk(data: dict[str, Any], path: str, source: str) -> tuple[Any, str | int]:
    """The container holding ``path``'s leaf, and the leaf's key; a missing step names the path."""
    parts = path.split(".")
    if not path or any(not p for p in parts):
        raise sc.ScenarioError(f"{source}: parameter {path!r}: not a dotted path such as workload.0.rate")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        node = node[_step(node, part, path, ".".join(parts[:i]) or "the scenario", source)]
    return node, _step(node, parts[-1], path, ".".join(parts[:-1]) or "the scenario", source)


def is_number(value: Any) -> bool:
    """A real number, and not a bool (which YAML and Python would otherwise let through)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_numeric_path(data: dict[str, Any], path: str, source: str) -> None:
    """Refuse a path whose current value a number cannot sensibly replace.

    Args:
        data: Scenario data (``model_dump(mode="json")``); not mutated.
        path: A dotted path such as ``workload.0.rate``.
        source: The scenario's file, named in the message.

    Raises:
        ScenarioError: the path misses, is the seed, or holds something other than a
            number, null or a constant distribution (a distribution names its numbers).
    """
    if path == "seed":
        raise sc.ScenarioError(f"{source}: parameter seed: the seed is set per replication (seeds=), not swept")
    container, key = _walk(data, path, source)
    current = container[key]
    if current is None or is_number(current):
        return
    if isinstance(current, dict) and current.get("dist") == "constant":
        return  # a bare number is a constant distribution: the shorthand YAML allows
    if isinstance(current, dict) and "dist" in current:
        numeric = [f"{path}.{k}" for k, v in current.items() if is_number(v)]
        hint = f"; sweep one of its numbers: {', '.join(numeric)}" if numeric else ""
        raise sc.ScenarioError(f"{source}: parameter {path}: is a distribution ({current['dist']}), not a number{hint}")
    raise sc.ScenarioError(f"{source}: parameter {path}: not a numeric field (it is {_kind(current)})")


def set_number(scenario: sc.Scenario, data: dict[str, Any], path: str, value: Number) -> tuple[dict[str, Any], Number]:
    """Scenario data with ``path`` set to ``value``, validated; and the value as validated.

    Args:
        scenario: The scenario ``data`` came from: its file names the errors, its folder
            resolves relative trace paths.
        data: Its data (``model_dump(mode="json")``); not mutated, a copy is edited.
        path: A dotted path checked by ``check_numeric_path``.
        value: The new number.

    Returns:
        The validated data of the edited scenario, and the value the schema stored (an
        integer field keeps ``2`` an integer; a constant distribution's ``value``).

    Raises:
        ScenarioError: the schema refuses the value; the message ends with the path and value.
    """
    changed = copy.deepcopy(data)
    container, key = _walk(changed, path, scenario.source)
    container[key] = value
    try:
        parsed = sc.parse_scenario(changed, source=scenario.source, base_dir=scenario.base_dir)
    except sc.ScenarioError as err:
        raise sc.ScenarioError(f"{err} (parameter {path} = {value!r})") from None
    validated = parsed.model_dump(mode="json")
    container, key = _walk(validated, path, scenario.source)
    stored = container[key]
    if isinstance(stored, dict):  # a constant distribution
        stored = stored["value"]
    return validated, stored
