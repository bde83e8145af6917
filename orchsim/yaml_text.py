"""YAML as scenario files and flags are read: YAML 1.2's booleans, so that ``on:`` stays a key.

PyYAML follows YAML 1.1, where ``on``, ``off``, ``yes``, ``no``, ``y`` and ``n`` are booleans:
a DAG entry's documented ``on: completion`` arrived as ``{True: "completion"}`` and was refused
as "Keys should be strings". YAML 1.2 (what most tools now read) keeps only ``true`` and
``false``; the schema's own checks still read ``preemption: yes`` as true.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["load_yaml"]

_BOOL = "tag:yaml.org,2002:bool"


class _Yaml12Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2's booleans only (``true``/``false`` in any of three cases)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with YAML 1.2's booleans (raises ``yaml.YAMLError`` as it does)."""
    return yaml.load(text, Loader=_Yaml12Loader)
