"""Fuzzing the data contract (issue 11): random corruptions of a small valid dataset never produce an
internal error or a traceback, and never leave output behind.

Each example corrupts the tiny dataset of `conftest.py` one to three ways -- bad values of every
kind, dropped columns, duplicated keys, emptied tables, other encodings, truncated files, hostile
file names, every storage format -- and runs `churn features` on it in-process. The command either
succeeds (and writes a readable table) or fails with exit code 1 and a message naming a table,
leaving the output folder empty. The examples are derandomised, so CI runs the same ones every
time; set CHURN_FUZZ_EXAMPLES to explore more locally.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.contract import TABLES
from tests.helpers import run_churn, tiny_tables

EXAMPLES = int(os.environ.get("CHURN_FUZZ_EXAMPLES", "30"))
NASTY_VALUES = [
    "", " ", "nan", "NaN", "inf", "-inf", "-1", "0", "1e309", "-1e-300", "9999-12-31", "10000-01-01", "2300-01-01",
    "0001-01-01", "1899-12-31", "2024-02-30", "yesterday", "true", "NULL", "None", "😀", "é", "'; DROP TABLE x; --",
    '"', "$$", "\t", "1,5", "2024-01-01T25:00:00", "2024-01-01 00:00:00+14:00", "12345678901234567890",
]  # fmt: skip
HOSTILE_PARTS = ["a'b\"c", "x;y", "new\nline", "$$", "star*", "q?", "[ab]", " ", "-", "é"]


@dataclass(frozen=True)
class Corruption:
    kind: str
    table: str
    column: str | None = None
    row: int = 0
    value: object = None
    extra: float = 0.0

    def apply(self, tables: dict[str, pd.DataFrame]) -> None:
        frame = tables.get(self.table)
        if frame is None:
            return
        if self.kind == "value" and self.column in frame.columns and len(frame):
            frame = frame.astype({self.column: object})
            frame.iloc[self.row % len(frame), frame.columns.get_loc(self.column)] = self.value
        elif self.kind == "drop column" and self.column in frame.columns:
            frame = frame.drop(columns=[self.column])
        elif self.kind == "duplicate rows" and len(frame):
            frame = pd.concat([frame, frame.iloc[[self.row % len(frame)]]], ignore_index=True)
        elif self.kind == "empty":
            frame = frame.iloc[0:0]
        elif self.kind == "drop table":
            del tables[self.table]
            return
        tables[self.table] = frame


@dataclass(frozen=True)
class Storage:
    """How a table is written: format, encoding, a truncated file, hostile part names."""

    fmt: str = "csv"
    encoding: str = "utf-8"
    truncate: float | None = None
    part_name: str = "part"

    def write(self, folder: Path, name: str, frame: pd.DataFrame) -> None:
        if self.fmt == "csv":
            path = folder / f"{name}.csv"
            path.write_bytes(frame.to_csv(index=False).encode(self.encoding, errors="replace"))
        elif self.fmt == "parquet":
            path = folder / f"{name}.parquet"
            frame.astype(str).to_parquet(path, index=False)  # mixed object columns as text
        else:
            (folder / name).mkdir()
            path = folder / name / f"{self.part_name}.parquet"
            frame.astype(str).to_parquet(path, index=False)
        if self.truncate is not None:
            data = path.read_bytes()
            path.write_bytes(data[: int(len(data) * self.truncate)])


def corruptions() -> st.SearchStrategy[Corruption]:
    table = st.sampled_from(sorted(TABLES))
    value = st.one_of(
        st.sampled_from(NASTY_VALUES),
        st.text(max_size=12),
        st.none(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=True, allow_infinity=True),
    )
    column = st.sampled_from(sorted({c.name for t in TABLES.values() for c in t.columns}))
    return st.builds(
        Corruption,
        kind=st.sampled_from(["value", "value", "value", "drop column", "duplicate rows", "empty", "drop table"]),
        table=table,
        column=column,
        row=st.integers(min_value=0, max_value=10),
        value=value,
    )


def storages() -> st.SearchStrategy[Storage]:
    return st.builds(
        Storage,
        fmt=st.sampled_from(["csv", "parquet", "folder"]),
        encoding=st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"]),
        truncate=st.one_of(st.none(), st.none(), st.none(), st.floats(min_value=0.0, max_value=0.95)),
        part_name=st.sampled_from(["part", *HOSTILE_PARTS]),
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    changes=st.lists(corruptions(), min_size=1, max_size=3),
    storage=st.dictionaries(st.sampled_from(sorted(TABLES)), storages(), max_size=2),
)
def test_corrupted_data_gets_a_clear_error_or_a_result_never_a_crash(
    changes: list[Corruption], storage: dict[str, Storage], capsys: pytest.CaptureFixture[str]
) -> None:
    tables = tiny_tables()
    for change in changes:
        change.apply(tables)
    with tempfile.TemporaryDirectory() as tmp:
        data, out_dir = Path(tmp) / "data", Path(tmp) / "out"
        data.mkdir()
        out_dir.mkdir()
        for name, frame in tables.items():
            storage.get(name, Storage()).write(data, name, frame)
        capsys.readouterr()
        code = run_churn(["features", "--data", str(data), "--out", str(out_dir / "features.parquet"),
                          "--as-of", "2024-01-01"])  # fmt: skip
        captured = capsys.readouterr()
        message = captured.err + captured.out
        assert code in (0, 1), message
        assert "internal error" not in message and "Traceback" not in message, message
        if code == 0:
            assert [p.name for p in out_dir.iterdir()] == ["features.parquet"]
            assert "account_id" in pd.read_parquet(out_dir / "features.parquet").columns
        else:
            assert list(out_dir.iterdir()) == [], "a failed command leaves nothing behind"
            assert any(name in message for name in TABLES), f"the message names no table: {message}"
