"""Snapshot time in portable SQL: the as_of dates, the calendar, the window map, and "ever before as_of".

DuckDB's ASOF join has no Spark counterpart, and a range join of daily rows to snapshots costs
(daily rows x snapshots). Both engines instead run equality joins and ordered windows:

- The *calendar* holds every day from the first event to the last as_of, each with `next_as_of`:
  the first as_of strictly after it, i.e. the snapshot interval the day belongs to. A day at or
  after the last as_of has none, so no snapshot can see it.
- The *window map* (as_of, day, age) gives each as_of its `horizon` previous days; an equality join
  on `day` hands every daily row to the few snapshots whose trailing windows hold it.
- "Ever before as_of" quantities (the last active day, running totals, the first use after
  landing) are decomposable aggregates (sum, count, max, min): each daily row is aggregated into its
  interval, then a running window over each account's as_of order adds the intervals up. The
  snapshot rows ride in the same window (ordered after the interval that ends at their as_of), so
  a snapshot sees exactly the days strictly before its as_of.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from features.portable.dialect import Dialect
from features.portable.engine import Engine

ASOF_TABLE = "_ft_asof"
CALENDAR = "_ft_calendar"
WINDOW_MAP = "_ft_wmap"
SNAPSHOTS = "_ft_snap"

RUNNING = {"sum": "sum", "count": "sum", "max": "max", "min": "min"}
"""How interval aggregates add up across intervals."""


def build_timeline(engine: Engine, dates: Iterable[pd.Timestamp], first_day: pd.Timestamp, horizon: int) -> None:
    """Materialise the as_of table, the calendar from `first_day` and the window map."""
    d = engine.dialect
    dates = sorted(dates)
    engine.materialize(ASOF_TABLE, " UNION ALL ".join(f"SELECT {d.timestamp(ts)} AS as_of" for ts in dates))
    first = pd.Timestamp(first_day).normalize()
    span = max((dates[-1] - first).days, 0)
    engine.materialize(
        CALENDAR,
        f"""
        SELECT c.day, min(a.as_of) AS next_as_of
        FROM (SELECT {d.timestamp(first)} + {d.days("i.n")} AS day FROM {d.integer_series(0, span, "n")} i) c
        JOIN {ASOF_TABLE} a ON a.as_of > c.day
        GROUP BY c.day
        """,
    )
    engine.materialize(
        WINDOW_MAP,
        f"""
        SELECT a.as_of, a.as_of - {d.days("r.age")} AS day, r.age
        FROM {ASOF_TABLE} a CROSS JOIN {d.integer_series(1, horizon, "age")} r
        """,
    )


def count_where(condition: str) -> str:
    """count(*) of the rows meeting `condition`; CASE rather than FILTER so it also works over windows."""
    return f"count(CASE WHEN {condition} THEN 1 END)"


def agg_where(function: str, value: str, condition: str) -> str:
    return f"{function}(CASE WHEN {condition} THEN {value} END)"


def sum_in(column: str, window: int) -> str:
    """Sum of a daily column over the last `window` days (ages 1..window)."""
    return agg_where("sum", column, f"w.age <= {window}")


def rows_in(window: int) -> str:
    return count_where(f"w.age <= {window}")


def sum_before(column: str, window: int) -> str:
    """Sum over the window before the last one (ages window+1 .. 2 x window), for trends."""
    return agg_where("sum", column, f"w.age > {window} AND w.age <= {2 * window}")


def ratio(numerator: str, denominator: str) -> str:
    """numerator / denominator as a double, NULL when the denominator is 0 or NULL (never a division by 0)."""
    return f"(CAST({numerator} AS DOUBLE) / NULLIF(CAST({denominator} AS DOUBLE), 0))"


def windowed_sql(rollup: str, aggregates: Mapping[str, str], where: str | None = None, day: str = "day") -> str:
    """Aggregate a daily roll-up `r` over the window map `w` per (account, as_of)."""
    select = ",\n               ".join(f"{expr} AS {name}" for name, expr in aggregates.items())
    condition = f"WHERE {where}" if where else ""
    return f"""
        SELECT r.account_id, w.as_of,
               {select}
        FROM {rollup} r JOIN {WINDOW_MAP} w ON r.{day} = w.day
        {condition}
        GROUP BY r.account_id, w.as_of
    """


def ever_before_as_of_sql(rollup: str, aggregates: Mapping[str, tuple[str, str]], where: str | None = None) -> str:
    """Per snapshot, aggregates over *all* rows of `rollup` (alias r) dated strictly before as_of.

    `aggregates` maps an output name to (function, expression), function one of sum / count /
    max / min. Each row is aggregated into its snapshot interval, and a running window over the
    account's as_of order adds the intervals up; snapshots ride in the window after the interval
    ending at their as_of. NULL when the account has no row before as_of.
    """
    inner = ", ".join(f"{fn}({expr}) AS {name}" for name, (fn, expr) in aggregates.items())
    nulls = ", ".join(f"NULL AS {name}" for name in aggregates)
    running = ",\n               ".join(
        f"{RUNNING[fn]}({name}) OVER history AS {name}" for name, (fn, _) in aggregates.items()
    )
    condition = f"WHERE {where}" if where else ""
    return f"""
        SELECT account_id, as_of, {", ".join(aggregates)}
        FROM (
            SELECT account_id, as_of, is_snapshot,
               {running}
            FROM (
                SELECT r.account_id, c.next_as_of AS as_of, 0 AS is_snapshot, {inner}
                FROM {rollup} r JOIN {CALENDAR} c ON c.day = r.day
                {condition}
                GROUP BY r.account_id, c.next_as_of
                UNION ALL
                SELECT account_id, as_of, 1 AS is_snapshot, {nulls} FROM {SNAPSHOTS}
            ) u
            WINDOW history AS (PARTITION BY account_id ORDER BY as_of, is_snapshot
                               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        ) h
        WHERE is_snapshot = 1
    """


def distinct_keys_sql(d: Dialect, events: str, horizon: int) -> str:
    """Per (account, key): the last active day of each snapshot interval within reach of a window, and
    the key's next such day (see features/daily.py: counting rows whose next day is at or after as_of
    counts distinct keys). `events` has columns account_id, key, day."""
    return f"""
        SELECT account_id, key, day,
               lead(day) OVER (PARTITION BY account_id, key ORDER BY day) AS next_day
        FROM (SELECT e.account_id, e.key, max(e.day) AS day
              FROM ({events}) e JOIN {CALENDAR} c ON c.day = e.day
              WHERE e.key IS NOT NULL AND c.day >= c.next_as_of - {d.days(horizon)}
              GROUP BY e.account_id, e.key, c.next_as_of) k
    """


def distinct_in_windows_sql(keys: str, windows: Iterable[int]) -> str:
    """Distinct active keys per (account, as_of) for each window, as columns `distinct_<W>`."""
    windows = sorted(windows)
    counts = {f"distinct_{w}": rows_in(w) for w in windows}
    latest = "(r.next_day IS NULL OR r.next_day >= w.as_of)"
    return windowed_sql(keys, counts, f"{latest} AND w.age <= {windows[-1]}")
