"""Decomposable summaries of the big event tables' files, kept between scoring runs.

What a date's features take from rows older than its windows (`pipeline/recent_history.py`) comes
from two summaries of each input file, valid for every date: per (account, day) the first and last
timestamp (`days`), and the workflow step rows (`steps`). A date keeps the entries of the days
before its read start. They are computed by one scan of the files that need it and, with a cache
folder (the workdir's), stored there, one parquet file per input file and kind, named by a digest
of the file's identity (`file_identity`) and of the SQL that computes the entry from it (column
types included): an entry can never describe other contents or other code, so a daily run
summarises only the files it has not seen before, and a changed, added or removed file is
summarised again or simply no longer read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from features.contract import TABLES
from features.sql.dialect import DUCKDB
from pipeline.io import literal_glob, remove_stale_temporaries, temporary_sibling
from pipeline.leftovers import creating, remove_when_done

log = logging.getLogger(__name__)

FILE = "__file"
"""The column naming each row's file where a table's files are read with it: not DuckDB's own `filename`, a
name an export's extra column may have (a document product's usage events), whose file DuckDB refused to read."""

ENTRY_COLUMNS = {
    "days": ("account_id", "ts"),
    "steps": ("account_id", "workflow_id", "ts", "feature", "step"),
}
"""Per kind of entry, the canonical columns it is computed from."""


def entry_kinds(name: str, columns: set[str] | dict[str, str]) -> tuple[str, ...]:
    """The entries a table needs: workflow steps only for usage events with workflows."""
    return ("days", "steps") if name == "usage_events" and {"workflow_id", "step"} <= set(columns) else ("days",)


def entry_sql(kind: str, name: str, types: dict[str, str], source: str) -> str:
    """The entries of `kind` of the raw rows of `source` (a view with `FILE`), per file, canonical."""
    contract = TABLES[name]
    select = ", ".join(contract.column(c).select_sql(types.get(c)) for c in ENTRY_COLUMNS[kind])
    rows = f'SELECT {FILE}, {select} FROM "{source}"'
    if kind == "days":
        return (
            f"SELECT {FILE}, account_id, {DUCKDB.day_of('ts')} AS day, min(ts) AS first_ts, max(ts) AS last_ts "
            f"FROM ({rows}) r WHERE ts IS NOT NULL GROUP BY {FILE}, account_id, day"
        )
    return f"SELECT * FROM ({rows}) r WHERE workflow_id IS NOT NULL AND step IS NOT NULL AND ts IS NOT NULL"


def summary_entries(
    con: duckdb.DuckDBPyConnection,
    name: str,
    types: dict[str, str],
    files: list[Path],
    cache: Path | None,
) -> dict[str, str]:
    """Per kind, a query of the entries of every file of `name` (without `FILE`): the cached ones
    read, the others computed from `__whole_<name>` (the files read together) and, with `cache`, stored.

    Temporary objects are named `__fresh_<name>_<kind>`, `__cached_<name>_<kind>`, `__pending_<name>`
    (`drop_entries` removes them)."""
    kinds = entry_kinds(name, types)
    folder = cache / name if cache is not None else None
    targets: dict[Path, dict[str, Path]] = {}
    if folder is not None:
        for file in files:
            identity = file_identity(file)
            targets[file] = {
                kind: _entry_path(folder, identity, kind, entry_sql(kind, name, types, "")) for kind in kinds
            }
    present = {p.name for p in folder.iterdir()} if folder is not None and folder.is_dir() else set()
    cached = [f for f in targets if all(p.name in present for p in targets[f].values())]
    if cached:
        fresh = {kind: con.sql(entry_sql(kind, name, types, f"__whole_{name}")) for kind in kinds}
        shapes = {kind: _shape(relation.project(f"* EXCLUDE ({FILE})")) for kind, relation in fresh.items()}
        cached = [f for f in cached if _sound(con, shapes, targets[f])]
    pending = [f for f in files if f not in set(cached)]
    queries: dict[str, list[str]] = {kind: [] for kind in kinds}
    if pending:
        used = {c for columns in ENTRY_COLUMNS.values() for c in columns}
        source = f"__whole_{name}" if not cached else typed_view(con, f"__pending_{name}", pending, types, used)
        for kind in kinds:
            con.execute(f'CREATE TEMP TABLE "__fresh_{name}_{kind}" AS {entry_sql(kind, name, types, source)}')
            queries[kind].append(f'SELECT * EXCLUDE ({FILE}) FROM "__fresh_{name}_{kind}"')
        if folder is not None:
            _store(con, name, kinds, {f: targets[f] for f in pending}, folder)
    for kind in kinds if cached else ():
        con.read_parquet([literal_glob(targets[f][kind]) for f in cached]).create_view(f"__cached_{name}_{kind}")
        queries[kind].append(f'SELECT * FROM "__cached_{name}_{kind}"')
    if folder is not None and folder.is_dir():
        try:
            prune(folder, [p for paths in targets.values() for p in paths.values()])
        except OSError as exc:  # a read-only cache still serves: it only cannot be tidied
            log.warning("summaries of the older %s rows not tidied in %s: %s", name, folder, exc)
    return {kind: " UNION ALL ".join(parts) for kind, parts in queries.items()}


Shape = tuple[list[str], list[str]]
"""A relation's column names and types."""


def _shape(relation: duckdb.DuckDBPyRelation) -> Shape:
    return relation.columns, [str(t) for t in relation.types]


def _sound(con: duckdb.DuckDBPyConnection, shapes: dict[str, Shape], entries: dict[str, Path]) -> bool:
    """Whether each of a file's entries opens as parquet with the columns and types of its kind (`shapes`),
    from its footer alone (what a truncated, overwritten or half-copied entry lacks). A damaged entry costs
    the run the file's summaries, computed again and stored over it: a warning naming it, never an error."""
    for kind, entry in entries.items():
        try:
            found = con.read_parquet(literal_glob(entry))
            sound = _shape(found) == shapes[kind]
            problem = f"columns {found.columns}, not {shapes[kind][0]}"
        except duckdb.Error as exc:
            sound, problem = False, str(exc).splitlines()[0]
        if not sound:
            log.warning("kept summary %s is damaged (%s): summarised again", entry, problem)
            return False
    return True


def drop_entries(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop what `summary_entries` created for `name`."""
    for kind in ENTRY_COLUMNS:
        con.execute(f'DROP VIEW IF EXISTS "__cached_{name}_{kind}"')
        con.execute(f'DROP TABLE IF EXISTS "__fresh_{name}_{kind}"')
    con.execute(f'DROP VIEW IF EXISTS "__pending_{name}"')


def typed_view(
    con: duckdb.DuckDBPyConnection, view: str, files: list[Path], types: dict[str, str], columns: Iterable[str]
) -> str:
    """`view`: the rows of some of a table's files (with `FILE` and `file_row_number`), their
    `columns` in the types of all the files read together (`types`, as `__whole_<name>` has them;
    NULL where these files lack one), so what is computed from them equals what a whole read gives."""
    relation = read_numbered(con, [literal_glob(f) for f in files])
    have, wanted = set(relation.columns), set(columns)
    select = ", ".join(
        f'CAST("{column}" AS {raw_type}) AS "{column}"' if column in have else f'CAST(NULL AS {raw_type}) AS "{column}"'
        for column, raw_type in types.items()
        if column in wanted
    )
    relation.project(f"{FILE}, file_row_number, {select}").create_view(view)
    return view


def read_numbered(con: duckdb.DuckDBPyConnection, patterns: list[str]) -> duckdb.DuckDBPyRelation:
    """The parquet files of `patterns` read together (`union_by_name`), each row with its file (`FILE`) and its
    position in it (`file_row_number`)."""
    return con.sql(
        f"SELECT * FROM read_parquet($patterns, union_by_name=true, file_row_number=true, filename='{FILE}')",
        params={"patterns": patterns},
    )


def file_identity(file: Path) -> dict[str, object]:
    """What tells a file's contents apart without reading its rows: where it is, its size, its
    modification and change times, its inode, and a digest of its parquet footer (row counts, row
    group statistics and offsets)."""
    stat = file.stat()
    with file.open("rb") as handle:
        handle.seek(-8, os.SEEK_END)
        length = int.from_bytes(handle.read(4), "little")
        handle.seek(-8 - length, os.SEEK_END)
        footer = hashlib.sha256(handle.read(length)).hexdigest()
    return {
        "path": str(file.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "inode": stat.st_ino,
        "footer": footer,
    }


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _entry_path(folder: Path, identity: dict[str, object], kind: str, sql: str) -> Path:
    """`<path digest>-<contents digest>.<kind>.parquet`: the name says which file, which contents, which code."""
    return folder / f"{entry_stem(identity, sql)}.{kind}.parquet"


def entry_stem(identity: dict[str, object], sql: str) -> str:
    """`<path digest>-<contents digest>`: which file, which contents, which code."""
    return f"{digest(identity['path'])[:16]}-{digest({'sql': sql, **identity})[:32]}"


def _store(
    con: duckdb.DuckDBPyConnection,
    name: str,
    kinds: tuple[str, ...],
    targets: dict[Path, dict[str, Path]],
    folder: Path,
) -> None:
    """Write each file's fresh entries to its entry path (a temporary file renamed: whole or absent).
    A cache that cannot be written costs the next run time, never its result: a warning, no error."""
    try:
        creating(folder).mkdir(parents=True, exist_ok=True)
        for kind in kinds:
            table = f'"__fresh_{name}_{kind}"'
            rows = con.sql(f"SELECT * FROM {table} ORDER BY {FILE}").to_arrow_table().drop_columns([FILE])
            ranges, offset = {}, 0
            for file, count in con.execute(f"SELECT {FILE}, count(*) FROM {table} GROUP BY 1 ORDER BY 1").fetchall():
                ranges[file], offset = (offset, count), offset + count
            for file, paths in targets.items():
                write_entry(rows.slice(*ranges.get(str(file), (0, 0))), paths[kind])
    except OSError as exc:
        log.warning("summaries of the older %s rows not cached in %s: %s", name, folder, exc)


def write_entry(table, target: Path) -> None:
    """Write `table` to `target` through a temporary sibling: the entry is whole or absent."""
    temporary = temporary_sibling(target)
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, creating(target))
    finally:
        with suppress(FileNotFoundError):
            temporary.unlink()


UNUSED_DAYS = 31
"""Entries no run has used for this long are removed: those of input files deleted or rewritten under
new names (an export that replaces its files daily would otherwise add a copy of its window every
day), or of another data folder scored with the same workdir (it only recomputes them)."""


def prune(folder: Path, entries: Iterable[Path]) -> None:
    """Keep `entries` (the run's, marked used now); remove the other entries of their input files
    (earlier contents, or of an earlier start: superseded), entries unused for `UNUSED_DAYS` -- both once
    the command succeeds (`remove_when_done`) -- and temporaries of writers that died."""
    current = {p.name for p in entries}
    files = {n.split("-")[0] for n in current}
    for name in current:
        with suppress(FileNotFoundError):
            os.utime(folder / name)
    unused_since = time.time() - UNUSED_DAYS * 86_400
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            remove_stale_temporaries(folder / entry.name[1:].split(".churn-")[0])
        elif entry.name not in current and (entry.name.split("-")[0] in files or _modified(entry) < unused_since):
            remove_when_done(entry)  # once the command succeeds: a failed one leaves the cache as it was


def _modified(entry: Path) -> float:
    try:
        return entry.stat().st_mtime
    except FileNotFoundError:  # removed by a concurrent run
        return float("inf")
