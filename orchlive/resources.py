"""Resources: a mapping of resource name to amount, the one shape of every request and capacity.

Units: cpu in millicores, memory in MiB, gpu in milli-GPU, any other resource in its
user's unit. Stored in etcd and served by the API as one flat JSON object, so records
written with the fixed ``{cpu, memory, gpu}`` fields of earlier versions load unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

__all__ = ["RESOURCE_NAME_PATTERN", "STANDARD_RESOURCES", "NonNegative", "Resources", "resource_order"]

NonNegative = Annotated[StrictInt, Field(ge=0)]
# Resource names beyond cpu and memory: lower case, so that "GPU" and "gpu" cannot be two resources.
RESOURCE_NAME_PATTERN = r"^[a-z][a-z0-9_.-]*$"
ResourceName = Annotated[str, StringConstraints(pattern=RESOURCE_NAME_PATTERN, max_length=63)]
# An amount of any other resource: a JSON number (never a string or a bool), finite, >= 0.
# Integers stay integers, so {"gpu": 4000} is served back as 4000, not 4000.0.
Amount = Annotated[
    StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)],
    Field(ge=0),
    WithJsonSchema({"type": "number", "minimum": 0}),
]
# The resources with a unit fixed by the project, first in every matrix (in the simulator's
# order, so that live and simulated matrices list their rows alike).
STANDARD_RESOURCES = ("cpu", "memory", "gpu")


def resource_order(names: Iterable[str]) -> tuple[str, ...]:
    """Resource names in matrix row order: cpu, memory, gpu (those present), then the rest sorted."""
    unique = set(names)
    return tuple(r for r in STANDARD_RESOURCES if r in unique) + tuple(sorted(unique - set(STANDARD_RESOURCES)))


class Resources(BaseModel, Mapping[str, int | float]):
    """Requested or offered resources: a mapping of resource name to amount.

    ``cpu`` (millicores) and ``memory`` (MiB) are always present: whole numbers >= 0,
    0 by default. Any other name matching ``RESOURCE_NAME_PATTERN`` may be added with a
    finite amount >= 0: ``gpu`` in milli-GPU, the others in their user's unit. The JSON
    is one flat object, ``{"cpu": 500, "memory": 256, "gpu": 1000}``, so the fixed
    ``{cpu, memory, gpu}`` records of earlier versions load unchanged.

    Iterating yields the names (cpu, memory, then the others as given); ``r["gpu"]``
    raises KeyError for a resource not named, ``r.get("gpu", 0)`` does not.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra={"propertyNames": {"pattern": RESOURCE_NAME_PATTERN}})

    cpu: NonNegative = 0
    memory: NonNegative = 0
    __pydantic_extra__: dict[ResourceName, Amount] = Field(init=False)

    @model_validator(mode="after")
    def _check_others(self) -> Resources:
        # The annotation above already says this, but pydantic checks the keys of typed
        # extras only from 2.11 on (and 2.13 skips them when parsing JSON): say it again.
        for name, amount in self._others().items():
            if len(name) > 63 or not re.fullmatch(RESOURCE_NAME_PATTERN, name):
                raise ValueError(f"resource name {name!r} must match {RESOURCE_NAME_PATTERN} (at most 63 characters)")
            if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 <= amount < math.inf:
                raise ValueError(f"resource {name}: the amount must be a finite number >= 0, got {amount!r}")
        return self

    def _others(self) -> dict[str, int | float]:
        return self.__pydantic_extra__ or {}

    def __getitem__(self, name: str) -> int | float:
        if name == "cpu":
            return self.cpu
        if name == "memory":
            return self.memory
        return self._others()[name]

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # names, as a Mapping does
        yield "cpu"
        yield "memory"
        yield from self._others()

    def __len__(self) -> int:
        return 2 + len(self._others())

    def as_request(self) -> dict[str, float]:
        """``{name: amount}`` as floats, the request ``orchsim.scheduling.select`` takes."""
        return {name: float(amount) for name, amount in self.items()}
