"""The CSV machinery the CSV-based loaders share: text columns with their file lines.

A file is read whole with the standard library (``csv``, ``gzip``) and kept as text
columns, each row remembering its line as a text editor counts it (1-based, header,
comment and blank lines included); columns are converted with numpy one at a time, so a
10,000-row trace loads in tens of milliseconds and every bad cell is reported by file,
line and column.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from orchsim.traces.tasks import TraceError

__all__ = ["Table", "number_column", "parse_floats", "read_lines", "read_table", "reject", "text_column", "trace_error"]


def trace_error(path: str, problem: str, *, line: int | None = None, at: str | None = None) -> TraceError:
    """A ``TraceError`` reading ``"<path> line <n>, <at>: <problem>"`` (parts optional)."""
    where = path if line is None else f"{path} line {line}"
    if at is not None:
        where = f"{where}, {at}"
    return TraceError(f"{where}: {problem}")


def read_lines(path: str) -> list[str]:
    """The physical lines of a text file, gunzipped when it starts with the gzip magic.

    Lines are split at LF, CRLF and CR only, as editors do (not on the
    other separators ``str.splitlines`` knows), so line numbers match what users see.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise trace_error(path, "file not found") from None
    except IsADirectoryError:
        raise trace_error(path, "is a directory, not a trace file") from None
    except OSError as err:
        raise trace_error(path, f"cannot be read ({err.strerror})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise trace_error(path, f"not a valid gzip file ({err})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise trace_error(path, f"not UTF-8 text (byte {data[err.start]:#04x})", line=line) from None
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


@dataclass
class Table:
    """A CSV file as text columns, with the file line of every row for error messages."""

    path: str
    header: list[str]
    header_line: int
    row_lines: list[int]
    columns: dict[str, Sequence[str]]

    def __len__(self) -> int:
        return len(self.row_lines)

    def error(self, row: int, column: str, problem: str) -> TraceError:
        return trace_error(self.path, problem, line=self.row_lines[row], at=f"column {column!r}")

    def require(self, names: Sequence[str]) -> None:
        """Raise naming the first of ``names`` missing from the header, and the columns found."""
        for name in names:
            if name not in self.columns:
                found = ", ".join(self.header) or "none"
                raise trace_error(
                    self.path, f"missing required column {name!r} (columns found: {found})", line=self.header_line
                )


def read_table(path: str) -> Table:
    """Parse a CSV file; blank lines and lines starting with ``#`` are ignored.

    The first remaining line is the header. Every row must have as many fields as the
    header. Cells are kept as text; ``number_column`` converts the columns a loader needs.
    """
    kept = [(n, s) for n, s in enumerate(read_lines(path), 1) if s.strip() and not s.lstrip().startswith("#")]
    if not kept:
        raise trace_error(path, "empty file: expected a header line naming the columns")
    line_of = [n for n, _ in kept]
    reader = csv.reader((s for _, s in kept), strict=True)
    records: list[list[str]] = []
    record_lines: list[int] = []
    try:
        for record in reader:
            records.append(record)
            record_lines.append(line_of[reader.line_num - 1])  # last physical line of the record
    except csv.Error as err:
        raise trace_error(
            path, f"malformed CSV ({err})", line=line_of[min(reader.line_num, len(line_of)) - 1]
        ) from None

    header = [h.strip() for h in records[0]]
    header_line = record_lines[0]
    for i, name in enumerate(header):
        if not name:
            raise trace_error(path, f"column {i + 1} of the header has no name", line=header_line)
        if name in header[:i]:
            raise trace_error(path, f"column {name!r} appears twice in the header", line=header_line)
    rows, row_lines = records[1:], record_lines[1:]
    for row, line in zip(rows, row_lines, strict=True):
        if len(row) != len(header):
            raise trace_error(path, f"expected {len(header)} fields ({', '.join(header)}), found {len(row)}", line=line)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    return Table(path, header, header_line, row_lines, dict(zip(header, columns, strict=True)))


def parse_floats(cells: Sequence[str]) -> tuple[np.ndarray, int | None]:
    """``cells`` as float64 and the index of the first cell that is not a number (or None)."""
    try:
        values = np.array(cells, dtype=np.float64) if len(cells) else np.zeros(0)
    except ValueError:
        values = np.empty(len(cells))
        for i, cell in enumerate(cells):
            try:
                values[i] = float(cell)
            except ValueError:
                return values, i
    nan = np.flatnonzero(np.isnan(values))
    return values, (int(nan[0]) if nan.size else None)


def number_column(table: Table, column: str, *, allow_inf: bool = False) -> np.ndarray:
    """One column as float64, checked: a number, >= 0, finite (``allow_inf``: or ``+inf``).

    Raises:
        TraceError: naming the line and column of the first bad cell.
    """
    cells = table.columns[column]
    values, bad = parse_floats(cells)
    if bad is not None:
        raise table.error(bad, column, f"{cells[bad].strip()!r} is not a number")
    reject(table, column, values < 0, "is negative (must be >= 0)")
    if not allow_inf:
        reject(table, column, np.isinf(values), "is not finite")
    return values


def reject(table: Table, column: str, mask: np.ndarray, problem: str) -> None:
    """Raise for the first row where ``mask`` holds, quoting the cell: ``'-5' is negative``."""
    hits = np.flatnonzero(mask)
    if hits.size:
        i = int(hits[0])
        raise table.error(i, column, f"{table.columns[column][i].strip()!r} {problem}")


def text_column(table: Table, column: str) -> np.ndarray:
    """A text column as an object array of stripped strings."""
    return np.array([cell.strip() for cell in table.columns[column]], dtype=object)
