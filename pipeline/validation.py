"""Check raw tables against the data contract.

Fatal problems (missing tables or columns, values of the wrong type or out of range, nulls in
required columns, empty required tables, duplicate accounts, terms that end before they start)
are all collected and raised together as one `DataContractError` naming table, column, problem,
count and example rows, before anything is written.

Rows that cannot be trusted are *excluded*, counted and reported as `DataWarning`s: rows of
accounts missing from `accounts`, and events or terms dated after the run's clock (plus a day)
or after an explicit data end. `ValidationReport.keep` holds, per table, the condition the canonical views
apply, so every later stage (features, labels, the data end, scores, alerts) sees the same rows.
Suspicious but usable rows (events before the account existed, duplicate ticket ids...) are
counted and kept, with the action stated.

The checks are SQL in the subset DuckDB and Spark SQL share (the few spellings that differ come
from the engine's `Dialect`), run by the engine that reads the data (`Runner`: DuckDB here, Spark
in `pipeline/spark_loading.py`), so both engines produce the same report and the same messages.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import duckdb
import pandas as pd

from features.contract import (
    CSAT_RANGE,
    EVENT_TABLES,
    PRIORITIES,
    PRIORITY_WORDS,
    TABLES,
    TRAINING_KINDS,
    Column,
    RawTypes,
    TableContract,
)
from features.errors import DataContractError, counted
from features.labels import term_outcomes_sql
from features.sql.dialect import DUCKDB, Dialect

EXAMPLES = 3
SOURCE_ROW = "__source_row"
"""A raw view that holds only part of its files numbers its rows in this column, as in the whole files."""
FIRST_DATE = pd.Timestamp("1900-01-01")
END_OF_DATES = pd.Timestamp("3000-01-01")  # exclusive: dates from here on (9999-12-31...) are refused
CLOCK_MARGIN = pd.Timedelta(days=1)
EVERY_TERM_AFTER = "accounts whose every term starts after"  # then the time limit: all their terms are excluded


@dataclass(frozen=True)
class DataWarning:
    table: str
    column: str
    problem: str
    count: int
    examples: str
    action: str
    excluded: bool = False  # the rows are left out of the canonical views (and so of everything)

    def __str__(self) -> str:
        said = _counted_problem(self.count, self.problem)
        return f"{self.table}.{self.column}: {said} ({self.examples}) -> {self.action}"


_ONE = {
    "rows for accounts": "row for an account",
    "rows share": "row shares",
    "rows are": "row is",
    "rows have": "row has",
    "values are not ISO-8601 dates": "value is not an ISO-8601 date",
    **{f"values are not {noun}s": f"value is not a {noun}" for noun in ("finite number", "number", "date", "boolean")},
    "values are not integers": "value is not an integer",
    "values are": "value is",
    "terms end on or before their": "term ends on or before its",
    "tickets closed before they were": "ticket closed before it was",
    "invoices due before they were": "invoice due before it was",
    "invoices paid before they were": "invoice paid before it was",
    **{plural: plural[:-1] for plural in ("rows", "terms", "tickets", "invoices", "accounts", "trainings")},
}
"""The heads of the problems said of several rows, as said of one (longest first)."""


def _counted_problem(count: int, problem: str) -> str:
    """'1 value is missing', '3 values are missing': a problem said of several rows, with its count."""
    return counted(count, _said_of_one(problem), problem)


def _said_of_one(problem: str) -> str:
    """A problem said of several rows ('values are missing', 'rows dated after ...') as said of one ('value is
    missing', 'row dated after ...'), for `counted`: the checks name their problems in the plural, which also
    identifies them (`DataWarning.problem`). The head may follow a qualifier ('nps values are not from 0 to 10')."""
    words = problem.split(" ")
    for start in (0, 1):
        rest = " ".join(words[start:])
        head = next((h for h in _ONE if rest == h or rest.startswith(f"{h} ")), None)
        if head is not None:
            return " ".join([*words[:start], _ONE[head] + rest[len(head) :]])
    return problem


@dataclass
class TableStats:
    rows: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    excluded: int = 0


@dataclass
class ValidationReport:
    tables: dict[str, TableStats]
    data_end: pd.Timestamp
    grace_days: int
    accounts: int = 0
    terms: int = 0
    renewals: int = 0
    churns: int = 0
    censored: int = 0
    warnings: list[DataWarning] = field(default_factory=list)
    data_end_source: str = "latest event"
    keep: dict[str, str] = field(default_factory=dict)  # table -> SQL condition on canonical columns
    time_limit: pd.Timestamp | None = None  # rows dated from here on are excluded (keep_condition)
    folder_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # table -> keys only in folder names
    exact_sums: dict[str, frozenset[str]] | None = None  # table -> `SUMMED` columns to add up as decimals; None: all

    def warning_count(self, table: str) -> int:
        return sum(w.count for w in self.warnings if w.table == table)

    @property
    def exclusions(self) -> list[DataWarning]:
        return [w for w in self.warnings if w.excluded]


class Runner(Protocol):
    """Where the checks run: the engine that reads the data (DuckDB here, Spark in `pipeline/spark_loading.py`).

    The checks are SQL in the subset both engines run, with the dialect's spellings; the raw views
    `__raw_<table>` are in place before `validate`."""

    dialect: Dialect

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a query and return its (few) rows."""

    def view(self, name: str, sql: str) -> None:
        """Name a query as a view."""

    def canonical(self, table: str, sql: str, checked: str | None = None) -> None:
        """Define the canonical rows of `table` as `canonical_view(table)`: those of `sql`, plus the rows of
        `checked` when given (`validate`); the engine may store the former and read the latter where they are."""

    def drop(self, name: str) -> None:
        """Drop a view made by `view`."""


class DuckDBRunner:
    """The checks on a DuckDB connection. The canonical rows of the `stored` tables (a part of their
    files read for this run, `recent_history`) become a temporary table (`stored_rows`), cast once for
    the checks, the summaries and the features, and their raw rows are dropped (their values are checked
    by then); rows checked in an earlier run join them in the view, read where they are."""

    dialect = DUCKDB

    def __init__(self, con: duckdb.DuckDBPyConnection, stored: frozenset[str] = frozenset()) -> None:
        self.con = con
        self.stored = stored

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def view(self, name: str, sql: str) -> None:
        self.con.execute(f'CREATE VIEW "{name}" AS {sql}')

    def canonical(self, table: str, sql: str, checked: str | None = None) -> None:
        if table in self.stored:
            self.con.execute(f'CREATE TEMP TABLE "{stored_rows(table)}" AS {sql}')
            self.con.execute(f'DROP TABLE "__raw_{table}"')
            sql = f'SELECT * FROM "{stored_rows(table)}"'
        self.view(canonical_view(table), with_checked(sql, checked))

    def drop(self, name: str) -> None:
        self.con.execute(f'DROP VIEW IF EXISTS "{name}"')


def validate(
    con: duckdb.DuckDBPyConnection | Runner,
    raw_types: RawTypes,
    data_end: str | pd.Timestamp | None,
    grace_days: int = 30,
    now: pd.Timestamp | None = None,
    numbered: frozenset[str] = frozenset(),
    checked: Mapping[str, str] | None = None,
    kept: Mapping[str, Collection[str]] | None = None,
    partitioned: Mapping[str, Collection[str]] | None = None,
    repeats: bool = False,
) -> ValidationReport:
    """Validate the `__raw_<table>` views; raise on fatal problems, return the report otherwise.

    `con` is a DuckDB connection or a `Runner` of another engine; `raw_types` are that engine's
    types of the columns in the files. `now` is the run's clock (naive UTC; default: the current
    time). The raw views of the `numbered` tables number their rows in the files as `SOURCE_ROW`
    (DuckDB: tables holding part of their files; Spark: every table, which has no file order
    otherwise), so examples cite the same rows as a check of the whole files in file order. `checked`
    gives, per numbered table, a query of more of its rows that passed these checks in an earlier
    run, already in canonical form with their `SOURCE_ROW` (`pipeline/window_cache.py`): they join
    the canonical rows unchecked (a check of them finds nothing, so the checks count and cite the
    same rows). `kept` names, per table, columns outside the contract its canonical rows keep as they are
    (the accounts columns a scorecard's segment rules read: `Dataset.with_accounts_columns`). `partitioned`
    names, per folder table, the keys of its hive-style folder names (`partition_keys`). With `repeats`
    (`churn validate`), event rows repeated exactly are counted too (`_repeated_rows`).
    """
    run = DuckDBRunner(con, numbered) if isinstance(con, duckdb.DuckDBPyConnection) else con
    problems = _structural_problems(raw_types, partitioned or {})
    if problems:
        raise DataContractError(_format_problems(problems))
    explicit_end, limit, limit_text = time_limit(data_end, now)
    values, rows, exact = _value_problems(run, raw_types, numbered)
    problems += values + _empty_required_tables(rows)
    problems += _duplicate_accounts(run, _row_number("accounts", numbered))
    problems += _inverted_terms(run, raw_types["subscriptions"], _row_number("subscriptions", numbered))
    if problems:
        raise DataContractError(_format_problems(problems))

    tables = [name for name in TABLES if name in raw_types]  # accounts first: the others' kept rows need it
    _canonical_views(run, raw_types, numbered, checked or {}, kept or {})
    literal = run.dialect.timestamp
    try:
        counts = _row_counts(run, tables, limit)
        exclusions = _exclude(run, tables, limit, limit_text, counts)
        _require_terms(counts["subscriptions"], exclusions)
        excluding = {w.table for w in exclusions if w.excluded}  # tables without exclusions skip the filter
        keep = {
            name: keep_condition(name, limit, "accounts", literal) if name in excluding else "true" for name in tables
        }
        for name in tables:
            condition = keep_condition(name, limit, "__kept_accounts", literal) if name in excluding else "true"
            run.view(f"__kept_{name}", f"SELECT * FROM {run.dialect.quote(f'__typed_{name}')} t WHERE {condition}")
        end, source = _data_end(counts, explicit_end, exclusions)
        report = ValidationReport(
            tables=_table_stats(counts, exclusions),
            data_end=end,
            grace_days=grace_days,
            data_end_source=source,
            keep=keep,
            time_limit=limit,
            # rows checked in an earlier run were not scanned: their sums are taken as needing decimals
            exact_sums=exact | {name: frozenset(SUMMED.get(name, ())) for name in checked or {}},
        )
        report.warnings = [*exclusions, *_warnings(run, raw_types, tables, counts, limit_text)]
        report.warnings += filter(None, [_repeated_rows(run, "subscriptions", REPEATED_TERMS)])  # a small table
        if repeats:
            report.warnings += filter(None, (_repeated_rows(run, name) for name in REPEATS_CHECKED if name in tables))
        report.folder_columns = _folder_columns(raw_types, partitioned or {})
        _term_outcomes(run, report)
    finally:
        for name in reversed(tables):
            run.drop(f"__kept_{name}")
        for name in tables:
            run.drop(f"__typed_{name}")
    return report


def _row_number(table: str, numbered: frozenset[str]) -> str:
    """The 1-based row of the data files a raw row comes from (header not counted), as SQL."""
    return SOURCE_ROW if table in numbered else "row_number() OVER ()"


def canonical_view(table: str) -> str:
    """The view of `table` with the contract's types (every row); loading keeps the trusted ones."""
    return f"__canonical_{table}"


def stored_rows(table: str) -> str:
    """DuckDB: the temporary table of a stored table's canonical rows read this run (`DuckDBRunner`)."""
    return f"__stored_{table}"


def with_checked(sql: str, checked: str | None) -> str:
    """The rows of `sql` and those of `checked` (rows checked in an earlier run, same columns), if any."""
    return sql if checked is None else f"{sql} UNION ALL {checked}"


# ------------------------------------------------------------------------------ fatal problems
def _structural_problems(present_columns: RawTypes, partitioned: Mapping[str, Collection[str]]) -> list[str]:
    problems = [
        f"{name}: required table is missing (expected {name}.parquet, {name}.csv or a folder {name}/)"
        for name, contract in TABLES.items()
        if contract.required and name not in present_columns
    ]
    if not any(name in present_columns for name in EVENT_TABLES):
        problems.append(f"no event table found: at least one of {', '.join(EVENT_TABLES)} is required")
    for name, columns in present_columns.items():
        # A column only in folder names (`partitionBy`): neither engine reads it, so its values would be lost.
        in_folders = [
            c.name for c in TABLES[name].columns if c.name in partitioned.get(name, ()) and c.name not in columns
        ]
        problems += [
            f"{name}.{col}: the column is in the names of the table's folders ({col}=...), not in its files; churn "
            f"reads no value from a folder name: write {col} into the parquet files (Spark: do not partitionBy it)"
            for col in in_folders
        ]
        # 'ARR' or 'Created At' for arr, created_at: an optional column would be left out without a word
        spelt = {_loose_name(found): found for found in columns}
        near = {
            c.name: spelt[_loose_name(c.name)]
            for c in TABLES[name].columns
            if c.name not in columns and _loose_name(c.name) in spelt
        }
        problems += [
            f"{name}.{col}: column names are exact, and the table has {found!r}: rename it to {col}"
            for col, found in near.items()
        ]
        missing = [c for c in TABLES[name].required_columns if c not in columns and c not in [*in_folders, *near]]
        problems += [
            f"{name}.{col}: required column is missing (columns found: {', '.join(columns) or 'none'})"
            for col in missing
        ]
    return problems


def _folder_columns(
    present_columns: RawTypes, partitioned: Mapping[str, Collection[str]]
) -> dict[str, tuple[str, ...]]:
    """Per table, the keys of its folder names outside the contract and not in its files (`partitionBy("month")`):
    read by neither engine, as a contract column there is not (an error: `_structural_problems`); these, a warning."""
    found = {
        name: tuple(sorted(set(partitioned.get(name, ())) - set(columns) - {c.name for c in TABLES[name].columns}))
        for name, columns in present_columns.items()
    }
    return {name: keys for name, keys in found.items() if keys}


def _loose_name(column: str) -> str:
    """A column name as a near miss of a contract name is compared: 'Account ID', 'account-id' are 'account_id'."""
    return "_".join(column.casefold().replace("-", " ").replace(".", " ").split())


def partition_keys(folders: Iterable[Iterable[str]]) -> frozenset[str]:
    """The keys of the hive-style names (`kind=csat`) among the folders of a table's files (each given as its
    folder names below the table's), for `validate`'s `partitioned`."""
    return frozenset(name.split("=", 1)[0] for names in folders for name in names if "=" in name)


def _finite(number: str) -> str:
    """A DOUBLE is neither infinite nor NaN (both engines order NaN above +inf), spelled alike on both."""
    return f"(({number}) BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308)"


def _range_check(column: Column, cast: str, d: Dialect) -> tuple[str, str] | None:
    """(condition, problem) for values of the right type but outside the column's range."""
    if column.type == "timestamp":
        return (
            f"({cast}) IS NOT NULL AND (({cast}) < {d.timestamp(FIRST_DATE)} "
            f"OR ({cast}) >= {d.timestamp(END_OF_DATES)})",
            f"values are outside the supported dates {FIRST_DATE.date()} to "
            f"{(END_OF_DATES - pd.Timedelta(days=1)).date()}",
        )
    if column.type != "float":
        return None
    bounds = [f"({cast}) < {column.minimum!r}"] if column.minimum is not None else []
    bounds += [f"({cast}) > {column.maximum!r}"] if column.maximum is not None else []
    if column.maximum is not None:
        wanted = f"finite numbers from {column.minimum:g} to {column.maximum:g}"
    elif column.minimum is not None:
        wanted = f"finite numbers >= {column.minimum:g}"
    else:
        wanted = "finite numbers"
    condition = f"({cast}) IS NOT NULL AND (NOT {_finite(cast)} OR {' OR '.join(bounds) or 'false'})"
    return condition, f"values are not {wanted}"


def _per_table(run: Runner, scans: list[tuple[str, list[str]]]) -> list[tuple[Any, ...]]:
    """One row of aggregates per (FROM clause, aggregate expressions), all in one query (a Spark job, not
    one per table); rows with fewer expressions are padded with zeros."""
    if not scans:
        return []
    width = max(len(values) for _, values in scans)
    branches = []
    for index, (source, values) in enumerate(scans):
        padded = [*values, *["CAST(0 AS BIGINT)"] * (width - len(values))]
        columns = ", ".join(f"{value} AS v{position}" for position, value in enumerate(padded))
        branches.append(f"SELECT {index} AS scan, {columns} FROM {source}")
    rows = sorted(run.rows(" UNION ALL ".join(branches)), key=lambda row: row[0])
    return [tuple(row[1 : 1 + len(values)]) for row, (_, values) in zip(rows, scans, strict=True)]


SUMMED = {
    "usage_events": ("quantity",),
    "invoices": ("amount", "discount"),
    "subscriptions": ("arr",),
    "support_tickets": ("csat",),
    "surveys": ("score",),
    "touchpoints": ("sentiment",),
}
"""Number columns the features add up. A sum of doubles depends on the order the engine adds them in (threads,
partitions), unless they are whole numbers whose sums stay below 2^53; the others are summed as exact decimals,
DECIMAL(38, 18) (`features.sql.timeline.exact`), whose sums overflow at 10^20."""
WHOLE_SUMS = 2.0**53
SUM_LIMIT = 1e19
"""The most a `SUMMED` column's values may add up to in a table (amount and discount are added together)."""


def _value_problems(
    run: Runner, raw_types: RawTypes, numbered: frozenset[str]
) -> tuple[list[str], dict[str, int], dict[str, frozenset[str]]]:
    """Values that do not convert to the column's type, are out of range, and nulls in required columns;
    the `SUMMED` columns whose values add up beyond `SUM_LIMIT`; the row count of each table; and per table the
    `SUMMED` columns that need exact decimal sums (one scan of each table)."""
    checks = {name: value_checks(TABLES[name], types, run.dialect) for name, types in raw_types.items()}
    summed = {name: [c for c in SUMMED.get(name, ()) if c in types] for name, types in raw_types.items()}
    scans = [
        (
            run.dialect.quote(f"__raw_{name}"),
            ["count(*)", *(f"count_if({cond})" for _, cond, _ in table_checks)]
            + [_sum_kind(TABLES[name].column(c), raw_types[name][c], run.dialect) for c in summed[name]],
        )
        for name, table_checks in checks.items()
    ]
    problems, rows, exact = [], {}, {}
    for (name, table_checks), (total, *counts) in zip(checks.items(), _per_table(run, scans), strict=True):
        rows[name] = total
        for (col, cond, problem), count in zip(table_checks, counts[: len(table_checks)], strict=True):
            if count:
                examples = _examples(run, name, col, cond, _row_number(name, numbered))
                hint = TABLES[name].column(col).hint
                said = f"{name}.{col}: {_counted_problem(count, problem)} ({examples})"
                problems.append(said + (f"; {hint}" if hint else ""))
        kinds = dict(zip(summed[name], counts[len(table_checks) :], strict=True))
        exact[name] = frozenset(col for col, kind in kinds.items() if kind)
        for col, kind in kinds.items():
            if kind == 2:
                largest = _largest(
                    run, name, TABLES[name].column(col), raw_types[name][col], _row_number(name, numbered)
                )
                problems.append(
                    f"{name}.{col}: the values add up to {SUM_LIMIT:g} or more, beyond what churn adds up exactly "
                    f"(largest: {largest}); write them in a larger unit (thousands, GB rather than bytes)"
                )
    return problems, rows, exact


def _sum_kind(column: Column, raw_type: str, d: Dialect) -> str:
    """SQL of an integer (as the counts beside it in `_per_table`) saying how the features can add the column's
    finite values up (others are reported as such): 0 as doubles (whole numbers adding up to less than
    `WHOLE_SUMS`: every sum is exact), 1 as exact decimals, 2 not at all (they add up to `SUM_LIMIT` or more)."""
    cast = column.cast_sql(raw_type, d)
    finite = f"(CASE WHEN {_finite(cast)} THEN {cast} END)"
    total = f"sum(abs({finite}))"
    return (
        f"CASE WHEN {total} >= {SUM_LIMIT!r} THEN 2 WHEN {total} >= {WHOLE_SUMS!r} "
        f"OR count_if({finite} <> floor({finite})) > 0 THEN 1 ELSE 0 END"
    )


def value_checks(contract: TableContract, types: dict[str, str], d: Dialect = DUCKDB) -> list[tuple[str, str, str]]:
    """The single-row checks of a table with these raw column types (the engine's): (column, SQL
    condition of a bad row in dialect `d`, problem). A row passes them or not whatever the other rows
    and tables hold."""
    checks: list[tuple[str, str, str]] = []  # (column, condition, problem)
    for column in contract.columns:
        if column.name not in types:
            continue
        raw = d.quote(column.name)
        not_blank = f"{raw} IS NOT NULL"  # a typed value (a parquet timestamp, a number) is never blank
        if column.type in ("id", "string", "code"):  # blank as the canonical cast trims them: a tab is a value
            not_blank += f" AND {d.trimmed_spaces(raw)} <> ''"
        elif d.is_text(types[column.name]):
            not_blank += f" AND {d.trimmed_text(raw)} <> ''"
        cast = column.cast_sql(types[column.name], d)
        if column.type not in ("id", "string", "code"):
            noun = {"timestamp": "dates", "float": "numbers", "int": "integers", "bool": "booleans"}[column.type]
            checks.append((column.name, f"{not_blank} AND ({cast}) IS NULL", f"values are not {noun}"))
        in_range = _range_check(column, cast, d)
        if in_range is not None:
            checks.append((column.name, *in_range))
        if column.choices:
            allowed = ", ".join(f"'{c}'" for c in column.choices)
            checks.append(
                (column.name, f"({cast}) NOT IN ({allowed})", f"values are not one of {'/'.join(column.choices)}")
            )
        if column.required:
            checks.append((column.name, f"NOT ({not_blank})", "values are missing"))
    for rule in contract.ranges:
        if rule.column not in types:
            continue
        by = contract.column(rule.by)
        code = by.cast_sql(types[by.name], d) if by.name in types else "NULL"
        value = contract.column(rule.column).cast_sql(types[rule.column], d)
        checks.append(
            (
                rule.column,
                f"coalesce({code}, {by.default}) = '{rule.value}' AND {_finite(value)} "
                f"AND (({value}) < {rule.minimum!r} OR ({value}) > {rule.maximum!r})",
                f"{rule.value} values are not from {rule.minimum:g} to {rule.maximum:g}",
            )
        )
    return checks


def _examples(run: Runner, table: str, column: str, condition: str, row: str) -> str:
    """'rows 17, 204: 'yesterday', ''' -- 1-based data rows in file order (header not counted)."""
    d = run.dialect
    rows = run.rows(
        f"SELECT __row, CAST({d.quote(column)} AS {d.string_type}) FROM "
        f"(SELECT {row} AS __row, * FROM {d.quote(f'__raw_{table}')}) r WHERE {condition} "
        f"ORDER BY __row LIMIT {EXAMPLES}"
    )
    return _rows_text(rows)


def _largest(run: Runner, table: str, column: Column, raw_type: str, row: str) -> str:
    """'rows 10, 6: '7e+18', '6e+18'' -- the rows of a number column's largest finite values, largest first."""
    d = run.dialect
    cast = column.cast_sql(raw_type, d)
    rows = run.rows(
        f"SELECT __row, CAST({d.quote(column.name)} AS {d.string_type}) FROM "
        f"(SELECT {row} AS __row, * FROM {d.quote(f'__raw_{table}')}) r WHERE {_finite(cast)} "
        f"ORDER BY abs({cast}) DESC, __row LIMIT {EXAMPLES}"
    )
    return _rows_text(rows)


def _rows_text(rows: list[tuple]) -> str:
    numbers = ", ".join(str(r[0]) for r in rows)
    values = ", ".join(repr(_short(r[1])) if r[1] is not None else "null" for r in rows)
    return f"rows {numbers}: {values}"


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _empty_required_tables(rows: dict[str, int]) -> list[str]:
    problems = []
    for name, contract in TABLES.items():
        if contract.required and name in rows and not rows[name]:
            what = "account" if name == "accounts" else "subscription term"
            problems.append(f"{name}: the table has no rows; at least one {what} is needed")
    return problems


def _duplicate_accounts(run: Runner, row: str) -> list[str]:
    d = run.dialect
    raw, key = d.quote("__raw_accounts"), d.trimmed_spaces(d.quote("account_id"))  # as loading reads the ids
    cond = f"{key} IN (SELECT {key} FROM {raw} GROUP BY 1 HAVING count(*) > 1)"
    count = run.rows(f"SELECT count(*) FROM {raw} WHERE {cond}")[0][0]
    if not count:
        return []
    return [
        f"accounts.account_id: {_counted_problem(count, 'rows share')} a duplicated account_id "
        f"({_examples(run, 'accounts', 'account_id', cond, row)})"
    ]


def _inverted_terms(run: Runner, types: dict[str, str], row: str) -> list[str]:
    d = run.dialect
    start, end = TABLES["subscriptions"].column("start_date"), TABLES["subscriptions"].column("end_date")
    cond = f"({end.cast_sql(types['end_date'], d)}) <= ({start.cast_sql(types['start_date'], d)})"
    count = run.rows(f"SELECT count(*) FROM {d.quote('__raw_subscriptions')} WHERE {cond}")[0][0]
    if not count:
        return []
    return [
        f"subscriptions.end_date: {_counted_problem(count, 'terms end on or before their')} "
        "start_date "
        f"({_examples(run, 'subscriptions', 'end_date', cond, row)})"
    ]


def _format_problems(problems: list[str]) -> str:
    head = f"The input data breaks the data contract ({counted(len(problems), 'problem')}); nothing was written."
    return "\n".join([head, *(f"  - {p}" for p in problems)])


# ------------------------------------------------------------------------------ time sanity
def _naive_utc(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def time_limit(
    explicit: str | pd.Timestamp | None, now: pd.Timestamp | None
) -> tuple[pd.Timestamp | None, pd.Timestamp, str]:
    """(explicit data end, exclusive upper bound for trusted timestamps, that bound in words).

    Rows are trusted up to the run's clock plus a day (time zones, clock skew); with an explicit
    data end, up to that moment, or through that day when it is a plain date.
    """
    clock = _naive_utc(pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)).floor("s")
    clock_limit = clock + CLOCK_MARGIN
    if explicit is None:
        return None, clock_limit, f"the run's clock plus a day ({clock_limit:%Y-%m-%d %H:%M} UTC)"
    try:
        end = _naive_utc(pd.Timestamp(explicit))
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataContractError(f"--data-end: '{explicit}' is not a date (use YYYY-MM-DD).") from exc
    if pd.isna(end):
        raise DataContractError("--data-end: an empty value is not a date (use YYYY-MM-DD).")
    if end > clock_limit:
        raise DataContractError(
            f"--data-end: {end.date()} is after the run's clock ({clock:%Y-%m-%d %H:%M} UTC); the data cannot "
            "end in the future, and a future end would turn renewals not yet due into churn."
        )
    if end < FIRST_DATE:
        raise DataContractError(f"--data-end: {end.date()} is before {FIRST_DATE.date()}, the earliest supported date.")
    limit = end + pd.Timedelta(days=1) if end == end.normalize() else end + pd.Timedelta(microseconds=1)
    return end, limit, f"the data end {end.date() if end == end.normalize() else end}"


def keep_condition(
    table: str,
    limit: pd.Timestamp,
    accounts: str,
    literal: Callable[[pd.Timestamp], str] = DUCKDB.timestamp,
    *,
    scanned: str | None = None,
    column: str | None = None,
) -> str:
    """Rows kept: of a known account and dated before `limit` by the table's time column.

    Accounts themselves are all kept: a created_at in the future only moves the landing date
    to the first term start (`features/labels.py`), while dropping the account would drop
    its terms and events. `literal` spells the timestamp for the engine that applies it.
    A filter or view looks the account up in the table or view `accounts`; a scan of the table
    (aliased `scanned`) that LEFT JOINs the accounts (aliased `accounts`) on account_id checks
    the join's match instead, so both spellings of the predicate come from here. `column` names
    another time column to compare (a summary of the table's rows dates them by its own columns).
    """
    if table == "accounts":
        return "true"
    time_column = column or TABLES[table].time_column
    if scanned is not None:
        return f"{scanned}.{time_column} < {literal(limit)} AND {accounts}.account_id IS NOT NULL"
    return f"{time_column} < {literal(limit)} AND account_id IN (SELECT account_id FROM {accounts})"


@dataclass(frozen=True)
class RowCounts:
    """What one scan of a table's canonical rows tells (`_row_counts`): rows dated from the time limit
    on, rows of unknown accounts, and of the kept rows their count, first and last time and how many
    are dated before their account's created_at."""

    future: int
    unknown: int
    kept: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    before_created: int


def _count_if(condition: str) -> str:
    """count_if that says 0 for an empty table (DuckDB's is NULL over no rows)."""
    return f"coalesce(count_if({condition}), 0)"


def _row_counts(run: Runner, tables: list[str], limit: pd.Timestamp) -> dict[str, RowCounts]:
    """The exclusion counts and kept-row statistics of every table, one scan each (a big event table is
    read once), in one query."""
    d = run.dialect
    limit_sql = d.timestamp(limit)
    scans = []
    for name in tables:
        time = f"t.{TABLES[name].time_column}"
        if name == "accounts":  # every account is kept
            values = [_count_if(f"{time} >= {limit_sql}"), "0", "count(*)", f"min({time})", f"max({time})", "0"]
            source = f"{d.quote(canonical_view(name))} t"
        else:
            kept = keep_condition(name, limit, "a", d.timestamp, scanned="t")
            values = [
                _count_if(f"{time} >= {limit_sql}"),
                _count_if(f"{time} < {limit_sql} AND a.account_id IS NULL"),
                _count_if(kept),
                f"min({time}) FILTER (WHERE {kept})",
                f"max({time}) FILTER (WHERE {kept})",
                _count_if(f"{kept} AND {time} < a.created_at") if TABLES[name].is_event else "0",
            ]
            # account ids are unique and never null here (fatal problems otherwise): a join finds each row's account
            accounts = f"(SELECT account_id, created_at FROM {d.quote(canonical_view('accounts'))})"
            source = f"{d.quote(canonical_view(name))} t LEFT JOIN {accounts} a ON a.account_id = t.account_id"
        scans.append((source, values))
    counts = {}
    for name, (future, unknown, kept_rows, first, last, before_created) in zip(
        tables, _per_table(run, scans), strict=True
    ):
        counts[name] = RowCounts(
            future,
            unknown,
            kept_rows,
            pd.Timestamp(first) if first is not None else None,
            pd.Timestamp(last) if last is not None else None,
            before_created,
        )
    return counts


def _exclude(
    run: Runner,
    tables: list[str],
    limit: pd.Timestamp,
    limit_text: str,
    counts: dict[str, RowCounts],
) -> list[DataWarning]:
    """The rows the canonical views leave out, with examples: future-dated, unknown accounts."""
    found: list[DataWarning | None] = []
    limit_sql = run.dialect.timestamp(limit)
    for name in tables:
        time_column = TABLES[name].time_column
        found.append(
            _warning(
                run,
                name,
                time_column,
                f"t.{time_column} >= {limit_sql}",
                f"rows dated after {limit_text}",
                "kept: the account lands at its first term start instead"
                if name == "accounts"
                else "excluded: not used for features, labels, scores or the end of the data",
                excluded=name != "accounts",
                count=counts[name].future,
            )
        )
    known = f"SELECT account_id FROM {run.dialect.quote('__typed_accounts')}"
    for name in tables:
        if name == "accounts":
            continue
        time_column = TABLES[name].time_column
        unknown = f"t.{time_column} < {limit_sql} AND t.account_id NOT IN ({known})"
        warning = _warning(
            run,
            name,
            "account_id",
            unknown,
            "rows for accounts not in accounts",
            "excluded: no account to attach them to (no features, scores or alerts)",
            excluded=True,
            count=counts[name].unknown,
        )
        if warning is not None:
            warning = replace(warning, action=warning.action + _lookalike_ids(run, name, unknown))
        found.append(warning)
    return [w for w in found if w is not None]


def _lookalike_ids(run: Runner, table: str, unknown: str) -> str:
    """A hint when rows of unknown accounts (`unknown`, on `__typed_<table>` t) name known ones but for leading
    zeros, a zero fraction or letter case -- one export pads the ids ('00042') or writes them as numbers (42,
    42.0), or in other case -- so the user fixes the export instead of losing the table's rows; '' otherwise.
    The ids are never matched so: 'A7' and 'a7', or '007' and '7', may well be different accounts."""
    d = run.dialect

    def loose(column: str) -> str:  # '007', '7.0' (an id exported from a float column as text) and '7'
        return f"upper(trim(LEADING '0' FROM regexp_replace({column}, '[.]0+$', '')))"

    accounts = d.quote("__typed_accounts")
    rows = run.rows(
        f"SELECT t.__row, t.account_id, a.account_id FROM {d.quote(f'__typed_{table}')} t "
        f"JOIN {accounts} a ON {loose('a.account_id')} = {loose('t.account_id')} WHERE {unknown} "
        "ORDER BY t.__row, a.account_id LIMIT 1"
    )
    if not rows:
        return ""
    count = run.rows(
        f"SELECT count(*) FROM {d.quote(f'__typed_{table}')} t WHERE {unknown} "
        f"AND {loose('t.account_id')} IN (SELECT {loose('account_id')} FROM {accounts})"
    )[0][0]
    row, theirs, ours = rows[0]
    return (
        f"; {count:,} of them would match an account's id but for leading zeros, a '.0' or letter case (row {row}: "
        f"{theirs!r}, accounts has {ours!r}): write the ids alike in every table"
    )


def _require_terms(terms: RowCounts, exclusions: list[DataWarning]) -> None:
    """Refuse data whose every subscription term is excluded: no account can then be labelled or scored, and
    each command would fail later for a reason it cannot see (no snapshot dates, nothing to score)."""
    if terms.kept:
        return
    why = "; ".join(str(w) for w in exclusions if w.table == "subscriptions")
    problem = f"subscriptions: every term is excluded, so no account can be labelled or scored: {why}"
    raise DataContractError(_format_problems([problem]))


def _data_end(
    counts: dict[str, RowCounts], explicit: pd.Timestamp | None, exclusions: list[DataWarning]
) -> tuple[pd.Timestamp, str]:
    """The end of observed data: the explicit date, else the latest kept event (SPEC: event tables only).

    Term starts do not count: a renewal booked ahead of time would otherwise turn every later term
    end without a booked renewal into an observed churn while the events say nothing yet. Data whose
    every event row is excluded is refused with the exclusions (ids written otherwise than in
    `accounts`, rows in the future): the report that would name them is never printed, and --data-end
    alone would only score accounts without a single event."""
    if explicit is not None:
        return explicit, "--data-end"
    latest = [c.last for name, c in counts.items() if TABLES[name].is_event and c.last]
    if not latest:
        why = "; ".join(str(w) for w in exclusions if w.excluded and TABLES[w.table].is_event)
        raise DataContractError(
            "The input data has no dated event rows left to tell where it ends (every event is missing, "
            "excluded or in the future)"
            + (f": {why}. Fix those rows, or pass" if why else "; pass")
            + " --data-end YYYY-MM-DD."
        )
    return max(latest), "latest event"


# ------------------------------------------------------------------------------ kept rows
def canonical_select(name: str, types: dict[str, str], d: Dialect = DUCKDB, kept: Collection[str] = ()) -> str:
    """The select list casting a table's raw columns (`types`) to the contract's (absent ones: defaults),
    then the `kept` columns outside the contract that the table has, as they are (`kept_columns`)."""
    return ", ".join(
        [c.select_sql(types.get(c.name), d) for c in TABLES[name].columns]
        + [d.quote(column) for column in kept_columns(name, types, kept)]
    )


def kept_columns(name: str, types: dict[str, str], wanted: Collection[str]) -> list[str]:
    """Those of `wanted` that table `name` has (`types`) outside its contract; a name equal to a contract
    column's but for case is not kept (SQL engines would take the two for one column)."""
    contract = {column.name.casefold() for column in TABLES[name].columns}
    return [column for column in wanted if column in types and column.casefold() not in contract]


def _canonical_views(
    run: Runner,
    raw_types: RawTypes,
    numbered: frozenset[str],
    checked: Mapping[str, str],
    kept: Mapping[str, Collection[str]],
) -> None:
    """The canonical casts of every table, defined once (`canonical_view`), and for the exclusion and
    warning checks a temporary view of them numbered in file order (the rows an example cites).

    A numbered table's canonical rows keep their `SOURCE_ROW`, with the table's `checked` rows
    (DuckDB stores the others: `DuckDBRunner`). Rows are in no particular order (a parallel read of
    several files has none either); examples are ordered by `SOURCE_ROW`."""
    q = run.dialect.quote
    for name, types in raw_types.items():
        select = canonical_select(name, types, run.dialect, kept.get(name, ()))
        numbers = f", {q(SOURCE_ROW)}" if name in numbered else ""
        run.canonical(name, f"SELECT {select}{numbers} FROM {q(f'__raw_{name}')}", checked.get(name))
        run.view(f"__typed_{name}", f"SELECT {_row_number(name, numbered)} AS __row, * FROM {q(canonical_view(name))}")


def _table_stats(counts: dict[str, RowCounts], exclusions: list[DataWarning]) -> dict[str, TableStats]:
    stats = {}
    for name, c in counts.items():
        excluded = sum(w.count for w in exclusions if w.table == name and w.excluded)
        stats[name] = TableStats(c.kept + excluded, c.first, c.last, excluded)
    return stats


def _warning(
    run: Runner,
    table: str,
    column: str,
    where: str,
    problem: str,
    action: str,
    view: str = "__typed",
    excluded: bool = False,
    count: int | None = None,
) -> DataWarning | None:
    """Count rows of `<view>_<table>` (aliased t) matching `where` (unless `count` says how many);
    None when there are none."""
    d = run.dialect
    source = f"{d.quote(f'{view}_{table}')} t"
    if count is None:
        count = run.rows(f"SELECT count(*) FROM {source} WHERE {where}")[0][0]
    if not count:
        return None
    rows = run.rows(
        f"SELECT __row, CAST(t.{column} AS {d.string_type}) FROM {source} WHERE {where} ORDER BY __row LIMIT {EXAMPLES}"
    )
    return DataWarning(table, column, problem, count, _rows_text(rows), action, excluded)


def _warnings(
    run: Runner, raw_types: RawTypes, tables: list[str], counts: dict[str, RowCounts], limit_text: str
) -> list[DataWarning]:
    """Suspicious but usable rows among the kept ones; the rows of the checks the table scans have not
    counted are counted in one query."""
    q = run.dialect.quote
    checks: list[tuple[str, str, str, str, str, int | None]] = []  # table, column, where, problem, action, count
    for name in tables:
        if not TABLES[name].is_event:
            continue
        time_column = TABLES[name].time_column
        checks.append(
            (
                name,
                time_column,
                f"t.{time_column} < (SELECT max(a.created_at) FROM {q('__kept_accounts')} a "
                "WHERE a.account_id = t.account_id)",
                "rows dated before the account's created_at",
                "kept: counted in features (usage before the contract date, e.g. a trial)",
                counts[name].before_created,
            )
        )
    if "support_tickets" in tables:
        duplicated = (
            f"ticket_id IN (SELECT ticket_id FROM {q('__kept_support_tickets')} GROUP BY 1 HAVING count(*) > 1)"
        )
        checks += [
            ("support_tickets", "ticket_id", duplicated, "rows share a duplicated ticket_id",
             "kept: each row counts as a ticket", None),
            ("support_tickets", "closed_at", "closed_at < opened_at", "tickets closed before they were opened",
             "kept: resolution time of these counts as missing", None),
        ]  # fmt: skip
    if "invoices" in tables:
        duplicated = f"invoice_id IN (SELECT invoice_id FROM {q('__kept_invoices')} GROUP BY 1 HAVING count(*) > 1)"
        checks += [
            ("invoices", "due_at", "due_at < issued_at", "invoices due before they were issued",
             "kept: overdue from their due date", None),
            ("invoices", "paid_at", "paid_at < issued_at", "invoices paid before they were issued",
             "kept: counted as paid on time (prepaid)", None),
            ("invoices", "paid_at", "status = 'paid' AND paid_at IS NULL", "invoices with status paid but no paid_at",
             "kept: counted as unpaid (paid_at says when an invoice was paid; null = unpaid)", None),
            ("invoices", "invoice_id", duplicated, "rows share a duplicated invoice_id",
             "kept: each row counts as an invoice", None),
        ]  # fmt: skip
    # A null closed_at or paid_at means open or unpaid; a column null in every row is more likely a source that
    # does not record it, and reads as every ticket open, every invoice unpaid: said, as its absence drops them.
    for table, column, noun, reads in (
        ("support_tickets", "closed_at", "ticket", "open"),
        ("invoices", "paid_at", "invoice", "unpaid"),
    ):
        if table in tables and column in raw_types.get(table, {}):
            checks.append(
                (
                    table,
                    column,
                    f"(SELECT count({column}) FROM {q(f'__kept_{table}')}) = 0",
                    f"rows have no {column}, and no row of the table has one",
                    f"kept: every {noun} reads as {reads} (null = {reads}); if the source does not record "
                    f"{column}, leave the column out: the features that need it are then dropped",
                    None,
                )
            )
    if "surveys" in tables:
        nps = f"(SELECT {{}} FROM {q('__kept_surveys')} WHERE kind = 'nps')"
        checks.append(
            (
                "surveys",
                "score",
                f"kind = 'nps' AND {nps.format('max(score)')} <= {CSAT_RANGE[1]!r} "
                f"AND {nps.format('count(*)')} >= {CSAT_LOOKALIKE_ANSWERS}",
                f"NPS answers (0-10), none above {CSAT_RANGE[1]:g}",
                "kept: read as NPS, so every answer is a detractor; if they are CSAT scores (1-5), say so in a "
                "kind column (csat)",
                None,
            )
        )
    # an account whose every term was excluded as future-dated has terms: just none the data can see yet
    without_kept = f"account_id NOT IN (SELECT account_id FROM {q('__kept_subscriptions')})"
    future_only = f"account_id IN (SELECT account_id FROM {q('__typed_subscriptions')})"
    checks += [
        (
            "accounts",
            "account_id",
            f"{without_kept} AND NOT {future_only}",
            "accounts without a term in subscriptions",
            "kept: never labelled or scored (prospects? their terms may be missing from the export)",
            None,
        ),
        (
            "accounts",
            "account_id",
            f"{without_kept} AND {future_only}",
            f"{EVERY_TERM_AFTER} {limit_text}",
            "kept: not labelled or scored until a term starts (their terms are excluded as future-dated, see "
            "subscriptions.start_date)",
            None,
        ),
    ]
    for table, column, words, said, rows, action in _OPEN_CODES:  # codes features read by their words: say others
        if column in raw_types.get(table, {}):
            allowed = ", ".join(f"'{word}'" for word in words)
            problem = f"{rows} with a {column} other than {said}"
            checks.append((table, column, f"{column} NOT IN ({allowed})", problem, action, None))
    others = f"SELECT 1 FROM {q('__kept_subscriptions')} o WHERE o.account_id = t.account_id AND o.__row <> t.__row"
    same_dates = _same_term("o", "t", ("start_date", "end_date", "plan"))
    twins = f"{same_dates} AND NOT ({_same_term('o', 't')})"
    checks.append(
        (
            "subscriptions",
            "start_date",
            f"EXISTS ({others} AND {twins})",
            "terms with the same dates as another term of the same account",
            "kept as add-on terms: their ARR is summed; if a row corrects an earlier export of the same term, "
            "keep only the corrected row",
            None,
        )
    )
    checks.append(
        (
            "subscriptions",
            "start_date",
            f"EXISTS ({others} AND o.start_date < t.end_date AND t.start_date < o.end_date "
            f"AND NOT ({same_dates}))",  # copies and twins: said above
            "terms overlapping another term of the same account",
            "kept: treated as concurrent (add-on) terms; the latest end date decides renewal",
            None,
        )
    )
    uncounted = [index for index, check in enumerate(checks) if check[5] is None]
    scans = [(f"{q(f'__kept_{checks[i][0]}')} t WHERE {checks[i][2]}", ["count(*)"]) for i in uncounted]
    for index, (count,) in zip(uncounted, _per_table(run, scans), strict=True):
        checks[index] = (*checks[index][:5], count)
    found = [_warning(run, *check[:5], "__kept", count=check[5]) for check in checks]
    return [w for w in found if w is not None]


def _same_term(a: str, b: str, columns: tuple[str, ...] = ()) -> str:
    """Terms `a` and `b` equal in `columns` (by default every contract column; nulls equal, as DISTINCT and
    GROUP BY take them; a value and a null differ: never unknown, which would leave the pair out of every check)."""
    return " AND ".join(
        f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}"
        for c in columns or tuple(column.name for column in TABLES["subscriptions"].columns)
    )


REPEATS_CHECKED = ("logins", "usage_events")
"""The event tables whose rows are counted one by one, where a row written twice by an export counts twice."""
REPEATED_EVENTS = "kept: each counts as an event (an export that wrote rows twice doubles the activity they show)"
REPEATED_TERMS = "kept once: a term given twice is one term (its ARR and its renewal count once)"


def _repeated_rows(run: Runner, name: str, action: str = REPEATED_EVENTS) -> DataWarning | None:
    """Rows equal in every contract column to another kept row of `name`, counted beyond the first of each
    (the examples are the last copies). Only rows whose account and time recur are grouped by every column:
    ~1 s per 10M events on 2 cores, half of grouping them all, and the price of `churn validate` alone (other
    commands do not print these warnings); see bench/RESULTS.md, "Repeated event rows"."""
    d, ts = run.dialect, TABLES[name].time_column
    kept, columns = d.quote(f"__kept_{name}"), ", ".join(c.name for c in TABLES[name].columns)
    recurring = f"SELECT account_id, {ts} FROM {kept} GROUP BY account_id, {ts} HAVING count(*) > 1"
    rows = run.rows(
        f"SELECT sum(n - 1) OVER (), r, v FROM (SELECT count(*) AS n, max(__row) AS r, "
        f"CAST(max({ts}) AS {d.string_type}) AS v FROM {kept} t WHERE EXISTS (SELECT 1 FROM ({recurring}) d "
        f"WHERE d.account_id = t.account_id AND d.{ts} = t.{ts}) GROUP BY {columns} HAVING count(*) > 1) g "
        f"ORDER BY r LIMIT {EXAMPLES}"
    )
    if not rows:
        return None
    return DataWarning(
        name,
        ts,
        "rows repeating an earlier row in every column",
        int(rows[0][0]),
        _rows_text([row[1:] for row in rows]),
        action,
    )


CSAT_LOOKALIKE_ANSWERS = 20
"""NPS answers all within the CSAT scale are said from this many on: a survey without a `kind` column is NPS,
and a CSAT export read so turns every account into detractors; among 20 real NPS answers some top 5."""

_OPEN_CODES = (
    (
        "support_tickets",
        "priority",
        (*PRIORITIES, *PRIORITY_WORDS),
        f"{'/'.join(PRIORITIES)} (or {', '.join(PRIORITY_WORDS)})",
        "tickets",
        "kept: counted as tickets with a priority, neither high nor urgent",
    ),
    (
        "trainings",
        "kind",
        TRAINING_KINDS,
        "/".join(TRAINING_KINDS),
        "trainings",
        "kept: counted as trainings, not certifications",
    ),
)
"""Code columns outside a closed vocabulary (`Column.choices` refuses other values) whose features still look
for certain words (said as the 4th item): another word (a helpdesk's 'Major', 'certified') is kept and said."""


def _term_outcomes(run: Runner, report: ValidationReport) -> None:
    """Count terms renewed, churned and censored with the labels' own rules (per term end date)."""
    d = run.dialect
    report.accounts = run.rows(f"SELECT count(*) FROM {d.quote('__kept_accounts')}")[0][0]
    ((report.terms, report.renewals, report.churns, report.censored),) = run.rows(
        term_outcomes_sql(d, d.quote("__kept_subscriptions"), report.grace_days, report.data_end)
    )
