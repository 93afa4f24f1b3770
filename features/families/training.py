"""Training and enablement features (category `training`): how much the customer invested in learning.

A trained user is one with a completed training; certifications are completed trainings of kind
"certification". Onboarding sessions are all sessions on the landing day and the
`onboarding_days` - 1 days after it, counted only before as_of; missing for an account that landed
before the trainings table's first row (its onboarding is not in the data).
"""

from __future__ import annotations

from features.families.base import Declarations, FamilyContext, family_table
from features.registry import data_days_column
from features.sql.engine import Engine
from features.sql.timeline import (
    LANDED,
    as_double,
    count_where,
    data_days,
    days_since_last,
    ever_before_as_of_sql,
    family_sql,
    ratio,
    since_landing,
    snapshot_join,
    sum_in,
    table_start_join,
    table_start_sql,
    windowed_sql,
    within_data,
    zero,
)

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
    unseated="{value:.0f} users trained (no seat count)",
    missing="share of seats trained not known: no completed training names its user",
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
    missing="onboarding not in the data: the account landed before the trainings data starts",
)  # fmt: skip
DAYS_SINCE = declare.fixed(
    "days_since_last_training",
    "Days since the last training session",
    "lower",
    "last training {value:.0f} days ago",
    never="no training recorded after the day it landed, {tenure_days:.0f} days ago",
    since_start="no training since the trainings data starts, {value:.0f} days ago",
)

DAILY = "_ft_trainings_day"
TRAINED_DAILY = "_ft_trainings_trained_day"
WINDOWS = "_ft_trainings_win"
EVER = "_ft_trainings_ever"
TRAINED_EVER = "_ft_trainings_trained_ever"
ONBOARDING_EVER = "_ft_trainings_onboarding"
START = "_ft_trainings_start"
VALID = "account_id IS NOT NULL AND ts IS NOT NULL"


def build(engine: Engine, ctx: FamilyContext) -> list[str]:
    d = engine.dialect
    engine.materialize(
        DAILY,
        f"""
        SELECT account_id, {d.day_of("ts")} AS day, count(*) AS sessions,
               {count_where("completed")} AS completed,
               {count_where("completed AND lower(kind) = 'certification'")} AS certifications,
               {count_where("completed AND user_id IS NOT NULL")} AS completed_named
        FROM trainings WHERE {VALID} GROUP BY ALL
        """,
    )
    aggregates = {f"sessions_{w}": sum_in("r.sessions", w) for w in ctx.windows}
    aggregates["completed_90"] = sum_in("r.completed", 90)
    engine.define(WINDOWS, windowed_sql(DAILY, aggregates))
    engine.define(
        EVER,
        ever_before_as_of_sql(
            DAILY,
            {
                "day": ("max", "r.day"),
                "certifications_total": ("sum", "r.certifications"),
                "completed_total": ("sum", "r.completed"),
                "completed_named_total": ("sum", "r.completed_named"),
            },
        ),
    )
    # Onboarding: sessions from the landing day to `onboarding_days` after it, counted before as_of.
    onboarding = f"""(SELECT r.account_id, r.day, r.sessions FROM {DAILY} r JOIN {LANDED} l
                      ON l.account_id = r.account_id AND r.day >= l.landed_day
                     AND r.day < l.landed_day + {d.days(ctx.settings.onboarding_days)})"""
    engine.define(ONBOARDING_EVER, ever_before_as_of_sql(onboarding, {"sessions": ("sum", "r.sessions")}))
    engine.define(START, table_start_sql(DAILY))
    joins = [snapshot_join("w", WINDOWS), snapshot_join("l", EVER), snapshot_join("onboarded", ONBOARDING_EVER)]
    joins.append(table_start_join(START))

    columns = {SESSIONS.name(w): as_double(zero(f"w.sessions_{w}")) for w in ctx.windows}
    if ctx.has(SOURCE, "completed"):
        columns[COMPLETIONS] = as_double(zero("w.completed_90"))
    if ctx.has(SOURCE, "user_id"):
        # A user counts as trained from the day of their first completed training.
        engine.define(
            TRAINED_DAILY,
            f"""
            SELECT account_id, day, count(*) AS trained
            FROM (SELECT account_id, user_id, min({d.day_of("ts")}) AS day FROM trainings
                  WHERE {VALID} AND completed AND user_id IS NOT NULL GROUP BY account_id, user_id) first_completion
            GROUP BY account_id, day
            """,
        )
        engine.define(TRAINED_EVER, ever_before_as_of_sql(TRAINED_DAILY, {"trained_total": ("sum", "r.trained")}))
        joins.append(snapshot_join("trained", TRAINED_EVER))
        # completed trainings none of which names its user say nothing of how many users trained: not 0 %
        columns[TRAINED_SHARE] = (
            "CASE WHEN l.completed_total > 0 AND l.completed_named_total = 0 THEN NULL "
            f"ELSE {ratio(zero('trained.trained_total'), 's.seat_norm')} END"
        )
    if ctx.has(SOURCE, "kind"):
        columns[CERTIFICATIONS] = as_double(zero("l.certifications_total"))
    # an onboarding before the table's first row is not in it: unknown, not "no session"
    columns[ONBOARDING] = since_landing(d, as_double(zero("onboarded.sessions")))
    columns[DAYS_SINCE] = days_since_last(d, "l.day")
    columns[data_days_column(SOURCE)] = data_days(d)
    engine.define(family_table(SOURCE), family_sql(within_data(d, columns), joins))
    return list(columns)
