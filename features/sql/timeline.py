"""Snapshot time in portable SQL: how events reach snapshots without a (snapshot x event) join.

Each event table is rolled up once to one row per (account, day) -- or per (account, day, user)
where a distinct count of users needs it -- so memory scales with accounts x days, not events.
Both engines then run only equality joins and ordered windows (DuckDB's ASOF join has no Spark
counterpart):

- The *window map* (as_of, day, age) gives each as_of its `horizon` previous days; an equality
  join on `day` hands every daily row to the few snapshots whose trailing windows hold it, and
  `age` (days before as_of, 1 = the day before) selects each window with a CASE inside the
  aggregate. Because as_of dates are midnights, "day < as_of" is exactly "timestamp < as_of": an
  event at as_of falls on day as_of (age 0) and is never seen; an event at as_of - W days has age
  W and is inside the W-day window.
- The *calendar* holds every day from the first event to the last as_of, each with `next_as_of`:
  the first as_of strictly after it, i.e. the snapshot interval the day belongs to. A day at or
  after the last as_of has none, so no snapshot can see it.
- "Ever before as_of" quantities (the last active day, running totals) are decomposable
  aggregates (sum, count, max, min): each daily row is aggregated into its interval, then a running
  window over each account's as_of order adds the intervals up. The snapshot rows ride in the same
  window (ordered after the interval that ends at their as_of), so a snapshot sees exactly the
  days strictly before its as_of.
- Distinct counts of users keep, per (account, key), only the last active day of each
  snapshot interval and the key's next such day. A key is active in the W-day window of as_of
  exactly when its last day before as_of is at most W days back, and that row is the one whose
  next day is at or after as_of -- so counting those rows counts distinct keys, whatever the other
  dates are (intervals only make the table smaller). Distinct product features are counted from
  per-day bit masks of their numbered keys instead (`features/families/usage.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from features.registry import lookup
from features.sql.dialect import Dialect
from features.sql.engine import Engine

ASOF_TABLE = "_ft_asof"
CALENDAR = "_ft_calendar"
WINDOW_MAP = "_ft_wmap"
SNAPSHOTS = "_ft_snap"
LANDED = "_ft_landed"

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
    """Number of daily rows (active days, or distinct users / features with the latest-row rule)."""
    return count_where(f"w.age <= {window}")


def sum_before(column: str, window: int) -> str:
    """Sum over the window before the last one (ages window+1 .. 2 x window), for trends."""
    return agg_where("sum", column, f"w.age > {window} AND w.age <= {2 * window}")


def ratio(numerator: str, denominator: str) -> str:
    """numerator / denominator as a double, NULL when the denominator is 0 or NULL (never a division by 0)."""
    return f"(CAST({numerator} AS DOUBLE) / NULLIF(CAST({denominator} AS DOUBLE), 0))"


def rel_change(recent: str, before: str, *, both_zero: str = "0.0") -> str:
    """Relative change of `recent` on `before`: `both_zero` when both are 0 (a trend's words then say "none in
    either"), NULL when there is no baseline."""
    recent, before = f"CAST(({recent}) AS DOUBLE)", f"CAST(({before}) AS DOUBLE)"
    return f"(CASE WHEN {before} > 0 THEN ({recent} - {before}) / {before} WHEN {recent} = 0 THEN {both_zero} END)"


def zero(expression: str) -> str:
    """A count that is 0, not NULL, for a snapshot without rows."""
    return f"coalesce({expression}, 0)"


def as_double(expression: str) -> str:
    return f"CAST({expression} AS DOUBLE)"


EXACT_TYPE = "DECIMAL(38, 18)"


def exact(value: str) -> str:
    """A fractional number (a quantity, an amount, hours) as the fixed-point decimal the features add up.

    Decimal sums are exact, so they do not depend on the order the engine adds the rows in (DuckDB's
    threads, Spark's partitions, the rows' order in the files): every build gives the same bits, where sums of
    doubles differed in their last bits from run to run. 18 places keep a double's digits for values from 0.01
    on (the decimals users write, 0.1 or 12.34, exactly); sums stay below 10^20 (`pipeline.validation.SUMMED`)."""
    return f"CAST({value} AS {EXACT_TYPE})"


def tenure(d: Dialect) -> str:
    """Days since the account landed, the fallback of every "days since last X" that never happened."""
    return d.days_between("s.landed_at", "s.as_of")


def table_start_sql(rollup: str, day: str = "day") -> str:
    """One row: the first `day` of a family's daily roll-up, i.e. of its table (NULL when it is empty).

    Exports rarely begin when the customers landed (two years of logins for customers of five years'
    standing), and each table may begin on another day. Join it with `table_start_join` and read it
    through `since_landing`, which uses it only when it lies before as_of: then it is the first row before
    as_of, which no row at or after as_of can move (point in time)."""
    return f"SELECT min({day}) AS first_day FROM {rollup}"


def starts_after_landing(d: Dialect, start: str = "hs.first_day") -> str:
    """Whether the table's first row before as_of (`start`, from `table_start_sql`) is after the account's
    landing day: the table does not say what happened between the landing and its start. A table without a
    row before as_of is taken at its word, as its windows are (no activity; an empty table is warned about
    when the data is read)."""
    return f"({start} < s.as_of AND {start} > {d.day_of('s.landed_at')})"


def since_landing(d: Dialect, known: str, start: str = "hs.first_day") -> str:
    """`known` (a quantity counted from the landing day: days to first use, onboarding sessions), NULL where
    the table starts after the account landed (`starts_after_landing`): reading nothing before the table's
    start as "never" would count the export's start ("first product use 1734 days after landing" of an
    account landed years before the usage data)."""
    return f"(CASE WHEN {starts_after_landing(d, start)} THEN NULL ELSE {known} END)"


def within_data(d: Dialect, columns: Mapping[str, str], start: str = "hs.first_day") -> dict[str, str]:
    """A family's `columns` (name -> expression), each `whole` feature's NULL where its window reaches before
    the first row of a table that starts after the account landed: the data holds part of the window only.
    `whole` are the features over more than the 90 days the snapshots' start guarantees, fixed (a year of
    invoices, 180 days of surveys) or configured (`features.windows: [30, 180]`), where a partial count measured
    worse than none (bench/RESULTS.md, "Wave 17 (since)"); their words say why they are missing. One rule for
    every family: each passes all its columns through here."""

    def known(name: str, value: str) -> str:
        found = lookup(name)
        if found is None or not found.whole or found.window is None:
            return value
        late = f"{start} > s.as_of - {d.days(found.window)}"
        return f"(CASE WHEN {starts_after_landing(d, start)} AND {late} THEN NULL ELSE {value} END)"

    return {name: known(name, value) for name, value in columns.items()}


def days_since_last(d: Dialect, last_day: str, start: str = "hs.first_day") -> str:
    """Days since the account's last row before as_of (`last_day`); without one, days since it landed -- or,
    where the table starts after the landing (`starts_after_landing`), since the table's first row: the data
    says nothing before it, and counting from the landing day read an export of two years as "no login for
    1700 days" (measured in bench/RESULTS.md, "Wave 17 (since)"). `data_days` tells the words which it is."""
    bound = f"CASE WHEN {starts_after_landing(d, start)} THEN {d.days_between(start, 's.as_of')} ELSE {tenure(d)} END"
    return f"coalesce({d.days_between(last_day, 's.as_of')}, {bound})"


def data_days(d: Dialect, start: str = "hs.first_day") -> str:
    """Days of the table before as_of, from its first row (NULL when it has none before as_of): what a
    "days since" value is bounded by (`days_since_last`) and how much of a trailing window the data holds,
    carried beside the features for their words (`features.registry.data_days_column`), never a feature."""
    return f"(CASE WHEN {start} < s.as_of THEN {d.days_between(start, 's.as_of')} END)"


def table_start_join(table: str) -> str:
    """The join giving every snapshot the table's first day as `hs.first_day` (a one-row table)."""
    return f"CROSS JOIN {table} hs"


def snapshot_join(alias: str, table: str) -> str:
    """LEFT JOIN a per-snapshot table (account_id, as_of, ...) to the snapshots `s`."""
    return f"LEFT JOIN {table} {alias} ON {alias}.account_id = s.account_id AND {alias}.as_of = s.as_of"


def landed_sql(d: Dialect) -> str:
    """Per account, the day it landed (constant across its snapshots: the earliest term started before any)."""
    return f"SELECT DISTINCT account_id, {d.day_of('landed_at')} AS landed_day FROM {SNAPSHOTS}"


def family_sql(columns: Mapping[str, str], joins: Iterable[str], snapshots: str = SNAPSHOTS) -> str:
    """A family's table: one row per snapshot with its feature `columns` (name -> expression over `s` and
    joins). Numeric features are DOUBLE on every engine (a bare `1.0` is DECIMAL on both)."""

    def typed(name: str, expr: str) -> str:
        spec = lookup(name)
        return expr if spec is not None and spec.kind == "categorical" else as_double(expr)

    select = ",\n               ".join(f"{typed(name, expr)} AS {name}" for name, expr in columns.items())
    return f"""
        SELECT s.account_id, s.as_of,
               {select}
        FROM {snapshots} s
        {" ".join(joins)}
    """


def windowed_sql(rollup: str, aggregates: Mapping[str, str], where: str | None = None, day: str = "day") -> str:
    """Aggregate a daily roll-up `r` over the window map `w` per (account, as_of), placing each row
    in the windows by its `day` column."""
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
    """Per snapshot, aggregates over *all* rows of `rollup` (alias r, columns account_id and day) dated
    strictly before as_of.

    `aggregates` maps an output name to (function, expression), function one of sum / count /
    max / min. NULL when the account has no row before as_of.
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
    the key's next such day. `events` has columns account_id, key, day (several rows per day are fine)."""
    return f"""
        SELECT account_id, key, day,
               lead(day) OVER (PARTITION BY account_id, key ORDER BY day) AS next_day
        FROM (SELECT e.account_id, e.key, max(e.day) AS day
              FROM ({events}) e JOIN {CALENDAR} c ON c.day = e.day
              WHERE e.key IS NOT NULL AND c.day >= c.next_as_of - {d.days(horizon)}
              GROUP BY e.account_id, e.key, c.next_as_of) k
    """


def distinct_in_windows_sql(keys: str, windows: Iterable[int]) -> str:
    """Distinct active keys per (account, as_of) for each window, as columns `distinct_<W>`: a key
    counts in a window only on its last day before as_of (its next day is none, or at/after as_of)."""
    windows = sorted(windows)
    counts = {f"distinct_{w}": rows_in(w) for w in windows}
    latest = "(r.next_day IS NULL OR r.next_day >= w.as_of)"
    return windowed_sql(keys, counts, f"{latest} AND w.age <= {windows[-1]}")


def trailing_sql(
    d: Dialect, rows: str, aggregates: Mapping[str, str], days: int, time: str = "day", also: str = "TRUE"
) -> str:
    """Aggregate the rows of a small table `r` dated in the `days` before each snapshot, per (account, as_of).

    For the sparse optional sources (invoices, touchpoints, surveys) an equality join of the
    snapshots to the account's rows with a range condition is cheaper than the window map and
    reaches back further (365 days) without widening the map for every family. `r.age` is whole
    days before as_of (1 = the day before), so `r.age <= W` selects the same W-day window as
    `sum_in`. `also` is a further join condition on the row `e` and the snapshot `s`.
    """
    select = ",\n               ".join(f"{expr} AS {name}" for name, expr in aggregates.items())
    age = f"CAST({d.days_between(d.day_of(f'e.{time}'), 's.as_of')} AS BIGINT)"
    return f"""
        SELECT r.account_id, r.as_of,
               {select}
        FROM (SELECT e.*, s.as_of, {age} AS age
              FROM {SNAPSHOTS} s JOIN {rows} e
                ON e.account_id = s.account_id AND e.{time} < s.as_of AND e.{time} >= s.as_of - {d.days(days)}
                AND {also}) r
        GROUP BY r.account_id, r.as_of
    """


def sum_within(column: str, days: int) -> str:
    """Sum of a column over the rows of `trailing_sql` in the last `days` days."""
    return agg_where("sum", column, f"r.age <= {days}")


def sum_between(column: str, recent: int, days: int) -> str:
    """Sum over the rows `recent` + 1 .. `days` days back, for trends against an earlier period."""
    return agg_where("sum", column, f"r.age > {recent} AND r.age <= {days}")


def latest_row_joins(alias: str, rollup: str, last: str, key: str = "day") -> list[str]:
    """LEFT JOINs giving each snapshot `s` its latest row of `rollup` (one row per account and `key`)
    dated before as_of, as `alias`. `last` is a table of `ever_before_as_of_sql(..., {key: ("max", ...)})`."""
    return [
        snapshot_join(f"{alias}_last", last),
        f"LEFT JOIN {rollup} {alias} ON {alias}.account_id = s.account_id AND {alias}.{key} = {alias}_last.{key}",
    ]
