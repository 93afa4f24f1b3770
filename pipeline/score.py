"""Batch scoring: every active account as of a date, in both views (rule health score and ML risk).

The score rows come from the scoring core (`models.scoring.score_accounts`); `score_book` adds
what the score history says (trends, alerts against the previous run) and drift monitoring.
Neither writes anything: the scoring commit (`pipeline/commit.py`) puts a run in place as one unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.errors import ChurnError
from features.table import ACCOUNT_ID, AS_OF
from models.alerts import score_alerts
from models.drift import drift_report
from models.risk_model import ChurnRiskModel
from models.scorecard import ScorecardConfig
from models.scores import CHURN_PROBABILITY, MODEL_VERSION
from models.scoring import Scored, score_accounts
from pipeline.config import Settings
from pipeline.history import previous_scores, read_history, trends
from pipeline.progress import ProgressCallback


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


def score_features(
    features: pd.DataFrame,
    model: ChurnRiskModel,
    scorecard: ScorecardConfig | None,
    settings: Settings,
    *,
    progress: ProgressCallback | None = None,
) -> Scored:
    """The scoring core on a feature table (rows renumbered 0..n-1), with the configured scoring rules."""
    return score_accounts(
        model, features.reset_index(drop=True), scorecard, settings.scoring_rules(), progress=progress
    )


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
    return score_features(features, model, scorecard, settings, progress=progress).scores


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
    score_notes: tuple[str, ...] = (),
) -> ScoreRun:
    """Score, then compare with the previous run in the history: trends, alerts and drift (reads only).

    `scores` and `score_notes`: the scoring core's table of `features` (same rows, same order) and
    its notes, when another engine computed them (Spark).
    """
    features = features.reset_index(drop=True)
    if scores is None:
        scored = score_features(features, model, scorecard, settings, progress=progress)
        scores, score_notes = scored.scores, scored.notes
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
    alerts_settings = settings.scoring.alerts
    alerts = score_alerts(
        scores,
        previous,
        score_drop=alerts_settings.score_drop,
        probability_level=alerts_settings.probability_level,
        renewal_days=alerts_settings.renewal_days,
        high_risk=settings.scoring.risk_bands.high,
        history=history,
    )

    current = features.assign(**{CHURN_PROBABILITY: scores[CHURN_PROBABILITY].to_numpy()})
    monitored = [*model.feature_names, CHURN_PROBABILITY]
    drift = (
        drift_report(model.reference_, current, monitored, settings.scoring.drift_psi_threshold)
        if not model.reference_.empty
        else pd.DataFrame(columns=["feature", "psi", "drifted"])
    )
    return ScoreRun(
        scores=scores,
        alerts=alerts,
        drift=drift,
        model_version=str(scores[MODEL_VERSION].iloc[0]),
        notes=notes,
        warnings=list(score_notes),
    )
