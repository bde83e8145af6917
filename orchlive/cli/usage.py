"""The one exception every command line mistake becomes."""

from __future__ import annotations

import argparse
import math

__all__ = ["UsageError", "count", "port_number", "seconds"]


class UsageError(Exception):
    """A user mistake: ``python -m orchlive`` prints it as one line and exits with status 2."""


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 1..65535 (argparse names the flag and exits with status 2)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1..65535)")
    return port


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds (its bounds are the API's to check and name)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: a finite number of seconds")
    return value


def count(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: a whole number >= 0")
    return value
