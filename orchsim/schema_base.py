"""The schema's common ground: the strict base model, the number types, the error type."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["STRICT", "NonNegativeFloat", "PositiveFloat", "ScenarioError", "StrictModel"]

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
