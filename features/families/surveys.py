"""Voice-of-the-customer features (category `voice`): what the customer's users say when asked.

NPS responses are 0-10: 9-10 promoters, 0-6 detractors; the account's NPS is the share of
promoters minus the share of detractors, times 100 (-100 to 100). CSAT survey responses are
1-5 (product surveys, apart from the ticket CSAT of the support family). A row without a `kind`
is an NPS response. "Latest" is the mean of the responses on the last day with any before as_of.
The 180-day features are missing where the surveys table starts inside the 180 days, after the account
landed (`within_data`): the data holds part of the window only.
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
    ever_before_as_of_sql,
    family_sql,
    latest_row_joins,
    ratio,
    snapshot_join,
    sum_within,
    table_start_join,
    table_start_sql,
    trailing_sql,
    within_data,
    zero,
)

SOURCE = "surveys"
declare = Declarations(SOURCE, "voice")
WINDOW = 180

NPS_LATEST = declare.fixed(
    "nps_latest",
    "Latest NPS response (0-10)",
    "higher",
    "latest NPS response {value:.0f}",
    missing="no NPS response recorded yet",
)
NPS_MEAN = declare.fixed(
    "nps_mean_180d",
    "Mean NPS response (0-10) over 180 days",
    "higher",
    "NPS responses average {value:.1f} (180 days)",
    missing="no NPS response in the last 180 days",
)
ACCOUNT_NPS = declare.fixed(
    "account_nps_180d", "Net promoter score over 180 days: % promoters - % detractors", "higher",
    "NPS {value:+.0f} (180 days)",
    missing="no NPS response in the last 180 days",
)  # fmt: skip
DETRACTORS = declare.fixed(
    "nps_detractor_share_180d", "Share of NPS responses from detractors (0-6) in 180 days", "lower",
    "{value:.0%} of NPS responses are detractors (180 days)",
    missing="no NPS response in the last 180 days",
)  # fmt: skip
CSAT_LATEST = declare.fixed(
    "survey_csat_latest", "Latest CSAT survey response (1-5)", "higher", "latest CSAT survey {value:.1f} of 5",
    requires=("kind",),
    missing="no CSAT survey response recorded yet",
)  # fmt: skip
CSAT_MEAN = declare.fixed(
    "survey_csat_mean_180d", "Mean CSAT survey response (1-5) over 180 days", "higher",
    "CSAT surveys average {value:.1f} of 5 (180 days)", requires=("kind",),
    missing="no CSAT survey response in the last 180 days",
)  # fmt: skip
RESPONSES = declare.fixed(
    "survey_responses_180d", "Survey responses in 180 days", "higher", "{value:.0f} survey responses (180 days)"
)
DAYS_SINCE = declare.fixed(
    "days_since_last_survey",
    "Days since the last survey response",
    "lower",
    "last survey response {value:.0f} days ago",
    never="no survey response recorded after the day it landed, {tenure_days:.0f} days ago",
    since_start="no survey response since the surveys data starts, {value:.0f} days ago",
)

DAILY = "_ft_surveys_day"
NPS_DAILY = "_ft_surveys_nps_day"
CSAT_DAILY = "_ft_surveys_csat_day"
WINDOWS = "_ft_surveys_win"


LAST = "_ft_surveys_last"
START = "_ft_surveys_start"
NPS_LAST = "_ft_surveys_nps_last"
CSAT_LAST = "_ft_surveys_csat_last"


def build(engine: Engine, ctx: FamilyContext) -> list[str]:
    d = engine.dialect
    score = ctx.summed(SOURCE, "score")
    engine.materialize(
        DAILY,
        f"""
        SELECT account_id, {d.day_of("ts")} AS day, count(*) AS responses,
               {agg_where("sum", score, "kind = 'nps'")} AS nps_sum, {count_where("kind = 'nps'")} AS nps_n,
               {count_where("kind = 'nps' AND score >= 9")} AS promoters,
               {count_where("kind = 'nps' AND score <= 6")} AS detractors,
               {agg_where("sum", score, "kind = 'csat'")} AS csat_sum, {count_where("kind = 'csat'")} AS csat_n
        FROM surveys WHERE account_id IS NOT NULL AND ts IS NOT NULL AND score IS NOT NULL
        GROUP BY account_id, {d.day_of("ts")}
        """,
    )
    for table, last, kind in ((NPS_DAILY, NPS_LAST, "nps"), (CSAT_DAILY, CSAT_LAST, "csat")):
        mean = ratio(f"{kind}_sum", f"{kind}_n")
        engine.materialize(table, f"SELECT account_id, day, {mean} AS mean FROM {DAILY} WHERE {kind}_n > 0")
        engine.define(last, ever_before_as_of_sql(table, {"day": ("max", "r.day")}))
    sums = ("responses", "nps_sum", "nps_n", "promoters", "detractors", "csat_sum", "csat_n")
    engine.define(WINDOWS, trailing_sql(d, DAILY, {name: sum_within(f"r.{name}", WINDOW) for name in sums}, WINDOW))
    engine.define(LAST, ever_before_as_of_sql(DAILY, {"day": ("max", "r.day")}))

    columns = {NPS_LATEST: "nps.mean", NPS_MEAN: ratio("w.nps_sum", "w.nps_n")}
    net_promoters = f"{zero('w.promoters')} - {zero('w.detractors')}"
    columns[ACCOUNT_NPS] = f"100.0 * {ratio(net_promoters, 'w.nps_n')}"
    columns[DETRACTORS] = ratio(zero("w.detractors"), "w.nps_n")
    if ctx.has(SOURCE, "kind"):
        columns[CSAT_LATEST] = "csat.mean"
        columns[CSAT_MEAN] = ratio("w.csat_sum", "w.csat_n")
    columns[RESPONSES] = as_double(zero("w.responses"))
    columns[DAYS_SINCE] = days_since_last(d, "l.day")
    columns[data_days_column(SOURCE)] = data_days(d)
    engine.define(START, table_start_sql(DAILY))
    joins = [snapshot_join("w", WINDOWS), snapshot_join("l", LAST), table_start_join(START)]
    joins += latest_row_joins("nps", NPS_DAILY, NPS_LAST) + latest_row_joins("csat", CSAT_DAILY, CSAT_LAST)
    engine.define(family_table(SOURCE), family_sql(within_data(d, columns), joins))
    return list(columns)
