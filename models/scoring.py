"""The scoring core: model + feature rows + scorecard -> the scores table, with its explanation and health detail.

`score_accounts` is the one place a score row is made, for `churn score`, `churn explain`,
`churn compare` and the notebooks alike: the calibrated churn probability and its risk band, the
rule-based health score by category, the model's SHAP contributions summed per category of the
same scorecard (`models/categories.py`), drivers in words and the lifecycle stage. It is pure
(pandas in, pandas out, no I/O, no global state), so a Spark job can run it per partition. One
caveat for partitioning: percentile metrics of a scorecard rank each account within the rows
scored together (per `population_by`), so a partition must hold whole populations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.errors import DataContractError
from features.progress import ProgressCallback
from features.registry import is_actionable
from features.table import ACCOUNT_ID, AS_OF, TERM_END
from models.categories import ml_categories
from models.explain import Explanation, actionable_split, context_words, explain, top_drivers
from models.healthscore import HealthScores, explain_health, score_health, shown_score
from models.lifecycle import lifecycle_stage
from models.population import days_to_term_end
from models.risk_model import SOURCE_COLUMNS, ChurnRiskModel
from models.scorecard import ScorecardConfig
from models.scores import (
    ARR,
    CARRIED_COLUMNS,
    CHURN_LOG_ODDS,
    CHURN_PROBABILITY,
    CONTEXT,
    DAYS_TO_RENEWAL,
    HEALTH_DRIVERS,
    LIFECYCLE_STAGE,
    MODEL_VERSION,
    RISK_BAND,
    SCORECARD_HASH,
    SCORECARD_NAME,
    TEXT_CARRIED,
    TOP_DRIVERS,
    column_order,
    ml_column,
)


@dataclass(frozen=True)
class ScoringRules:
    """What scoring needs besides model, rows and scorecard: plain values from the `scoring:`,
    `lifecycle:` and `features:` settings (picklable, for a Spark broadcast). `feature_values` (and their
    defaults) are the configured value settings, compared with the model's (`FeatureSet.value_notes`), and
    `windows` the configured `features.windows` (`FeatureSet.window_note`)."""

    risk_high: float
    risk_medium: float
    top_drivers: int
    land_days: int
    renew_window_days: int
    expand_seat_growth: float
    expand_utilisation: float
    category_overrides: Mapping[str, str] = field(default_factory=dict)
    risk_high_accounts: int | None = None  # high risk by capacity: the riskiest N accounts...
    risk_high_arr_share: float | None = None  # ...or the riskiest accounts holding this share of the ARR
    feature_values: Mapping[str, int] = field(default_factory=dict)
    default_feature_values: Mapping[str, int] = field(default_factory=dict)
    windows: tuple[int, ...] = ()


@dataclass(frozen=True)
class Scored:
    """One scoring: the scores table (index of the input rows), the SHAP explanation of every row,
    the health detail (points and weights per metric; None without a scorecard), the feature ->
    category map the ML columns used, and notes worth a warning."""

    scores: pd.DataFrame
    explanation: Explanation
    health: HealthScores | None
    categories: dict[str, str]
    notes: tuple[str, ...] = ()


def risk_band(
    probability: pd.Series,
    high: float,
    medium: float,
    *,
    high_accounts: int | None = None,
    high_arr_share: float | None = None,
    arr: pd.Series | None = None,
    runs: pd.Series | None = None,
) -> pd.Series:
    """high (>= `high`), medium (>= `medium`) or low; missing probabilities stay missing.

    With a capacity (`high_accounts` or `high_arr_share`) the high band is instead the riskiest N
    accounts, or the riskiest accounts until they hold that share of the ARR (`arr`; an account
    without ARR adds none), counted within each scoring run (`runs`, e.g. the as_of dates).
    """
    values = pd.to_numeric(probability, errors="coerce").astype(float)
    is_high = values >= high
    if high_accounts is not None or high_arr_share is not None:
        is_high = _by_capacity(values, high_accounts, high_arr_share, arr, runs)
    bands = np.select([is_high, values >= medium], ["high", "medium"], default="low")
    return pd.Series(bands, index=probability.index, dtype=str, name=RISK_BAND).where(values.notna())


def shown_percent(probability: float, decimals: int = 0) -> str:
    """A probability in percents as a person reads it, cut (not rounded) to `decimals` as `shown_score` cuts a
    health score: the risk bands are lower bounds, so 0.4996 is medium under a band from 0.5, and "50%" would
    name a high risk."""
    return f"{shown_score(float(probability) * 100, decimals):.{decimals}f}%"


def _by_capacity(
    values: pd.Series,
    high_accounts: int | None,
    high_arr_share: float | None,
    arr: pd.Series | None,
    runs: pd.Series | None,
) -> pd.Series:
    """The riskiest accounts of each run that fit the capacity (ties broken by order, riskiest first)."""
    if high_arr_share is not None and arr is None:
        raise DataContractError("scoring.risk_bands.high_arr_share needs the accounts' ARR (subscriptions.arr).")
    frame = pd.DataFrame({"p": values.to_numpy(), "run": 0 if runs is None else pd.Series(runs).to_numpy()})
    frame["arr"] = 0.0 if arr is None else pd.to_numeric(pd.Series(arr).to_numpy(), errors="coerce")
    frame["arr"] = frame["arr"].fillna(0.0).clip(lower=0)
    ranked = frame[frame["p"].notna()].sort_values("p", ascending=False, kind="stable")
    if high_accounts is not None:
        chosen = ranked.groupby("run", sort=False).cumcount() < high_accounts
    else:
        before = ranked.groupby("run", sort=False)["arr"].cumsum() - ranked["arr"]
        total = ranked.groupby("run", sort=False)["arr"].transform("sum")
        chosen = (before < high_arr_share * total) & (total > 0)
    is_high = pd.Series(False, index=frame.index)
    is_high[chosen[chosen].index] = True
    return pd.Series(is_high.to_numpy(), index=values.index)


def score_accounts(
    model: ChurnRiskModel,
    features: pd.DataFrame,
    scorecard: ScorecardConfig | None,
    rules: ScoringRules,
    *,
    words: bool = True,
    progress: ProgressCallback | None = None,
) -> Scored:
    """Score every row of `features` (the model's feature set, one row per account and date).

    Without a scorecard (prepared tables, whose columns no scorecard names) the rule view is left
    out. `words=False` leaves `top_drivers` and `health_drivers` empty, for backtests of thousands
    of rows nobody reads one by one.
    """
    if features.empty:
        raise DataContractError("No account has a term active at the scoring date; nothing to score.")
    if not features.index.is_unique:
        raise DataContractError("The rows to score repeat an index label (e.g. after pd.concat); reset the index.")
    categories, notes = _categories(model, scorecard, rules.category_overrides)
    if SOURCE_COLUMNS not in model.metadata_ and rules.feature_values:  # the engine built its features
        notes = (*notes, *model.feature_set_.value_notes(rules.feature_values, rules.default_feature_values))
        window_note = model.feature_set_.window_note(rules.windows) if rules.windows else None
        notes = (*notes, window_note) if window_note is not None else notes
    explanation = explain(model.booster_, model.prepare(features), categories, progress=progress)
    probability = pd.Series(model.calibrator_.predict(explanation.raw_score.to_numpy()), index=features.index)

    columns: dict[str, object] = {
        ACCOUNT_ID: features[ACCOUNT_ID].astype(str),
        AS_OF: features[AS_OF],
        CHURN_PROBABILITY: probability,
        RISK_BAND: risk_band(
            probability,
            rules.risk_high,
            rules.risk_medium,
            high_accounts=rules.risk_high_accounts,
            high_arr_share=rules.risk_high_arr_share,
            arr=features[ARR] if ARR in features.columns else None,
            runs=features[AS_OF],
        ),
    }
    health = None
    if scorecard is not None:
        health = score_health(features, scorecard)
        columns |= {name: health.frame[name] for name in health.frame.columns}
        columns[HEALTH_DRIVERS] = (
            explain_health(features, health, scorecard, n=rules.top_drivers, labels=said_columns(model))
            if words
            else _no_words(features)
        )
        columns[SCORECARD_NAME] = scorecard.name
        columns[SCORECARD_HASH] = scorecard.content_hash()
    order = list(dict.fromkeys([*(scorecard.categories() if scorecard is not None else []), *categories.values()]))
    by_category = explanation.by_category
    for category in order:  # a scorecard category no model feature counts in contributes nothing
        columns[ml_column(category)] = by_category.get(ml_column(category), pd.Series(0.0, index=features.index))
    columns[CHURN_LOG_ODDS] = explanation.raw_score
    columns |= {name: split for name, split in actionable_split(explanation.contributions).items()}
    # A CSM acts on behaviour: drivers are actionable features only; the context is said beside them.
    actionable = [c for c in explanation.contributions.columns if is_actionable(c)]
    own = said_columns(model)
    columns[TOP_DRIVERS] = (
        top_drivers(explanation.contributions[actionable].rename(columns=own), features.rename(columns=own),
                    n=rules.top_drivers)
        if words
        else _no_words(features)
    )  # fmt: skip
    columns[CONTEXT] = context_words(features) if words else _no_words(features)
    columns[LIFECYCLE_STAGE] = lifecycle_stage(
        features,
        land_days=rules.land_days,
        renew_window_days=rules.renew_window_days,
        expand_seat_growth=rules.expand_seat_growth,
        expand_utilisation=rules.expand_utilisation,
    )
    columns[TERM_END] = features[TERM_END] if TERM_END in features.columns else pd.NaT
    for name in CARRIED_COLUMNS:
        # A missing text column stays text (all null), so BI tools and parquet readers see one type.
        missing = pd.Series(np.nan, index=features.index, dtype="str" if name in TEXT_CARRIED else float)
        columns[name] = features[name] if name in features.columns else missing
    columns[DAYS_TO_RENEWAL] = days_to_term_end(features)  # a churned account's term ended: no renewal today
    columns[MODEL_VERSION] = str(model.metadata_.get("model_version", model.metadata_.get("model_uri", "unregistered")))
    scores = pd.DataFrame(columns, index=features.index)
    expected = column_order(scorecard.categories() if scorecard is not None else [], order, scorecard is not None)
    return Scored(scores[expected], explanation, health, categories, notes)


def said_columns(model: ChurnRiskModel) -> dict[str, str]:
    """Model column -> the column the words render it as: a prepared table's columns in its own names (`Monthly
    Charges`, not `Monthly_Charges`), usage columns after the product feature the data spells (`検索`, not the
    column's hash: `FeatureSet.named_columns`)."""
    return dict(model.metadata_.get(SOURCE_COLUMNS) or model.feature_set_.named_columns())


def _no_words(features: pd.DataFrame) -> pd.Series:
    return pd.Series("", index=features.index, dtype=str)


def _categories(
    model: ChurnRiskModel, scorecard: ScorecardConfig | None, overrides: Mapping[str, str]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The model's feature -> category map in the active scorecard's vocabulary, and a note when the
    model was compared against another scorecard at training."""
    feature_set = model.feature_set_
    if scorecard is None:
        return dict(feature_set.categories), ()
    categories = ml_categories(model.feature_names_in_, scorecard, overrides)
    current = scorecard.version()
    notes = ()
    if feature_set.scorecard is not None and feature_set.scorecard != current:
        notes = (
            f"the model was compared against scorecard {feature_set.scorecard} at training; its contributions "
            f"are summed by the categories of {current}, the scorecard used now",
        )
    return categories, notes
