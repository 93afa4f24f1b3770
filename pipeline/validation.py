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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from features.contract import EVENT_TABLES, TABLES, Column, RawTypes, TableContract
from features.errors import DataContractError
from features.labels import term_outcomes_sql
from features.sql.dialect import DUCKDB

EXAMPLES = 3
SOURCE_ROW = "__source_row"
"""A raw view that holds only part of its files numbers its rows in this column, as in the whole files."""
FIRST_DATE = pd.Timestamp("1900-01-01")
END_OF_DATES = pd.Timestamp("3000-01-01")  # exclusive: dates from here on (9999-12-31...) are refused
CLOCK_MARGIN = pd.Timedelta(days=1)


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
        return f"{self.table}.{self.column}: {self.count} {self.problem} ({self.examples}) -> {self.action}"


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

    def warning_count(self, table: str) -> int:
        return sum(w.count for w in self.warnings if w.table == table)

    @property
    def exclusions(self) -> list[DataWarning]:
        return [w for w in self.warnings if w.excluded]


def validate(
    con: duckdb.DuckDBPyConnection,
    raw_types: RawTypes,
    data_end: str | pd.Timestamp | None,
    grace_days: int = 30,
    now: pd.Timestamp | None = None,
    numbered: frozenset[str] = frozenset(),
    checked: Mapping[str, str] | None = None,
) -> ValidationReport:
    """Validate the `__raw_<table>` views; raise on fatal problems, return the report otherwise.

    `now` is the run's clock (naive UTC; default: the current time). The raw views of the
    `numbered` tables hold part of their files, with each row's number in the files as `SOURCE_ROW`,
    so examples cite the same rows as a check of the whole files. `checked` gives, per numbered
    table, a query of more of its rows that passed these checks in an earlier run, already in
    canonical form with their `SOURCE_ROW` (`pipeline/window_cache.py`): they join the canonical
    rows unchecked (a check of them finds nothing, so the checks count and cite the same rows).
    """
    problems = _structural_problems(raw_types)
    if problems:
        raise DataContractError(_format_problems(problems))
    explicit_end, limit, limit_text = time_limit(data_end, now)
    for name, types in raw_types.items():
        problems += _value_problems(con, TABLES[name], types, _row_number(name, numbered))
    problems += _empty_required_tables(con, raw_types)
    problems += _duplicate_accounts(con) + _inverted_terms(con, raw_types["subscriptions"])
    if problems:
        raise DataContractError(_format_problems(problems))

    tables = [name for name in TABLES if name in raw_types]  # accounts first: the others' kept rows need it
    _canonical_views(con, raw_types, numbered, checked or {})
    try:
        counts = {name: _row_counts(con, name, limit) for name in tables}
        exclusions = _exclude(con, tables, limit, limit_text, counts)
        excluding = {w.table for w in exclusions if w.excluded}  # tables without exclusions skip the filter
        keep = {name: keep_condition(name, limit, "accounts") if name in excluding else "true" for name in tables}
        for name in tables:
            condition = keep_condition(name, limit, "__kept_accounts") if name in excluding else "true"
            con.execute(f'CREATE VIEW "__kept_{name}" AS SELECT * FROM "__typed_{name}" t WHERE {condition}')
        end, source = _data_end(counts, explicit_end)
        report = ValidationReport(
            tables=_table_stats(counts, exclusions),
            data_end=end,
            grace_days=grace_days,
            data_end_source=source,
            keep=keep,
            time_limit=limit,
        )
        report.warnings = [*exclusions, *_warnings(con, tables, counts)]
        _term_outcomes(con, report)
    finally:
        for name in reversed(tables):
            con.execute(f'DROP VIEW IF EXISTS "__kept_{name}"')
        for name in tables:
            con.execute(f'DROP VIEW IF EXISTS "__typed_{name}"')
    return report


def _row_number(table: str, numbered: frozenset[str]) -> str:
    """The 1-based row of the data files a raw row comes from (header not counted), as SQL."""
    return f'"{SOURCE_ROW}"' if table in numbered else "row_number() OVER ()"


def canonical_view(table: str) -> str:
    """The view of `table` with the contract's types (every row); loading keeps the trusted ones."""
    return f"__canonical_{table}"


# ------------------------------------------------------------------------------ fatal problems
def _structural_problems(present_columns: RawTypes) -> list[str]:
    problems = [
        f"{name}: required table is missing (expected {name}.parquet, {name}.csv or a folder {name}/)"
        for name, contract in TABLES.items()
        if contract.required and name not in present_columns
    ]
    if not any(name in present_columns for name in EVENT_TABLES):
        problems.append(f"no event table found: at least one of {', '.join(EVENT_TABLES)} is required")
    for name, columns in present_columns.items():
        missing = [c for c in TABLES[name].required_columns if c not in columns]
        problems += [
            f"{name}.{col}: required column is missing (columns found: {', '.join(columns) or 'none'})"
            for col in missing
        ]
    return problems


def _range_check(column: Column, cast: str) -> tuple[str, str] | None:
    """(condition, problem) for values of the right type but outside the column's range."""
    if column.type == "timestamp":
        return (
            f"({cast}) IS NOT NULL AND (({cast}) < {DUCKDB.timestamp(FIRST_DATE)} "
            f"OR ({cast}) >= {DUCKDB.timestamp(END_OF_DATES)})",
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
    condition = f"({cast}) IS NOT NULL AND (NOT isfinite({cast}) OR {' OR '.join(bounds) or 'false'})"
    return condition, f"values are not {wanted}"


def _value_problems(
    con: duckdb.DuckDBPyConnection, contract: TableContract, types: dict[str, str], row: str
) -> list[str]:
    """Values that do not convert to the column's type, are out of range, and nulls in required columns."""
    checks = value_checks(contract, types)
    if not checks:
        return []
    counts_sql = ", ".join(f"count_if({cond})" for _, cond, _ in checks)
    counts = con.execute(f'SELECT {counts_sql} FROM "__raw_{contract.name}"').fetchone()
    problems = []
    for (col, cond, problem), count in zip(checks, counts, strict=True):
        if count:
            examples = _examples(con, contract.name, col, cond, row)
            problems.append(f"{contract.name}.{col}: {count} {problem} ({examples})")
    return problems


def value_checks(contract: TableContract, types: dict[str, str]) -> list[tuple[str, str, str]]:
    """The single-row checks of a table with these raw column types: (column, SQL condition of a bad
    row, problem). A row passes them or not whatever the other rows and tables hold."""
    checks: list[tuple[str, str, str]] = []  # (column, condition, problem)
    for column in contract.columns:
        if column.name not in types:
            continue
        raw = f'"{column.name}"'
        not_blank = f"{raw} IS NOT NULL AND TRIM(CAST({raw} AS VARCHAR)) <> ''"
        cast = column.cast_sql(types[column.name])
        if column.type not in ("id", "string", "code"):
            noun = {"timestamp": "dates", "float": "numbers", "int": "integers", "bool": "booleans"}[column.type]
            checks.append((column.name, f"{not_blank} AND ({cast}) IS NULL", f"values are not {noun}"))
        in_range = _range_check(column, cast)
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
        code = by.cast_sql(types[by.name]) if by.name in types else "NULL"
        value = contract.column(rule.column).cast_sql(types[rule.column])
        checks.append(
            (
                rule.column,
                f"coalesce({code}, {by.default}) = '{rule.value}' AND isfinite({value}) "
                f"AND (({value}) < {rule.minimum!r} OR ({value}) > {rule.maximum!r})",
                f"{rule.value} values are not from {rule.minimum:g} to {rule.maximum:g}",
            )
        )
    return checks


def _examples(
    con: duckdb.DuckDBPyConnection, table: str, column: str, condition: str, row: str = "row_number() OVER ()"
) -> str:
    """'rows 17, 204: 'yesterday', ''' -- 1-based data rows in file order (header not counted)."""
    rows = con.execute(
        f'SELECT __row, CAST("{column}" AS VARCHAR) FROM '
        f'(SELECT {row} AS __row, * FROM "__raw_{table}") WHERE {condition} '
        f"ORDER BY __row LIMIT {EXAMPLES}"
    ).fetchall()
    return _rows_text(rows)


def _rows_text(rows: list[tuple]) -> str:
    numbers = ", ".join(str(r[0]) for r in rows)
    values = ", ".join(repr(_short(r[1])) if r[1] is not None else "null" for r in rows)
    return f"rows {numbers}: {values}"


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _empty_required_tables(con: duckdb.DuckDBPyConnection, raw_types: RawTypes) -> list[str]:
    problems = []
    for name, contract in TABLES.items():
        if (
            contract.required
            and name in raw_types
            and not con.execute(f'SELECT count(*) FROM "__raw_{name}"').fetchone()[0]
        ):
            what = "account" if name == "accounts" else "subscription term"
            problems.append(f"{name}: the table has no rows; at least one {what} is needed")
    return problems


def _duplicate_accounts(con: duckdb.DuckDBPyConnection) -> list[str]:
    cond = (
        'TRIM(CAST(account_id AS VARCHAR)) IN (SELECT TRIM(CAST(account_id AS VARCHAR)) FROM "__raw_accounts" '
        "GROUP BY 1 HAVING count(*) > 1)"
    )
    count = con.execute(f'SELECT count(*) FROM "__raw_accounts" WHERE {cond}').fetchone()[0]
    if not count:
        return []
    return [
        f"accounts.account_id: {count} rows share a duplicated account_id "
        f"({_examples(con, 'accounts', 'account_id', cond)})"
    ]


def _inverted_terms(con: duckdb.DuckDBPyConnection, types: dict[str, str]) -> list[str]:
    start, end = TABLES["subscriptions"].column("start_date"), TABLES["subscriptions"].column("end_date")
    cond = f"({end.cast_sql(types['end_date'])}) <= ({start.cast_sql(types['start_date'])})"
    count = con.execute(f'SELECT count(*) FROM "__raw_subscriptions" WHERE {cond}').fetchone()[0]
    if not count:
        return []
    return [
        f"subscriptions.end_date: {count} terms end on or before their start_date "
        f"({_examples(con, 'subscriptions', 'end_date', cond)})"
    ]


def _format_problems(problems: list[str]) -> str:
    plural = "s" if len(problems) > 1 else ""
    head = f"The input data breaks the data contract ({len(problems)} problem{plural}); nothing was written."
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
        return f'{scanned}."{time_column}" < {literal(limit)} AND {accounts}.account_id IS NOT NULL'
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


def _row_counts(con: duckdb.DuckDBPyConnection, name: str, limit: pd.Timestamp) -> RowCounts:
    """The exclusion counts and kept-row statistics of `name` in one scan (a big event table is read once)."""
    time = f't."{TABLES[name].time_column}"'
    limit_sql = DUCKDB.timestamp(limit)
    if name == "accounts":  # every account is kept
        query = f"SELECT {_count_if(f'{time} >= {limit_sql}')}, 0, count(*), min({time}), max({time}), 0"
        source = f'"{canonical_view(name)}" t'
    else:
        kept = keep_condition(name, limit, "a", scanned="t")
        before = _count_if(f"{kept} AND {time} < a.created_at") if TABLES[name].is_event else "0"
        query = (
            f"SELECT {_count_if(f'{time} >= {limit_sql}')}, "
            f"{_count_if(f'{time} < {limit_sql} AND a.account_id IS NULL')}, "
            f"{_count_if(kept)}, min({time}) FILTER ({kept}), max({time}) FILTER ({kept}), {before}"
        )
        # account ids are unique and never null here (fatal problems otherwise): a join finds each row's account
        accounts = f'(SELECT account_id, created_at FROM "{canonical_view("accounts")}")'
        source = f'"{canonical_view(name)}" t LEFT JOIN {accounts} a ON a.account_id = t.account_id'
    future, unknown, kept_rows, first, last, before_created = con.execute(f"{query} FROM {source}").fetchone()
    return RowCounts(
        future,
        unknown,
        kept_rows,
        pd.Timestamp(first) if first is not None else None,
        pd.Timestamp(last) if last is not None else None,
        before_created,
    )


def _exclude(
    con: duckdb.DuckDBPyConnection,
    tables: list[str],
    limit: pd.Timestamp,
    limit_text: str,
    counts: dict[str, RowCounts],
) -> list[DataWarning]:
    """The rows the canonical views leave out, with examples: future-dated, unknown accounts."""
    found: list[DataWarning | None] = []
    for name in tables:
        time_column = TABLES[name].time_column
        found.append(
            _warning(
                con,
                name,
                time_column,
                f't."{time_column}" >= {DUCKDB.timestamp(limit)}',
                f"rows dated after {limit_text}",
                "kept: the account lands at its first term start instead"
                if name == "accounts"
                else "excluded: not used for features, labels, scores or the end of the data",
                excluded=name != "accounts",
                count=counts[name].future,
            )
        )
    known = 'SELECT account_id FROM "__typed_accounts"'
    for name in tables:
        if name == "accounts":
            continue
        time_column = TABLES[name].time_column
        found.append(
            _warning(
                con,
                name,
                "account_id",
                f't."{time_column}" < {DUCKDB.timestamp(limit)} AND t.account_id NOT IN ({known})',
                "rows for accounts not in accounts",
                "excluded: no account to attach them to (no features, scores or alerts)",
                excluded=True,
                count=counts[name].unknown,
            )
        )
    return [w for w in found if w is not None]


def _data_end(counts: dict[str, RowCounts], explicit: pd.Timestamp | None) -> tuple[pd.Timestamp, str]:
    """The end of observed data: the explicit date, else the latest kept event or term start."""
    if explicit is not None:
        return explicit, "--data-end"
    latest = [c.last for name, c in counts.items() if (TABLES[name].is_event or name == "subscriptions") and c.last]
    if not latest:
        raise DataContractError(
            "The input data has no dated rows left to tell where it ends (every event and term start is missing, "
            "excluded or in the future); pass --data-end YYYY-MM-DD."
        )
    return max(latest), "latest event"


# ------------------------------------------------------------------------------ kept rows
def canonical_select(name: str, types: dict[str, str]) -> str:
    """The select list casting a table's raw columns (`types`) to the contract's (absent ones: defaults)."""
    return ", ".join(c.select_sql(types.get(c.name)) for c in TABLES[name].columns)


def _canonical_views(
    con: duckdb.DuckDBPyConnection, raw_types: RawTypes, numbered: frozenset[str], checked: Mapping[str, str]
) -> None:
    """The canonical casts of every table, defined once (`canonical_view`), and for the exclusion and
    warning checks a temporary view of them numbered in file order (the rows an example cites).

    A numbered table's raw rows are a temporary table read for this run (`recent_history`): its
    canonical rows (with `SOURCE_ROW`) become a temporary table too, cast once for the checks, the
    summaries and the features, with the table's `checked` rows, and the raw rows are dropped (their
    values are checked by now). Rows are in no particular order (a parallel read of several files
    has none either); examples are ordered by `SOURCE_ROW`."""
    for name, types in raw_types.items():
        select = canonical_select(name, types)
        if name in numbered:
            rows = f'SELECT {select}, "{SOURCE_ROW}" FROM "__raw_{name}"'
            if name in checked:
                rows = f"{rows} UNION ALL {checked[name]}"
            con.execute(f'CREATE TEMP TABLE "{canonical_view(name)}" AS {rows}')
            con.execute(f'DROP TABLE "__raw_{name}"')
        else:
            con.execute(f'CREATE VIEW "{canonical_view(name)}" AS SELECT {select} FROM "__raw_{name}"')
        con.execute(
            f'CREATE VIEW "__typed_{name}" AS SELECT {_row_number(name, numbered)} AS __row, * '
            f'FROM "{canonical_view(name)}"'
        )


def _table_stats(counts: dict[str, RowCounts], exclusions: list[DataWarning]) -> dict[str, TableStats]:
    stats = {}
    for name, c in counts.items():
        excluded = sum(w.count for w in exclusions if w.table == name and w.excluded)
        stats[name] = TableStats(c.kept + excluded, c.first, c.last, excluded)
    return stats


def _warning(
    con: duckdb.DuckDBPyConnection,
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
    if count is None:
        count = con.execute(f'SELECT count(*) FROM "{view}_{table}" t WHERE {where}').fetchone()[0]
    if not count:
        return None
    rows = con.execute(
        f'SELECT __row, CAST(t."{column}" AS VARCHAR) FROM "{view}_{table}" t '
        f"WHERE {where} ORDER BY __row LIMIT {EXAMPLES}"
    ).fetchall()
    return DataWarning(table, column, problem, count, _rows_text(rows), action, excluded)


def _warnings(con: duckdb.DuckDBPyConnection, tables: list[str], counts: dict[str, RowCounts]) -> list[DataWarning]:
    """Suspicious but usable rows among the kept ones."""
    found: list[DataWarning | None] = []
    for name in tables:
        if not TABLES[name].is_event:
            continue
        time_column = TABLES[name].time_column
        found.append(
            _warning(
                con,
                name,
                time_column,
                f't."{time_column}" < (SELECT a.created_at FROM "__kept_accounts" a WHERE a.account_id = t.account_id)',
                "rows dated before the account's created_at",
                "kept: counted in features (usage before the contract date, e.g. a trial)",
                "__kept",
                count=counts[name].before_created,
            )
        )
    if "support_tickets" in tables:
        found.append(
            _warning(
                con,
                "support_tickets",
                "ticket_id",
                'ticket_id IN (SELECT ticket_id FROM "__kept_support_tickets" GROUP BY 1 HAVING count(*) > 1)',
                "rows share a duplicated ticket_id",
                "kept: each row counts as a ticket",
                "__kept",
            )
        )
        found.append(
            _warning(
                con,
                "support_tickets",
                "closed_at",
                "closed_at < opened_at",
                "tickets closed before they were opened",
                "kept: resolution time of these counts as missing",
                "__kept",
            )
        )
    if "invoices" in tables:
        duplicated = 'invoice_id IN (SELECT invoice_id FROM "__kept_invoices" GROUP BY 1 HAVING count(*) > 1)'
        for column, where, problem, action in (
            ("due_at", "due_at < issued_at", "invoices due before they were issued",
             "kept: overdue from their due date"),
            ("paid_at", "paid_at < issued_at", "invoices paid before they were issued",
             "kept: counted as paid on time (prepaid)"),
            ("paid_at", "status = 'paid' AND paid_at IS NULL", "invoices with status paid but no paid_at",
             "kept: counted as unpaid (paid_at says when an invoice was paid; null = unpaid)"),
            ("invoice_id", duplicated, "rows share a duplicated invoice_id", "kept: each row counts as an invoice"),
        ):  # fmt: skip
            found.append(_warning(con, "invoices", column, where, problem, action, "__kept"))
    found.append(
        _warning(
            con,
            "subscriptions",
            "start_date",
            'EXISTS (SELECT 1 FROM "__kept_subscriptions" o WHERE o.account_id = t.account_id AND o.__row <> t.__row '
            "AND o.start_date < t.end_date AND t.start_date < o.end_date)",
            "terms overlapping another term of the same account",
            "kept: treated as concurrent (add-on) terms; the latest end date decides renewal",
            "__kept",
        )
    )
    return [w for w in found if w is not None]


def _term_outcomes(con: duckdb.DuckDBPyConnection, report: ValidationReport) -> None:
    """Count terms renewed, churned and censored with the labels' own rules (per term end date)."""
    report.accounts = con.execute('SELECT count(*) FROM "__kept_accounts"').fetchone()[0]
    report.terms, report.renewals, report.churns, report.censored = con.execute(
        term_outcomes_sql(DUCKDB, '"__kept_subscriptions"', report.grace_days, report.data_end)
    ).fetchone()
