"""Training and enablement features (category `training`): how much the customer invested in learning.

A trained user is one with a completed training; certifications are completed trainings of kind
"certification". Onboarding sessions are all sessions on the landing day and the
`onboarding_days` - 1 days after it, counted only before as_of.
"""

from __future__ import annotations

from features.daily import (
    SNAPSHOTS,
    asof_join,
    day_of,
    days_between,
    ratio,
    sum_in,
    window_join,
    windowed_table_sql,
    zero,
)
from features.families.base import Declarations, FamilyContext, Run, family_table
from features.snapshots import tenure_sql

SOURCE = "trainings"
declare = Declarations(SOURCE, "training")

SESSIONS = declare.windowed(
    "trainings_{W}d", "Training sessions in the last {W} days", "higher",
    "{value:.0f} training sessions in the last {W} days",
)  # fmt: skip
COMPLETIONS = declare.fixed(
    "training_completions_90d", "Completed trainings in 90 days", "higher",
    "{value:.0f} trainings completed (90 days)", requires=("completed",),
)  # fmt: skip
TRAINED_SHARE = declare.fixed(
    "trained_users_share", "Distinct users with a completed training / seats", "higher",
    "{value:.0%} of seats trained", requires=("user_id",),
)  # fmt: skip
CERTIFICATIONS = declare.fixed(
    "certifications_total",
    "Certifications completed so far",
    "higher",
    "{value:.0f} certifications so far",
    requires=("kind",),
)
ONBOARDING = declare.fixed(
    "onboarding_sessions", "Training sessions in the onboarding period after landing", "higher",
    "{value:.0f} onboarding sessions",
)  # fmt: skip
DAYS_SINCE = declare.fixed(
    "days_since_last_training", "Days since the last training session", "lower", "last training {value:.0f} days ago"
)

DAILY = "_ft_trainings_day"
TRAINED_DAILY = "_ft_trainings_trained_day"
WINDOWS = "_ft_trainings_win"
VALID = "account_id IS NOT NULL AND ts IS NOT NULL"


def build(run: Run, ctx: FamilyContext) -> list[str]:
    run(f"""
        CREATE OR REPLACE TEMP TABLE {DAILY} AS
        SELECT *, sum(sessions) OVER running AS sessions_total, sum(certifications) OVER running AS certifications_total
        FROM (SELECT account_id, {day_of("ts")} AS day, count(*) AS sessions,
                     count(*) FILTER (WHERE completed) AS completed,
                     count(*) FILTER (WHERE completed AND lower(kind) = 'certification') AS certifications
              FROM trainings WHERE {VALID} GROUP BY ALL)
        WINDOW running AS (PARTITION BY account_id ORDER BY day)
    """)
    aggregates = {f"sessions_{w}": sum_in("r.sessions", w) for w in ctx.windows}
    aggregates["completed_90"] = sum_in("r.completed", 90)
    run(windowed_table_sql(WINDOWS, DAILY, aggregates))

    columns = {SESSIONS.name(w): f"CAST({zero(f'w.sessions_{w}')} AS DOUBLE)" for w in ctx.windows}
    if ctx.has(SOURCE, "completed"):
        columns[COMPLETIONS] = f"CAST({zero('w.completed_90')} AS DOUBLE)"
    has_users = ctx.has(SOURCE, "user_id")
    if has_users:
        run(f"""
            CREATE OR REPLACE TEMP TABLE {TRAINED_DAILY} AS
            SELECT account_id, day, sum(count(*)) OVER (PARTITION BY account_id ORDER BY day) AS trained_total
            FROM (SELECT account_id, user_id, min({day_of("ts")}) AS day FROM trainings
                  WHERE {VALID} AND completed AND user_id IS NOT NULL GROUP BY ALL)
            GROUP BY account_id, day
        """)
        columns[TRAINED_SHARE] = ratio(zero("trained.trained_total"), "s.seat_norm")
    if ctx.has(SOURCE, "kind"):
        columns[CERTIFICATIONS] = f"CAST({zero('l.certifications_total')} AS DOUBLE)"
    columns[ONBOARDING] = (
        f"CAST({zero('onboarded.sessions_total')} - {zero('before_landing.sessions_total')} AS DOUBLE)"
    )
    columns[DAYS_SINCE] = f"coalesce({days_between('l.day', 's.as_of')}, {tenure_sql()})"

    select = ",\n               ".join(f"{expr} AS {name}" for name, expr in columns.items())
    trained_join = asof_join("trained", TRAINED_DAILY) if has_users else ""
    run(f"""
        CREATE OR REPLACE TEMP TABLE {family_table(SOURCE)} AS
        WITH s AS (
            SELECT *, {day_of("landed_at")} AS landed_day,
                   least(as_of, {day_of("landed_at")} + to_days({ctx.settings.onboarding_days})) AS onboarding_end
            FROM {SNAPSHOTS}
        )
        SELECT s.account_id, s.as_of,
               {select}
        FROM s
        {window_join("w", WINDOWS)}
        {asof_join("l", DAILY)}
        {trained_join}
        {asof_join("onboarded", DAILY, snapshot_time="s.onboarding_end")}
        {asof_join("before_landing", DAILY, snapshot_time="s.landed_day")}
    """)
    return list(columns)
