"""Load a data directory into DuckDB views with the canonical types of the data contract.

Event tables stay columnar: each is a DuckDB view over its parquet files (CSV is parsed once into
a DuckDB table), so tens of millions of events are never copied into pandas. Only the small
`accounts` and `subscriptions` tables are also kept as pandas frames. The canonical views leave
out the rows validation excludes (unknown accounts, dates after the data end), so no later stage
can see them.

File names never become SQL text: files reach DuckDB through its Python API or as bound
parameters, with glob characters escaped so a name means exactly that one file.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Self

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract import EVENT_TABLES, TABLES
from features.errors import DataContractError, counted
from features.sql.dialect import DUCKDB, FRACTIONAL, SPACES
from features.table import ACCOUNT_ID
from pipeline.io import literal_glob
from pipeline.recent_history import RECENT_TABLES, create_recent_views, create_summary
from pipeline.validation import (
    SOURCE_ROW,
    ValidationReport,
    canonical_view,
    partition_keys,
    stored_rows,
    time_limit,
    validate,
    with_checked,
)
from pipeline.window_cache import WindowRows, cached_rows, store

Progress = Callable[[str, int, int], None]
RAGGED = re.compile(r"Line: (\d+); Original Line:;? (.*); Expected Number of Columns: (\d+) Found: (\d+)$")
"""DuckDB's error on a CSV row with more or fewer fields than the header (`duckdb_reason`'s spelling; after a
blank line the row's text starts on a line of its own, so its label ends the line: `Original Line:;`)."""
CSV_OPTIONS = "auto_detect=false, header=true, delim=',', quote='\"', escape='\"'"
"""Commas and doubled quotes, never guessed; the columns (text, to report bad values) are the header's names
(`header_names`), so a row with more or fewer fields than the header is an error naming its line (DuckDB's
guess once took such a row for the header)."""
PARQUET_MAGIC = b"PAR1"  # a parquet file's first and last 4 bytes
PARQUET_MIN_BYTES = 12  # the two markers and the footer's length: anything shorter is not parquet


@dataclass
class Dataset:
    """The input tables of one data directory, validated and typed.

    `con` holds one view per present table, named as the table, with every contract column
    (optional ones a file lacked are filled with their default); `present_columns` says which
    columns the data really had.
    """

    con: duckdb.DuckDBPyConnection
    accounts: pd.DataFrame
    subscriptions: pd.DataFrame
    event_tables: tuple[str, ...]
    present_columns: dict[str, tuple[str, ...]]
    data_end: pd.Timestamp
    report: ValidationReport
    sources: dict[str, str] = field(default_factory=dict)
    read_from: dict[str, pd.Timestamp] = field(default_factory=dict)
    """Tables read only from a date on (`load_dataset(read_from=...)`): older rows are summarised, not checked."""

    def with_accounts_columns(self, table: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
        """`table` (rows with an `account_id`) with those of `names` that this data's accounts table has and
        `table` lacks, each row given its account's value (as loading kept them: `load_dataset(attributes=)`).

        These are what a scorecard's segment rules read besides features (`csm`, a team's own `tier`): static
        attributes, one value per account with no history of its changes, so every snapshot of an account
        gets today's value, as the account features (segment, industry) do; the point-in-time contract is
        about dated rows and is not at stake. The rule view reads them; the model never does."""
        present = self.present_columns.get("accounts", ())
        wanted = [n for n in names if n in present and n in self.accounts.columns and n not in table.columns]
        if not wanted:
            return table
        by_id = self.accounts.set_index(self.accounts[ACCOUNT_ID].astype(str))
        ids = table[ACCOUNT_ID].astype(str)
        return table.assign(**{name: ids.map(by_id[name]) for name in wanted})

    @property
    def exact_sums(self) -> dict[str, frozenset[str]] | None:
        """Per table, the number columns the features add up as exact decimals, as validation found them."""
        return self.report.exact_sums

    @property
    def first_event(self) -> pd.Timestamp | None:
        """The earliest kept timestamp of the event tables, as validation measured it."""
        tables = self.report.tables
        return min((tables[name].first for name in self.event_tables if tables[name].first is not None), default=None)

    @property
    def empty_event_tables(self) -> tuple[str, ...]:
        """Event tables present with no rows at all (a table read from a date on counts its older rows)."""
        tables = self.report.tables
        return tuple(name for name in self.event_tables if tables[name].rows == 0 and tables[name].first is None)

    @classmethod
    def validated(
        cls,
        con: duckdb.DuckDBPyConnection,
        sources: dict[str, str],
        raw_types: dict[str, dict[str, str]],
        report: ValidationReport,
        **engine_fields: Any,
    ) -> Self:
        """The dataset of validated tables in `con` (each engine's loader ends here): `accounts` and
        `subscriptions` as the driver's frames, in the order every stage expects."""
        return cls(
            con=con,
            accounts=con.execute('SELECT * FROM "accounts" ORDER BY account_id').df(),
            subscriptions=con.execute('SELECT * FROM "subscriptions" ORDER BY account_id, start_date').df(),
            event_tables=tuple(t for t in EVENT_TABLES if t in sources),
            present_columns={name: tuple(types) for name, types in raw_types.items()},
            data_end=report.data_end,
            report=report,
            sources=sources,
            **engine_fields,
        )

    @classmethod
    def from_frames(
        cls,
        tables: Mapping[str, pd.DataFrame],
        data_end: str | pd.Timestamp | None = None,
        grace_days: int = 30,
        now: pd.Timestamp | None = None,
        attributes: Collection[str] = (),
        repeats: bool = False,
    ) -> Dataset:
        """Build a dataset from in-memory tables (tests, notebooks, prepared extracts); `attributes` as in
        `load_dataset`: the accounts columns outside the contract that segment rules read."""
        con = utc_connection()
        sources: dict[str, str] = {}
        for name, frame in tables.items():
            if name not in TABLES:
                continue
            con.register(f"__frame_{name}", frame)
            con.execute(f'CREATE VIEW "__raw_{name}" AS SELECT * FROM "__frame_{name}"')
            sources[name] = f"<in-memory {name}>"
        return _finish(con, sources, data_end, grace_days, now, attributes=attributes, repeats=repeats)


def load_dataset(
    data_dir: str | Path,
    data_end: str | pd.Timestamp | None = None,
    grace_days: int = 30,
    progress: Progress | None = None,
    now: pd.Timestamp | None = None,
    read_from: pd.Timestamp | None = None,
    summary_cache: Path | None = None,
    window_cache: Path | None = None,
    attributes: Collection[str] = (),
    repeats: bool = False,
) -> Dataset:
    """Read every contract table found in `data_dir` (parquet file, CSV file or parquet folder).

    `now` is the run's clock for the future-dated-rows check (default: the current time). With
    `read_from` (scoring: `recent_history.read_start`), the big event tables stored as parquet are
    read and validated from that day on only, their older rows replaced by the few summary rows
    the features of dates from `read_from` + the longest window on need (`pipeline/recent_history.py`),
    computed from per-file summaries kept in `summary_cache` when given (`pipeline/summary_cache.py`);
    the checked rows from `read_from` on of files seen before are taken from `window_cache` when
    given (`pipeline/window_cache.py`).
    When rows from before `read_from` may be excluded as future-dated (the clock or `data_end` is
    earlier), or when the data's end may lie before `read_from` (no row of those tables from it on, or
    every one excluded: a date months past the data), everything is read. `attributes`: columns outside
    the contract that `accounts` keeps if it has them (those a scorecard's segment rules read:
    `with_accounts_columns`). `repeats`: also count event rows repeated exactly (`validate`; `churn
    validate` prints them).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataContractError(f"Data directory {data_dir} does not exist or is not a directory.")
    if read_from is not None and read_from > time_limit(data_end, now)[1]:
        read_from = None  # the summaries would hold rows the time limit excludes
    con = utc_connection()
    sources: dict[str, str] = {}
    recent: dict[str, RecentRead] = {}
    windows: dict[str, WindowRows] = {}
    partitioned: dict[str, frozenset[str]] = {}
    found = [(name, _locate(data_dir, name)) for name in TABLES]
    for done, (name, path) in enumerate(found, start=1):
        if progress:
            progress("reading tables", done, len(found))
        if path is None:
            continue
        files = [] if is_csv(path) else parquet_files(path, name)  # a folder is listed once (it may be remote, or huge)
        if path.is_dir():
            partitioned[name] = partition_keys(file.relative_to(path).parts[:-1] for file in files)
        if read_from is not None and name in RECENT_TABLES and files:
            recent[name] = RecentRead(read_from, files, summary_cache, window_cache)
        window = _create_raw_view(con, name, path, files, recent.get(name))
        if window is not None:
            windows[name] = window
        sources[name] = str(path)
    # Without a row from read_from on (a date past the data's end), or with every such row excluded, where the
    # data ends lies in the older rows, which validation does not see: read everything.
    unbounded = bool(recent) and data_end is None
    if unbounded and not any(_rows_since_start(con, rows) for rows in windows.values()):
        dataset = None
    else:
        dataset = _finish(con, sources, data_end, grace_days, now, recent, windows, attributes, repeats, partitioned)
    if dataset is None or (unbounded and dataset.report.data_end < read_from):
        con.close()
        return load_dataset(data_dir, data_end, grace_days, progress, now, attributes=attributes, repeats=repeats)
    return dataset


def _rows_since_start(con: duckdb.DuckDBPyConnection, rows: WindowRows) -> bool:
    """Whether a table read from a date on has a row from then on (read now or cached). Without one, its
    latest row is an older one, which the data's end must count but validation never sees."""
    if con.execute(f'SELECT 1 FROM "__raw_{rows.name}" LIMIT 1').fetchone():
        return True
    query = cached_rows(rows)
    return query is not None and con.execute(f"SELECT 1 FROM ({query}) LIMIT 1").fetchone() is not None


@dataclass(frozen=True)
class RecentRead:
    """A table read from `start` on: its files, where the summaries of their older rows are kept, and
    where their checked rows from a start on."""

    start: pd.Timestamp
    files: list[Path]
    cache: Path | None
    window_cache: Path | None = None


def utc_connection() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose session time zone is UTC (the contract's naive timestamps are UTC)."""
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    return con


def table_files(name: str) -> tuple[str, ...]:
    """The names table `name` may have in a data folder: parquet, CSV, gzipped CSV (an export's usual
    compression, read as such by both engines), or a folder of parquet files."""
    return (f"{name}.parquet", f"{name}.csv", f"{name}.csv.gz", name)


def is_csv(path: Path | str) -> bool:
    """A table file is CSV, plain or gzipped (`table_files`)."""
    return str(path).endswith((".csv", ".csv.gz"))


def _locate(data_dir: Path, name: str) -> Path | None:
    candidates = [p for p in (data_dir / entry for entry in table_files(name)) if p.exists()]
    if len(candidates) > 1:
        listed = ", ".join(p.name for p in candidates)
        raise DataContractError(f"Table '{name}' is given more than once in {data_dir} ({listed}); keep one.")
    if not candidates:
        refuse_lookalike(str(data_dir), name, (entry.name for entry in data_dir.iterdir()))
    return candidates[0] if candidates else None


COMPRESSED = (".gz", ".gzip", ".bz2", ".xz", ".zst", ".zip", ".snappy", ".lz4")
FORMATS = (".parquet", ".pq", ".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".xlsx", ".xls", ".avro", ".orc")
KNOWN_SUFFIXES = (*COMPRESSED, *FORMATS, ".feather", ".arrow")


def _stem_and_suffixes(entry: str) -> tuple[str, list[str]]:
    """`Usage-Events.CSV.GZ` -> (`usage_events`, [`.csv`, `.gz`]): a name as a table's, its file suffixes."""
    stem, suffixes = entry.lower(), []
    while suffix := next((s for s in KNOWN_SUFFIXES if stem.endswith(s) and len(stem) > len(s)), None):
        stem, suffixes = stem[: -len(suffix)], [suffix, *suffixes]
    return re.sub(r"[\s-]+", "_", stem.strip()), suffixes


def refuse_lookalike(data: str, name: str, entries: Iterable[str]) -> None:
    """Refuse a data folder where table `name` is absent but an entry is plainly it in a form churn does
    not read (`logins.csv.zst`, `Surveys.parquet`, `usage-events.csv`, `logins.json`): read as absent,
    the table's features would silently be left out of every model and score."""
    for entry in sorted(entries):
        stem, suffixes = _stem_and_suffixes(entry)
        if hidden(entry) or stem != name:
            continue
        gzipped_csv = suffixes == [".csv", ".gz"]
        if not gzipped_csv and any(s in COMPRESSED for s in suffixes):
            advice = (
                f"churn reads CSV compressed with gzip ({name}.csv.gz), no other compressed files: decompress it "
                f"to {name}.csv, compress the CSV with gzip or convert it to parquet"
            )
        elif suffixes == [".pq"]:
            advice = f"rename it to {name}.parquet"
        elif suffixes and not gzipped_csv and suffixes[-1] not in (".parquet", ".csv"):
            advice = f"churn does not read {suffixes[-1]} files: convert it to parquet or a comma-separated {name}.csv"
        else:
            advice = f"table names are exact and lower-case: rename it to {name}{''.join(suffixes)}"
        raise DataContractError(
            f"Table '{name}' is not in {data}, but {entry} looks like it: churn reads {name}.parquet, {name}.csv, "
            f"{name}.csv.gz or a folder {name}/ of parquet files; {advice}."
        )


def parquet_files(path: Path, name: str = "") -> list[Path]:
    """The parquet file, or a folder's parquet files at any depth in path order, without the hidden ones; a
    folder of table `name` holding other files is refused (`refuse_unread_parts`)."""
    if not path.is_dir():
        return [path]
    files = [f for f in path.rglob("*") if not any(map(hidden, f.relative_to(path).parts)) and f.is_file()]
    refuse_unread_parts(name, str(path), [str(f.relative_to(path)) for f in files])
    return sorted(f for f in files if f.name.endswith(".parquet"))


def refuse_unread_parts(name: str, folder: str, parts: Iterable[str]) -> None:
    """Refuse a table folder holding files that are not named `*.parquet` (beside hidden ones): both engines
    read only those, so the rows of a `part-1.csv` added to a folder of parquet parts, a Hive part without
    a suffix (`000000_0`) or a `part.PARQUET` would be left out of every feature without a word."""
    unread = sorted(part for part in parts if not part.endswith(".parquet"))
    if unread:
        listed = ", ".join(unread[:3]) + (f" and {len(unread) - 3} more" if len(unread) > 3 else "")
        raise DataContractError(
            f"Table '{name}': folder {folder} holds {counted(len(unread), 'file')} churn does not read ({listed}): "
            "a table folder is read as its parquet files named *.parquet, so those rows would be left out. Convert "
            "each to parquet (a parquet file: rename it to end in .parquet) or move it out of the folder; hidden "
            "files (.name, _name) are not read."
        )


def hidden(name: str) -> bool:
    """A file or folder name a table's parts are never under, as Spark's own listing skips them: a writer's
    `_temporary/` attempts (their rows would be read twice), `.name` files; a partition `_x=1/` is not hidden."""
    return name.startswith(".") or (name.startswith("_") and "=" not in name)


def _create_raw_view(
    con: duckdb.DuckDBPyConnection, name: str, path: Path, files: list[Path], recent: RecentRead | None = None
) -> WindowRows | None:
    """Expose the table at `path` (its parquet `files`) as `__raw_<name>`; CSV is read as text so bad values
    can be reported.

    CSV means comma-separated: the delimiter is not guessed, so a short or truncated file is never
    read as one wide column. With `recent`, parquet rows from its start on only, of the files whose
    checked rows are not kept: the returned plan says which are (`recent_history.create_recent_views`).
    """
    window = None
    try:
        if is_csv(path) and not path.is_dir():
            names = header_names(name, path, csv_header(name, path))
            refuse_case_twins(name, path, names)
            columns = dict.fromkeys(names, "VARCHAR")
            con.execute(
                f'CREATE TABLE "__raw_{name}" AS SELECT * FROM read_csv(?, {CSV_OPTIONS}, columns=?)',
                [literal_glob(path), columns],
            )
        else:
            if not files:
                raise DataContractError(f"Table '{name}': folder {path} holds no .parquet files.")
            # a broken footer is named here, with its file, before DuckDB sees it
            footers = [(str(file), _footer_types(name, file)) for file in files]
            for file, types in footers:
                refuse_case_twins(name, file, types)
            refuse_mixed_ids(name, footers)
            globs = [literal_glob(f) for f in files]
            if recent is None:
                con.read_parquet(globs, union_by_name=True).create_view(f"__raw_{name}")
            else:
                window = create_recent_views(con, name, files, globs, recent.start, recent.window_cache)
        con.execute(f'SELECT * FROM "__raw_{name}" LIMIT 1').fetchall()
    except duckdb.Error as exc:
        reason = duckdb_reason(exc)
        if is_csv(path) and "not utf-8" in reason.lower() and (bad := first_line_not_utf8(path)):
            # DuckDB names the right line number but quotes another line (its buffer's first)
            reason = f"line {bad[0]} is not UTF-8 text: {bad[1]!r} (this file is not utf-8 encoded: save it as UTF-8)"
        elif ragged := RAGGED.search(reason):
            line, text, wanted, found = ragged.groups()
            reason = ragged_reason(int(line), text, int(wanted), int(found))
        raise DataContractError(f"Table '{name}': cannot read {path}: {reason}") from exc
    return window


def ragged_reason(line: int, text: str, wanted: int, found: int) -> str:
    """The problem of a CSV row with more or fewer fields than the header, as both engines say it: `line` and
    `text` as DuckDB gives them (rows numbered from the header's 1, a row's line breaks inside quotes as '; ')."""
    return f"line {line} has {counted(found, 'field')} where the header has {wanted}: {text[:80]!r}"


def csv_header(name: str, path: Path) -> list[str] | None:
    """The fields of a CSV file's first row (None when the file is empty), reading only its lines."""
    with _lines(path) as lines:
        try:
            return next(csv.reader(line.decode("utf-8-sig") for line in lines), None)
        except UnicodeDecodeError as exc:
            raise DataContractError(
                f"Table '{name}': cannot read {path}: its header is not UTF-8 text (save the file as UTF-8)"
            ) from exc
        except (OSError, EOFError) as exc:  # gzip's: a file named .gz that is not gzip, or cut short
            raise DataContractError(f"Table '{name}': cannot read {path}: not a readable gzip file ({exc}).") from exc


def header_names(name: str, source: object, header: list[str | None] | None) -> list[str]:
    """A CSV file's column names from its header row, read alike by both engines: trimmed of Unicode spaces (as
    DuckDB's reader trims them), a blank one named by its position (`column2`); an empty file or a name given
    twice is an error (the engines' readers renamed the second one, so a required column could go unseen)."""
    if header is None:
        raise DataContractError(f"Table '{name}': cannot read {source}: the file is empty (it needs a header row).")
    names = [(field or "").lstrip("\ufeff").strip(SPACES) or f"column{i}" for i, field in enumerate(header)]
    # Every table (a prepared one too) has two columns at least: one name holding another separator is a file
    # saved with it, by a European spreadsheet (';') or as TSV.
    if len(names) == 1 and (separator := next((s for s in ";\t|" if s in names[0]), None)):
        raise DataContractError(
            f"Table '{name}': cannot read {source}: its header is one column, {names[0][:80]!r}: the file "
            f"looks separated by {separator!r}, and churn reads comma-separated CSV (save it with commas, or as "
            "parquet)."
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        listed = ", ".join(f"'{n}'" for n in twice)
        raise DataContractError(f"Table '{name}': cannot read {source}: the header names column {listed} twice.")
    return names


def refuse_case_twins(name: str, source: object, names: Iterable[str]) -> None:
    """Refuse a file with two column names equal but for letter case (`ts` and `TS`): DuckDB reads names
    case-blind, so a CSV of them did not read at all and in parquet the later one was renamed (`ts_1`), the
    first taken for the contract's column: a `TS` before `ts` was read in its place, or reported as misspelt."""
    seen: dict[str, str] = {}
    for column in names:
        if (twin := seen.setdefault(column.casefold(), column)) != column:
            raise DataContractError(
                f"Table '{name}': cannot read {source}: columns {twin!r} and {column!r} differ only in letter "
                "case, and column names are read case-blind, so one would hide the other: rename or drop one."
            )


def first_line_not_utf8(path: Path) -> tuple[int, bytes] | None:
    """The first line of a file (1-based, header included) that is not UTF-8, and its first 80 bytes.

    Line by line is exact: no byte of a multi-byte UTF-8 character is a line feed."""
    with _lines(path) as lines:
        for number, line in enumerate(lines, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number, line.rstrip(b"\r\n")[:80]
    return None


def _lines(path: Path) -> BinaryIO:
    """A CSV file's bytes, decompressed when gzipped (`is_csv`), to read by lines."""
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def _footer_types(name: str, file: Path) -> dict[str, str]:
    """A parquet file's column types (DuckDB's names, lower case: those `refuse_mixed_ids` tells apart), from
    its footer; a broken footer is named with its file."""
    try:
        schema = pq.read_schema(file)
    except (pa.ArrowException, OSError) as exc:
        # a type pyarrow does not read is no damage: its reason stands
        tail = None if isinstance(exc, pa.ArrowNotImplementedError) else _tail(file)
        raise unreadable_parquet(name, file, str(exc), tail) from exc
    return {
        field.name: "varchar"
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        else "double"
        if pa.types.is_floating(field.type) or pa.types.is_decimal(field.type)
        else str(field.type)
        for field in schema
    }


def unreadable_parquet(name: str, file: object, reason: str, tail: bytes | None) -> DataContractError:
    """A parquet file whose footer does not read, named with its file, in the same words on both engines: their
    readers word it each their own way (pyarrow's 'magic bytes not found in footer' or "Couldn't deserialize
    thrift: TProtocolException", parquet-mr's 'Expected magic number at tail, but found [44, 84, 49, 10]'). A
    file whose end cannot be read at all keeps its reader's reason (`tail` None: a permission, a lost
    connection); otherwise `tail`, its last 4 bytes (empty for a file too short to be parquet), says whether it
    is parquet with a damaged footer or not parquet."""
    if tail == PARQUET_MAGIC:
        reason = "its footer, the schema and row index at its end, is damaged"
    elif tail is not None:
        reason = "it does not end with parquet's marker PAR1: a file of another format, or one cut short"
    return DataContractError(f"Table '{name}': cannot read {file}: not a readable parquet file ({reason}).")


def _tail(file: Path) -> bytes | None:
    """The last 4 bytes of a local file, as `unreadable_parquet` takes them."""
    try:
        with file.open("rb") as stream:
            size = stream.seek(0, 2)
            if size < PARQUET_MIN_BYTES:
                return b""
            stream.seek(size - len(PARQUET_MAGIC))
            return stream.read(len(PARQUET_MAGIC))
    except OSError:
        return None


def refuse_mixed_ids(name: str, parts: Iterable[tuple[str, dict[str, str]]]) -> None:
    """Refuse a folder whose parts hold an id column as text in some files and as floating-point numbers in
    others (exports appended by different tools; R writes every number as a double). Both engines unite the
    parts' types as text, and the numbers then read as '136.0', not as account 136: their rows were excluded as
    unknown accounts. Which text a number was meant as is the writer's to say, so the user writes one type.
    `parts`: each file (in path order) with its column types, the engine's names."""
    ids = {column.name for column in TABLES[name].columns if column.type == "id"}
    first: dict[tuple[str, bool], str] = {}
    for file, types in parts:
        for column in ids & set(types):
            kind = types[column].lower()
            if DUCKDB.is_text(kind) or kind.startswith(FRACTIONAL):
                first.setdefault((column, DUCKDB.is_text(kind)), file)
    for column in sorted(ids):
        if (column, True) in first and (column, False) in first:
            raise DataContractError(
                f"Table '{name}': column {column} is text in {first[column, True]} but floating-point numbers in "
                f"{first[column, False]}, which would read as text such as '136.0', not as the ids they are; "
                f"write {column} with one type in every part (text, or integers)."
            )


def duckdb_reason(exc: duckdb.Error) -> str:
    """The informative part of a DuckDB error: its first paragraph without SQL echo or generic advice."""
    paragraph = str(exc).strip().split("\n\n")[0].split("\nPossible fixes:")[0]  # DuckDB's options, not the user's
    lines = [
        line.strip()
        for line in paragraph.splitlines()
        if line.strip() and not line.startswith(("LINE ", "Possible Solution")) and set(line.strip()) != {"^"}
    ]
    text = "; ".join(lines)
    return text if len(text) <= 400 else text[:397] + "..."


def _broken_file(con: duckdb.DuckDBPyConnection, sources: dict[str, str]) -> tuple[str, Path, duckdb.Error] | None:
    """After a read error: the (table, file, error) of the first file that fails on its own, if any."""
    for name, source in sources.items():
        path = Path(source)
        if not path.exists() or is_csv(path):
            continue
        for file in parquet_files(path, name):
            try:
                con.execute("SELECT sum(hash(t)) FROM read_parquet(?) t", [literal_glob(file)]).fetchall()
            except duckdb.Error as exc:
                return name, file, exc
    return None


def _finish(
    con: duckdb.DuckDBPyConnection,
    sources: dict[str, str],
    data_end: str | pd.Timestamp | None,
    grace_days: int,
    now: pd.Timestamp | None = None,
    recent: Mapping[str, RecentRead] | None = None,
    windows: Mapping[str, WindowRows] | None = None,
    attributes: Collection[str] = (),
    repeats: bool = False,
    partitioned: Mapping[str, frozenset[str]] | None = None,
) -> Dataset:
    """Validate the raw views, then define the canonical ones (kept rows only) and collect the small tables.

    The `recent` tables' raw views hold their rows from a date on (of the files whose checked rows
    `windows` does not take from the cache): their canonical views add the summary rows of the older
    ones (`_add_older_summary`). `partitioned`: the keys of the folder tables' hive-style folder names."""
    recent, windows = dict(recent or {}), dict(windows or {})
    checked = {name: query for name, rows in windows.items() if (query := cached_rows(rows)) is not None}
    try:
        raw_types = {
            name: {row[0]: row[1] for row in con.execute(f'DESCRIBE "__raw_{name}"').fetchall() if row[0] != SOURCE_ROW}
            for name in sources
        }
        # raises DataContractError on fatal problems
        report = validate(
            con,
            raw_types,
            data_end,
            grace_days,
            now,
            numbered=frozenset(recent),
            checked=checked,
            kept={"accounts": attributes},
            partitioned=partitioned or {},
            repeats=repeats,
        )
    except duckdb.Error as exc:
        broken = _broken_file(con, sources)
        if broken is not None:
            name, file, error = broken
            raise DataContractError(f"Table '{name}': cannot read {file}: {duckdb_reason(error)}") from exc
        raise DataContractError(f"The input data cannot be read: {duckdb_reason(exc)}") from exc
    for name in (n for n in TABLES if n in raw_types):  # accounts first: the others' kept rows refer to it
        if name in recent:
            if name in windows:  # the read rows passed the checks: kept for the next runs
                store(con, windows[name], stored_rows(name))
            _add_older_summary(con, name, raw_types[name], recent[name], report, checked.get(name))
        else:
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM "{canonical_view(name)}" WHERE {report.keep[name]}')
    return Dataset.validated(
        con, sources, raw_types, report, read_from={name: read.start for name, read in recent.items()}
    )


def _add_older_summary(
    con: duckdb.DuckDBPyConnection,
    name: str,
    types: dict[str, str],
    read: RecentRead,
    report: ValidationReport,
    checked: str | None = None,
) -> None:
    """The canonical table of a table read from `read.start` on: its kept rows (those read this run and
    those of `checked`, the rows checked in an earlier run), plus the summary rows of its kept older
    rows. The table's first timestamp and the data end include them."""
    assert report.time_limit is not None and report.time_limit >= read.start  # older rows: none excluded by date
    recent = f'SELECT * EXCLUDE ("{SOURCE_ROW}") FROM "{canonical_view(name)}" WHERE {report.keep[name]}'
    summary = f"__older_{name}"
    create_summary(con, summary, name, read.start, recent, types, read.files, read.cache)
    first, last = con.execute(f'SELECT min(ts), max(ts) FROM "{summary}"').fetchone()
    # The rows read this run (a table: the features scan them several times) become the table in place,
    # summary rows added (a copy of millions of rows costs as much as reading them); the checked rows of
    # earlier runs join them where they are (DuckDB storage, scanned as fast as the table).
    stored = stored_rows(name)
    if report.keep[name] != "true":
        con.execute(f'DELETE FROM "{stored}" WHERE ({report.keep[name]}) IS NOT TRUE')
    con.execute(f'ALTER TABLE "{stored}" DROP COLUMN "{SOURCE_ROW}"')
    con.execute(f'INSERT INTO "{stored}" BY NAME SELECT * FROM "{summary}"')
    con.execute(f'DROP VIEW "{canonical_view(name)}"')
    if checked is None:
        con.execute(f'ALTER TABLE "{stored}" RENAME TO "{name}"')
    else:
        earlier = f'SELECT * EXCLUDE ("{SOURCE_ROW}") FROM ({checked}) c WHERE {report.keep[name]}'
        read = f'SELECT * FROM "{stored}"'
        con.execute(f'CREATE VIEW "{name}" AS {with_checked(read, earlier)}')
    con.execute(f'DROP TABLE "{summary}"')
    stats = report.tables[name]
    if first is not None:
        stats.first = min(stats.first, pd.Timestamp(first)) if stats.first is not None else pd.Timestamp(first)
    if last is not None and report.data_end_source == "latest event" and pd.Timestamp(last) > report.data_end:
        report.data_end = pd.Timestamp(last)  # nothing was read after the start: the data ends before it
