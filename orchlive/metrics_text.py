"""The Prometheus text exposition format (version 0.0.4), written by the master and the workers.

A handful of gauges and one histogram do not call for a client library: each family is its
``# HELP`` and ``# TYPE`` lines and one sample per label set, label values escaped as the
format requires (a node id is whatever its worker was named, quotes included).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

__all__ = ["CONTENT_TYPE", "Sample", "family", "label", "number", "sample"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Sample = tuple[Mapping[str, str], float]  # labels, value


def label(value: str) -> str:
    """A label value escaped: backslash, double quote and line feed, as the format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(value: float) -> str:
    """A sample value: integers without a fraction, ``+Inf``/``-Inf``/``NaN`` spelt as Prometheus reads them."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def sample(name: str, labels: Mapping[str, str], value: float) -> str:
    """One sample line, ``name{key="value",...} number`` (no braces without labels)."""
    inner = ",".join(f'{key}="{label(str(text))}"' for key, text in labels.items())
    return f"{name}{{{inner}}} {number(value)}" if inner else f"{name} {number(value)}"


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    """One metric family: its ``# HELP`` and ``# TYPE`` lines, then one line per sample."""
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *(sample(name, *each) for each in samples)]
