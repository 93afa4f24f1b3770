"""Relationship features (category `relationship`): how often the customer meets us, at what level,
and how those meetings went.

A QBR is a touchpoint of kind `qbr`, an executive meeting one of kind `executive`. Sentiment is
-1 (negative) to 1 (positive); its trend compares the mean of the last 90 days with the 90
before, so it is missing when either period had no rated touchpoint. Days since the last QBR or
executive meeting are missing when there never was one: many accounts (small ones served
one-to-many) never get one, and a scorecard then skips the metric instead of penalising them.
Days since the last touchpoint of any kind fall back to the account's tenure, as every other
"days since" does (or to the days since the table's first row, where it starts after the landing). The
sentiment trend reads 180 days: missing where the table starts inside them, after the landing (`within_data`).
"""

from __future__ import annotations

from features.families.base import Declarations, FamilyContext, family_table
from features.registry import data_days_column
from features.sql.engine import Engine
from features.sql.timeline import (
    as_double,
    count_where,
    data_days,
    days_since_last,
    ever_before_as_of_sql,
    family_sql,
    ratio,
    snapshot_join,
    sum_between,
    sum_within,
    table_start_join,
    table_start_sql,
    trailing_sql,
    within_data,
    zero,
)

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
    missing="no QBR recorded yet",
)
DAYS_SINCE_EXECUTIVE = declare.fixed(
    "days_since_last_executive_meeting", "Days since the last executive meeting (missing: never had one)", "lower",
    "last executive meeting {value:.0f} days ago",
    missing="no executive meeting recorded yet",
)  # fmt: skip
DAYS_SINCE = declare.fixed(
    "days_since_last_touchpoint",
    "Days since the last touchpoint",
    "lower",
    "last touchpoint {value:.0f} days ago",
    never="no touchpoint recorded after the day it landed, {tenure_days:.0f} days ago",
    since_start="no touchpoint since the touchpoints data starts, {value:.0f} days ago",
)
SENTIMENT = declare.fixed(
    "touchpoint_sentiment_90d", "Mean sentiment of touchpoints in 90 days (-1 negative to 1 positive)", "higher",
    "touchpoint sentiment {value:+.2f} (90 days)", requires=("sentiment",),
    missing="no touchpoint with a sentiment in the last 90 days",
)  # fmt: skip
SENTIMENT_TREND = declare.fixed(
    "touchpoint_sentiment_trend_90d", "Mean touchpoint sentiment of the last 90 days minus the 90 before", "higher",
    "touchpoint sentiment {touchpoint_sentiment_90d:+.2f}, {value:+.2f} on the previous 90 days",
    requires=("sentiment",),
    missing="no touchpoint sentiment to compare with the 90 days before", window=180,
)  # fmt: skip
NEGATIVE = declare.fixed(
    "negative_touchpoints_90d", "Touchpoints with negative sentiment in 90 days", "lower",
    "{value:.0f} negative touchpoints (90 days)", requires=("sentiment",),
)  # fmt: skip

DAILY = "_ft_touchpoints_day"
WINDOWS = "_ft_touchpoints_win"


LAST = "_ft_touchpoints_last"
START = "_ft_touchpoints_start"


def build(engine: Engine, ctx: FamilyContext) -> list[str]:
    d = engine.dialect
    engine.materialize(
        DAILY,
        f"""
        SELECT account_id, {d.day_of("ts")} AS day, count(*) AS touchpoints,
               {count_where("kind = 'qbr'")} AS qbrs,
               {count_where("kind = 'executive'")} AS executives,
               sum({ctx.summed(SOURCE, "sentiment")}) AS sentiment_sum, count(sentiment) AS rated,
               {count_where("sentiment < 0")} AS negative
        FROM touchpoints WHERE account_id IS NOT NULL AND ts IS NOT NULL GROUP BY account_id, {d.day_of("ts")}
        """,
    )
    aggregates = {"touchpoints_90": sum_within("r.touchpoints", 90), "negative_90": sum_within("r.negative", 90)}
    aggregates |= {"sentiment_90": sum_within("r.sentiment_sum", 90), "rated_90": sum_within("r.rated", 90)}
    aggregates |= {
        "sentiment_prev_90": sum_between("r.sentiment_sum", 90, 180),
        "rated_prev_90": sum_between("r.rated", 90, 180),
    }
    engine.define(WINDOWS, trailing_sql(d, DAILY, aggregates, 180))
    last = {
        "day": ("max", "r.day"),
        "last_qbr": ("max", "CASE WHEN r.qbrs > 0 THEN r.day END"),
        "last_executive": ("max", "CASE WHEN r.executives > 0 THEN r.day END"),
    }
    engine.define(LAST, ever_before_as_of_sql(DAILY, last))

    columns = {TOUCHPOINTS: as_double(zero("w.touchpoints_90"))}
    columns[DAYS_SINCE_QBR] = d.days_between("l.last_qbr", "s.as_of")
    columns[DAYS_SINCE_EXECUTIVE] = d.days_between("l.last_executive", "s.as_of")
    columns[DAYS_SINCE] = days_since_last(d, "l.day")
    if ctx.has(SOURCE, "sentiment"):
        recent, before = ratio("w.sentiment_90", "w.rated_90"), ratio("w.sentiment_prev_90", "w.rated_prev_90")
        columns[SENTIMENT] = recent
        columns[SENTIMENT_TREND] = f"({recent} - {before})"
        columns[NEGATIVE] = as_double(zero("w.negative_90"))
    columns[data_days_column(SOURCE)] = data_days(d)
    engine.define(START, table_start_sql(DAILY))
    joins = [snapshot_join("w", WINDOWS), snapshot_join("l", LAST), table_start_join(START)]
    engine.define(family_table(SOURCE), family_sql(within_data(d, columns), joins))
    return list(columns)
