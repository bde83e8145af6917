"""Policy parameters given on a command line or in the environment, checked before use.

A scenario file carries ``policy_params`` as YAML; a long-running process (the live
master) takes them as flags, so the same configured policy runs in both:

* ``--policy-param weights.cpu=0.5`` (repeatable): a dotted path and a YAML scalar
  (``0.5``, ``true``, ``[1, 2]``, ``{cpu: 1}``);
* ``--policy-params '{"weights": {"cpu": 0.5}}'``: a JSON or YAML mapping, or
  ``@path/to/params.yaml``;
* ``ORCH_POLICY_PARAMS``: the same text, read by ``orchlive.config``.

They merge in that order of strength (single assignments win). The result is checked
against the policy's declared parameters, then tried once on a one-node cluster, so a
misspelt name or a value of the wrong type is refused at start-up with one line, not
found by the first task hours later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from orchsim.yaml_text import load_yaml

__all__ = ["PolicyParamError", "check_policy_params", "merge_params", "parse_assignment", "parse_params_text"]


class PolicyParamError(ValueError):
    """Parameters that cannot be used; the message says which and why, on one line."""


def parse_assignment(text: str) -> dict[str, Any]:
    """``weights.cpu=0.5`` -> ``{"weights": {"cpu": 0.5}}`` (the value read as YAML)."""
    path, sep, raw = text.partition("=")
    keys = path.strip().split(".")
    if not sep or not all(k.strip() for k in keys):
        raise PolicyParamError(f"--policy-param {text!r}: expected name=value, e.g. weights.cpu=0.5")
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise PolicyParamError(
            f"--policy-param {text!r}: value is not valid YAML: {getattr(err, 'problem', err)}"
        ) from None
    for key in reversed(keys):
        value = {key.strip(): value}
    return value


def parse_params_text(text: str, *, what: str = "--policy-params") -> dict[str, Any]:
    """A JSON or YAML mapping, or ``@file`` holding one."""
    source = what
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            text = path.read_text()
        except OSError as err:
            raise PolicyParamError(f"{what}: cannot read {path}: {err.strerror}") from None
        source = f"{what} {path}"
    try:
        data = load_yaml(text) if text.strip() else {}
    except yaml.YAMLError as err:
        raise PolicyParamError(f"{source}: not valid JSON or YAML: {getattr(err, 'problem', err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PolicyParamError(f"{source}: expected a mapping of parameter names to values, got {type(data).__name__}")
    return data


def merge_params(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings; later layers win, nested mappings merge key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key] = merge_params(merged[key], value)
            else:
                merged[key] = dict(value) if isinstance(value, Mapping) else value
    return merged


def check_policy_params(
    policy: str, params: Mapping[str, Any], *, resources: Iterable[str] = ("cpu", "memory", "gpu")
) -> None:
    """Refuse parameters ``policy`` does not take, or that make it fail on a tiny cluster.

    Raises:
        UnknownPolicyError: ``policy`` is not registered.
        PolicyParamError: an unknown parameter name, or the scorer raised with these values.
    """
    import numpy as np

    from orchsim.scheduling import POLICIES, NodeMatrix, select

    spec = POLICIES.spec(policy)
    problem = spec.unknown_params(params)
    if problem:
        raise PolicyParamError(f"policy {policy!r} has {problem}")
    # Resources a mapping parameter names (weights={"disk": 1}) get a row too: a live cluster
    # may offer any resource, and the check must not refuse a weight on one it will have.
    named = [k for value in params.values() if isinstance(value, Mapping) for k in value if isinstance(k, str)]
    names = list(dict.fromkeys([*resources, *named]))
    nodes = NodeMatrix.from_capacities({name: [1000.0, 2000.0] for name in names})
    try:
        select(nodes, dict.fromkeys(names, 1.0), policy, rng=np.random.default_rng(0), **dict(params))
    except Exception as err:  # the scorer's own complaint, whatever its type
        raise PolicyParamError(f"policy {policy!r} with {dict(params)}: {type(err).__name__}: {err}") from None
