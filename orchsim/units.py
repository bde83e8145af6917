"""Resource amounts as numbers or Kubernetes quantities, in the project's units.

A number is in the resource's own unit (cpu in millicores, memory in MiB, gpu in
milli-GPU, any other resource in its user's unit). A Kubernetes quantity is converted:
``500m`` cpu is 500 millicores, ``256Mi`` memory 256 MiB, ``1G`` memory 953.67 MiB,
``500m`` gpu half a GPU. The scenario schema (``orchsim.schema_base``) and the live
command lines (``orchlive submit --memory 1Gi``, a worker's ``--cpu``) share these rules,
so an amount means the same wherever it is typed. Standard library only: the live
cluster imports it without the simulator's schema.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Rejected", "resource_amount"]

# --------------------------------------------------------------------- resource units
# Kubernetes' suffixes: binary (Ki = 1024) and decimal (k = 1000) multiples of a byte, and m (1/1000).
_BYTES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_BYTES |= {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_QUANTITY = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*")
# Resources counted in thousandths of a unit: a number is milli-units, so "500m" is 500.
_MILLI = {"cpu": ("millicores", "a core"), "gpu": ("milli-GPU", "a GPU")}
_EXAMPLES = "such as 500m (cpu), 256Mi or 1Gi (memory)"


@dataclass(frozen=True)
class Rejected:
    """A resource value that is no amount, kept until the caller names it (a schema field, a flag)."""

    message: str


def resource_amount(resource: str, value: Any) -> Any:
    """``value`` of ``resource`` in the project's unit, or ``Rejected`` saying what is wrong with it.

    Numbers pass unchanged (they are in the resource's unit already), except a cpu or gpu
    amount between 0 and 1, which would be less than a thousandth of a core or GPU: a
    Kubernetes habit (``cpu: 0.5`` for half a core) that here means 0.5 millicores.
    Values that are neither numbers nor strings pass unchanged, for the field to reject.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value
    if isinstance(value, str):
        return _from_text(resource, value)
    if resource in _MILLI and 0 < value < 1:
        unit, whole = _MILLI[resource]
        return Rejected(
            f"{value:g} would be {value:g} {unit} (numbers are {unit}); "
            f"write {value * 1000:g} or {value * 1000:g}m for {value:g} of {whole}"
        )
    return value


def _from_text(resource: str, text: str) -> Any:
    """A string: a plain number (the resource's unit) or a Kubernetes quantity, converted."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        return Rejected(f"{text!r} is neither a number nor a Kubernetes quantity {_EXAMPLES}")
    number, suffix = float(match[1]), match[2]
    if not math.isfinite(number):
        return Rejected(f"{text!r} is not a finite amount")
    if not suffix:
        return resource_amount(resource, number)
    if suffix not in _BYTES and suffix != "m":
        if resource in _MILLI:  # no byte sizes here: say what this resource takes
            unit = _MILLI[resource][0]
            return Rejected(f"{text!r} has an unknown unit {suffix!r}: {resource} takes {unit} (500 or 500m)")
        guess = f" ({number:g}{suffix[0].upper()}i?)" if suffix[0].upper() in "KMGTPE" else ""
        return Rejected(f"{text!r} has an unknown unit {suffix!r}{guess}: use m, Ki, Mi, Gi, Ti (or k, M, G, T)")
    if resource == "memory":
        if suffix == "m":
            return Rejected(f"{text!r} is {number:g} thousandths of a byte (m is milli): write {number:g}Mi for MiB")
        return number * _BYTES[suffix] / 2**20
    if resource in _MILLI:
        if suffix == "m":
            return number
        unit = _MILLI[resource][0]
        return Rejected(f"{text!r}: {suffix} is a byte size, for memory; {resource} takes {unit} (500 or 500m)")
    return Rejected(f"{text!r}: units are known for cpu, memory and gpu only; give {resource} as a plain number")
