"""Relationship features (category `relationship`): how often the customer meets us, at what level,
and how those meetings went.

A QBR is a touchpoint of kind `qbr`, an executive meeting one of kind `executive`. Sentiment is
-1 (negative) to 1 (positive); its trend compares the mean of the last 90 days with the 90
before, so it is missing when either period had no rated touchpoint. Days since the last QBR or
executive meeting are missing when there never was one: many accounts (small ones served
one-to-many) never get one, and a scorecard then skips the metric instead of penalising them.
Days since the last touchpoint of any kind fall back to the account's tenure, as every other
"days since" does.
"""

from __future__ import annotations

from features.daily import (
    asof_join,
    day_of,
    days_between,
    ratio,
    sum_between,
    sum_within,
    tenure_sql,
    trailing_table_sql,
    window_join,
    zero,
)
from features.families.base import Declarations, FamilyContext, Run, family_table_sql

SOURCE = "touchpoints"
declare = Declarations(SOURCE, "relationship")

TOUCHPOINTS = declare.fixed(
    "touchpoints_90d", "Touchpoints (meetings, calls, emails) in the last 90 days", "higher",
    "{value:.0f} touchpoints in the last 90 days",
)  # fmt: skip
DAYS_SINCE_QBR = declare.fixed(
    "days_since_last_qbr",
    "Days since the last quarterly business review (missing: never had one)",
    "lower",
    "last QBR {value:.0f} days ago",
)
DAYS_SINCE_EXECUTIVE = declare.fixed(
    "days_since_last_executive_meeting", "Days since the last executive meeting (missing: never had one)", "lower",
    "last executive meeting {value:.0f} days ago",
)  # fmt: skip
DAYS_SINCE = declare.fixed(
    "days_since_last_touchpoint", "Days since the last touchpoint", "lower", "last touchpoint {value:.0f} days ago"
)
SENTIMENT = declare.fixed(
    "touchpoint_sentiment_90d", "Mean sentiment of touchpoints in 90 days (-1 negative to 1 positive)", "higher",
    "touchpoint sentiment {value:+.2f} (90 days)", requires=("sentiment",),
)  # fmt: skip
SENTIMENT_TREND = declare.fixed(
    "touchpoint_sentiment_trend_90d", "Mean touchpoint sentiment of the last 90 days minus the 90 before", "higher",
    "touchpoint sentiment {touchpoint_sentiment_90d:+.2f}, {value:+.2f} on the previous 90 days",
    requires=("sentiment",),
)  # fmt: skip
NEGATIVE = declare.fixed(
    "negative_touchpoints_90d", "Touchpoints with negative sentiment in 90 days", "lower",
    "{value:.0f} negative touchpoints (90 days)", requires=("sentiment",),
)  # fmt: skip

DAILY = "_ft_touchpoints_day"
WINDOWS = "_ft_touchpoints_win"


def build(run: Run, ctx: FamilyContext) -> list[str]:
    run(f"""
        CREATE OR REPLACE TEMP TABLE {DAILY} AS
        SELECT *,
               max(CASE WHEN qbrs > 0 THEN day END) OVER running AS last_qbr,
               max(CASE WHEN executives > 0 THEN day END) OVER running AS last_executive
        FROM (SELECT account_id, {day_of("ts")} AS day, count(*) AS touchpoints,
                     count(*) FILTER (WHERE kind = 'qbr') AS qbrs,
                     count(*) FILTER (WHERE kind = 'executive') AS executives,
                     sum(sentiment) AS sentiment_sum, count(sentiment) AS rated,
                     count(*) FILTER (WHERE sentiment < 0) AS negative
              FROM touchpoints WHERE account_id IS NOT NULL AND ts IS NOT NULL GROUP BY account_id, day)
        WINDOW running AS (PARTITION BY account_id ORDER BY day)
    """)
    aggregates = {"touchpoints_90": sum_within("r.touchpoints", 90), "negative_90": sum_within("r.negative", 90)}
    aggregates |= {"sentiment_90": sum_within("r.sentiment_sum", 90), "rated_90": sum_within("r.rated", 90)}
    aggregates |= {
        "sentiment_prev_90": sum_between("r.sentiment_sum", 90, 180),
        "rated_prev_90": sum_between("r.rated", 90, 180),
    }
    run(trailing_table_sql(WINDOWS, DAILY, aggregates, 180))

    columns = {TOUCHPOINTS: f"CAST({zero('w.touchpoints_90')} AS DOUBLE)"}
    columns[DAYS_SINCE_QBR] = days_between("l.last_qbr", "s.as_of")
    columns[DAYS_SINCE_EXECUTIVE] = days_between("l.last_executive", "s.as_of")
    columns[DAYS_SINCE] = f"coalesce({days_between('l.day', 's.as_of')}, {tenure_sql()})"
    if ctx.has(SOURCE, "sentiment"):
        recent, before = ratio("w.sentiment_90", "w.rated_90"), ratio("w.sentiment_prev_90", "w.rated_prev_90")
        columns[SENTIMENT] = recent
        columns[SENTIMENT_TREND] = f"({recent} - {before})"
        columns[NEGATIVE] = f"CAST({zero('w.negative_90')} AS DOUBLE)"

    run(family_table_sql(SOURCE, columns, [window_join("w", WINDOWS), asof_join("l", DAILY)]))
    return list(columns)
