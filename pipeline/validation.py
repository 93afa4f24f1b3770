"""Check raw tables against the data contract.

Fatal problems (missing tables or columns, values of the wrong type, nulls in required columns,
duplicate accounts, terms that end before they start) are all collected and raised together as
one `DataContractError` naming table, column, problem, count and example rows, before anything is
written. Suspicious but usable rows become `DataWarning`s: counted, reported, and handled in a
stated way, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd

from pipeline.contract import EVENT_TABLES, TABLES, RawTypes, TableContract
from pipeline.errors import DataContractError

EXAMPLES = 3


@dataclass(frozen=True)
class DataWarning:
    table: str
    column: str
    problem: str
    count: int
    examples: str
    action: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column}: {self.count} {self.problem} ({self.examples}) -> {self.action}"


@dataclass
class TableStats:
    rows: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None


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

    def warning_count(self, table: str) -> int:
        return sum(w.count for w in self.warnings if w.table == table)


def validate(
    con: duckdb.DuckDBPyConnection,
    raw_types: RawTypes,
    data_end: str | pd.Timestamp | None,
    grace_days: int = 30,
) -> ValidationReport:
    """Validate the `__raw_<table>` views; raise on fatal problems, return the report otherwise."""
    problems = _structural_problems(raw_types)
    if problems:
        raise DataContractError(_format_problems(problems))
    for name, types in raw_types.items():
        problems += _value_problems(con, TABLES[name], types)
    problems += _duplicate_accounts(con) + _inverted_terms(con, raw_types["subscriptions"])
    if problems:
        raise DataContractError(_format_problems(problems))

    typed = _typed_views(con, raw_types)
    end = _data_end(con, typed, data_end)
    report = ValidationReport(tables=_table_stats(con, typed), data_end=end, grace_days=grace_days)
    report.warnings = _warnings(con, typed, end)
    _term_outcomes(con, report)
    for name in typed:
        con.execute(f'DROP VIEW "__typed_{name}"')
    return report


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


def _value_problems(con: duckdb.DuckDBPyConnection, contract: TableContract, types: dict[str, str]) -> list[str]:
    """Values that do not convert to the column's type, and nulls in required columns."""
    checks: list[tuple[str, str, str]] = []  # (column, condition, problem)
    for column in contract.columns:
        if column.name not in types:
            continue
        raw = f'"{column.name}"'
        not_blank = f"{raw} IS NOT NULL AND TRIM(CAST({raw} AS VARCHAR)) <> ''"
        if column.type not in ("id", "string", "code"):
            noun = {"timestamp": "dates", "float": "numbers", "int": "integers", "bool": "booleans"}[column.type]
            checks.append(
                (
                    column.name,
                    f"{not_blank} AND ({column.cast_sql(types[column.name])}) IS NULL",
                    f"values are not {noun}",
                )
            )
        if column.required:
            checks.append((column.name, f"NOT ({not_blank})", "values are missing"))
    if not checks:
        return []
    counts_sql = ", ".join(f"count_if({cond})" for _, cond, _ in checks)
    counts = con.execute(f'SELECT {counts_sql} FROM "__raw_{contract.name}"').fetchone()
    problems = []
    for (col, cond, problem), count in zip(checks, counts, strict=True):
        if count:
            problems.append(f"{contract.name}.{col}: {count} {problem} ({_examples(con, contract.name, col, cond)})")
    return problems


def _examples(con: duckdb.DuckDBPyConnection, table: str, column: str, condition: str) -> str:
    """'rows 17, 204: 'yesterday', ''' -- 1-based data rows in file order (header not counted)."""
    rows = con.execute(
        f'SELECT __row, CAST("{column}" AS VARCHAR) FROM '
        f'(SELECT row_number() OVER () AS __row, * FROM "__raw_{table}") WHERE {condition} '
        f"ORDER BY __row LIMIT {EXAMPLES}"
    ).fetchall()
    numbers = ", ".join(str(r[0]) for r in rows)
    values = ", ".join(repr(r[1]) if r[1] is not None else "null" for r in rows)
    return f"rows {numbers}: {values}"


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


def _typed_views(con: duckdb.DuckDBPyConnection, raw_types: RawTypes) -> list[str]:
    """Temporary typed views (row number included) for the warning checks."""
    for name, types in raw_types.items():
        select = ", ".join(c.select_sql(types.get(c.name)) for c in TABLES[name].columns)
        con.execute(
            f'CREATE VIEW "__typed_{name}" AS SELECT row_number() OVER () AS __row, {select} FROM "__raw_{name}"'
        )
    return list(raw_types)


def _data_end(con: duckdb.DuckDBPyConnection, tables: list[str], explicit: str | pd.Timestamp | None) -> pd.Timestamp:
    """The end of observed data: the explicit date, else the latest event timestamp."""
    if explicit is not None:
        try:
            return _naive_utc(pd.Timestamp(explicit))
        except ValueError as exc:
            raise DataContractError(f"--data-end: '{explicit}' is not a date.") from exc
    candidates = [f'SELECT max("{TABLES[t].time_column}") FROM "__typed_{t}"' for t in tables if TABLES[t].is_event]
    candidates += ['SELECT max(start_date) FROM "__typed_subscriptions"']
    latest = con.execute(f"SELECT max(m) FROM ({' UNION ALL '.join(candidates)}) AS t(m)").fetchone()[0]
    return pd.Timestamp(latest)


def _naive_utc(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _table_stats(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, TableStats]:
    stats = {}
    for name in tables:
        time_column = TABLES[name].time_column
        rows, first, last = con.execute(
            f'SELECT count(*), min("{time_column}"), max("{time_column}") FROM "__typed_{name}"'
        ).fetchone()
        stats[name] = TableStats(rows, pd.Timestamp(first) if first else None, pd.Timestamp(last) if last else None)
    return stats


def _warning(
    con: duckdb.DuckDBPyConnection, table: str, column: str, where: str, problem: str, action: str
) -> DataWarning | None:
    """Count rows of `__typed_<table>` (aliased t) matching `where`; None when there are none."""
    count = con.execute(f'SELECT count(*) FROM "__typed_{table}" t WHERE {where}').fetchone()[0]
    if not count:
        return None
    rows = con.execute(
        f'SELECT __row, CAST(t."{column}" AS VARCHAR) FROM "__typed_{table}" t '
        f"WHERE {where} ORDER BY __row LIMIT {EXAMPLES}"
    ).fetchall()
    examples = "rows " + ", ".join(str(r[0]) for r in rows) + ": " + ", ".join(repr(r[1]) for r in rows)
    return DataWarning(table, column, problem, count, examples, action)


def _warnings(con: duckdb.DuckDBPyConnection, tables: list[str], data_end: pd.Timestamp) -> list[DataWarning]:
    known = 't.account_id IN (SELECT account_id FROM "__typed_accounts")'
    end = f"TIMESTAMP '{data_end.isoformat()}'"
    found: list[DataWarning | None] = []
    for name in tables:
        if name == "accounts":
            continue
        time_column = TABLES[name].time_column
        found.append(
            _warning(
                con,
                name,
                "account_id",
                f"NOT {known}",
                "rows for accounts not in accounts",
                "ignored: no account to attach them to",
            )
        )
        if TABLES[name].is_event:
            found.append(
                _warning(
                    con,
                    name,
                    time_column,
                    f't."{time_column}" < (SELECT a.created_at FROM "__typed_accounts" a '
                    "WHERE a.account_id = t.account_id)",
                    "rows dated before the account's created_at",
                    "kept: counted in features (usage before the contract date, e.g. a trial)",
                )
            )
            found.append(
                _warning(
                    con,
                    name,
                    time_column,
                    f't."{time_column}" > {end}',
                    "rows dated after the end of the data",
                    "kept: only snapshots dated after them can see them",
                )
            )
    if "support_tickets" in tables:
        found.append(
            _warning(
                con,
                "support_tickets",
                "ticket_id",
                'ticket_id IN (SELECT ticket_id FROM "__typed_support_tickets" GROUP BY 1 HAVING count(*) > 1)',
                "rows share a duplicated ticket_id",
                "kept: each row counts as a ticket",
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
            )
        )
    found.append(
        _warning(
            con,
            "subscriptions",
            "start_date",
            'EXISTS (SELECT 1 FROM "__typed_subscriptions" o WHERE o.account_id = t.account_id AND o.__row <> t.__row '
            "AND o.start_date < t.end_date AND t.start_date < o.end_date)",
            "terms overlapping another term of the same account",
            "kept: treated as concurrent (add-on) terms; the latest end date decides renewal",
        )
    )
    return [w for w in found if w is not None]


def _term_outcomes(con: duckdb.DuckDBPyConnection, report: ValidationReport) -> None:
    """Count terms renewed, churned and censored with the SPEC's rule (per term end date)."""
    end = f"TIMESTAMP '{report.data_end.isoformat()}'"
    grace = f"INTERVAL {int(report.grace_days)} DAY"
    report.accounts = con.execute('SELECT count(*) FROM "__typed_accounts"').fetchone()[0]
    report.terms, report.renewals, report.churns, report.censored = con.execute(
        f"""
        WITH outcome AS (
            SELECT t.end_date + {grace} > {end} AS censored,
                   EXISTS (SELECT 1 FROM "__typed_subscriptions" n WHERE n.account_id = t.account_id
                           AND n.start_date <= t.end_date + {grace} AND n.end_date > t.end_date) AS renewed
            FROM "__typed_subscriptions" t
        )
        SELECT count(*), count_if(NOT censored AND renewed), count_if(NOT censored AND NOT renewed), count_if(censored)
        FROM outcome
        """
    ).fetchone()
