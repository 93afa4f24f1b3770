"""The expressions DuckDB and Spark SQL spell differently, and nothing else.

Everything not here is written in the subset both engines parse and evaluate alike: CASE inside
aggregates instead of `FILTER (WHERE ...)` (Spark rejects FILTER on window aggregates), explicit
`NULLS LAST` wherever NULLs can reach an ORDER BY (DuckDB sorts them last, Spark first), explicit
`CAST(... AS DOUBLE)` before dividing (Spark divides a BIGINT by a decimal literal as DECIMAL), and
no division that can meet a zero (Spark in ANSI mode raises where DuckDB returns inf or NULL).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

MICROS_PER_DAY = 86_400_000_000
MICROS_PER_HOUR = 3_600_000_000


@dataclass(frozen=True)
class Dialect:
    """SQL spellings of one engine. Timestamps are naive UTC on both: DuckDB TIMESTAMP, Spark TIMESTAMP_NTZ."""

    name: str
    timestamp_type: str
    _days: str
    _micros_between: str
    _series: str
    _regexp_all: str

    def timestamp(self, ts: pd.Timestamp) -> str:
        """A naive-UTC timestamp literal."""
        return f"CAST('{pd.Timestamp(ts).isoformat(sep=' ')}' AS {self.timestamp_type})"

    def days(self, count: str | int) -> str:
        """An interval of `count` days (a column or a constant), to add to or subtract from a timestamp."""
        return self._days.format(n=count)

    def days_between(self, start: str, end: str) -> str:
        """Fractional days from `start` to `end` as DOUBLE (negative when `end` is earlier)."""
        return self._micros_in(start, end, MICROS_PER_DAY)

    def hours_between(self, start: str, end: str) -> str:
        """Fractional hours from `start` to `end` as DOUBLE."""
        return self._micros_in(start, end, MICROS_PER_HOUR)

    def _micros_in(self, start: str, end: str, unit: int) -> str:
        micros = self._micros_between.format(start=start, end=end)
        return f"(CAST({micros} AS DOUBLE) / {unit}.0)"

    def day_of(self, ts: str) -> str:
        """The midnight starting the day of `ts`, as a timestamp (not a DATE: it is compared with as_of)."""
        return f"CAST(date_trunc('DAY', {ts}) AS {self.timestamp_type})"

    def integer_series(self, low: int, high: int, column: str) -> str:
        """A FROM item with one row per integer `low`..`high` (inclusive) in `column`."""
        return self._series.format(low=low, high=high, column=column)

    def regexp_replace_all(self, text: str, pattern: str, replacement: str) -> str:
        """Replace every match (DuckDB replaces only the first without the 'g' flag; Spark always all)."""
        return self._regexp_all.format(text=text, pattern=pattern, replacement=replacement)


DUCKDB = Dialect(
    name="duckdb",
    timestamp_type="TIMESTAMP",
    _days="to_days(CAST({n} AS INTEGER))",
    _micros_between="date_diff('microsecond', {start}, {end})",
    _series="(SELECT CAST(unnest(range({low}, {high} + 1)) AS INTEGER) AS {column})",
    _regexp_all="regexp_replace({text}, '{pattern}', '{replacement}', 'g')",
)

SPARK = Dialect(
    name="spark",
    timestamp_type="TIMESTAMP_NTZ",
    _days="make_dt_interval(CAST({n} AS INTEGER))",
    _micros_between="timestampdiff(MICROSECOND, {start}, {end})",
    _series="(SELECT explode(sequence({low}, {high})) AS {column})",
    _regexp_all="regexp_replace({text}, '{pattern}', '{replacement}')",
)
