"""CSV from columns, formatted by numpy: byte for byte what ``DataFrame.to_csv`` writes.

Why: pandas formats every float of ``to_csv(index=False, float_format="%.6f")`` with one
Python ``%`` call, which made writing ``tasks.csv`` 12-16% of a 200,000-task run (issue
14), and it needs pandas imported (a quarter of a second) before the first byte. Here
each column becomes a matrix of right-aligned ASCII bytes in a few numpy passes and the
rows are scattered into one buffer per chunk: several times faster, and the same bytes.

* Floats are rounded correctly to ``decimals`` places, as ``%.{decimals}f`` rounds them
  (half to even on the exact binary value). numpy's product ``|x| * 10**decimals`` is
  exact to half an ulp, so its nearest integer is the right one unless the product lies
  within a few ulps of a half; those few values, and infinities or magnitudes above
  2**48 / 10**decimals, are formatted by Python itself. NaN is an empty field; ``-0.0``
  keeps its sign (``-0.000000``), as Python's does.
* Integers are written in full; booleans as ``True``/``False``.
* Strings are quoted by the ``csv`` module with the dialect pandas uses (only fields with
  a comma, a quote or a line break are quoted), once per distinct value; ``None`` and NaN
  are empty fields.
* Anything else (dates, nullable integers, objects that are not strings, a table with
  fewer than two columns, where ``csv`` quotes a lone empty field) is written by pandas
  itself, so what a file contains never depends on which path wrote it.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_csv"]

_EOL = os.linesep  # pandas' default line terminator
_CHUNK_ROWS = 16_384  # rows formatted at once: bounds the scratch matrices to a few MB
_EXACT_LIMIT = 2.0**48  # below this a float64's ulp is at most 1/32: the half test below is sound
_POW10 = 10 ** np.arange(19, dtype=np.int64)
_COMMA = ord(",")


class _NotFormattedError(Exception):
    """A column (or table) this module does not format; pandas writes the file instead."""


def write_csv(table: Any, path: str | Path, *, decimals: int = 6) -> None:
    """Write ``table`` as ``table.to_csv(path, index=False, float_format=f"%.{decimals}f")`` would.

    Args:
        table: A ``pandas.DataFrame`` or a mapping of column name to a 1-D numpy array
            (all of one length), in column order. Not mutated.
        path: The file to write (replaced if it exists), UTF-8.
        decimals: Digits after the point for float columns, 1 to 9.
    """
    try:
        columns = [(str(name), _column_array(values)) for name, values in table.items()]
        if len(columns) < 2 or not 1 <= decimals <= 9 or len({len(v) for _, v in columns}) > 1:
            raise _NotFormattedError
        formatters = [_formatter(values, decimals) for _, values in columns]
    except _NotFormattedError:
        _pandas_csv(table, path, decimals)
        return
    rows = len(columns[0][1])
    with open(path, "wb") as file:
        file.write((",".join(_quote(name) for name, _ in columns) + _EOL).encode())
        for start in range(0, rows, _CHUNK_ROWS):
            chunk = slice(start, min(start + _CHUNK_ROWS, rows))
            file.write(_join_rows([format_chunk(chunk) for format_chunk in formatters]))


def _pandas_csv(table: Any, path: str | Path, decimals: int) -> None:
    """The general path, for the tables the fast one does not handle."""
    import pandas as pd

    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(dict(table))
    frame.to_csv(path, index=False, float_format=f"%.{decimals}f")


def _column_array(values: Any) -> np.ndarray:
    """A numpy array of a column; pandas' string columns as objects, its other extension types refused."""
    dtype = getattr(values, "dtype", None)
    if dtype is None or isinstance(dtype, np.dtype):
        return np.asarray(values)
    if getattr(dtype, "kind", "") in "OSU":  # strings and categoricals: their values as objects
        return np.asarray(values, dtype=object)
    raise _NotFormattedError  # nullable integers, dates with time zones...: asarray would turn NA into NaN


def _formatter(values: np.ndarray, decimals: int) -> Any:
    """A function from a slice of rows to their fields (uint8 (rows, width), right-aligned, NUL-padded).

    Raises:
        _NotFormattedError: a column of a kind this module leaves to pandas.
    """
    if values.ndim != 1:
        raise _NotFormattedError
    kind = values.dtype.kind
    if kind == "f":
        return lambda rows: _float_field(values[rows], decimals)
    if kind in "iu":
        if kind == "u" and len(values) and values.max() > np.iinfo(np.int64).max:
            raise _NotFormattedError
        wide = values.astype(np.int64)
        if len(wide) and wide.min() == np.iinfo(np.int64).min:  # its magnitude has no int64
            raise _NotFormattedError
        return lambda rows: _int_field(wide[rows])
    if kind == "b":
        return _text_formatter(values.astype(np.int64), ["False", "True"])
    if kind in "OUS":
        codes, texts = _encode_strings(values)
        return _text_formatter(codes, texts)
    raise _NotFormattedError


def _encode_strings(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Codes (int64, one per row) into the distinct texts, NaN and ``None`` as empty texts."""
    items = values.tolist()
    index = {value: code for code, value in enumerate(dict.fromkeys(items))}  # C loops, not Python ones
    codes = np.fromiter(map(index.__getitem__, items), np.int64, len(items))
    texts = []
    for value in index:
        if isinstance(value, bytes | np.bytes_):
            raise _NotFormattedError  # pandas writes bytes as their repr; leave that to it
        if isinstance(value, str):
            texts.append(str(value))
        elif value is None or (isinstance(value, float) and value != value):
            texts.append("")
        else:
            raise _NotFormattedError
    return codes, texts


def _text_formatter(codes: np.ndarray, texts: Sequence[str]) -> Any:
    """Formatter of a column of distinct texts, each quoted and encoded once."""
    encoded = [_quote(text).encode() for text in texts]
    if any(b"\0" in b for b in encoded):
        raise _NotFormattedError  # NUL marks padding below
    width = max((len(b) for b in encoded), default=0) or 1
    table = np.frombuffer(b"".join(b.rjust(width, b"\0") for b in encoded), np.uint8).reshape(len(encoded), width)
    return lambda rows: table[codes[rows]]


def _quote(text: str) -> str:
    """``text`` as the ``csv`` module writes a field of a many-field row (what pandas calls)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=_EOL).writerow([text, ""])
    return buffer.getvalue()[: -1 - len(_EOL)]


def _int_field(values: np.ndarray) -> np.ndarray:
    """Integers in full, with a minus sign where negative."""
    return _number_field(np.abs(values), values < 0, None, 0)


def _float_field(values: np.ndarray, decimals: int) -> np.ndarray:
    """``%.{decimals}f`` of each float; NaN as an empty field (see the module docstring)."""
    x = values.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.abs(x) * float(10**decimals)
        fast = scaled < _EXACT_LIMIT  # False for NaN and infinity
        ulps = np.where(fast, scaled, 0.0) * 2.0**-50  # a few ulps of the product
        fast &= np.abs(scaled - np.floor(scaled) - 0.5) > ulps
    units = np.rint(np.where(fast, scaled, 0.0)).astype(np.int64)
    whole, fraction = np.divmod(units, _POW10[decimals])
    mat = _number_field(whole, np.signbit(x), fraction, decimals)
    nan = np.isnan(x)
    mat[nan] = 0
    slow = np.flatnonzero(~fast & ~nan)
    if len(slow):
        mat = _put_texts(mat, slow, [f"%.{decimals}f" % v for v in x[slow].tolist()])
    return mat


def _number_field(whole: np.ndarray, negative: np.ndarray, fraction: np.ndarray | None, decimals: int) -> np.ndarray:
    """Right-aligned ASCII of ``whole`` (>= 0), a minus where ``negative``, then ``.fraction``; NUL-padded."""
    rows = len(whole)
    most = len(str(int(whole.max()))) if rows else 1
    tail = decimals + 1 if fraction is not None else 0
    width = 1 + most + tail
    mat = np.empty((rows, width), np.uint8)
    _put_digits(mat[:, 1 : 1 + most], whole)
    if fraction is not None:
        mat[:, 1 + most] = ord(".")
        _put_digits(mat[:, 2 + most :], fraction)
    digits = np.ones(rows, np.int64)
    for power in _POW10[1:most]:  # scalar comparisons: cheaper than one (rows, most) matrix
        digits += whole >= power
    first = width - tail - digits  # the column of the leading digit
    mat[np.arange(width) < first[:, None]] = 0
    signed = np.flatnonzero(negative)
    mat[signed, first[signed] - 1] = ord("-")
    return mat


def _put_digits(out: np.ndarray, values: np.ndarray) -> None:
    """ASCII digits of ``values`` (>= 0) into the columns of ``out``, zero-filled on the left."""
    # uint32 division by a scalar is several times faster than int64 divmod; most values fit
    rest = values.astype(np.uint32) if len(values) and values.max() < 2**32 else values
    for column in range(out.shape[1] - 1, -1, -1):
        quotient = rest // 10
        out[:, column] = rest - quotient * 10
        rest = quotient
    out += ord("0")


def _put_texts(mat: np.ndarray, rows: np.ndarray, texts: Iterable[str]) -> np.ndarray:
    """Write ``texts`` right-aligned and NUL-padded into ``rows`` of ``mat`` (widened if needed)."""
    encoded = [text.encode() for text in texts]
    need = max(len(b) for b in encoded)
    if need > mat.shape[1]:
        mat = np.concatenate([np.zeros((len(mat), need - mat.shape[1]), np.uint8), mat], axis=1)
    width = mat.shape[1]
    for row, data in zip(rows.tolist(), encoded, strict=True):
        mat[row] = 0
        mat[row, width - len(data) :] = np.frombuffer(data, np.uint8)
    return mat


def _join_rows(fields: list[np.ndarray]) -> bytes:
    """The CSV rows of one chunk: the fields side by side with separators, NUL padding dropped."""
    eol = np.frombuffer(_EOL.encode(), np.uint8)
    widths = [mat.shape[1] + 1 for mat in fields]
    widths[-1] += len(eol) - 1
    out = np.empty((len(fields[0]), sum(widths)), np.uint8)
    column = 0
    for mat, width in zip(fields, widths, strict=True):
        out[:, column : column + mat.shape[1]] = mat
        out[:, column + mat.shape[1] : column + width] = _COMMA
        column += width
    out[:, -len(eol) :] = eol
    flat = out.ravel()
    return flat[flat != 0].tobytes()
