"""Batch scoring: every active account as of a date, in both views (rule health score and ML risk).

`score_table` is the pure part (features in, scores out); `score_book` adds what the score
history says (trends, alerts against the previous run) and drift monitoring. Neither writes
anything: the scoring commit (`pipeline/commit.py`) puts a run in place as one unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.families.usage import PER_FEATURE
from features.registry import category_map
from features.table import ACCOUNT_ID, AS_OF, TERM_END
from models.alerts import risk_band, score_alerts
from models.drift import drift_report
from models.explain import explain, top_drivers
from models.healthscore import explain_health, score_health
from models.lifecycle import lifecycle_stage
from models.risk_model import ChurnRiskModel
from models.scorecard import ScorecardConfig
from pipeline.config import Settings
from pipeline.errors import ChurnError
from pipeline.history import previous_scores, read_history, trends
from pipeline.progress import ProgressCallback

ML_PREFIX = "ml_"
CARRIED_COLUMNS = ("segment", "arr", "seats", "days_to_renewal", "tenure_days")


@dataclass
class ScoreRun:
    """One batch scoring run: the scores table, its alerts and the drift report."""

    scores: pd.DataFrame
    alerts: pd.DataFrame
    drift: pd.DataFrame
    model_version: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. how the scorecard was adapted to the data

    @property
    def drifted(self) -> list[str]:
        return self.drift.loc[self.drift["drifted"], "feature"].tolist() if not self.drift.empty else []


def model_categories(model: ChurnRiskModel, settings: Settings) -> dict[str, str]:
    """Health category of each model feature: the registry, overridden by configuration."""
    return category_map(model.feature_names, settings.features.category_overrides)


def complete_usage_columns(features: pd.DataFrame, model: ChurnRiskModel) -> pd.DataFrame:
    """Per-feature usage columns the model knows but this build did not rank among the most used.

    Training ranks the most used product features over its whole history; a scoring date may rank
    others first. A missing `usage_<feature>_per_seat_30d` column means no account used that
    feature enough to rank, so it is added as zero usage; any other missing feature is an error.
    """
    missing = [c for c in model.feature_names if c not in features.columns]
    usage = [c for c in missing if PER_FEATURE.match(c)]
    if usage:
        features = features.assign(**dict.fromkeys(usage, 0.0))
    return features


def score_table(
    features: pd.DataFrame,
    model: ChurnRiskModel,
    scorecard: ScorecardConfig | None,
    settings: Settings,
    *,
    progress: ProgressCallback | None = None,
) -> pd.DataFrame:
    """The scores table of SPEC.md for a snapshot feature table (one row per account).

    Without a scorecard (prepared tables whose columns no scorecard names) the health columns
    are left out and only the ML view is given.
    """
    if features.empty:
        raise ChurnError("No account has a term active at the scoring date; nothing to score.")
    features = complete_usage_columns(features.reset_index(drop=True), model)
    X = model.prepare(features)
    categories = model_categories(model, settings)
    explanation = explain(model.booster_, X, categories, progress=progress)

    scores = pd.DataFrame({ACCOUNT_ID: features[ACCOUNT_ID].astype(str), AS_OF: features[AS_OF]})
    scores["churn_probability"] = model.calibrator_.predict(explanation.raw_score.to_numpy())
    scores["risk_band"] = risk_band(scores["churn_probability"], settings.scoring.risk_bands).to_numpy()
    ml = explanation.by_category.reset_index(drop=True)
    if scorecard is not None:
        health = score_health(features, scorecard)
        scores = pd.concat([scores, health.frame.reset_index(drop=True)], axis=1)
        for category in scorecard.categories():
            if f"{ML_PREFIX}{category}" not in ml.columns:  # a scorecard category no model feature maps to
                ml[f"{ML_PREFIX}{category}"] = 0.0
        scores["health_drivers"] = explain_health(
            features, health, scorecard, n=settings.scoring.top_drivers
        ).to_numpy()
    scores = pd.concat([scores, ml], axis=1)
    scores["ml_log_odds"] = explanation.raw_score.to_numpy()
    scores["top_drivers"] = top_drivers(explanation.contributions, features, n=settings.scoring.top_drivers).to_numpy()
    scores["lifecycle_stage"] = lifecycle_stage(features, settings.lifecycle).to_numpy()
    scores[TERM_END] = features[TERM_END] if TERM_END in features.columns else pd.NaT
    for column in CARRIED_COLUMNS:
        scores[column] = features[column].to_numpy() if column in features.columns else np.nan
    scores["model_version"] = str(model.metadata.get("model_version", model.metadata.get("model_uri", "unregistered")))
    return scores


def score_prepared(path: Path, id_col: str, model: ChurnRiskModel, settings: Settings) -> pd.DataFrame:
    """Score an already aggregated per-account table (`churn score --table`), ML view only.

    The table holds the columns the model was trained on (`churn train --table`); a label column,
    if present, is ignored.
    """
    from pipeline.train import read_prepared_table

    frame = read_prepared_table(path)
    if id_col not in frame.columns:
        raise ChurnError(f"--table {path}: id column '{id_col}' not found; columns are {list(frame.columns)[:12]}.")
    features = frame.drop(columns=[id_col]).assign(**{ACCOUNT_ID: frame[id_col].astype(str), AS_OF: pd.NaT})
    return score_table(features, model, None, settings)


def score_book(
    features: pd.DataFrame,
    model: ChurnRiskModel,
    scorecard: ScorecardConfig,
    settings: Settings,
    *,
    history_dir: Path | None,
    progress: ProgressCallback | None = None,
    scores: pd.DataFrame | None = None,
) -> ScoreRun:
    """Score, then compare with the previous run in the history: trends, alerts and drift (reads only).

    `scores`: the scores table of `features` (same rows, same order) when another engine computed it.
    """
    features = complete_usage_columns(features.reset_index(drop=True), model)
    if scores is None:
        scores = score_table(features, model, scorecard, settings, progress=progress)
    as_of = pd.Timestamp(scores[AS_OF].iloc[0])
    notes: list[str] = []
    previous = history = None
    if history_dir is not None:
        previous = previous_scores(history_dir, as_of)
        history = read_history(history_dir)
        if not history.empty:
            scores = pd.concat([scores, trends(history, scores)], axis=1)
        notes.append(f"score history: {history_dir}")
    if previous is None or previous.empty:
        notes.append("no earlier scoring run in the history: alerts use only the renewal rule")
    alerts = score_alerts(scores, previous, settings.scoring.alerts, settings.scoring.risk_bands, history=history)

    current = features.assign(churn_probability=scores["churn_probability"].to_numpy())
    monitored = [*model.feature_names, "churn_probability"]
    drift = (
        drift_report(model.reference_, current, monitored, settings.scoring.drift_psi_threshold)
        if not model.reference_.empty
        else pd.DataFrame(columns=["feature", "psi", "drifted"])
    )
    return ScoreRun(
        scores=scores, alerts=alerts, drift=drift, model_version=str(scores["model_version"].iloc[0]), notes=notes
    )
