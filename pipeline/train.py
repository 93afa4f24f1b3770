"""The `churn train` stage: tune, fit, evaluate out of time against two baselines, log, register, gate.

The labelled rows are split out of time: the latest `validation_share` validates, and nothing
that learns — the hyperparameter search (cross-validation folds inside the earlier rows), the
tree count, the calibrator used for the validation probabilities — sees them. The deployed
model is then refitted on every labelled row and calibrated on out-of-sample scores of models
trained like it (see models/risk_model.py).

One MLflow run per training holds everything needed to trust or reject the model later: the
parameters and configuration files, the training table (a dataset input, with its fingerprint),
the search (one nested run per trial, the chosen setting and its CV score with spread), metrics of the model and of the
logistic and rule baselines on the same validation rows (overall, per segment, calibration per
risk band), plots, the feature list with each feature's health category, the validation
predictions, and the model.

Prepared per-account tables (`churn train --table`) are turned into the feature-table format
first, so both paths share one implementation.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import DataContractError, counted
from features.feature_set import FeatureSet
from features.progress import report
from features.table import (
    ACCOUNT_ID,
    AS_OF,
    LABEL,
    META_COLUMNS,
    TERM_END,
    categorical_columns,
    feature_columns,
    product_names,
)
from models.baselines import fit_logistic_baseline
from models.categories import ml_categories
from models.comparison import calibration_by_band
from models.drift import date_spread
from models.evaluation import ALL_SEGMENTS, evaluate, evaluation_figures
from models.risk_model import (
    DATE_SPREAD,
    MISSING_MARKERS,
    NUMBER_FORMATS,
    SOURCE_COLUMNS,
    TIME_COLUMN,
    ChurnRiskModel,
)
from models.scorecard import ScorecardConfig
from models.scores import CHURN_PROBABILITY
from models.scoring import risk_band
from models.split import (
    MIN_TRAIN_CLASS_ROWS,
    MIN_VALID_CLASS_ROWS,
    Folds,
    Split,
    out_of_time_split,
    rolling_origin_folds,
    sample_folds,
    stratified_folds,
    stratified_split,
)
from pipeline import tracking
from pipeline.champion import (
    ID_AND_LANDED,
    ID_ONLY,
    TRAINED_ON,
    TrainedOn,
    account_keys,
    feature_set_cache,
    keep_feature_set,
)
from pipeline.config import Settings
from pipeline.io import save_figures
from pipeline.prepared_table import feature_name, missing_markers, prepare_table, read_prepared_table
from pipeline.progress import ProgressCallback

SHAP_SAMPLE_ROWS = 5_000
STEPS = ("split", "tune and fit model", "fit logistic baseline", "evaluate", "plots", "log to MLflow")


@dataclass
class TrainResult:
    """What a training run produced; `metrics` has one row per (score, segment)."""

    run_id: str
    experiment_id: str
    model_version: str
    model_uri: str
    promoted: bool
    promotion_reason: str
    metrics: pd.DataFrame
    split: Split
    model: ChurnRiskModel
    validation: pd.DataFrame
    calibration: pd.DataFrame  # validation rows per risk band: rows, mean predicted, observed
    folds: Folds | None = None
    notes: list[str] = field(default_factory=list)
    at_chance: bool = False  # its validation ranking is not credibly better than chance (`tracking._chance_test`)
    champion_version: str | None = None  # the champion there was when it was trained (None: there was none)

    def overall(self) -> dict[str, dict[str, float]]:
        """{score: {metric: value}} for all validation rows."""
        rows = self.metrics[self.metrics["segment"] == ALL_SEGMENTS].set_index("score").drop(columns="segment")
        return {score: {k: float(v) for k, v in row.items() if pd.notna(v)} for score, row in rows.iterrows()}


def train_model(
    table: pd.DataFrame,
    settings: Settings,
    *,
    rule_risk: pd.Series | None = None,
    scorecard: ScorecardConfig | None = None,
    config_files: Sequence[Path] = (),
    promote: bool = False,
    progress: ProgressCallback | None = None,
    notes: Sequence[str] = (),
    data_source: str | None = None,
    accounts: pd.DataFrame | None = None,
) -> TrainResult:
    """Train on a snapshot feature table (see features/table.py) with an out-of-time split.

    `rule_risk` (100 - health score, indexed like `table`) is evaluated as the rule baseline;
    `scorecard` (the one the rule risk comes from) gives the feature set saved with the model the
    categories its contributions are summed by; `notes` (e.g. how the scorecard was adapted to the
    data) are logged with the run. `data_source` (the data folder or file) and `accounts` (its accounts
    table, with the days they landed) are what the model records it was trained on (`TrainedOn`), so
    that scoring can tell a book it was not trained on.
    """
    missing = [c for c in META_COLUMNS if c not in table.columns]
    if missing:
        raise DataContractError(
            f"feature table: columns {missing} are missing; expected {list(META_COLUMNS)} followed by features."
        )
    if not table.index.is_unique:
        raise DataContractError(
            "feature table: the row index repeats (e.g. after pd.concat); reset it, and align rule_risk with it."
        )
    _report(progress, 0)
    split = out_of_time_split(  # first: without both outcomes, which the split refuses, no feature could vary
        table, validation_share=settings.model.validation_share, grace_days=settings.data.grace_days
    )
    require_varying_feature(table, data_source or "feature table")
    folds = rolling_origin_folds(
        table.loc[split.train_index], n_folds=settings.model.cv_folds, grace_days=settings.data.grace_days
    )
    source = run_source(data_source, from_folder=accounts is not None)
    evaluated = fit_and_evaluate(
        table, split, folds, settings, grace_days=settings.data.grace_days, rule_risk=rule_risk, scorecard=scorecard,
        progress=progress, source=source, notes=list(notes), feature_values=settings.feature_values(),
    )  # fmt: skip
    trained_on = trained_on_record(table, data_source or "a feature table", accounts, settings.model.seed)
    model = evaluated.model  # every snapshot of a date, censored ones too: the book a scoring run at that date sees
    snapshots = table[model.feature_names_in_]
    snapshots = snapshots.assign(**{CHURN_PROBABILITY: model.predict_proba(snapshots)[:, 1]})
    model.metadata_[DATE_SPREAD] = date_spread(model.reference_, snapshots, table[AS_OF], list(snapshots.columns))
    return log_and_register(
        evaluated, split, folds, settings, config_files=config_files, promote=promote, progress=progress,
        source=source, trained_on=trained_on,
    )  # fmt: skip


def run_source(data_source: str | None, *, from_folder: bool) -> str:
    """What a training run is named and tagged by: the data folder's or the feature table file's name ("data folder
    book", "feature table features.parquet"), as a prepared table's run names its file; the model's `TrainedOn`
    keeps the whole path."""
    if data_source is None:
        return tracking.FEATURE_TABLE
    if from_folder:
        return f"{tracking.DATA_FOLDER} {Path(data_source).name}"
    return f"{tracking.FEATURE_TABLE} {Path(data_source.removeprefix(tracking.FEATURE_TABLE).strip()).name}"


def trained_on_record(table: pd.DataFrame, source: str, accounts: pd.DataFrame | None, seed: int) -> TrainedOn:
    """What the model keeps of its training data: the accounts of the data folder by id and landing day
    (`accounts`), or else the ids of the table, with the source and the snapshot dates."""
    dates = table[AS_OF].dropna()
    period = f"snapshots {dates.min().date()} to {dates.max().date()}" if len(dates) else None
    if accounts is not None:
        keys = account_keys(accounts[ACCOUNT_ID], accounts["created_at"])
        return TrainedOn.of(keys, source=source, key=ID_AND_LANDED, seed=seed, period=period)
    return TrainedOn.of(account_keys(table[ACCOUNT_ID]), source=source, key=ID_ONLY, seed=seed, period=period)


def train_prepared_table(
    path: str | Path,
    id_col: str,
    label_col: str,
    time_col: str | None = None,
    settings: Settings | None = None,
    *,
    config_files: Sequence[Path] = (),
    promote: bool = False,
    progress: ProgressCallback | None = None,
    churn_value: str | None = None,
) -> TrainResult:
    """Train on an already aggregated table: out of time on `time_col` if given, else stratified.

    The time column is taken as the moment each row's label was observed (no grace gap); `churn_value`: the
    label's value that means churned (`--churn-value`), every other retained.
    """
    settings = settings or Settings()
    frame = read_prepared_table(path, text_columns=[id_col])
    table, notes = prepare_table(frame, id_col, label_col, time_col, Path(path).name, churn_value)
    require_enough_outcomes(table, settings.model.validation_share, id_col, Path(path).name, by_account=not time_col)
    require_varying_feature(table, Path(path).name)
    _report(progress, 0)
    n_folds, seed = settings.model.cv_folds, settings.model.seed
    if time_col is not None:
        split = out_of_time_split(table, validation_share=settings.model.validation_share, grace_days=0)
        folds = rolling_origin_folds(table.loc[split.train_index], n_folds=n_folds, grace_days=0)
    else:
        split = stratified_split(table, validation_share=settings.model.validation_share, seed=seed)
        folds = stratified_folds(table.loc[split.train_index], n_folds=n_folds, seed=seed)
    source = f"{tracking.PREPARED_TABLE} {Path(path).name}"
    evaluated = fit_and_evaluate(
        table, split, folds, settings, grace_days=0, rule_risk=None, scorecard=None, progress=progress, source=source,
        notes=notes,
    )  # fmt: skip
    trained_on = trained_on_record(table, f"{tracking.PREPARED_TABLE} {Path(path).resolve()}", None, seed)
    # the pyfunc takes the table's own column names too (its signature lists both); an empty map still says
    # "a prepared table's model", whose pyfunc types its input as `churn score --table` does
    evaluated.model.metadata_[SOURCE_COLUMNS] = {
        feature_name(c): str(c) for c in frame.columns if feature_name(c) != str(c) and feature_name(c) in table
    }
    evaluated.model.metadata_[MISSING_MARKERS] = missing_markers(frame, table)
    evaluated.model.metadata_[NUMBER_FORMATS] = table.attrs[NUMBER_FORMATS]
    if time_col is not None:
        evaluated.model.metadata_[TIME_COLUMN] = time_col
    return log_and_register(
        evaluated, split, folds, settings, config_files=config_files, promote=promote, progress=progress,
        source=source, trained_on=trained_on,
    )  # fmt: skip


def require_enough_outcomes(
    table: pd.DataFrame, validation_share: float, id_col: str, source: str, *, by_account: bool
) -> None:
    """Refuse a prepared table too small to train and judge a model on, saying how many churned and retained
    rows (accounts, `by_account`: a stratified split keeps an id's rows on one side) it has and how many are
    needed: enough that the validation share holds `MIN_VALID_CLASS_ROWS` of each outcome (an AUC from fewer
    is noise) and the rest `MIN_TRAIN_CLASS_ROWS` of each. Smaller tables failed inside scikit-learn's split
    or trained a model that ranks no one."""
    share = validation_share
    needed = int(max(np.ceil(MIN_VALID_CLASS_ROWS / share), np.ceil(MIN_TRAIN_CLASS_ROWS / (1 - share))))
    labelled = table[table[LABEL].notna()]
    churned = labelled[LABEL].astype(int) == 1
    if by_account:
        counts = labelled.loc[churned, ACCOUNT_ID].nunique(), labelled.loc[~churned, ACCOUNT_ID].nunique()
    else:
        counts = int(churned.sum()), int((~churned).sum())
    if min(counts) >= needed:
        return
    unit = "account" if by_account else "row"
    rows = counted(len(labelled), "labelled row")
    if by_account and labelled[ACCOUNT_ID].duplicated().any():
        rows += f" of {counted(labelled[ACCOUNT_ID].nunique(), 'account')} (ids of '{id_col}' repeat: a split keeps "
        rows += "an account's rows on one side)"
    raise DataContractError(
        f"{source}: {rows}: {counts[0]:,} churned and {counted(counts[1], f'retained {unit}')}; training needs at "
        f"least {needed} of each, so that the {share:.0%} that validate (model.validation_share) hold at least "
        f"{MIN_VALID_CLASS_ROWS} of each (an AUC from fewer is noise) and the rest {MIN_TRAIN_CLASS_ROWS} of each to "
        "learn from."
    )


def require_varying_feature(table: pd.DataFrame, source: str, shown: int = 8) -> None:
    """Refuse a table none of whose features varies over the labelled rows (a missing value counts as a
    value): no split of a tree can separate anything, and the model trained would give every account the
    base rate, read downstream as each one's risk. One varying column is enough to try."""
    labelled = table[table[LABEL].notna()]
    features = feature_columns(labelled)
    if not features or any(labelled[name].nunique(dropna=False) > 1 for name in features):
        return

    def constant(name: str) -> str:
        value = labelled[name].iloc[0] if len(labelled) else None
        if pd.isna(value):
            return f"'{name}' (empty in every row)"
        shown_value = f"{value:g}" if isinstance(value, int | float | np.number) else repr(str(value))
        return f"'{name}' (constant: every row is {shown_value})"

    listed = ", ".join(constant(name) for name in features[:shown])
    more = f" and {len(features) - shown:,} more" if len(features) > shown else ""
    raise DataContractError(
        f"{source}: every feature column is the same in all {counted(len(labelled), 'labelled row')}: {listed}"
        f"{more}; a model cannot learn who churns from columns that do not differ between accounts (it would give "
        "every account the base rate). Add columns that vary, or check the export that made them constant."
    )


# ------------------------------------------------------------------------------------ the core
def _report(progress: ProgressCallback | None, done: int) -> None:
    report(progress, "train", done, len(STEPS))


def feature_set(
    features: Sequence[str],
    scorecard: ScorecardConfig | None,
    overrides: dict[str, str],
    values: Mapping[str, int] | None = None,
    names: Mapping[str, str] | None = None,
) -> FeatureSet:
    """The model's feature set: its columns, each in its category of `scorecard` (the registry's
    without one; `features.category_overrides` first), which scorecard that was, the value
    settings (`values`, of a table the engine built) its features depend on and the product feature
    names its usage columns count (`names`, the table's `product_names`)."""
    categories = ml_categories(features, scorecard, overrides)
    return FeatureSet.of(features, categories, scorecard.version() if scorecard is not None else None, values, names)


@dataclass
class Evaluated:
    """A fitted model with everything its evaluation measured: what the logging step records."""

    model: ChurnRiskModel
    metrics: pd.DataFrame
    calibration: pd.DataFrame
    validation: pd.DataFrame
    evidence: tracking.ValidationEvidence
    tags: dict[str, str]
    figures_input: dict
    table: pd.DataFrame  # the training table (all rows), logged as the run's dataset input
    fingerprint: dict
    params: dict
    categories: dict[str, str]
    trials: list
    notes: list[str]


def fit_and_evaluate(
    table: pd.DataFrame,
    split: Split,
    folds: Folds,
    settings: Settings,
    *,
    grace_days: int,
    rule_risk: pd.Series | None,
    scorecard: ScorecardConfig | None,
    progress: ProgressCallback | None,
    source: str,
    notes: list[str] | None = None,
    feature_values: Mapping[str, int] | None = None,
) -> Evaluated:
    """Tune and fit the model, fit the logistic baseline, evaluate all on the validation rows (no I/O).
    `feature_values`: the value settings the engine built `table` with, recorded with the model."""
    notes = [*(notes or []), *folds.notes]
    features = feature_columns(table)
    labelled = table[table[LABEL].notna()]
    train, valid = table.loc[split.train_index], table.loc[split.valid_index]
    y_train, y_valid = train[LABEL].astype(int), valid[LABEL].astype(int).to_numpy()
    rule_scores = None if rule_risk is None else _rule_scores(rule_risk, valid.index)
    if 0 < len(folds) < folds.requested:
        notes.append(f"cross-validation on {len(folds)} of the {folds.requested} requested folds (model.cv_folds)")
    tuning = sample_folds(folds, table, max_rows=settings.model.tune_max_rows, seed=settings.model.seed)
    if tuning is not folds and settings.model.tune_trials > 0:
        notes.extend(tuning.notes)
    _report(progress, 1)

    trials: list = []
    features_used = feature_set(
        features, scorecard, settings.features.category_overrides, feature_values, product_names(table)
    )
    model = settings.model.estimator().fit(
        labelled[features],
        labelled[LABEL],
        train_index=split.train_index,
        valid_index=split.valid_index,
        folds=folds.pairs(),
        tuning_folds=tuning.pairs() if tuning is not folds else None,
        groups=labelled[ACCOUNT_ID],
        progress=progress,
        on_trial=trials.append,
        feature_set=features_used,
    )
    notes.extend(model.notes_)
    if model.search_ is not None and model.search_.cut_by_timeout:
        notes.append(
            f"the search was cut by model.tune_timeout_s = {settings.model.tune_timeout_s:g} s after "
            f"{len(model.search_.trials)} of {settings.model.tune_trials} trials: not reproducible, another machine "
            "or load may choose other settings (raise the timeout, or set it to null, for the full trial budget)"
        )
    if settings.model.tune_trials == 0:
        notes.append("model.tune_trials = 0: trained with the configured tree settings, no search")
    _report(progress, 2)
    logistic = fit_logistic_baseline(train[features], y_train, categorical_columns(table), seed=settings.model.seed)
    logistic_proba = logistic.predict_proba(valid[features])[:, 1]
    _report(progress, 3)

    # ranking uses the evaluation model's log-odds; probabilities come from a calibrator that never saw these rows
    scores = {"model": model.validation_raw_, "logistic": logistic_proba}
    if rule_scores is not None:
        scores["rule"] = rule_scores
    probabilities = {"model": model.validation_proba_, "logistic": logistic_proba}
    metrics = evaluate(
        y_valid,
        scores,
        probabilities=probabilities,
        segments=valid["segment"] if "segment" in valid.columns else None,
        arr=valid["arr"] if "arr" in valid.columns else None,
    )
    risk_bands = settings.scoring.risk_bands
    bands = risk_band(pd.Series(model.validation_proba_), risk_bands.high, risk_bands.medium)
    calibration = calibration_by_band(y_valid, model.validation_proba_, bands, valid[ACCOUNT_ID], valid[TERM_END])
    validation = valid[[ACCOUNT_ID, AS_OF, TERM_END, LABEL]].assign(
        model_score=model.validation_raw_,
        churn_probability=model.validation_proba_,
        logistic_probability=logistic_proba,
        **({"rule_risk": rule_scores} if rule_scores is not None else {}),
    )
    _report(progress, 4)
    if np.unique(model.validation_raw_).size == 1:
        notes.append(
            f"the model learned nothing from these rows: it gives every validation row the same probability "
            f"({float(model.validation_proba_[0]):.3f}), so its scores rank no account above another "
            f"({int(y_train.sum()):,} churned of {len(y_train):,} training rows; more history or churners are needed)"
        )

    has_time = bool(table[AS_OF].notna().any())
    evidence = tracking.ValidationEvidence(
        X=valid[features],
        labels=y_valid,
        scores=model.validation_raw_,
        rows_hash=tracking.frame_hash(valid[[ACCOUNT_ID, AS_OF, LABEL]].reset_index(drop=True)),
        as_of=valid[AS_OF] if has_time else None,
        label_known=valid[TERM_END] + pd.Timedelta(days=grace_days) if has_time else None,
        cross_fitted=tracking.OutOfSample(
            labels=labelled[LABEL].astype(int).to_numpy()[model.calibration_positions_],
            scores=model.calibration_raw_,
            accounts=labelled[ACCOUNT_ID].iloc[model.calibration_positions_].reset_index(drop=True),
        ),
    )
    tags = tracking.version_tags(
        evidence,
        labelled[AS_OF] if has_time else None,
        labelled[TERM_END] + pd.Timedelta(days=grace_days) if has_time else None,
    )
    categories = dict(features_used.categories)
    plots_input = {
        "labels": y_valid,
        "scores": scores,
        "probabilities": probabilities,
        "importance": model.feature_importance("gain"),
        "contributions": model.contributions(
            valid[features].sample(min(SHAP_SAMPLE_ROWS, len(valid)), random_state=settings.model.seed)
        ),
        "categories": categories,
    }
    fingerprint = tracking.data_fingerprint(
        table, id_col=ACCOUNT_ID, label_col=LABEL, time_col=AS_OF if has_time else None
    )
    params = {
        **{f"model_{k}": v for k, v in model.get_params().items()},
        **split.describe(),
        **{f"data_{k}": v for k, v in fingerprint.items()},
        "source": source,
        "features": len(features),
        "categorical_features": len(model.categories_),
        "best_iteration": model.best_iteration_,
        "cv_kind": folds.kind,
        "cv_folds_used": len(folds),
        "cv_cutoffs": ",".join(s.cutoff.date().isoformat() for s in folds.splits if s.cutoff is not None) or "-",
    }
    return Evaluated(
        model=model,
        metrics=metrics,
        calibration=calibration,
        validation=validation,
        evidence=evidence,
        tags=tags,
        figures_input=plots_input,
        table=table,
        fingerprint=fingerprint,
        params=params,
        categories=categories,
        trials=trials,
        notes=notes,
    )


def log_and_register(
    evaluated: Evaluated,
    split: Split,
    folds: Folds,
    settings: Settings,
    *,
    config_files: Sequence[Path],
    promote: bool,
    progress: ProgressCallback | None,
    source: str,
    trained_on: TrainedOn,
) -> TrainResult:
    """Log the run to MLflow, register the model as @challenger and promote it when it wins; the model
    keeps `trained_on` in its own files, its version and run say the source in a tag."""
    model, notes, categories, trials = evaluated.model, evaluated.notes, evaluated.categories, evaluated.trials
    validation, evidence = evaluated.validation, evaluated.evidence

    experiment_id = tracking.configure_tracking(settings)
    import mlflow  # after pipeline.tracking (telemetry off)

    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name=f"train {source}") as run:
        tmp_dir = Path(tmp)
        save_figures(evaluation_figures(**evaluated.figures_input), tmp_dir / "plots")
        _report(progress, 5)
        mlflow.log_params(evaluated.params)
        mlflow.set_tags({"stage": "train", tracking.SOURCE_TAG: source, "tuned": str(model.search_ is not None)})
        tracking.log_training_data(evaluated.table, evaluated.fingerprint, name=source, label_col=LABEL)
        if model.search_ is not None:
            mlflow.set_tag("search_cut_by_timeout", str(model.search_.cut_by_timeout))
        if notes:
            mlflow.log_text("\n".join(notes), tracking.NOTES_ARTIFACT)
        tracking.log_config_files([*config_files, *_healthscore_file(settings)])
        mlflow.log_dict(settings.model_dump(mode="json"), "config/settings_resolved.json")
        tracking.log_metrics_table(evaluated.metrics)
        tracking.log_selection(model.selection_, trials, experiment_id, run.info.run_id)
        tracking.log_band_calibration(evaluated.calibration)
        mlflow.log_metrics({"best_iteration": model.best_iteration_, "fit_rows": model.fit_rows_})
        mlflow.log_artifacts(str(tmp_dir / "plots"), artifact_path="plots")
        mlflow.log_dict(
            {"features": model.feature_names_in_, "categorical": list(model.categories_)}, "features/features.json"
        )
        mlflow.log_dict(categories, "features/feature_categories.json")
        validation.to_parquet(tmp_dir / "validation_predictions.parquet", index=False)
        mlflow.log_artifact(str(tmp_dir / "validation_predictions.parquet"), artifact_path="evaluation")
        model.metadata_[TRAINED_ON] = trained_on.to_dict()
        mlflow.set_tag(tracking.TAG_TRAINED_ON, trained_on.source)
        version = tracking.log_model(
            model, evidence.X, settings, evaluated.tags | {tracking.TAG_TRAINED_ON: trained_on.source}
        )
        version_id = str(version.version)
        # the first scoring run with this model can build its features while the model loads
        keep_feature_set(feature_set_cache(settings), version.tags[tracking.TAG_MODEL_SHA256], model.feature_set_)
        decision = tracking.promote_if_better(settings, version, evidence, promote=promote)
        mlflow.set_tags(
            {"model_version": version_id, "promoted": str(decision.promoted), "promotion_reason": decision.reason}
        )
    _report(progress, 6)
    model.metadata_.update(model_version=version_id, run_id=run.info.run_id)
    return TrainResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_version=version_id,
        model_uri=f"models:/{settings.model.name}/{version_id}",
        promoted=decision.promoted,
        promotion_reason=decision.reason,
        metrics=evaluated.metrics,
        split=split,
        model=model,
        validation=validation,
        calibration=evaluated.calibration,
        folds=folds,
        notes=notes,
        at_chance=decision.at_chance,
        champion_version=decision.champion_version,
    )


def _rule_scores(rule_risk: pd.Series, index: pd.Index) -> np.ndarray:
    aligned = pd.to_numeric(rule_risk.reindex(index), errors="coerce")
    if aligned.isna().any():
        examples = aligned.index[aligned.isna()][:3].tolist()
        raise DataContractError(
            f"rule_risk: no value for {counted(int(aligned.isna().sum()), 'validation row')} (index {examples}); "
            "pass 100 - health score for every row of the feature table."
        )
    return aligned.to_numpy(dtype=float)


def _healthscore_file(settings: Settings) -> list[Path]:
    path = settings.healthscore_path()
    return [path] if path.is_file() else []
