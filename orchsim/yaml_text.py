"""YAML as scenario files and flags are read: a YAML 1.1 boolean word used as a key stays a string.

PyYAML follows YAML 1.1, where ``on``, ``off``, ``yes`` and ``no`` are booleans wherever they
stand: a DAG entry's documented ``on: completion`` arrived as ``{True: "completion"}`` and was
refused as "Keys should be strings". Keys are names, so a key is read as the text it is unless
it is ``true`` or ``false``; values keep YAML 1.1's reading (``quantize: no`` is still false,
which a policy parameter, passed through untyped, relies on).
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["load_yaml"]

_BOOL, _STR = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:str"


class _KeysAsTextLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose mapping keys ``on``, ``off``, ``yes``, ``no`` (any case) stay strings."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag == _BOOL and key.value.lower() not in ("true", "false"):
                key.tag = _STR
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load``, but for the keys above (raises ``yaml.YAMLError`` as it does)."""
    return yaml.load(text, Loader=_KeysAsTextLoader)  # a SafeLoader subclass: safe
