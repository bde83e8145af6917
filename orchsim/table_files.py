"""Tables as columns (name -> 1-D numpy array) and the files they are written to: CSV or Parquet.

Why columns and not DataFrames: a run's tables are numpy arrays already, and the command
line only writes them; building DataFrames first costs importing pandas, a quarter of a
second that a small run spends on nothing else (issue 14). ``orchsim.run.Results`` builds
its DataFrames from these columns only when asked for them.

CSV is written by ``orchsim.csv_writer`` (what ``DataFrame.to_csv(index=False,
float_format="%.6f")`` writes, several times faster); Parquet by pyarrow, with every float
at full precision, for large runs: smaller files that load in a fraction of a CSV's time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMATS", "Columns", "columns_of_rows", "concat_columns", "write_table"]

Columns = dict[str, np.ndarray]
FORMATS = ("csv", "parquet")


def write_table(table: Mapping[str, np.ndarray] | Any, out: Path, name: str, format: str = "csv") -> Path:
    """Write ``table`` (columns or a DataFrame) as ``out/name.csv`` or ``out/name.parquet``; returns the path.

    Args:
        table: A mapping of column name to a 1-D array (all one length), or a DataFrame.
        out: An existing folder.
        name: The file's name without its extension.
        format: ``"csv"`` (floats with 6 decimals) or ``"parquet"`` (full precision).

    Raises:
        ValueError: an unknown format.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    path = out / f"{name}.{format}"
    if format == "csv":
        from orchsim.csv_writer import write_csv

        write_csv(table, path)
    else:
        _write_parquet(table, path)
    return path


def _write_parquet(table: Mapping[str, np.ndarray] | Any, path: Path) -> None:
    """One Parquet file, through pyarrow (imported only here: it is heavy and CSV does not need it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(table, Mapping):
        arrow = pa.table({name: pa.array(values) for name, values in table.items()})
    else:
        arrow = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(arrow, path)


def columns_of_rows(rows: Sequence[Mapping[str, Any]]) -> Columns:
    """Records (one dict per row) as columns, keys in order of first appearance; missing as NaN.

    The same columns, dtypes and values as ``pandas.DataFrame(rows)`` for rows of numbers
    and strings (a column of ints stays int64; ints and NaN become float64).
    """
    names = list(dict.fromkeys(key for row in rows for key in row))
    columns: Columns = {}
    for name in names:
        values = [row.get(name, np.nan) for row in rows]
        text = any(isinstance(value, str) for value in values)  # else numpy would write NaN as "nan"
        columns[name] = np.array(values, dtype=object if text else None)
    return columns


def concat_columns(parts: Sequence[Mapping[str, np.ndarray]]) -> Columns:
    """Tables one after another, as ``pandas.concat(..., ignore_index=True)`` stacks frames.

    A column some parts lack is NaN in their rows (and so becomes float, as in pandas).
    """
    names = list(dict.fromkeys(name for part in parts for name in part))
    joined: Columns = {}
    for name in names:
        pieces = []
        for part in parts:
            rows = len(next(iter(part.values()))) if part else 0
            pieces.append(part[name] if name in part else np.full(rows, np.nan))
        joined[name] = np.concatenate(pieces) if pieces else np.zeros(0)
    return joined
