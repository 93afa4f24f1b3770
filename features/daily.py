"""Daily roll-ups and the window map: how events reach snapshots without a (snapshot x event) join.

Each event table is rolled up once to one row per (account, day) -- or per (account, day, user /
feature) where a distinct count needs it -- so memory scales with accounts x days, not events.
Trailing windows come from joining those daily rows to the *window map*: one row per
(as_of, day, age) for the `horizon` days before each as_of, a table of (as_of dates x horizon)
rows. An equality join on `day` then hands every daily row to the few snapshots whose windows
contain it, and `age` (days before as_of, 1 = the day before) selects each window with a FILTER.
Because as_of dates are midnights, "day < as_of" is exactly "timestamp < as_of": an event at
as_of itself falls on day as_of (age 0) and is never seen; an event at as_of - W days has age W
and is inside the W-day window.

Distinct counts (users, features) use the same join on a smaller table: per (account, key) only
the last active day in each *snapshot interval* (the days since the previous as_of) and the next
such day. A key is active in the W-day window of as_of exactly when its last day before as_of is
at most W days back, and that row is the one whose next day is at or after as_of -- so counting
those rows counts distinct keys, whatever the other dates are (intervals only make the table
smaller). Days that lie in no window are left out; no window could see them.

"Ever" quantities (last event, running totals) come from an ASOF join of the snapshots to the
daily rows: the latest daily row strictly before as_of.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

ASOF_TABLE = "_ft_asof"
WINDOW_MAP = "_ft_wmap"
INTERVALS = "_ft_intervals"
SNAPSHOTS = "_ft_snap"
TEMP_PREFIX = "_ft_"


def timestamp_literal(ts: pd.Timestamp) -> str:
    return f"TIMESTAMP '{pd.Timestamp(ts).isoformat(sep=' ')}'"


def as_of_table_sql(dates: Iterable[pd.Timestamp]) -> str:
    values = ", ".join(f"({timestamp_literal(d)})" for d in dates)
    return f"CREATE OR REPLACE TEMP TABLE {ASOF_TABLE} AS SELECT * FROM (VALUES {values}) AS v(as_of)"


def window_map_sql(horizon: int) -> str:
    return f"""
        CREATE OR REPLACE TEMP TABLE {WINDOW_MAP} AS
        SELECT a.as_of, CAST(a.as_of - to_days(CAST(r.age AS INTEGER)) AS TIMESTAMP) AS day,
               CAST(r.age AS INTEGER) AS age
        FROM {ASOF_TABLE} a CROSS JOIN range(1, {horizon + 1}) AS r(age)
    """


def intervals_sql() -> str:
    """Each day inside some window, with the snapshot interval it belongs to (the next as_of)."""
    return (
        f"CREATE OR REPLACE TEMP TABLE {INTERVALS} AS "
        f"SELECT day, min(as_of) AS next_as_of FROM {WINDOW_MAP} GROUP BY day"
    )


def distinct_keys_sql(table: str, events: str) -> str:
    """Per (account, key): the last day of each snapshot interval with activity, and the next one.

    `events` is a query with columns account_id, key, day (several rows per day are fine).
    """
    return f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT *, lead(day) OVER (PARTITION BY account_id, key ORDER BY day) AS next_day
        FROM (SELECT e.account_id, e.key, max(e.day) AS day
              FROM ({events}) e JOIN {INTERVALS} i ON i.day = e.day
              WHERE e.key IS NOT NULL
              GROUP BY e.account_id, e.key, i.next_as_of)
    """


def day_of(ts: str) -> str:
    return f"CAST(date_trunc('day', {ts}) AS TIMESTAMP)"


def days_between(start: str, end: str) -> str:
    """Fractional days from `start` to `end` (negative when end is earlier)."""
    return f"(date_diff('microsecond', {start}, {end}) / 86400000000.0)"


def ratio(numerator: str, denominator: str) -> str:
    """numerator / denominator as a double, NULL (NaN) when the denominator is 0 or NULL."""
    return f"(CAST({numerator} AS DOUBLE) / NULLIF({denominator}, 0))"


def rel_change(recent: str, before: str) -> str:
    """Relative change of `recent` on `before`: 0 when both are 0, NULL when there is no baseline."""
    return (
        f"(CASE WHEN ({before}) > 0 THEN (CAST(({recent}) AS DOUBLE) - ({before})) / ({before}) "
        f"WHEN ({recent}) = 0 THEN 0.0 END)"
    )


def sum_in(column: str, window: int) -> str:
    """Sum of a daily column over the last `window` days (ages 1..window)."""
    return f"sum({column}) FILTER (WHERE w.age <= {window})"


def rows_in(window: int) -> str:
    """Number of daily rows (active days, or distinct users / features with the latest-row rule)."""
    return f"count(*) FILTER (WHERE w.age <= {window})"


def sum_before(column: str, window: int) -> str:
    """Sum over the window before the last one (ages window+1 .. 2 x window), for trends."""
    return f"sum({column}) FILTER (WHERE w.age > {window} AND w.age <= {2 * window})"


def zero(expression: str) -> str:
    """A count that is 0, not NULL, for a snapshot without rows."""
    return f"coalesce({expression}, 0)"


def latest_row_before_as_of(next_day: str = "r.next_day") -> str:
    """Keep a row of `distinct_keys_sql` only when it is the key's last day before as_of. Any next
    day at or after as_of qualifies, whatever its value, so later data cannot change the result."""
    return f"({next_day} IS NULL OR {next_day} >= w.as_of)"


def distinct_in_windows_sql(table: str, keys: str, windows: list[int] | tuple[int, ...]) -> str:
    """Distinct active keys per (account, as_of) for each window, as columns `distinct_<W>`."""
    counts = {f"distinct_{w}": rows_in(w) for w in windows}
    return windowed_table_sql(table, keys, counts, f"{latest_row_before_as_of()} AND w.age <= {max(windows)}")


def windowed_table_sql(
    table: str, rollup: str, aggregates: dict[str, str], where: str | None = None, day: str = "day"
) -> str:
    """Aggregate a daily roll-up `r` over the window map `w` per (account, as_of), placing each row
    in the windows by its `day` column."""
    select = ",\n               ".join(f"{expr} AS {name}" for name, expr in aggregates.items())
    condition = f"WHERE {where}" if where else ""
    return f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT r.account_id, w.as_of,
               {select}
        FROM {rollup} r JOIN {WINDOW_MAP} w ON r.{day} = w.day
        {condition}
        GROUP BY r.account_id, w.as_of
    """


def asof_join(alias: str, table: str, day: str = "day", snapshot_time: str = "s.as_of") -> str:
    """ASOF-join the latest row of `table` strictly before `snapshot_time` for the snapshot's account."""
    return f"ASOF LEFT JOIN {table} {alias} ON {alias}.account_id = s.account_id AND {snapshot_time} > {alias}.{day}"


def window_join(alias: str, table: str) -> str:
    return f"LEFT JOIN {table} {alias} ON {alias}.account_id = s.account_id AND {alias}.as_of = s.as_of"


def tenure_sql() -> str:
    """Days since the account landed, the fallback of every "days since last X" that never happened."""
    return days_between("s.landed_at", "s.as_of")
