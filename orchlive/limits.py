"""The documented bounds of what the API accepts, and the checks that enforce them.

Everything accepted must be storable (one etcd request is at most 1.5 MiB, and a
placement batch carries many tasks), startable (``execve`` refuses NUL bytes, ``=`` in
an environment name, arguments past 128 KiB) and schedulable (amounts are float64 on the
scheduling matrix). So every string is valid UTF-8 without NUL, every number is finite
and within a bound stated here, and a request larger than any worker may ever declare is
refused at once (422) instead of waiting for ever: workers are held to the same
``MAX_AMOUNT``, so no cluster, however it grows, could hold such a request.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, Field, StrictFloat, StrictInt

__all__ = [
    "ENV_NAME_PATTERN",
    "MAX_AMOUNT",
    "MAX_BODY_BYTES",
    "MAX_COMMAND_BYTES",
    "MAX_ENV_BYTES",
    "MAX_PARENTS",
    "MAX_PRIORITY",
    "MAX_REPLICAS",
    "MAX_SUBMIT_RECORDS",
    "MAX_RESOURCE_NAMES",
    "MAX_TIMEOUT_S",
    "Command",
    "Env",
    "Image",
    "Name",
    "Priority",
    "Selector",
    "Timeout",
    "check_amounts",
]

MAX_BODY_BYTES = 256 * 1024  # a request body beyond this is 413, before it is parsed
MAX_NAME_CHARS = 253
MAX_IMAGE_CHARS = 512
MAX_COMMAND_ARGS = 1024
MAX_COMMAND_BYTES = 32 * 1024  # all arguments together, UTF-8
MAX_ENV_VARS = 256
MAX_ENV_BYTES = 32 * 1024  # every NAME=value together, UTF-8
MAX_SELECTOR_LABELS = 64
MAX_LABEL_CHARS = 253
MAX_TIMEOUT_S = 30 * 24 * 3600  # thirty days
MAX_AMOUNT = 10**12  # per resource: 1e9 cores in millicores, ~1 EiB in MiB; exact in float64
# kube's bound on user priorities (HighestUserDefinablePriority): far inside int64 and the
# core's 2**31 offset when victim priorities are summed (orchsim.scheduling.preemption).
MAX_PRIORITY = 10**9
MAX_RESOURCE_NAMES = 32  # each name is a row of the scheduling matrix
# A gang's replicas are placed in ONE etcd transaction (3 puts each, plus one ledger put per
# node: 4 x 32 = 128, etcd's default --max-txn-ops), and created in one too.
MAX_REPLICAS = 32
MAX_PARENTS = 32  # ``after`` entries of one task
# Task records one submission creates (replicas counted): each is a put and an event, and
# each dependency edge an index key, all in one transaction under etcd's 128 operations.
MAX_SUBMIT_RECORDS = 40
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
RESERVED_ENV_PREFIX = "ORCH_"  # the variables orchlive sets for a task (ORCH_TASK_ID, ...)


def _utf8(text: str) -> str:
    """Refuse what cannot be stored or passed to a program: lone surrogates and NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


def _printable(text: str) -> str:
    """Names and image references: one line of printable text."""
    _utf8(text)
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise ValueError("must not contain control characters")
    return text


def _command(args: list[str]) -> list[str]:
    for arg in args:
        _utf8(arg)
    size = sum(len(a.encode()) for a in args)
    if size > MAX_COMMAND_BYTES:
        raise ValueError(f"the command is {size} bytes; at most {MAX_COMMAND_BYTES} (put large scripts in the image)")
    return args


def _env(env: dict[str, str]) -> dict[str, str]:
    for name, value in env.items():
        if len(name) > 255 or not re.fullmatch(ENV_NAME_PATTERN, name):
            raise ValueError(f"environment name {name[:40]!r} must match {ENV_NAME_PATTERN} (at most 255 characters)")
        if name.upper().startswith(RESERVED_ENV_PREFIX):
            raise ValueError(f"environment name {name!r}: the prefix {RESERVED_ENV_PREFIX} is reserved for orchlive")
        try:
            _utf8(value)
        except ValueError as err:
            raise ValueError(f"environment variable {name}: {err}") from None
    size = sum(len(n.encode()) + len(v.encode()) + 1 for n, v in env.items())
    if size > MAX_ENV_BYTES:
        raise ValueError(f"the environment is {size} bytes; at most {MAX_ENV_BYTES}")
    return env


def _selector(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        _printable(key)
        _printable(value)
    return labels


def check_amounts(amounts: Mapping[str, int | float]) -> None:
    """Every amount within ``[0, MAX_AMOUNT]`` and at most ``MAX_RESOURCE_NAMES`` names.

    Raises:
        ValueError: naming the resource and the bound.
    """
    if len(amounts) > MAX_RESOURCE_NAMES:
        raise ValueError(f"at most {MAX_RESOURCE_NAMES} resources, got {len(amounts)}")
    for name, amount in amounts.items():
        if not (isinstance(amount, int | float) and math.isfinite(amount) and 0 <= amount <= MAX_AMOUNT):
            raise ValueError(f"resource {name}: the amount must be a finite number in [0, {MAX_AMOUNT}]")


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS), AfterValidator(_printable)]
Image = Annotated[str, Field(min_length=1, max_length=MAX_IMAGE_CHARS), AfterValidator(_printable)]
Command = Annotated[list[str], Field(max_length=MAX_COMMAND_ARGS), AfterValidator(_command)]
Env = Annotated[dict[str, str], Field(max_length=MAX_ENV_VARS), AfterValidator(_env)]
Label = Annotated[str, Field(max_length=MAX_LABEL_CHARS)]
Selector = Annotated[dict[Label, Label], Field(max_length=MAX_SELECTOR_LABELS), AfterValidator(_selector)]
# Seconds; a JSON number (not a string), finite, > 0, at most thirty days.
Timeout = Annotated[
    StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)],
    Field(gt=0, le=MAX_TIMEOUT_S, description="seconds (at most thirty days); the worker kills the task past it"),
]
# Higher goes first in the queue and may preempt lower ones (master --preemption); a JSON integer.
Priority = Annotated[StrictInt, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)]
