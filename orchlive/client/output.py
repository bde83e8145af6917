"""Output formats of the client, as ``kubectl`` has them: an aligned table (default), ``json``, ``yaml``.

Tables are written like kubectl's tabwriter: upper-case headers, columns left-aligned
and three spaces apart, nothing cut to the terminal's width (so ``grep`` and ``awk``
see whole values), no trailing spaces, ``<none>`` for an empty cell.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

__all__ = ["FORMATS", "age", "dump", "parse_time", "table"]

FORMATS = ("table", "wide", "json", "yaml")
_GAP = "   "


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """``rows`` under ``headers``, each column as wide as its widest cell."""
    cells = [list(headers), *([cell if cell != "" else "<none>" for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(_GAP.join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def parse_time(text: str | None) -> datetime | None:
    """A timestamp as the API writes it (ISO 8601, UTC), or None."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age(text: str | None, now: datetime | None = None) -> str:
    """How long ago ``text`` was, as kubectl shows an age: ``42s``, ``5m``, ``3h``, ``2d``; ``<none>`` if unset."""
    moment = parse_time(text)
    if moment is None:
        return "<none>"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def dump(value: Any, fmt: str) -> str:
    """``value`` (API JSON) as ``json`` (indented) or ``yaml`` (block style, keys in the API's order)."""
    if fmt == "yaml":
        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True).rstrip("\n")
    return json.dumps(value, indent=2)
