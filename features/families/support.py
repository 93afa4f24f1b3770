"""Support features (category `support`): how much friction the account hits, and how it is served.

Tickets count on the day they were opened. What is only known once a ticket is closed --
its resolution time and its CSAT -- counts on the day it was closed (CSAT of a ticket without a
close date column in the data on its opening day), so a ticket still open at as_of contributes
neither. A ticket is
open at as_of when it was opened before as_of and not closed before as_of. Categories are
compared without case or punctuation ("How-to" = "howto").
"""

from __future__ import annotations

from features.contract import HIGH_PRIORITIES
from features.families.base import Declarations, FamilyContext, family_table
from features.registry import data_days_column
from features.sql.engine import Engine
from features.sql.timeline import (
    agg_where,
    as_double,
    count_where,
    data_days,
    days_since_last,
    ever_before_as_of_sql,
    exact,
    family_sql,
    ratio,
    rel_change,
    snapshot_join,
    sum_before,
    sum_in,
    table_start_join,
    table_start_sql,
    windowed_sql,
    within_data,
    zero,
)

SOURCE = "support_tickets"
declare = Declarations(SOURCE, "support")

TICKETS = declare.windowed(
    "tickets_{W}d", "Support tickets opened in the last {W} days", "lower", "{value:.0f} tickets in the last {W} days"
)
TICKETS_PER_SEAT = declare.windowed(
    "tickets_per_seat_{W}d", "Support tickets per seat in the last {W} days", "lower",
    "{value:.2f} tickets per seat in the last {W} days", unseated="{value:.0f} tickets in the last {W} days",
)  # fmt: skip
OPEN = declare.fixed(
    "open_tickets", "Tickets open at the snapshot date", "lower", "{value:.0f} tickets open", requires=("closed_at",)
)
HIGH_SHARE = declare.fixed(
    "high_priority_share_90d", "Share of high or urgent tickets in 90 days", "lower",
    "{value:.0%} of tickets high or urgent (90 days)", requires=("priority",),
    missing="no ticket with a priority in the last 90 days",
)  # fmt: skip
ESCALATIONS = declare.fixed(
    "escalations_90d", "Escalated tickets in 90 days", "lower", "{value:.0f} escalated tickets (90 days)",
    requires=("escalated",),
)  # fmt: skip
RESOLUTION = declare.fixed(
    "resolution_hours_mean_90d", "Mean hours to resolve tickets closed in 90 days", "lower",
    "tickets took {value:.0f} hours to resolve on average (90 days)", requires=("closed_at",),
    missing="no ticket resolved in the last 90 days",
)  # fmt: skip
CSAT = declare.fixed(
    "csat_mean_90d",
    "Mean CSAT (1-5) over 90 days",
    "higher",
    "CSAT {value:.1f} of 5 (90 days)",
    requires=("csat",),
    missing="no ticket rated in the last 90 days",
)
BUG_SHARE = declare.fixed(
    "bug_share_90d", "Share of bug tickets in 90 days", "lower", "{value:.0%} of tickets are bugs (90 days)",
    requires=("category",),
    missing="no ticket with a category in the last 90 days",
)  # fmt: skip
HOWTO_SHARE = declare.fixed(
    "howto_share_90d", "Share of how-to tickets in 90 days", "neutral",
    "{value:.0%} of tickets are how-to questions (90 days)", requires=("category",),
    missing="no ticket with a category in the last 90 days",
)  # fmt: skip
DAYS_SINCE = declare.fixed(
    "days_since_last_ticket",
    "Days since the last ticket was opened",
    "higher",
    "last ticket {value:.0f} days ago",
    never="no ticket recorded after the day it landed, {tenure_days:.0f} days ago",
    since_start="no ticket since the support tickets data starts, {value:.0f} days ago",
)
TREND = declare.fixed(
    "tickets_trend_30d",
    "Tickets in the last 30 days vs the 30 before (relative change)",
    "lower",
    "{tickets_30d:.0f} tickets in 30 days, {value:+.0%} on the previous 30",
    missing="{tickets_30d:.0f} tickets in 30 days, none in the 30 before",
    window=60,
)

OPENED_DAILY = "_ft_tickets_opened_day"
CLOSED_DAILY = "_ft_tickets_closed_day"
OPENED_WINDOWS = "_ft_tickets_opened_win"
CLOSED_WINDOWS = "_ft_tickets_closed_win"
OPENED_EVER = "_ft_tickets_opened_ever"
START = "_ft_tickets_start"
CLOSED_EVER = "_ft_tickets_closed_ever"
VALID = "account_id IS NOT NULL AND opened_at IS NOT NULL"


def build(engine: Engine, ctx: FamilyContext) -> list[str]:
    d = engine.dialect

    def has(column: str) -> bool:
        return ctx.has(SOURCE, column)

    high_words = ", ".join(f"'{word}'" for word in HIGH_PRIORITIES)
    category = d.regexp_replace_all("lower(category)", "[^a-z0-9]", "")
    rated_when = "closed_at IS NOT NULL" if has("closed_at") else "TRUE"
    engine.materialize(
        OPENED_DAILY,
        f"""
        SELECT account_id, {d.day_of("opened_at")} AS day, count(*) AS tickets,
               count(priority) AS with_priority,
               {count_where(f"lower(priority) IN ({high_words})")} AS high,
               {count_where("escalated")} AS escalated,
               count(category) AS with_category,
               {count_where(f"{category} = 'bug'")} AS bugs,
               {count_where(f"{category} = 'howto'")} AS howtos
        FROM support_tickets WHERE {VALID} GROUP BY ALL
        """,
    )
    resolved = "closed_at >= opened_at"
    engine.materialize(
        CLOSED_DAILY,
        f"""
        SELECT account_id, {d.day_of("greatest(opened_at, coalesce(closed_at, opened_at))")} AS day,
               count(closed_at) AS closed,
               {agg_where("sum", exact(d.hours_between("opened_at", "closed_at")), resolved)} AS resolution_hours,
               {count_where(resolved)} AS resolved,
               {agg_where("sum", ctx.summed(SOURCE, "csat"), rated_when)} AS csat_sum,
               {agg_where("count", "csat", rated_when)} AS rated
        FROM support_tickets WHERE {VALID} GROUP BY ALL
        """,
    )
    opened = {f"tickets_{w}": sum_in("r.tickets", w) for w in sorted({*ctx.windows, 30})}
    opened |= {"tickets_prev_30": sum_before("r.tickets", 30)}
    opened |= {name: sum_in(f"r.{name}", 90) for name in ("with_priority", "high", "escalated", "with_category")}
    opened |= {name: sum_in(f"r.{name}", 90) for name in ("bugs", "howtos")}
    engine.define(OPENED_WINDOWS, windowed_sql(OPENED_DAILY, opened))
    closed = {name: sum_in(f"r.{name}", 90) for name in ("resolution_hours", "resolved", "csat_sum", "rated")}
    engine.define(CLOSED_WINDOWS, windowed_sql(CLOSED_DAILY, closed, "w.age <= 90"))
    engine.define(
        OPENED_EVER,
        ever_before_as_of_sql(OPENED_DAILY, {"opened_total": ("sum", "r.tickets"), "day": ("max", "r.day")}),
    )
    engine.define(START, table_start_sql(OPENED_DAILY))
    joins = [
        snapshot_join("o", OPENED_WINDOWS),
        snapshot_join("c", CLOSED_WINDOWS),
        snapshot_join("opened", OPENED_EVER),
        table_start_join(START),
    ]

    columns = {TICKETS.name(w): as_double(zero(f"o.tickets_{w}")) for w in ctx.windows}
    columns |= {TICKETS_PER_SEAT.name(w): ratio(zero(f"o.tickets_{w}"), "s.seat_norm") for w in ctx.windows}
    if has("closed_at"):
        engine.define(CLOSED_EVER, ever_before_as_of_sql(CLOSED_DAILY, {"closed_total": ("sum", "r.closed")}))
        joins.append(snapshot_join("closed", CLOSED_EVER))
        columns[OPEN] = as_double(f"{zero('opened.opened_total')} - {zero('closed.closed_total')}")
    if has("priority"):
        columns[HIGH_SHARE] = ratio("o.high", "o.with_priority")
    if has("escalated"):
        columns[ESCALATIONS] = as_double(zero("o.escalated"))
    if has("closed_at"):
        columns[RESOLUTION] = ratio("c.resolution_hours", "c.resolved")
    if has("csat"):
        columns[CSAT] = ratio("c.csat_sum", "c.rated")
    if has("category"):
        columns[BUG_SHARE] = ratio("o.bugs", "o.with_category")
        columns[HOWTO_SHARE] = ratio("o.howtos", "o.with_category")
    columns[DAYS_SINCE] = days_since_last(d, "opened.day")
    columns[TREND] = rel_change(zero("o.tickets_30"), zero("o.tickets_prev_30"))
    columns[data_days_column(SOURCE)] = data_days(d)
    engine.define(family_table(SOURCE), family_sql(within_data(d, columns), joins))
    return list(columns)
