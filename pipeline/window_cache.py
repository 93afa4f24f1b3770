"""The checked, canonical window rows of the big event tables' files, kept between scoring runs.

A one-date run reads `logins` and `usage_events` from its read start on (`recent_history`) and
checks and casts those rows (`validation`): the largest part of such a run. The rows a file holds
from a day on, once checked, are the same for every later run while the file is unchanged, so they
are kept in the workdir (`<workdir>/cache/window-rows/<table>/`): per input file one parquet entry
with its rows dated from the entry's start on, cast to the contract's types, with their row number
in the file; named by a digest of the file's identity (`summary_cache.file_identity`) and of the
SQL that checks and casts its rows (the raw column types included), and by the start. A run whose read start
is on or up to `REUSE_DAYS` after an entry's start takes the entry's rows from its read start on
instead of reading, checking and casting the file's; the other files are read as before and, when
the run's checks pass, their entries are stored from the run's read start (replacing the file's
older ones). Entries hold only rows that passed every check of a single row (a bad value is fatal:
the run reading it fails, nothing is stored), so a run with entries reports exactly what one
without would; what depends on other tables or the clock (unknown accounts, future-dated rows,
rows before created_at) is computed every run from the rows, kept or read.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from features.contract import TABLES
from features.sql.dialect import DUCKDB
from pipeline.io import literal_glob
from pipeline.summary_cache import entry_stem, file_identity, prune, write_entry
from pipeline.validation import SOURCE_ROW

log = logging.getLogger(__name__)

REUSE_DAYS = 31
"""How long after its start an entry serves: its rows before a run's read start are read for nothing."""

FILE_ROW = "file_row"
"""An entry's column: the row's 1-based number in its input file (its `SOURCE_ROW` is that plus the
rows of the files before it)."""


@dataclass
class WindowRows:
    """Which files of a table a run takes from their entries and which it reads (with the entry each
    would get; none without a cache folder)."""

    name: str
    start: pd.Timestamp
    offsets: dict[Path, int]
    counts: dict[Path, int]
    cached: dict[Path, Path] = field(default_factory=dict)
    pending: dict[Path, Path | None] = field(default_factory=dict)

    @property
    def folder_entries(self) -> list[Path]:
        return [*self.cached.values(), *(p for p in self.pending.values() if p is not None)]


def plan(
    folder: Path | None, name: str, files: list[Path], counts: list[int], start: pd.Timestamp, code: str
) -> WindowRows:
    """Match each file (with its row count) to a usable entry in `folder`: one of its current contents
    and `code` (the SQL that checks and casts its rows) whose start is on or at most `REUSE_DAYS`
    before `start` (the latest such)."""
    offsets = dict(zip(files, accumulate(counts, initial=0), strict=False))
    rows = WindowRows(name, start, offsets, dict(zip(files, counts, strict=True)))
    starts: dict[str, list[pd.Timestamp]] = {}  # entry stem -> the starts of its entries
    for entry in folder.iterdir() if folder is not None and folder.is_dir() else ():
        stem, _, rest = entry.name.partition(".from-")
        with suppress(ValueError):
            starts.setdefault(stem, []).append(pd.Timestamp(rest.removesuffix(".parquet")))
    for file in files:
        if folder is None:
            rows.pending[file] = None
            continue
        stem = entry_stem(file_identity(file), code)
        usable = [s for s in starts.get(stem, []) if start - pd.Timedelta(days=REUSE_DAYS) <= s <= start]
        if usable:
            rows.cached[file] = folder / _entry_name(stem, max(usable))
        else:
            rows.pending[file] = folder / _entry_name(stem, start)
    return rows


def _entry_name(stem: str, start: pd.Timestamp) -> str:
    return f"{stem}.from-{start:%Y-%m-%d}.parquet"


def cached_rows(con: duckdb.DuckDBPyConnection, rows: WindowRows) -> str | None:
    """A query of the cached files' rows from the run's read start on, canonical, each with its
    `SOURCE_ROW`; None when no file has an entry."""
    if not rows.cached:
        return None
    name = rows.name
    entries = pa.table(
        {
            "filename": [str(entry) for entry in rows.cached.values()],
            "offset": [rows.offsets[file] for file in rows.cached],
        }
    )
    con.register(f"__window_offsets_{name}", entries)
    con.read_parquet([literal_glob(e) for e in rows.cached.values()], filename=True).create_view(f"__window_{name}")
    columns = ", ".join(f'e."{c.name}"' for c in TABLES[name].columns)
    time_column = TABLES[name].time_column
    return (
        f'SELECT {columns}, e."{FILE_ROW}" + o."offset" AS "{SOURCE_ROW}" FROM "__window_{name}" e '
        f'JOIN "__window_offsets_{name}" o ON o.filename = e.filename '
        f'WHERE e."{time_column}" >= {DUCKDB.timestamp(rows.start)}'
    )


def store(con: duckdb.DuckDBPyConnection, rows: WindowRows, canonical: str) -> None:
    """Write the entries of the files read this run from `canonical` (their rows checked and cast by
    now), then remove the files' other entries. A file with no such rows gets none (it stays one a
    run reads: its row groups' statistics skip it). A cache that cannot be written costs the next
    run time, never its result: a warning, no error."""
    targets = {file: target for file, target in rows.pending.items() if target is not None}
    if not targets:
        return
    folder = next(iter(targets.values())).parent
    columns = ", ".join(f'"{c.name}"' for c in TABLES[rows.name].columns)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for file, target in targets.items():
            offset = rows.offsets[file]
            entry = con.sql(
                f'SELECT {columns}, "{SOURCE_ROW}" - {offset} AS "{FILE_ROW}" FROM "{canonical}" '
                f'WHERE "{SOURCE_ROW}" > {offset} AND "{SOURCE_ROW}" <= {offset + rows.counts[file]} '
                f'ORDER BY "{SOURCE_ROW}"'
            ).to_arrow_table()
            if entry.num_rows:  # a file without rows from the start on (an older partition) is skipped by
                write_entry(entry, target)  # its statistics when read: nothing to keep
        prune(folder, rows.folder_entries)
    except OSError as exc:
        log.warning("checked %s rows not cached in %s: %s", rows.name, folder, exc)
