"""The logins family (features/families/logins.py) in portable SQL: same features, same names.

Differences from the DuckDB-only version: windows aggregate with CASE instead of FILTER, the gap
between login days is a whole-day difference of two midnights (`days_between`), and the last login
day before as_of comes from `ever_before_as_of_sql` instead of an ASOF join.
"""

from __future__ import annotations

from collections.abc import Iterable

from features.daily import rel_change, zero
from features.families.logins import (
    ACTIVE_DAYS,
    ACTIVE_USERS,
    DAYS_SINCE,
    GAP_MAX,
    GAP_MEAN,
    LOGINS_PER_SEAT,
    TREND,
    TREND_VS_90,
    UTILISATION,
)
from features.portable.engine import Engine
from features.portable.timeline import (
    SNAPSHOTS,
    agg_where,
    distinct_in_windows_sql,
    distinct_keys_sql,
    ever_before_as_of_sql,
    ratio,
    rows_in,
    sum_before,
    sum_in,
    windowed_sql,
)

SOURCE = "logins"
TABLE = "_ft_logins"
DAILY = "_ft_logins_day"
USERS = "_ft_logins_users"
WINDOWS = "_ft_logins_win"
USER_WINDOWS = "_ft_logins_users_win"
LAST = "_ft_logins_last"
VALID = "account_id IS NOT NULL AND ts IS NOT NULL"


def build(engine: Engine, windows: Iterable[int], horizon: int, has_users: bool) -> list[str]:
    d = engine.dialect
    windows = sorted(windows)
    count_windows = sorted({*windows, 30, 90})
    engine.materialize(
        DAILY,
        f"""
        SELECT account_id, day, logins, lag(day) OVER (PARTITION BY account_id ORDER BY day) AS prev_day
        FROM (SELECT account_id, {d.day_of("ts")} AS day, count(*) AS logins
              FROM logins WHERE {VALID} GROUP BY ALL) daily
        """,
    )
    gap = d.days_between("r.prev_day", "r.day")
    aggregates = {f"logins_{w}": sum_in("r.logins", w) for w in count_windows}
    aggregates |= {f"days_{w}": rows_in(w) for w in windows}
    aggregates |= {
        "logins_prev_30": sum_before("r.logins", 30),
        "days_in_90": rows_in(90),
        "first_age_90": agg_where("max", "w.age", "w.age <= 90"),
        "last_age_90": agg_where("min", "w.age", "w.age <= 90"),
        "gap_max_90": agg_where("max", gap, f"w.age + {gap} <= 90"),
    }
    engine.materialize(WINDOWS, windowed_sql(DAILY, aggregates))
    engine.materialize(LAST, ever_before_as_of_sql(DAILY, {"last_day": ("max", "r.day")}))

    columns = {LOGINS_PER_SEAT.name(w): ratio(zero(f"w.logins_{w}"), "s.seat_norm") for w in windows}
    if has_users:
        users = f"SELECT account_id, user_id AS key, {d.day_of('ts')} AS day FROM logins WHERE {VALID}"
        engine.materialize(USERS, distinct_keys_sql(d, users, horizon))
        engine.materialize(USER_WINDOWS, distinct_in_windows_sql(USERS, windows))
        columns |= {ACTIVE_USERS.name(w): f"CAST({zero(f'u.distinct_{w}')} AS DOUBLE)" for w in windows}
        columns |= {UTILISATION.name(w): ratio(zero(f"u.distinct_{w}"), "s.seat_norm") for w in windows}
    columns |= {ACTIVE_DAYS.name(w): f"CAST({zero(f'w.days_{w}')} AS DOUBLE)" for w in windows}
    tenure = d.days_between("s.landed_at", "s.as_of")
    columns[DAYS_SINCE] = f"coalesce({d.days_between('l.last_day', 's.as_of')}, {tenure})"
    columns[GAP_MEAN] = (
        "CASE WHEN w.days_in_90 >= 2 THEN CAST(w.first_age_90 - w.last_age_90 AS DOUBLE) / (w.days_in_90 - 1) END"
    )
    columns[GAP_MAX] = "CAST(w.gap_max_90 AS DOUBLE)"
    columns[TREND] = rel_change(zero("w.logins_30"), zero("w.logins_prev_30"))
    # CAST first: Spark divides BIGINT by the literal 30.0 as DECIMAL (6 decimals), DuckDB as DOUBLE.
    columns[TREND_VS_90] = rel_change(ratio(zero("w.logins_30"), "30"), ratio(zero("w.logins_90"), "90"))

    select = ",\n               ".join(f"{expr} AS {name}" for name, expr in columns.items())
    user_join = f"LEFT JOIN {USER_WINDOWS} u ON u.account_id = s.account_id AND u.as_of = s.as_of" if has_users else ""
    engine.materialize(
        TABLE,
        f"""
        SELECT s.account_id, s.as_of,
               {select}
        FROM {SNAPSHOTS} s
        LEFT JOIN {WINDOWS} w ON w.account_id = s.account_id AND w.as_of = s.as_of
        {user_join}
        LEFT JOIN {LAST} l ON l.account_id = s.account_id AND l.as_of = s.as_of
        """,
    )
    return list(columns)
