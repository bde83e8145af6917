"""The schema's common ground: the strict base model, the number types, resource units, the error type.

Resource amounts: a number is in the resource's own unit, as it always was (cpu in
millicores, memory in MiB, gpu in milli-GPU, any other resource in its user's unit). A
Kubernetes quantity is accepted too and converted: ``cpu: 500m`` is 500 millicores,
``memory: 256Mi`` 256 MiB, ``memory: 1G`` 953.67 MiB, ``gpu: 500m`` half a GPU.
Anything else fails with one line naming the field (``memory: '256MB' ...``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from orchsim.units import Rejected, resource_amount

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


def resource_amounts(value: Any) -> Any:
    """A mapping of resource name to amount with each amount converted (``resource_amount``)."""
    if not isinstance(value, dict):
        return value
    return {name: resource_amount(name, amount) if isinstance(name, str) else amount for name, amount in value.items()}


def checked_amount(value: Any) -> Any:
    """Report a rejected resource value at its own field; anything else goes on to the number check."""
    if isinstance(value, Rejected):
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
