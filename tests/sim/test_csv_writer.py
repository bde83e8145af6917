"""orchsim.csv_writer writes the bytes pandas' to_csv writes, on the values that are hard to format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchsim.csv_writer import write_csv

# Values at the edges of the fast path: exact halves at the 7th decimal (1/128 = 0.0078125
# rounds half to even), products near 2**48, huge and tiny magnitudes, signed zeros.
EDGES = [
    np.nan,
    np.inf,
    -np.inf,
    -0.0,
    0.0,
    1e300,
    -1e300,
    5e-324,
    0.5e-6,
    1.5e-6,
    2.5e-6,
    -2.5e-7,
    0.0078125,
    -0.0234375,
    2.0**48 / 1e6,
    2.0**48 / 1e6 * 1.0000001,
    123456789.1234565,
    1e15,
    4.35,
    0.125,
]


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    floats = np.concatenate(
        [
            rng.normal(0, 1, rows),
            rng.normal(0, 1e-6, rows),
            rng.exponential(1e8, rows),
            rng.integers(-(10**6), 10**6, rows) / 128,  # many exact ties
            rng.integers(-(10**6), 10**6, rows) / 1e6,
            EDGES,
        ]
    )
    texts = np.array(["a", "", 'q"uote', "c,omma", "new\nline", None, np.nan, "ünï", " pad "], dtype=object)
    n = len(floats)
    return pd.DataFrame(
        {
            "f": floats,
            "i": rng.integers(-(2**62), 2**62, n),
            "s": rng.choice(texts, n),
            "b": rng.random(n) < 0.5,
            "f32": np.clip(floats, -1e30, 1e30).astype(np.float32),
            "i8": rng.integers(-128, 127, n).astype(np.int8),
            "u32": rng.integers(0, 2**32 - 1, n).astype(np.uint32),
            "a,b": "same",  # a header that needs quoting
        }
    )


def pandas_bytes(table: pd.DataFrame, path: Path, decimals: int = 6) -> bytes:
    table.to_csv(path, index=False, float_format=f"%.{decimals}f")
    return path.read_bytes()


@pytest.mark.parametrize("decimals", [6, 1, 3, 9])
def test_same_bytes_as_pandas(tmp_path: Path, decimals: int) -> None:
    table = frame(3_000, seed=decimals)
    write_csv(table, tmp_path / "fast.csv", decimals=decimals)
    assert (tmp_path / "fast.csv").read_bytes() == pandas_bytes(table, tmp_path / "pandas.csv", decimals)


def test_a_mapping_of_arrays_writes_the_same_bytes_as_its_frame(tmp_path: Path) -> None:
    table = frame(20_000)  # more than one chunk
    columns = {name: table[name].to_numpy() for name in table.columns}
    write_csv(columns, tmp_path / "fast.csv")
    assert (tmp_path / "fast.csv").read_bytes() == pandas_bytes(table, tmp_path / "pandas.csv")


def test_floats_round_trip_to_six_decimals(tmp_path: Path) -> None:
    values = np.random.default_rng(3).exponential(500.0, 10_000)
    write_csv({"x": values, "y": np.arange(len(values))}, tmp_path / "out.csv")
    back = pd.read_csv(tmp_path / "out.csv")["x"].to_numpy()
    assert np.array_equal(back, np.array([float(f"{v:.6f}") for v in values]))


@pytest.mark.parametrize(
    "table",
    [
        pd.DataFrame({"only": ["", "x"]}),  # a lone empty field is quoted by csv
        pd.DataFrame({"when": pd.to_datetime(["2024-01-01", "2024-01-02"]), "x": [1.0, 2.0]}),
        pd.DataFrame({"n": pd.array([1, None], dtype="Int64"), "x": [1.0, 2.0]}),
        pd.DataFrame({"mixed": [1.5, "a"], "x": [1, 2]}),
        pd.DataFrame({"a": [], "b": []}),
    ],
    ids=["one-column", "datetime", "nullable-int", "mixed-object", "empty"],
)
def test_tables_it_does_not_format_still_match_pandas(tmp_path: Path, table: pd.DataFrame) -> None:
    write_csv(table, tmp_path / "fast.csv")
    assert (tmp_path / "fast.csv").read_bytes() == pandas_bytes(table, tmp_path / "pandas.csv")
