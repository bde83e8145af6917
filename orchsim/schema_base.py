"""The schema's common ground: the strict base model, the number types, resource units, the error type.

Resource amounts: a number is in the resource's own unit, as it always was (cpu in
millicores, memory in MiB, gpu in milli-GPU, any other resource in its user's unit). A
Kubernetes quantity is accepted too and converted: ``cpu: 500m`` is 500 millicores,
``memory: 256Mi`` 256 MiB, ``memory: 1G`` 953.67 MiB, ``gpu: 500m`` half a GPU.
Anything else fails with one line naming the field (``memory: '256MB' ...``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "STRICT",
    "Amount",
    "Capacity",
    "NonNegativeFloat",
    "PositiveAmount",
    "PositiveFloat",
    "ScenarioError",
    "StrictModel",
    "amount_of",
    "checked_amount",
    "resource_amount",
    "resource_amounts",
]

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class ScenarioError(ValueError):
    """A scenario that cannot be run; the message names the file and the field path."""


# Unknown fields are errors and values are frozen: a typo never passes silently. (Each
# schema module subclasses BaseModel itself with this config, so that linters see a
# pydantic model and its mutable-looking defaults for what they are.)
STRICT = ConfigDict(extra="forbid", frozen=True)


class StrictModel(BaseModel):
    """The strict base model, for code outside the schema modules."""

    model_config = STRICT


# --------------------------------------------------------------------- resource units
# Kubernetes' suffixes: binary (Ki = 1024) and decimal (k = 1000) multiples of a byte, and m (1/1000).
_BYTES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_BYTES |= {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_QUANTITY = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*")
# Resources counted in thousandths of a unit: a number is milli-units, so "500m" is 500.
_MILLI = {"cpu": ("millicores", "a core"), "gpu": ("milli-GPU", "a GPU")}
_EXAMPLES = "such as 500m (cpu), 256Mi or 1Gi (memory)"


@dataclass(frozen=True)
class _Rejected:
    """A resource value that is no amount, kept until the field's own validator names it."""

    message: str


def resource_amount(resource: str, value: Any) -> Any:
    """``value`` of ``resource`` in the project's unit, or ``_Rejected`` saying what is wrong with it.

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
        return _Rejected(
            f"{value:g} would be {value:g} {unit} (numbers are {unit}); "
            f"write {value * 1000:g} or {value * 1000:g}m for {value:g} of {whole}"
        )
    return value


def _from_text(resource: str, text: str) -> Any:
    """A string: a plain number (the resource's unit) or a Kubernetes quantity, converted."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        return _Rejected(f"{text!r} is neither a number nor a Kubernetes quantity {_EXAMPLES}")
    number, suffix = float(match[1]), match[2]
    if not math.isfinite(number):
        return _Rejected(f"{text!r} is not a finite amount")
    if not suffix:
        return resource_amount(resource, number)
    if suffix not in _BYTES and suffix != "m":
        guess = f" ({number:g}{suffix[0].upper()}i?)" if suffix[0].upper() in "KMGTPE" else ""
        return _Rejected(f"{text!r} has an unknown unit {suffix!r}{guess}: use m, Ki, Mi, Gi, Ti (or k, M, G, T)")
    if resource == "memory":
        if suffix == "m":
            return _Rejected(f"{text!r} is {number:g} thousandths of a byte (m is milli): write {number:g}Mi for MiB")
        return number * _BYTES[suffix] / 2**20
    if resource in _MILLI:
        if suffix == "m":
            return number
        unit = _MILLI[resource][0]
        return _Rejected(f"{text!r}: {suffix} is a byte size, for memory; {resource} takes {unit} (500 or 500m)")
    return _Rejected(f"{text!r}: units are known for cpu, memory and gpu only; give {resource} as a plain number")


def resource_amounts(value: Any) -> Any:
    """A mapping of resource name to amount with each amount converted (``resource_amount``)."""
    if not isinstance(value, dict):
        return value
    return {name: resource_amount(name, amount) if isinstance(name, str) else amount for name, amount in value.items()}


def checked_amount(value: Any) -> Any:
    """Report a rejected resource value at its own field; anything else goes on to the number check."""
    if isinstance(value, _Rejected):
        raise ValueError(value.message)  # pydantic reports a ValueError at the field
    return value


def amount_of(resource: str) -> Callable[[Any], Any]:
    """A before-validator for a field that holds an amount of ``resource`` (``cpu_per_processor``)."""
    return lambda value: checked_amount(resource_amount(resource, value))


# A resource amount (>= 0, or > 0) in the field of a model that converts its units first:
# the distributions of a workload's requests, the values of a capacity.
Amount = Annotated[float, BeforeValidator(checked_amount), Field(ge=0)]
PositiveAmount = Annotated[float, BeforeValidator(checked_amount), Field(gt=0)]
# A node's capacity: resource name -> amount, Kubernetes quantities accepted.
Capacity = Annotated[dict[str, Amount], BeforeValidator(resource_amounts), Field(min_length=1)]
