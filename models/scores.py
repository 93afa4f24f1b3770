"""The scores table: its columns, declared once (the hand-off from scoring to history, alerts and reports).

One row per scored account. In order: keys; the ML view (`churn_probability`, `risk_band`); the
rule view (`health_score`, `health_band`, one `health_<category>` per scorecard category,
`health_coverage`, `health_scorecard`, `health_drivers`); one `ml_<category>` per category (the
SHAP contributions of its features, log-odds of churn) and `churn_log_odds` (the model's score:
the `ml_<category>` columns plus the base value add up to it); `top_drivers`, `lifecycle_stage`;
the account context carried over from the features; `model_version`. `churn_log_odds` was
called `ml_log_odds` before, which read like one more category: `upgrade` renames it in tables
written then (the score history).
"""

from __future__ import annotations

import unicodedata

import pandas as pd

from features.judgement import CSM_SENTIMENT
from features.table import ACCOUNT_ID, AS_OF, TERM_END
from models.population import churned_mask

CHURN_PROBABILITY = "churn_probability"
RISK_BAND = "risk_band"
CHURN_LOG_ODDS = "churn_log_odds"
HEALTH_SCORE = "health_score"
HEALTH_BAND = "health_band"
HEALTH_COVERAGE = "health_coverage"
HEALTH_SCORECARD = "health_scorecard"
HEALTH_DRIVERS = "health_drivers"
TOP_DRIVERS = "top_drivers"
LIFECYCLE_STAGE = "lifecycle_stage"
MODEL_VERSION = "model_version"
ARR = "arr"
SEGMENT = "segment"
DAYS_TO_RENEWAL = "days_to_renewal"
ACCOUNT_STATUS = "account_status"  # active, trial or churned (models.population): who is scored
CARRIED_COLUMNS: tuple[str, ...] = (SEGMENT, ARR, "seats", DAYS_TO_RENEWAL, "tenure_days", ACCOUNT_STATUS)
"""Feature columns every score row carries for context (missing when the features lack them)."""
TEXT_CARRIED: frozenset[str] = frozenset({SEGMENT, ACCOUNT_STATUS})  # the carried columns holding words
SCORECARD_NAME = "scorecard_name"  # the scorecard file's `name` (HEALTH_SCORECARD is the segment used)
SCORECARD_HASH = "scorecard_hash"  # ScorecardConfig.content_hash: health scores compare only within one
ACTIONABLE_LOG_ODDS = "actionable_log_odds"  # SHAP of the behaviour a CSM can change (registry: actionable)
CONTEXT_LOG_ODDS = "context_log_odds"  # SHAP of the context: term, tenure, renewals, segment
CONTEXT = "context"  # the context features in words, beside the actionable `top_drivers`

ML_PREFIX = "ml_"
HEALTH_PREFIX = "health_"
HEALTH_META: tuple[str, ...] = (HEALTH_SCORE, HEALTH_BAND, HEALTH_COVERAGE, HEALTH_SCORECARD, HEALTH_DRIVERS)
CHANGE_PREFIX = f"{HEALTH_SCORE}_change"  # trend columns (pipeline.history.trends), not categories
RENAMED: dict[str, str] = {"ml_log_odds": CHURN_LOG_ODDS}
# A CSM's overrides (models.overrides): the rule's own values beside them in `rule_*`, the overrides in `override_*`
RULE_PREFIX = "rule_"
OVERRIDE_PREFIX = "override_"
OVERRIDE_IDS = "override_ids"
OVERRIDE_BY = "override_by"
OVERRIDE_REASON = "override_reason"
OVERRIDE_UNTIL = "override_until"
OVERRIDE_TEXT_COLUMNS: tuple[str, ...] = (OVERRIDE_IDS, OVERRIDE_BY, OVERRIDE_REASON, OVERRIDE_UNTIL)
RULE_HEALTH_SCORE = f"{RULE_PREFIX}{HEALTH_SCORE}"
RULE_HEALTH_BAND = f"{RULE_PREFIX}{HEALTH_BAND}"
OVERRIDE_HEALTH_SCORE = f"{OVERRIDE_PREFIX}{HEALTH_SCORE}"


def arr_at_risk(scores: pd.DataFrame) -> tuple[float | None, int]:
    """(sum of ARR x churn probability over the accounts whose ARR is known, accounts without ARR); None
    when no account's ARR is known: an export without `arr` is not a book with nothing at risk. An account whose
    terms have all ended (`--include-churned`) counts in neither: its ARR is lost, not at risk."""
    scores = scores[~churned_mask(scores)]
    exposure = pd.to_numeric(scores[ARR], errors="coerce") * scores[CHURN_PROBABILITY]
    unknown = int(exposure.isna().sum())
    return (None if unknown == len(exposure) else float(exposure.sum())), unknown


def ml_column(category: str) -> str:
    return f"{ML_PREFIX}{category}"


def health_column(category: str) -> str:
    return f"{HEALTH_PREFIX}{category}"


def category_columns(category: str) -> tuple[str, ...]:
    """The columns a health category adds to every score row: its rule score, its SHAP sum, the rule's
    own score beside an override, and the override."""
    return (health_column(category), ml_column(category), f"{RULE_PREFIX}{category}", f"{OVERRIDE_PREFIX}{category}")


def column_key(name: str) -> str:
    """A column name as SQL engines compare them (DuckDB and Spark ignore case): `Support` is `support`."""
    return unicodedata.normalize("NFKC", name).casefold()


def category_clash(category: str) -> str | None:
    """The column of the scores table that a category of this name would overwrite, if any (a category
    `score` makes `health_score`; `reason` makes `override_reason`; `score_change_30d` a trend column)."""
    fixed = {
        column_key(c): c
        for c in (
            *column_order([], [], health=True),
            RULE_HEALTH_SCORE,
            RULE_HEALTH_BAND,
            OVERRIDE_HEALTH_SCORE,
            f"{OVERRIDE_PREFIX}{CSM_SENTIMENT}",
            *OVERRIDE_TEXT_COLUMNS,
        )
    }
    for column in category_columns(category):
        if column_key(column) in fixed:
            return fixed[column_key(column)]
        if column_key(column).startswith(CHANGE_PREFIX):
            return f"{column} (a score trend column: {CHANGE_PREFIX}_<days>d)"
    return None


def ml_columns(frame: pd.DataFrame) -> list[str]:
    """The `ml_<category>` columns of a frame."""
    return [c for c in frame.columns if str(c).startswith(ML_PREFIX)]


def health_columns(frame: pd.DataFrame) -> list[str]:
    """The `health_<category>` columns of a frame: numeric, and not score, band, coverage, scorecard,
    drivers or trend changes."""
    return [
        c
        for c in frame.columns
        if str(c).startswith(HEALTH_PREFIX)
        and c not in HEALTH_META
        and not str(c).startswith(CHANGE_PREFIX)
        and pd.api.types.is_numeric_dtype(frame[c])
    ]


def column_order(categories: list[str], ml_categories: list[str], health: bool) -> list[str]:
    """The scores table's columns for a scorecard's `categories` (rule view only `health`) and the
    model's `ml_categories` (the scorecard's first, then any the scorecard lacks)."""
    rule = (
        [
            HEALTH_SCORE,
            HEALTH_BAND,
            *map(health_column, categories),
            HEALTH_COVERAGE,
            HEALTH_SCORECARD,
            HEALTH_DRIVERS,
            SCORECARD_NAME,
            SCORECARD_HASH,
        ]
        if health
        else []
    )
    return [
        ACCOUNT_ID,
        AS_OF,
        CHURN_PROBABILITY,
        RISK_BAND,
        *rule,
        *map(ml_column, ml_categories),
        CHURN_LOG_ODDS,
        ACTIONABLE_LOG_ODDS,
        CONTEXT_LOG_ODDS,
        TOP_DRIVERS,
        CONTEXT,
        LIFECYCLE_STAGE,
        TERM_END,
        *CARRIED_COLUMNS,
        MODEL_VERSION,
    ]


def upgrade(scores: pd.DataFrame) -> pd.DataFrame:
    """Scores written by earlier versions with today's column names (e.g. `ml_log_odds` -> `churn_log_odds`)."""
    renames = {old: new for old, new in RENAMED.items() if old in scores.columns and new not in scores.columns}
    return scores.rename(columns=renames) if renames else scores
