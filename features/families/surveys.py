"""Voice-of-the-customer features (category `voice`): what the customer's users say when asked.

NPS responses are 0-10: 9-10 promoters, 0-6 detractors; the account's NPS is the share of
promoters minus the share of detractors, times 100 (-100 to 100). CSAT survey responses are
1-5 (product surveys, apart from the ticket CSAT of the support family). A row without a `kind`
is an NPS response. "Latest" is the mean of the responses on the last day with any before as_of.
"""

from __future__ import annotations

from features.daily import (
    asof_join,
    day_of,
    days_between,
    ratio,
    sum_within,
    tenure_sql,
    trailing_table_sql,
    window_join,
    zero,
)
from features.families.base import Declarations, FamilyContext, Run, family_table_sql

SOURCE = "surveys"
declare = Declarations(SOURCE, "voice")
WINDOW = 180

NPS_LATEST = declare.fixed("nps_latest", "Latest NPS response (0-10)", "higher", "latest NPS response {value:.0f}")
NPS_MEAN = declare.fixed(
    "nps_mean_180d", "Mean NPS response (0-10) over 180 days", "higher", "NPS responses average {value:.1f} (180 days)"
)
ACCOUNT_NPS = declare.fixed(
    "account_nps_180d", "Net promoter score over 180 days: % promoters - % detractors", "higher",
    "NPS {value:+.0f} (180 days)",
)  # fmt: skip
DETRACTORS = declare.fixed(
    "nps_detractor_share_180d", "Share of NPS responses from detractors (0-6) in 180 days", "lower",
    "{value:.0%} of NPS responses are detractors (180 days)",
)  # fmt: skip
CSAT_LATEST = declare.fixed(
    "survey_csat_latest", "Latest CSAT survey response (1-5)", "higher", "latest CSAT survey {value:.1f} of 5",
    requires=("kind",),
)  # fmt: skip
CSAT_MEAN = declare.fixed(
    "survey_csat_mean_180d", "Mean CSAT survey response (1-5) over 180 days", "higher",
    "CSAT surveys average {value:.1f} of 5 (180 days)", requires=("kind",),
)  # fmt: skip
RESPONSES = declare.fixed(
    "survey_responses_180d", "Survey responses in 180 days", "higher", "{value:.0f} survey responses (180 days)"
)
DAYS_SINCE = declare.fixed(
    "days_since_last_survey",
    "Days since the last survey response",
    "lower",
    "last survey response {value:.0f} days ago",
)

DAILY = "_ft_surveys_day"
NPS_DAILY = "_ft_surveys_nps_day"
CSAT_DAILY = "_ft_surveys_csat_day"
WINDOWS = "_ft_surveys_win"


def build(run: Run, ctx: FamilyContext) -> list[str]:
    run(f"""
        CREATE OR REPLACE TEMP TABLE {DAILY} AS
        SELECT account_id, {day_of("ts")} AS day, count(*) AS responses,
               sum(score) FILTER (WHERE kind = 'nps') AS nps_sum, count(*) FILTER (WHERE kind = 'nps') AS nps_n,
               count(*) FILTER (WHERE kind = 'nps' AND score >= 9) AS promoters,
               count(*) FILTER (WHERE kind = 'nps' AND score <= 6) AS detractors,
               sum(score) FILTER (WHERE kind = 'csat') AS csat_sum, count(*) FILTER (WHERE kind = 'csat') AS csat_n
        FROM surveys WHERE account_id IS NOT NULL AND ts IS NOT NULL AND score IS NOT NULL
        GROUP BY account_id, day
    """)
    for table, kind in ((NPS_DAILY, "nps"), (CSAT_DAILY, "csat")):
        run(f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT account_id, day, {ratio(f"{kind}_sum", f"{kind}_n")} AS mean FROM {DAILY} WHERE {kind}_n > 0
        """)
    sums = ("responses", "nps_sum", "nps_n", "promoters", "detractors", "csat_sum", "csat_n")
    run(trailing_table_sql(WINDOWS, DAILY, {name: sum_within(f"r.{name}", WINDOW) for name in sums}, WINDOW))

    columns = {NPS_LATEST: "nps.mean", NPS_MEAN: ratio("w.nps_sum", "w.nps_n")}
    net_promoters = f"{zero('w.promoters')} - {zero('w.detractors')}"
    columns[ACCOUNT_NPS] = f"100.0 * {ratio(net_promoters, 'w.nps_n')}"
    columns[DETRACTORS] = ratio(zero("w.detractors"), "w.nps_n")
    if ctx.has(SOURCE, "kind"):
        columns[CSAT_LATEST] = "csat.mean"
        columns[CSAT_MEAN] = ratio("w.csat_sum", "w.csat_n")
    columns[RESPONSES] = f"CAST({zero('w.responses')} AS DOUBLE)"
    columns[DAYS_SINCE] = f"coalesce({days_between('l.day', 's.as_of')}, {tenure_sql()})"

    run(
        family_table_sql(
            SOURCE,
            columns,
            [
                window_join("w", WINDOWS),
                asof_join("l", DAILY),
                asof_join("nps", NPS_DAILY),
                asof_join("csat", CSAT_DAILY),
            ],
        )
    )
    return list(columns)
