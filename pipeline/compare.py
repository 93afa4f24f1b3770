"""The `churn compare` stage: an out-of-time backtest of the rule-based health score against the ML risk.

Monthly snapshots are split at a date (`models.split.out_of_time_split`, with the label gap).
Everything that learns — the model's trees, its early stopping and calibration, the suggested
scorecard weights — learns from snapshots before the cutoff whose outcome was known before it;
the later snapshots only evaluate. The model is therefore trained here on the early part (an
inner out-of-time split of it chooses the tree count and fits the calibration) rather than
taken from the registry, whose champion may have been refitted on the evaluation period.

Computation and I/O are separate steps the stage (`pipeline.stages.compare_dataset`) composes:
`compare_history` computes everything and writes nothing; `write_comparison` writes the outputs
into a folder (each atomically): report.html, metrics.json, agreement.csv, band_calibration.csv,
category_alignment.csv, disagreements.csv, ranking_metrics.csv, backtest_scores.parquet,
suggested_healthscore.yaml and its review diff; `pipeline.tracking.log_comparison` logs them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.errors import DataContractError, counted
from features.feature_set import FeatureSet
from features.progress import report
from features.table import ACCOUNT_ID, AS_OF, LABEL, TERM_END, feature_columns
from models.comparison import ML, RULE, Comparison, band_rates, compare, is_monotone, metrics_table
from models.evaluation import format_auc
from models.risk_model import ChurnRiskModel
from models.scorecard import ScorecardConfig
from models.scores import (
    ACTIONABLE_LOG_ODDS,
    ARR,
    CHURN_LOG_ODDS,
    CHURN_PROBABILITY,
    CONTEXT_LOG_ODDS,
    HEALTH_SCORE,
    RISK_BAND,
    SEGMENT,
    ml_columns,
)
from models.scoring import score_accounts
from models.split import Split, out_of_time_split, rolling_origin_folds, stratified_folds, stratified_split
from models.weights import SuggestedWeights, SuggestionLimits, suggest_weights
from pipeline.config import Settings, load_scorecard
from pipeline.io import atomic_path, write_table
from pipeline.loading import Dataset
from pipeline.progress import ProgressCallback
from pipeline.report import ReportContext, write_report

STAGE = "compare"
STEPS = ("features", "split", "train model", "score", "compare", "suggest weights", "write")
CONTEXT_COLUMNS = (ARR, SEGMENT)
OUTPUT_FILES = {
    "report": "report.html",
    "metrics": "metrics.json",
    "ranking": "ranking_metrics.csv",
    "agreement": "agreement.csv",
    "band_calibration": "band_calibration.csv",
    "category_alignment": "category_alignment.csv",
    "disagreements": "disagreements.csv",
    "scores": "backtest_scores.parquet",
    "suggested_scorecard": "suggested_healthscore.yaml",
    "suggested_review": "suggested_healthscore.diff",
}


@dataclass(frozen=True)
class ComparisonResult:
    """Everything the comparison computed; `files` once `write_comparison` has written it.
    `summary_lines()` is what `churn compare` prints, from `headline()` (also the head of metrics.json)."""

    frame: pd.DataFrame  # the backtest frame: one row per evaluation snapshot, both views
    comparison: Comparison
    suggested: SuggestedWeights
    split: Split
    training_table: pd.DataFrame  # labelled feature rows the model and the weights learned from
    evaluation_table: pd.DataFrame  # labelled feature rows of the evaluation period
    scorecard: ScorecardConfig  # adapted to the data's columns
    model: ChurnRiskModel
    scorecard_notes: tuple[str, ...] = ()  # how the configured scorecard was adapted to the data
    files: dict[str, Path] = field(default_factory=dict)  # key of OUTPUT_FILES -> written file

    @property
    def report_path(self) -> Path:
        return self.files["report"]

    @property
    def out_dir(self) -> Path:
        return self.report_path.parent

    def _auc(self, score: str) -> float:
        return self.comparison.scores["scores"][score]["roc_auc"]["value"]

    @property
    def ml_auc(self) -> float:
        return self._auc(ML)

    @property
    def rule_auc(self) -> float:
        return self._auc(RULE)

    @property
    def suggested_auc(self) -> float | None:
        return self.suggested.suggested_auc

    @property
    def churn_rate_by_band(self) -> dict[str, float]:
        """Observed churn rate per rule band (green, yellow, red) on the evaluation rows."""
        return self.comparison.rule_churn_by_band

    def headline(self) -> dict[str, Any]:
        scores = self.comparison.scores
        return {
            "evaluation_rows": scores["rows"],
            "evaluation_accounts": scores["accounts"],
            "churn_rate": scores["churn_rate"],
            "ml_auc": self.ml_auc,
            "ml_auc_ci": _interval(scores["scores"][ML]["roc_auc"]),
            "rule_auc": self.rule_auc,
            "rule_auc_ci": _interval(scores["scores"][RULE]["roc_auc"]),
            "ml_lift_top10": scores["scores"][ML]["lift_top10"]["value"],
            "rule_lift_top10": scores["scores"][RULE]["lift_top10"]["value"],
            "current_weights_auc": self.suggested.current_auc,
            "suggested_weights_auc": self.suggested_auc,
            "rule_churn_rate_by_band": self.churn_rate_by_band,
            "rule_bands_monotone": is_monotone(self.churn_rate_by_band),
            "ml_churn_rate_by_band": self.comparison.ml_churn_by_band,
            "spearman": self.comparison.agreement.spearman,
            "ml_actionable_share": self.comparison.actionable_share,
            "ml_actionable_sources": self.comparison.actionable_sources,  # what the share is made of
            "ml_context_features": self.comparison.context_features,
        }

    def summary_lines(self) -> list[str]:
        """Plain lines for the console: the headline figures and where the files are."""
        h = self.headline()
        bands, ml_bands = (band_rates(self.comparison.calibration, score) for score in (RULE, ML))
        parts = self.comparison.attribution_parts()
        made_of = f"{parts[0]}; the rest is context: {parts[1]}" if parts else "the rest is context"
        return [
            f"Backtest: {counted(h['evaluation_rows'], 'snapshot')} of "
            f"{counted(h['evaluation_accounts'], 'account')} from "
            f"{self.split.cutoff.date()} (churn rate {h['churn_rate']:.1%})",
            f"ROC AUC, ML risk:    {h['ml_auc']:.3f} [{h['ml_auc_ci'][0]:.3f}-{h['ml_auc_ci'][1]:.3f}]",
            f"ROC AUC, rule score: {h['rule_auc']:.3f} [{h['rule_auc_ci'][0]:.3f}-{h['rule_auc_ci'][1]:.3f}]",
            f"ROC AUC, rule score with suggested weights: {format_auc(h['suggested_weights_auc'])}",
            f"Lift in the riskiest 10%: ML {h['ml_lift_top10']:.2f}x, rule {h['rule_lift_top10']:.2f}x",
            f"Churn rate by rule band: {bands}" + ("" if h["rule_bands_monotone"] else " (NOT monotone)"),
            f"Churn rate by ML risk band: {ml_bands}",
            f"Actionable share of the model's attribution: {_fmt_share(h['ml_actionable_share'])} ({made_of})",
            f"Report: {self.report_path}",
            f"Suggested scorecard: {self.files['suggested_scorecard']} (to review: {self.files['suggested_review']})",
        ]


def _fmt_share(value: float) -> str:
    return "-" if value is None or np.isnan(value) else f"{value:.1%}"


def _interval(metric: dict[str, float]) -> tuple[float, float]:
    return metric["low"], metric["high"]


def _step(progress: ProgressCallback | None, name: str) -> None:
    report(progress, STAGE, STEPS.index(name), len(STEPS))


def fit_early_model(train: pd.DataFrame, settings: Settings, template: ChurnRiskModel | None) -> ChurnRiskModel:
    """Train on the early part only, exactly as `churn train` does on a whole history.

    An inner out-of-time split validates, rolling-origin folds before it choose the tree count
    (and, without a template, the hyperparameters). With only a handful of churners, the last
    part of the early period may hold none; the inner split and the folds are then stratified by
    account within the early period (the evaluation stays out of time) and
    `model.metadata_["inner_split"]` says so. `template` supplies tuned tree settings (a fresh copy
    is fitted without a new search; the caller's object is not touched): `churn run` passes the
    model it just trained, whose search used only rows labelled before this backtest's evaluation
    period.
    """
    features = feature_columns(train)
    model = settings.model.estimator()
    if template is not None:
        model.set_params(**template.tree_params(), tune_trials=0)
    n_folds, grace_days, seed = settings.model.cv_folds, settings.data.grace_days, settings.model.seed
    inner_split = None
    try:
        inner = out_of_time_split(train, validation_share=settings.model.validation_share, grace_days=grace_days)
        folds = rolling_origin_folds(train.loc[inner.train_index], n_folds=n_folds, grace_days=grace_days)
    except DataContractError as exc:
        inner = stratified_split(train, validation_share=settings.model.validation_share, seed=seed)
        folds = stratified_folds(train.loc[inner.train_index], n_folds=n_folds, seed=seed)
        inner_split = (
            f"the backtest model's tree count and calibration use a split stratified by account of the "
            f"training period: an out-of-time one is impossible there ({exc})"
        )
    model.fit(
        train[features],
        train[LABEL].astype(int),
        train_index=inner.train_index,
        valid_index=inner.valid_index,
        folds=folds.pairs(),
        feature_set=FeatureSet.of(features, values=settings.feature_values()),  # the table's own values
    )
    if inner_split is not None:
        model.metadata_["inner_split"] = inner_split
    return model


def backtest_frame(
    evaluation: pd.DataFrame, model: ChurnRiskModel, scorecard: ScorecardConfig, settings: Settings
) -> pd.DataFrame:
    """Both views of every evaluation snapshot (the scoring core's rows, without the words): health
    score by category and ML risk with SHAP by category, with the label and the account context."""
    scored = score_accounts(model, evaluation, scorecard, settings.scoring_rules(), words=False)
    scores, health = scored.scores, scored.health.frame
    context = [c for c in CONTEXT_COLUMNS if c in evaluation.columns]
    views = [
        *health.columns,
        CHURN_PROBABILITY,
        RISK_BAND,
        CHURN_LOG_ODDS,
        *ml_columns(scores),
        ACTIONABLE_LOG_ODDS,
        CONTEXT_LOG_ODDS,
    ]
    return pd.concat([evaluation[[ACCOUNT_ID, AS_OF, LABEL, TERM_END, *context]], scores[views]], axis=1).assign(
        **{LABEL: lambda f: f[LABEL].astype(int)}
    )


def compare_history(
    dataset: Dataset,
    settings: Settings,
    model: ChurnRiskModel | None = None,
    progress: ProgressCallback | None = None,
    *,
    table: pd.DataFrame | None = None,
    n_boot: int = 200,
) -> ComparisonResult:
    """Backtest rule score vs ML risk on held-out later snapshots; computes everything, writes nothing.

    `table` is a prebuilt snapshot feature table (monthly snapshots over the history are built
    otherwise); `model` supplies hyper-parameters only — it is refitted on the early part so the
    backtest stays out of time.
    """
    from features.build import build_features
    from pipeline.engines import feature_engine
    from pipeline.stages import snapshot_dates_for, with_rule_attributes

    _step(progress, "features")
    if table is None:
        dates = snapshot_dates_for(dataset, settings, None, None, None)
        with feature_engine(dataset, settings) as engine:
            table = build_features(
                dataset, dates, settings.features, settings.data.grace_days, progress=progress, engine=engine
            )
    rule_rows = with_rule_attributes(table, dataset, settings)  # the rule view's rows; the model's are `table`
    adapted = load_scorecard(settings.healthscore_path()).adapt_to(rule_rows.columns)
    scorecard = adapted.config

    _step(progress, "split")
    labelled = table[table[LABEL].notna()]
    split = out_of_time_split(  # of the whole table: one without labels is refused saying how many rows it has
        table, validation_share=settings.model.validation_share, grace_days=settings.data.grace_days
    )
    training, evaluation = labelled.loc[split.train_index], labelled.loc[split.valid_index]
    rule_training, rule_evaluation = rule_rows.loc[split.train_index], rule_rows.loc[split.valid_index]

    _step(progress, "train model")
    try:
        fitted = fit_early_model(training, settings, model)
    except DataContractError as exc:  # its counts are of the early part, not of the book `churn validate` counts
        raise DataContractError(
            f"compare: the backtest model learns only from the snapshots before {evaluation[AS_OF].min().date()} "
            f"(the later ones are what it is judged on); of those, {exc}"
        ) from exc

    _step(progress, "score")
    frame = backtest_frame(rule_evaluation, fitted, scorecard, settings)
    if frame[HEALTH_SCORE].isna().all():
        raise DataContractError(
            f"compare: scorecard {settings.healthscore_path()} gave no health score on any of the "
            f"{counted(len(frame), 'evaluation row')} (every metric missing); check that its metrics exist in the data."
        )

    _step(progress, "compare")
    comparison = compare(
        frame, scorecard, n_boot=n_boot, seed=settings.model.seed, importance=fitted.feature_importance()
    )

    _step(progress, "suggest weights")
    suggested = suggest_weights(
        rule_training,
        scorecard,
        evaluation_frame=rule_evaluation,
        limits=SuggestionLimits(**settings.suggestions.model_dump()),
    )
    if adapted.notes:  # the suggestion covers only what this data can measure: say so in its YAML
        suggested = replace(suggested, notes=(*suggested.notes, "Fitted to the scorecard as adapted to this data:",
                                              *adapted.notes))  # fmt: skip

    return ComparisonResult(
        frame=frame,
        comparison=comparison,
        suggested=suggested,
        split=split,
        training_table=training,
        evaluation_table=evaluation,
        scorecard=scorecard,
        model=fitted,
        scorecard_notes=adapted.notes,
    )


def metrics_document(result: ComparisonResult, settings: Settings) -> dict[str, Any]:
    """metrics.json: headline, ranking metrics with intervals, calibration by band, weights, split, model."""
    suggested = result.suggested
    return _json_safe(
        {
            "headline": result.headline(),
            "ranking": result.comparison.scores,
            "agreement": {
                "spearman": result.comparison.agreement.spearman,
                "agreeing_share": result.comparison.agreement.agreeing_share,
            },
            "suggested_weights": {
                "current_auc": suggested.current_auc,
                "suggested_auc": suggested.suggested_auc,
                "fit_rows": suggested.fit_rows,
                "evaluation_rows": suggested.evaluation_rows,
                "fit_period": [d.date().isoformat() for d in suggested.fit_period],
                "evaluation_period": [d.date().isoformat() for d in suggested.evaluation_period],
                "notes": list(suggested.notes),
                "changes": suggested.changes.to_dict("records"),
                "bands": suggested.bands.to_dict("records"),
            },
            "split": result.split.describe(),
            "model": {
                "params": result.model.get_params(),
                "best_iteration": result.model.best_iteration_,
                "fit_rows": result.model.fit_rows_,
            },
            "scorecard": {
                "name": result.scorecard.name,
                "file": str(settings.healthscore_path()),
                "categories": result.scorecard.categories(),
                "adapted_to_data": list(result.scorecard_notes),
            },
        }
    )


def _json_safe(value: Any) -> Any:
    """NaN/inf -> null, numpy scalars and timestamps -> plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def write_comparison(
    result: ComparisonResult, settings: Settings, out_dir: str | Path, progress: ProgressCallback | None = None
) -> ComparisonResult:
    """Write the report and tables into `out_dir` (each file atomically); the result with its `files`."""
    _step(progress, "write")
    files = {key: Path(out_dir) / name for key, name in OUTPUT_FILES.items()}
    comparison = result.comparison
    write_report(
        files["report"],
        result.frame,
        comparison,
        result.suggested,
        ReportContext(
            title="Rule score vs ML risk",
            evaluation_start=result.split.cutoff,
            scorecard=f"{result.scorecard.name} ({settings.healthscore_path().name})",
            model=f"LightGBM, {counted(result.model.best_iteration_, 'tree')}, fitted on "
            f"{counted(result.model.fit_rows_, 'earlier row')}"
            + (f"; {result.model.metadata_['inner_split']}" if "inner_split" in result.model.metadata_ else ""),
            scorecard_notes=result.scorecard_notes,
            cadence=settings.features.cadence,
        ),
    )
    with atomic_path(files["metrics"]) as tmp:
        tmp.write_text(json.dumps(metrics_document(result, settings), indent=2))
    write_table(metrics_table(comparison.scores), files["ranking"], "csv")
    write_table(comparison.agreement.cells, files["agreement"], "csv")
    write_table(comparison.calibration, files["band_calibration"], "csv")
    write_table(comparison.alignment, files["category_alignment"], "csv")
    write_table(comparison.agreement.disagreements, files["disagreements"], "csv")
    write_table(result.frame, files["scores"], "parquet")
    with atomic_path(files["suggested_scorecard"]) as tmp:
        tmp.write_text(result.suggested.yaml_text())
    with atomic_path(files["suggested_review"]) as tmp:
        tmp.write_text(result.suggested.review_text())
    report(progress, STAGE, len(STEPS), len(STEPS))
    return replace(result, files=files)
