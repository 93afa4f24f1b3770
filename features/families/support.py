"""Support features (category `support`): how much friction the account hits, and how it is served.

Tickets count on the day they were opened. What is only known once a ticket is closed --
its resolution time and its CSAT -- counts on the day it was closed (CSAT of a ticket without a
close date column in the data on its opening day), so a ticket still open at as_of contributes
neither. A ticket is
open at as_of when it was opened before as_of and not closed before as_of. Categories are
compared without case or punctuation ("How-to" = "howto").
"""

from __future__ import annotations

from features.daily import (
    SNAPSHOTS,
    asof_join,
    day_of,
    days_between,
    ratio,
    rel_change,
    sum_before,
    sum_in,
    window_join,
    windowed_table_sql,
    zero,
)
from features.families.base import Declarations, FamilyContext, Run, family_table
from features.snapshots import tenure_sql

SOURCE = "support_tickets"
declare = Declarations(SOURCE, "support")

TICKETS = declare.windowed(
    "tickets_{W}d", "Support tickets opened in the last {W} days", "lower", "{value:.0f} tickets in the last {W} days"
)
TICKETS_PER_SEAT = declare.windowed(
    "tickets_per_seat_{W}d", "Support tickets per seat in the last {W} days", "lower",
    "{value:.2f} tickets per seat in the last {W} days",
)  # fmt: skip
OPEN = declare.fixed(
    "open_tickets", "Tickets open at the snapshot date", "lower", "{value:.0f} tickets open", requires=("closed_at",)
)
HIGH_SHARE = declare.fixed(
    "high_priority_share_90d", "Share of high or urgent tickets in 90 days", "lower",
    "{value:.0%} of tickets high or urgent (90 days)", requires=("priority",),
)  # fmt: skip
ESCALATIONS = declare.fixed(
    "escalations_90d", "Escalated tickets in 90 days", "lower", "{value:.0f} escalated tickets (90 days)",
    requires=("escalated",),
)  # fmt: skip
RESOLUTION = declare.fixed(
    "resolution_hours_mean_90d", "Mean hours to resolve tickets closed in 90 days", "lower",
    "tickets took {value:.0f} hours to resolve on average (90 days)", requires=("closed_at",),
)  # fmt: skip
CSAT = declare.fixed(
    "csat_mean_90d", "Mean CSAT (1-5) over 90 days", "higher", "CSAT {value:.1f} of 5 (90 days)", requires=("csat",)
)
BUG_SHARE = declare.fixed(
    "bug_share_90d", "Share of bug tickets in 90 days", "lower", "{value:.0%} of tickets are bugs (90 days)",
    requires=("category",),
)  # fmt: skip
HOWTO_SHARE = declare.fixed(
    "howto_share_90d", "Share of how-to tickets in 90 days", "neutral",
    "{value:.0%} of tickets are how-to questions (90 days)", requires=("category",),
)  # fmt: skip
DAYS_SINCE = declare.fixed(
    "days_since_last_ticket", "Days since the last ticket was opened", "higher", "last ticket {value:.0f} days ago"
)
TREND = declare.fixed(
    "tickets_trend_30d",
    "Tickets in the last 30 days vs the 30 before (relative change)",
    "lower",
    "{tickets_30d:.0f} tickets in 30 days, {value:+.0%} on the previous 30",
)

OPENED_DAILY = "_ft_tickets_opened_day"
CLOSED_DAILY = "_ft_tickets_closed_day"
OPENED_WINDOWS = "_ft_tickets_opened_win"
CLOSED_WINDOWS = "_ft_tickets_closed_win"
CATEGORY_SQL = "regexp_replace(lower(category), '[^a-z0-9]', '', 'g')"


def build(run: Run, ctx: FamilyContext) -> list[str]:
    def has(column: str) -> bool:
        return ctx.has(SOURCE, column)

    rated_when = "closed_at IS NOT NULL" if has("closed_at") else "TRUE"

    run(f"""
        CREATE OR REPLACE TEMP TABLE {OPENED_DAILY} AS
        SELECT *, sum(tickets) OVER (PARTITION BY account_id ORDER BY day) AS opened_total
        FROM (SELECT account_id, {day_of("opened_at")} AS day, count(*) AS tickets,
                     count(priority) AS with_priority,
                     count(*) FILTER (WHERE lower(priority) IN ('high', 'urgent')) AS high,
                     count(*) FILTER (WHERE escalated) AS escalated,
                     count(category) AS with_category,
                     count(*) FILTER (WHERE {CATEGORY_SQL} = 'bug') AS bugs,
                     count(*) FILTER (WHERE {CATEGORY_SQL} = 'howto') AS howtos
              FROM support_tickets WHERE account_id IS NOT NULL AND opened_at IS NOT NULL GROUP BY ALL)
    """)
    run(f"""
        CREATE OR REPLACE TEMP TABLE {CLOSED_DAILY} AS
        SELECT *, sum(closed) OVER (PARTITION BY account_id ORDER BY day) AS closed_total
        FROM (SELECT account_id, {day_of("greatest(opened_at, coalesce(closed_at, opened_at))")} AS day,
                     count(closed_at) AS closed,
                     sum(date_diff('microsecond', opened_at, closed_at) / 3600000000.0)
                         FILTER (WHERE closed_at >= opened_at) AS resolution_hours,
                     count(closed_at) FILTER (WHERE closed_at >= opened_at) AS resolved,
                     sum(csat) FILTER (WHERE {rated_when}) AS csat_sum,
                     count(csat) FILTER (WHERE {rated_when}) AS rated
              FROM support_tickets WHERE account_id IS NOT NULL AND opened_at IS NOT NULL GROUP BY ALL)
    """)
    opened = {f"tickets_{w}": sum_in("r.tickets", w) for w in sorted({*ctx.windows, 30})}
    opened |= {"tickets_prev_30": sum_before("r.tickets", 30)}
    opened |= {name: sum_in(f"r.{name}", 90) for name in ("with_priority", "high", "escalated", "with_category")}
    opened |= {name: sum_in(f"r.{name}", 90) for name in ("bugs", "howtos")}
    run(windowed_table_sql(OPENED_WINDOWS, OPENED_DAILY, opened))
    closed = {name: sum_in(f"r.{name}", 90) for name in ("resolution_hours", "resolved", "csat_sum", "rated")}
    run(windowed_table_sql(CLOSED_WINDOWS, CLOSED_DAILY, closed, "w.age <= 90"))

    columns = {TICKETS.name(w): f"CAST({zero(f'o.tickets_{w}')} AS DOUBLE)" for w in ctx.windows}
    columns |= {TICKETS_PER_SEAT.name(w): ratio(zero(f"o.tickets_{w}"), "s.seat_norm") for w in ctx.windows}
    if has("closed_at"):
        columns[OPEN] = f"CAST({zero('opened.opened_total')} - {zero('closed.closed_total')} AS DOUBLE)"
    if has("priority"):
        columns[HIGH_SHARE] = ratio("o.high", "o.with_priority")
    if has("escalated"):
        columns[ESCALATIONS] = f"CAST({zero('o.escalated')} AS DOUBLE)"
    if has("closed_at"):
        columns[RESOLUTION] = ratio("c.resolution_hours", "c.resolved")
    if has("csat"):
        columns[CSAT] = ratio("c.csat_sum", "c.rated")
    if has("category"):
        columns[BUG_SHARE] = ratio("o.bugs", "o.with_category")
        columns[HOWTO_SHARE] = ratio("o.howtos", "o.with_category")
    columns[DAYS_SINCE] = f"coalesce({days_between('opened.day', 's.as_of')}, {tenure_sql()})"
    columns[TREND] = rel_change(zero("o.tickets_30"), zero("o.tickets_prev_30"))

    select = ",\n               ".join(f"{expr} AS {name}" for name, expr in columns.items())
    run(f"""
        CREATE OR REPLACE TEMP TABLE {family_table(SOURCE)} AS
        SELECT s.account_id, s.as_of,
               {select}
        FROM {SNAPSHOTS} s
        {window_join("o", OPENED_WINDOWS)}
        {window_join("c", CLOSED_WINDOWS)}
        {asof_join("opened", OPENED_DAILY)}
        {asof_join("closed", CLOSED_DAILY)}
    """)
    return list(columns)
