"""Login features (category `engagement`): how often and how widely the licensed users show up.

Gaps are measured between distinct login days; the mean gap over 90 days is (last - first) /
(days - 1), the longest uses each login day's previous login day when that lies in the window.
"""

from __future__ import annotations

from features.families.base import Declarations, FamilyContext, family_table
from features.registry import data_days_column
from features.sql.engine import Engine
from features.sql.timeline import (
    agg_where,
    as_double,
    count_where,
    data_days,
    days_since_last,
    distinct_in_windows_sql,
    distinct_keys_sql,
    ever_before_as_of_sql,
    family_sql,
    ratio,
    rel_change,
    rows_in,
    snapshot_join,
    sum_before,
    sum_in,
    table_start_join,
    table_start_sql,
    windowed_sql,
    within_data,
    zero,
)

SOURCE = "logins"
declare = Declarations(SOURCE, "engagement")

LOGINS_PER_SEAT = declare.windowed(
    "logins_per_seat_{W}d",
    "Logins per licensed seat in the last {W} days",
    "higher",
    "{value:.1f} logins per seat in the last {W} days",
    unseated="{value:.0f} logins in the last {W} days",
)
ACTIVE_USERS = declare.windowed(
    "active_users_{W}d", "Distinct users who logged in in the last {W} days", "higher",
    "{value:.0f} active users in the last {W} days", requires=("user_id",),
)  # fmt: skip
UTILISATION = declare.windowed(
    "user_utilisation_{W}d",
    "Licence utilisation: distinct active users / seats over the last {W} days",
    "higher",
    "{value:.0%} of seats active in the last {W} days",
    requires=("user_id",),
    unseated="{value:.0f} active users in the last {W} days (no seat count)",
)
ACTIVE_DAYS = declare.windowed(
    "active_days_{W}d", "Days with at least one login in the last {W} days", "higher",
    "logins on {value:.0f} of the last {W} days", none="no logins in the last {W} days",
)  # fmt: skip
DAYS_SINCE = declare.fixed(
    "days_since_last_login",
    "Days since the last login",
    "lower",
    "last login {value:.0f} days ago",
    never="no login recorded after the day it landed, {tenure_days:.0f} days ago",
    since_start="no login since the logins data starts, {value:.0f} days ago",
)
GAP_MEAN = declare.fixed(
    "login_gap_mean_90d", "Mean days between login days over 90 days", "lower",
    "logins every {value:.1f} days on average (90 days)",
    missing="logins on fewer than 2 days in the last 90 days",
)  # fmt: skip
GAP_MAX = declare.fixed(
    "login_gap_max_90d", "Longest gap between logins over 90 days", "lower",
    "longest stretch without logins {value:.0f} days (90 days)",
    missing="logins on fewer than 2 days in the last 90 days",
)  # fmt: skip
TREND = declare.fixed(
    "logins_trend_30d",
    "Logins in the last 30 days vs the 30 before (relative change)",
    "higher",
    "{logins_per_seat_30d:.1f} logins per seat in 30 days, {value:+.0%} on the previous 30",
    missing="{logins_per_seat_30d:.1f} logins per seat in 30 days, none in the 30 before",
    unseated="{logins_per_seat_30d:.0f} logins in 30 days, {value:+.0%} on the previous 30",
    window=60,
)
TREND_VS_90 = declare.fixed(
    "logins_trend_vs_90d",
    "Daily login rate of the last 30 days vs the 90-day rate (relative change)",
    "higher",
    "{logins_per_seat_30d:.1f} logins per seat in 30 days, {value:+.0%} on the 90-day average",
    missing="{logins_per_seat_30d:.1f} logins per seat in 30 days, none in the 60 before",
    unseated="{logins_per_seat_30d:.0f} logins in 30 days, {value:+.0%} on the 90-day average",
)

DAILY = "_ft_logins_day"
USERS = "_ft_logins_users"
VALID = "account_id IS NOT NULL AND ts IS NOT NULL"
WINDOWS = "_ft_logins_win"
USER_WINDOWS = "_ft_logins_users_win"
LAST = "_ft_logins_last"
START = "_ft_logins_start"


def build(engine: Engine, ctx: FamilyContext) -> list[str]:
    d = engine.dialect
    count_windows = sorted({*ctx.windows, 30, 90})
    named = ctx.has(SOURCE, "user_id")  # logins that name their user: active users are known only from those
    engine.materialize(
        DAILY,
        f"""
        SELECT account_id, day, logins, {"named, " if named else ""}
               lag(day) OVER (PARTITION BY account_id ORDER BY day) AS prev_day
        FROM (SELECT account_id, {d.day_of("ts")} AS day, count(*) AS logins
                     {f", {count_where('user_id IS NOT NULL')} AS named" if named else ""}
              FROM logins WHERE {VALID} GROUP BY ALL) daily
        """,
    )
    gap = d.days_between("r.prev_day", "r.day")  # whole days: both are midnights
    aggregates = {f"logins_{w}": sum_in("r.logins", w) for w in count_windows}
    aggregates |= {f"days_{w}": rows_in(w) for w in ctx.windows}
    if named:
        aggregates |= {f"named_{w}": sum_in("r.named", w) for w in ctx.windows}
    aggregates |= {
        "logins_prev_30": sum_before("r.logins", 30),
        "days_in_90": rows_in(90),
        "first_age_90": agg_where("max", "w.age", "w.age <= 90"),
        "last_age_90": agg_where("min", "w.age", "w.age <= 90"),
        "gap_max_90": agg_where("max", gap, f"w.age + {gap} <= 90"),
    }
    engine.define(WINDOWS, windowed_sql(DAILY, aggregates))
    engine.define(LAST, ever_before_as_of_sql(DAILY, {"last_day": ("max", "r.day")}))
    engine.define(START, table_start_sql(DAILY))

    columns = {LOGINS_PER_SEAT.name(w): ratio(zero(f"w.logins_{w}"), "s.seat_norm") for w in ctx.windows}
    joins = [snapshot_join("w", WINDOWS), snapshot_join("l", LAST), table_start_join(START)]
    if named:
        users = f"SELECT account_id, user_id AS key, {d.day_of('ts')} AS day FROM logins WHERE {VALID}"
        engine.define(USERS, distinct_keys_sql(d, users, ctx.horizon))
        engine.define(USER_WINDOWS, distinct_in_windows_sql(USERS, ctx.windows))
        columns |= {ACTIVE_USERS.name(w): _named(w, as_double(zero(f"u.distinct_{w}"))) for w in ctx.windows}
        columns |= {UTILISATION.name(w): _named(w, ratio(zero(f"u.distinct_{w}"), "s.seat_norm")) for w in ctx.windows}
        joins.append(snapshot_join("u", USER_WINDOWS))
    columns |= {ACTIVE_DAYS.name(w): as_double(zero(f"w.days_{w}")) for w in ctx.windows}
    columns[DAYS_SINCE] = days_since_last(d, "l.last_day")
    columns[GAP_MEAN] = (
        "CASE WHEN w.days_in_90 >= 2 THEN CAST(w.first_age_90 - w.last_age_90 AS DOUBLE) / (w.days_in_90 - 1) END"
    )
    columns[GAP_MAX] = as_double("w.gap_max_90")
    columns[TREND] = rel_change(zero("w.logins_30"), zero("w.logins_prev_30"))
    columns[TREND_VS_90] = rel_change(ratio(zero("w.logins_30"), "30"), ratio(zero("w.logins_90"), "90"))
    columns[data_days_column(SOURCE)] = data_days(d)
    engine.define(family_table(SOURCE), family_sql(within_data(d, columns), joins))
    return list(columns)


def _named(window: int, value: str) -> str:
    """`value`, or NULL for a window whose logins none names its user (an export without user ids): how many
    users were active is not known there, and 0 would read '0% of seats active'."""
    logins, named = zero(f"w.logins_{window}"), zero(f"w.named_{window}")
    return f"CASE WHEN {logins} > 0 AND {named} = 0 THEN NULL ELSE {value} END"
