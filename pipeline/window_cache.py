"""The checked, canonical window rows of the big event tables' files, kept between scoring runs.

A one-date run reads `logins` and `usage_events` from its read start on (`recent_history`) and
checks and casts those rows (`validation`): the largest part of such a run. The rows a file holds
from a day on, once checked, are the same for every later run while the file is unchanged, so they
are kept in the workdir (`<workdir>/cache/window-rows/<table>/`): per input file one DuckDB database
entry with its rows dated from the entry's start on, cast to the contract's types, with their row
number in the file; named by a digest of the file's identity (`summary_cache.file_identity`), of the
SQL that checks and casts its rows (the raw column types included) and of the DuckDB version that
wrote it, and by the start. A run whose read start is on or up to `REUSE_DAYS` after an entry's
start attaches the entry read-only and reads its rows from the read start on where they are (no
copy: the features scan DuckDB's compressed storage) instead of reading, checking and casting the
file's; the other files are read as before and, when the run's checks pass, their entries are stored
from the run's read start (replacing the file's older ones once the command succeeds: a failed one
leaves them; a file without such rows gets an empty marker and is not read again). Entries
hold only rows that passed every check of a single row (a bad value is fatal: the run reading it
fails, nothing is stored), so a run with entries reports exactly what one without would; what
depends on other tables or the clock (unknown accounts, future-dated rows, rows before created_at)
is computed every run from the rows, kept or read.
"""

from __future__ import annotations

import logging
import os
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from features.contract import TABLES
from features.sql.dialect import DUCKDB
from pipeline.io import temporary_sibling
from pipeline.leftovers import creating
from pipeline.summary_cache import entry_stem, file_identity, prune
from pipeline.validation import SOURCE_ROW

log = logging.getLogger(__name__)

REUSE_DAYS = 31
"""How long after its start an entry serves: its rows before a run's read start are read for nothing."""

FILE_ROW = "file_row"
"""An entry's column: the row's 1-based number in its input file (its `SOURCE_ROW` is that plus the
rows of the files before it)."""


ENTRY = ".duckdb"
"""The suffix of an entry: a DuckDB database holding one table, `ENTRY_TABLE`."""

ENTRY_TABLE = "rows"

STORAGE = f"duckdb {duckdb.__version__}"
"""Part of every entry's key: a DuckDB that may not read another version's files writes its own."""

NO_ROWS = ".none"
"""The suffix of an empty marker entry: the file has no rows from the entry's start on (an older
partition of a time-partitioned export), so a run neither reads it nor an entry of it."""


@dataclass
class WindowRows:
    """Which files of a table a run takes from their entries, which have no rows it needs, and which it
    reads (with the entry each would get; none without a cache folder)."""

    name: str
    start: pd.Timestamp
    offsets: dict[Path, int]
    counts: dict[Path, int]
    cached: dict[Path, Path] = field(default_factory=dict)
    empty: dict[Path, Path] = field(default_factory=dict)
    pending: dict[Path, Path | None] = field(default_factory=dict)
    attached: dict[Path, str] = field(default_factory=dict)
    """The database name each cached file's entry is attached as (`attach`)."""


def plan(
    folder: Path | None, name: str, files: list[Path], counts: list[int], start: pd.Timestamp, code: str
) -> WindowRows:
    """Match each file (with its row count) to a usable entry in `folder`: one of its current contents
    and `code` (the SQL that checks and casts its rows) whose start is on or at most `REUSE_DAYS`
    before `start` (the latest such)."""
    offsets = dict(zip(files, accumulate(counts, initial=0), strict=False))
    rows = WindowRows(name, start, offsets, dict(zip(files, counts, strict=True)))
    entries: dict[str, list[tuple[pd.Timestamp, str]]] = {}  # entry stem -> (start, suffix) of its entries
    for entry in folder.iterdir() if folder is not None and folder.is_dir() else ():
        stem, _, rest = entry.name.partition(".from-")
        day, dot, suffix = rest.partition(".")
        if dot + suffix not in (ENTRY, NO_ROWS):  # another format's (an earlier version's)
            continue
        with suppress(ValueError):
            entries.setdefault(stem, []).append((pd.Timestamp(day), dot + suffix))
    for file in files:
        if folder is None:
            rows.pending[file] = None
            continue
        stem = entry_stem(file_identity(file), f"{STORAGE}\n{code}")
        usable = [e for e in entries.get(stem, []) if start - pd.Timedelta(days=REUSE_DAYS) <= e[0] <= start]
        if usable:
            latest, suffix = max(usable)
            kind = rows.empty if suffix == NO_ROWS else rows.cached
            kind[file] = folder / _entry_name(stem, latest, suffix)
        else:
            rows.pending[file] = folder / _entry_name(stem, start)
    return rows


def _entry_name(stem: str, start: pd.Timestamp, suffix: str = ENTRY) -> str:
    return f"{stem}.from-{start:%Y-%m-%d}{suffix}"


def attach(con: duckdb.DuckDBPyConnection, rows: WindowRows) -> None:
    """Attach each cached file's entry to `con` read-only, for the connection's lifetime (its rows are
    read where they are). A file whose entry cannot be opened or is damaged (`_damage`), or was removed
    by a concurrent run, is read instead, and its entry written again: a cache costs time, never the
    result."""
    for index, (file, entry) in enumerate(list(rows.cached.items())):
        alias = f"__window_{rows.name}_{index}"
        try:
            con.execute(f'ATTACH ? AS "{alias}" (READ_ONLY)', [str(entry)])
            problem = _damage(con, alias, rows.name, entry)
        except (duckdb.Error, OSError) as exc:
            problem = str(exc).splitlines()[0]
        if problem is not None:
            log.warning("kept %s rows %s unreadable (%s): reading %s", rows.name, entry, problem, file)
            con.execute(f'DETACH DATABASE IF EXISTS "{alias}"')
            del rows.cached[file]
            rows.pending[file] = entry.with_name(_entry_name(entry.name.partition(".from-")[0], rows.start))
        else:
            rows.attached[file] = alias


HEADERS = 3 * 4096
"""The bytes of a DuckDB database file before its first block (its main header and two database headers)."""


def _damage(con: duckdb.DuckDBPyConnection, alias: str, name: str, entry: Path) -> str | None:
    """What an attached entry's catalog shows wrong without reading its rows: a table without the columns
    a run reads (another table's entry: a binder error), or a file shorter than its blocks (cut short: its
    rows would fail to read in the middle of the run)."""
    con.execute(f'SELECT {_columns(name)}, "{FILE_ROW}" FROM "{alias}"."{ENTRY_TABLE}" LIMIT 0')
    query = "SELECT block_size, total_blocks FROM pragma_database_size() WHERE database_name = ?"
    ((block_size, blocks),) = con.execute(query, [alias]).fetchall()
    size, needed = entry.stat().st_size, HEADERS + blocks * block_size
    return f"{size} bytes, its {blocks} blocks take {needed}" if size < needed else None


def _columns(name: str) -> str:
    return ", ".join(f'"{c.name}"' for c in TABLES[name].columns)


def cached_rows(rows: WindowRows) -> str | None:
    """A query of the cached files' rows from the run's read start on, canonical, each with its
    `SOURCE_ROW`, read in place from their attached entries (`attach`); None when no file has one."""
    if not rows.attached:
        return None
    columns = _columns(rows.name)
    since = f'"{TABLES[rows.name].time_column}" >= {DUCKDB.timestamp(rows.start)}'
    return " UNION ALL ".join(
        f'SELECT {columns}, "{FILE_ROW}" + {rows.offsets[file]} AS "{SOURCE_ROW}" '
        f'FROM "{alias}"."{ENTRY_TABLE}" WHERE {since}'
        for file, alias in rows.attached.items()
    )


def store(con: duckdb.DuckDBPyConnection, rows: WindowRows, canonical: str) -> None:
    """Write the entries of the files read this run from `canonical` (their rows checked and cast by
    now; a file without rows gets an empty marker, `NO_ROWS`), then mark the run's entries used and
    remove the files' other entries and those unused for long (`summary_cache.prune`). A cache that
    cannot be written costs the next run time, never its result: a warning, no error."""
    targets = {file: target for file, target in rows.pending.items() if target is not None}
    kept = [*rows.cached.values(), *rows.empty.values()]
    if not targets and not kept:
        return
    folder = next(iter([*targets.values(), *kept])).parent
    try:
        creating(folder).mkdir(parents=True, exist_ok=True)
        written = _write_entries(con, rows, canonical, targets) if targets else []
        prune(folder, [*kept, *written])
    except (OSError, duckdb.Error) as exc:  # DuckDB reports a full disk as its own error
        log.warning("checked %s rows not cached in %s: %s", rows.name, folder, exc)


def _write_entries(
    con: duckdb.DuckDBPyConnection, rows: WindowRows, canonical: str, targets: dict[Path, Path]
) -> list[Path]:
    """Each read file's rows from `canonical` to its entry (an empty marker for a file without rows)."""
    columns = _columns(rows.name)
    files = list(rows.offsets)  # in file order: offsets ascending
    numbers = con.execute(f'SELECT "{SOURCE_ROW}" FROM "{canonical}"').fetchnumpy()[SOURCE_ROW]
    # A row numbered n is of the last file whose offset is below n (a file's rows are offset + 1 on).
    with_rows = {files[i] for i in np.unique(np.searchsorted([rows.offsets[f] for f in files], numbers) - 1)}
    written = []
    for file, target in targets.items():
        if file not in with_rows:
            written.append(target.with_suffix(NO_ROWS))
            creating(written[-1]).touch()
            continue
        offset = rows.offsets[file]
        _write_entry(
            con,
            f'SELECT {columns}, "{SOURCE_ROW}" - {offset} AS "{FILE_ROW}" FROM "{canonical}" '
            f'WHERE "{SOURCE_ROW}" > {offset} AND "{SOURCE_ROW}" <= {offset + rows.counts[file]} '
            f'ORDER BY "{SOURCE_ROW}"',
            target,
        )
        written.append(target)
    return written


def _write_entry(con: duckdb.DuckDBPyConnection, select: str, target: Path) -> None:
    """The rows of `select` as `target`'s table, written to a temporary database that is closed (all
    of it checkpointed into the one file) and renamed: the entry is whole or absent."""
    temporary = temporary_sibling(target)
    try:
        con.execute('ATTACH ? AS "__window_entry"', [str(temporary)])
        try:
            con.execute(f'CREATE TABLE "__window_entry"."{ENTRY_TABLE}" AS {select}')
        finally:
            con.execute('DETACH "__window_entry"')
        os.replace(temporary, creating(target))
    finally:
        for leftover in (temporary, temporary.with_name(f"{temporary.name}.wal")):
            with suppress(FileNotFoundError):
                leftover.unlink()
