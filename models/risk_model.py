"""The renewal-risk model: LightGBM on snapshot features, tuned by time-series CV, calibrated as deployed.

Why this shape:
- Native categoricals keep segment/plan/industry as one column each, so SHAP contributions map
  one-to-one onto features (and from there onto health categories).
- Hyperparameters and the tree count are chosen by cross-validation on the training period
  (rolling-origin folds for snapshots, stratified folds for prepared tables; see models/split.py
  and models/tuning.py), never on the validation rows the reported metrics come from.
- The calibrator maps the *deployed* booster's log-odds to probabilities, so it is fitted on
  out-of-sample log-odds of boosters trained exactly like it: cross-fitted over whole accounts
  (`CALIBRATION_FOLDS` folds; each member has the deployed parameters and tree count and trains on
  the deployed booster's rows minus one fold's accounts, then scores that fold). This is
  scikit-learn's `CalibratedClassifierCV(ensemble=False)` with folds grouped by account. Two
  earlier designs were measured and dropped (bench/RESULTS.md): a calibrator fitted on the latest
  out-of-time block of the evaluation booster (small, and dominated by the terms whose outcome is
  known soonest), shifted onto the refit by an offset, over-predicted the medium risk band (0.38
  predicted for 0.25 observed on the default world, 0.31 for 0.18 on the usage-decline world; ECE
  0.044-0.047 there, 0.019-0.020 cross-fitted); out-of-fold scores of the rolling-origin CV models
  (trained on far fewer, older rows than the deployed one) sit on another raw-score scale. Class
  weighting, which shifts raw scores, is undone by the same calibration.
- Reported validation numbers are honest: the evaluation model never trained on the validation
  rows, the CV that chose its settings never saw them, and their probabilities come from the
  calibrator the same procedure fits on the training rows alone (so validation calibration
  measures the whole recipe one period ahead, drift included).
- For production the booster is refitted on all labelled rows with the chosen tree count
  (`refit`); without refit the evaluation model itself is deployed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from features.errors import DataContractError, counted
from features.feature_set import FeatureSet
from features.progress import ProgressCallback
from models.errors import ModelError

CalibrationKind = Literal["isotonic", "sigmoid"]
PROBABILITY_FLOOR = 1e-4  # a Platt sigmoid can round to exactly 0 or 1; no account is that certain
# Each isotonic step's churn rate is the posterior mean under a Beta prior centred on the base rate and worth this
# many rows (the m-estimate of Zadrozny & Elkan, 2001; Laplace's rule of succession is 2 rows centred on one half):
# a step of a few rows that all churned says "likely", not "certain" (unshrunk, the top step of a 1,500-account book
# was 1.000 and a validation account at 1.000 renewed). Large steps barely move; the order, and so every AUC, is
# unchanged.
PRIOR_ROWS = 2.0
# Isotonic calibration is a step function: every account on one step would get the same probability,
# and ranking by probability would lose what the log-odds know (measured: ROC AUC 0.904 on calibrated
# probabilities vs 0.927 on the log-odds of the same model, telecom table). A shift this small breaks
# the ties in the log-odds' order without moving any probability measurably.
TIE_BREAK = 1e-6
MODEL_FILE = "booster.txt"
META_FILE = "model.json"
# A sample of the training features (with the model's probability) to measure drift against at scoring.
REFERENCE_FILE = "reference.parquet"
# In `metadata_`: feature -> the prepared table's column it was renamed from (`Monthly_Charges` -> `Monthly Charges`)
SOURCE_COLUMNS = "source_columns"
# In `metadata_`: feature (and churn_probability) -> the largest PSI of one training snapshot date's rows against
# the reference, which drift must pass (models.drift.date_spread; absent for a table trained without dates)
DATE_SPREAD = "drift_date_spread"
# In `metadata_`: the prepared table's column that dated its rows (`churn train --table --time`), which dates the
# rows `churn score --table` scores as it dated the training rows
TIME_COLUMN = "time_column"
# In `metadata_`: feature -> the values without a digit its prepared table gave for a missing number ('?', '-'),
# which scoring reads as missing too (any other value that is not a number is refused)
MISSING_MARKERS = "missing_markers"
# In `metadata_`: feature -> the decimal mark ('.' or ',') of the amounts its prepared table wrote as text ('$6,143.31',
# '12%', '€ 12,50'), which scoring reads them by, so '1,234' is the number training read, not a thousandth of it
NUMBER_FORMATS = "number_formats"
# The contributions' column for the base value (the log-odds of an average row): no feature may take its name.
BASE_VALUE = "bias"
REFERENCE_ROWS = 5_000
# The LightGBM parameters the tuner searches (and a user may set); everything else is fixed.
TUNED_PARAMS = (
    "num_leaves",
    "max_depth",
    "min_child_samples",
    "learning_rate",
    "lambda_l1",
    "lambda_l2",
    "feature_fraction",
    "bagging_fraction",
)
# Below this many training rows a fit runs on one thread: a second one costs more in synchronisation
# than it saves, and on a busy machine far more (measured: CV of 5k-row folds 10x slower on two
# threads at load 9 than on one). Results are identical either way (deterministic mode).
SMALL_FIT_ROWS = 50_000
# Cross-fitting folds for the calibrator (scikit-learn's CalibratedClassifierCV default): each member
# trains on 80 % of the accounts, close to the deployed booster's scale, at the cost of 5 extra fits.
CALIBRATION_FOLDS = 5
# Early-stopping patience counts rounds at this learning rate (the configured default's); a smaller rate gets
# proportionally more rounds (see ChurnRiskModel.patience).
PATIENCE_RATE = 0.05
# Never trade more CV AUC than this for a preferred choice (a cheaper setting, a less early-stopped tree
# count), however noisy the folds are: the model must stay within 0.005 AUC of the best simple baseline.
ONE_SE_CAP = 0.005
# The tree count a search trial is judged at. 0: the mean CV curve's maximum. Above 0: the largest count whose mean
# fold AUC is within this fraction of one paired standard error (over folds) of that maximum. 1 was measured in
# wave 7 and left out: judged at a later, lower count, smooth settings lose to spiky ones, and on one seed the
# search then kept 7 stumps (bench/RESULTS.md); `bench/paired_seeds.py` compares it.
TREE_SE_FRACTION = 0.0
# The same rule for the chosen setting's deployed tree count only (evaluation booster, refit, calibration
# members): with folds of 10-25 churners the curve's maximum can be a noisy early peak, and a later count as good
# within one SE is the less early-stopped model. Wave 7, 16 paired seeds over three shapes: book AUC +0.0016
# [-0.0002, +0.0034], no seed worse by more than 0.0006, calibration and CPU unchanged. 0: the judged count.
DEPLOYED_TREE_SE_FRACTION = 1.0
# Every trial is judged on its folds' AUC curves smoothed by a centred moving average over this many rounds at
# PATIENCE_RATE or above (proportionally more at a slower rate, as patience): a one-round spike of a fold with
# 10-25 churners then no longer outscores a smooth plateau. Wave 8, paired seeds: book AUC +0.0064 [+0.0005,
# +0.0122] on the thin weekly shape (its worst few-tree pick, 19 stumps at rate 0.11, became 191 at 0.010), level
# on B2B and usage-only monthly (within 0.003), no seed worse than -0.0015, calibration and CPU unchanged; a
# 25-round window blurred real peaks too. 0 judges the raw curves (the rule before wave 8).
CURVE_SMOOTHING_ROUNDS = 10
Fold = tuple[pd.Index, pd.Index]  # (training rows, validation rows), as index labels
TrialReport = Callable[[int, float], None]  # (fold number, running mean AUC) -> may raise to prune


@dataclass
class Calibrator:
    """Monotone map from booster log-odds to churn probability, stored as plain numbers.

    Isotonic keeps the step function's knots (predicted by linear interpolation, exactly as
    scikit-learn's IsotonicRegression does); sigmoid (Platt) keeps slope and intercept. Plain
    numbers make the saved model independent of the scikit-learn version.
    """

    kind: CalibrationKind
    knots_x: list[float] | None = None
    knots_y: list[float] | None = None
    slope: float | None = None
    intercept: float | None = None

    @classmethod
    def fit(cls, raw: np.ndarray, labels: np.ndarray, kind: CalibrationKind) -> Calibrator:
        raw = np.asarray(raw, dtype=float)
        labels = np.asarray(labels, dtype=float)
        if kind == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            order = np.argsort(raw, kind="stable")
            raw, labels = raw[order], labels[order]
            steps = IsotonicRegression(out_of_bounds="clip").fit(raw, labels).predict(raw)
            knots_x, knots_y = _shrunk_steps(raw, labels, np.flatnonzero(np.diff(steps)) + 1)
            return cls(kind, knots_x=knots_x, knots_y=knots_y)
        if kind == "sigmoid":
            from sklearn.linear_model import LogisticRegression

            platt = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), labels.astype(int))
            return cls(kind, slope=float(platt.coef_[0, 0]), intercept=float(platt.intercept_[0]))
        raise ModelError(f"model.calibration: unknown method '{kind}' (use isotonic or sigmoid).")

    def predict(self, raw: np.ndarray) -> np.ndarray:
        """Churn probabilities, strictly increasing in the log-odds (so they rank exactly as the model does)."""
        raw = np.asarray(raw, dtype=float)
        if self.kind == "isotonic":
            steps = np.clip(np.interp(raw, self.knots_x, self.knots_y), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
            return steps + TIE_BREAK * (expit(raw) - 0.5)
        return np.clip(expit(self.slope * raw + self.intercept), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _shrunk_steps(raw: np.ndarray, labels: np.ndarray, starts: np.ndarray) -> tuple[list[float], list[float]]:
    """Knots of the isotonic steps of sorted `raw` (steps begin at `starts`), each step's rate shrunk by the prior.

    Shrinking pulls a small high step below a large one beneath it; such neighbours are pooled (their
    counts added, the pool shrunk again) until the rates rise, as pool-adjacent-violators does.
    """
    base = float(labels.mean())
    strength = PRIOR_ROWS
    pools: list[list[float]] = []  # [first x, last x, rows, churned, shrunk rate]
    for rows in np.split(np.arange(len(raw)), starts):
        pool = [raw[rows[0]], raw[rows[-1]], len(rows), float(labels[rows].sum()), 0.0]
        while True:
            pool[4] = (pool[3] + strength * base) / (pool[2] + strength)
            if not pools or pools[-1][4] < pool[4]:
                break
            below = pools.pop()
            pool = [below[0], pool[1], below[2] + pool[2], below[3] + pool[3], 0.0]
        pools.append(pool)
    knots = [(x, rate) for first, last, _, _, rate in pools for x in dict.fromkeys((first, last))]
    return [float(x) for x, _ in knots], [float(y) for _, y in knots]


@dataclass(frozen=True)
class CVResult:
    """Cross-validated ROC AUC of one setting, every fold judged at one common tree count."""

    trees: int
    fold_scores: tuple[float, ...]
    deployed_trees: int  # the count the chosen setting deploys (DEPLOYED_TREE_SE_FRACTION): `trees` or later

    @property
    def score(self) -> float:
        return float(np.mean(self.fold_scores))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_scores, ddof=1)) if len(self.fold_scores) > 1 else 0.0

    @property
    def se(self) -> float:
        return self.std / float(np.sqrt(len(self.fold_scores)))


class CrossValidator:
    """The folds of one training table on one binned LightGBM dataset.

    Binning once and taking each fold as a subset judges every candidate setting on exactly the
    same rows and saves re-binning per trial (at a million rows binning is not free).
    """

    def __init__(
        self, labels: np.ndarray, dataset: lgb.Dataset, folds: Sequence[tuple[np.ndarray, np.ndarray]]
    ) -> None:
        if not folds:
            raise ModelError("CrossValidator needs at least one fold.")
        self.labels = labels
        self.folds = [(np.sort(train), np.sort(valid)) for train, valid in folds]
        self._sets = [(dataset.subset(train), dataset.subset(valid)) for train, valid in self.folds]

    def __len__(self) -> int:
        return len(self.folds)

    def evaluate(self, model: ChurnRiskModel, report: TrialReport | None = None) -> CVResult:
        """Early-stop each fold, then judge all folds at one tree count (`tree_count` of their AUC curves).

        `report(fold, running mean of the folds' best scores)` lets a tuner prune (it raises to stop).
        """
        curves: list[np.ndarray] = []
        for number, ((train, _), (train_set, valid_set)) in enumerate(zip(self.folds, self._sets, strict=True)):
            history: dict[str, Any] = {}
            lgb.train(
                model._lgb_params(self.labels[train]),
                train_set,
                num_boost_round=model.n_estimators,
                valid_sets=[valid_set],
                valid_names=["valid"],
                callbacks=[
                    lgb.record_evaluation(history),
                    lgb.early_stopping(model.patience(), first_metric_only=True, verbose=False),
                ],
            )
            curves.append(smoothed(np.asarray(history["valid"]["auc"], dtype=float), model.smoothing_window()))
            if report is not None:
                report(number, float(np.mean([c.max() for c in curves])))
        trees, fold_scores = tree_count(curves)
        deployed = tree_count(curves, DEPLOYED_TREE_SE_FRACTION)[0]
        return CVResult(trees=trees, fold_scores=fold_scores, deployed_trees=deployed)


def smoothed(curve: np.ndarray, window: int) -> np.ndarray:
    """`curve` as a centred moving average over `window` rounds (its end values repeat past either end)."""
    if window <= 1:
        return curve
    from scipy.ndimage import uniform_filter1d

    return uniform_filter1d(curve, size=window, mode="nearest")


def within_one_se(deficits: np.ndarray, fraction: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(eligible, tolerance) per candidate, from `deficits` (folds x candidates) of fold AUC against the best.

    A candidate is as good as the best when its mean deficit is at most `fraction` of one paired standard
    error of that deficit over folds (never more than ONE_SE_CAP). Pairing by fold removes what all
    candidates share (a hard period is hard for every one); with one fold there is no standard error and only
    a candidate level with the best qualifies.
    """
    deficits = np.asarray(deficits, dtype=float)
    folds = deficits.shape[0]
    spread = np.std(deficits, axis=0, ddof=1) / np.sqrt(folds) if folds > 1 else np.zeros(deficits.shape[1:])
    tolerance = np.minimum(fraction * spread, ONE_SE_CAP)
    return deficits.mean(axis=0) <= tolerance, tolerance


def tree_count(curves: Sequence[np.ndarray], fraction: float | None = None) -> tuple[int, tuple[float, ...]]:
    """(trees, fold AUCs there) from the folds' validation AUC curves (one value per boosting round).

    At `fraction` 0 (None: TREE_SE_FRACTION, the count trials are judged at) the count where the mean curve
    is highest. Above 0, the largest count, up to where every fold still has a measured AUC (the shortest
    early-stopped curve), whose mean fold AUC is within that fraction of one paired standard error of the
    maximum: with folds of 10-25 churners the maximum can be a noisy early peak (DEPLOYED_TREE_SE_FRACTION
    applies it to the chosen setting's deployed count). A fold that stopped early keeps its last score for
    longer tree counts (it was already declining).
    """
    longest = max(len(c) for c in curves)
    padded = np.vstack([np.pad(np.asarray(c, dtype=float), (0, longest - len(c)), mode="edge") for c in curves])
    peak = int(np.argmax(padded.mean(axis=0)))
    measured = min(len(c) for c in curves)
    later = padded[:, peak:measured]
    fraction = TREE_SE_FRACTION if fraction is None else fraction
    if fraction > 0 and later.shape[1] > 1:  # 0: the first maximum, exactly as before wave 7
        eligible, _ = within_one_se(padded[:, [peak]] - later, fraction)
        peak += int(np.flatnonzero(eligible)[-1])
    return peak + 1, tuple(float(s) for s in padded[:, peak])


class ChurnRiskModel(ClassifierMixin, BaseEstimator):
    """LightGBM churn classifier, tuned by cross-validation and calibrated as deployed: a scikit-learn estimator.

    The constructor arguments are the parameters (`get_params`, `set_params`, `clone`); everything
    `fit` learns ends in `_`. `fit` needs the out-of-time rows to calibrate on (`train_index`,
    `valid_index`), and when it tunes (`tune_trials` > 0) it sets the tree parameters it chose,
    so `get_params()` after fitting reports the deployed settings.
    """

    def __init__(
        self,
        *,
        num_leaves: int = 15,
        max_depth: int = -1,
        learning_rate: float = 0.05,
        n_estimators: int = 1000,
        min_child_samples: int = 20,
        lambda_l1: float = 0.0,
        lambda_l2: float = 0.0,
        feature_fraction: float = 0.8,
        bagging_fraction: float = 0.8,
        early_stopping_rounds: int = 50,
        calibration: CalibrationKind = "isotonic",
        balance_classes: bool = False,
        refit: bool = True,
        tune_trials: int = 0,
        tune_timeout_s: float | None = 3600.0,
        one_se_rule: bool = True,
        seed: int = 42,
        num_threads: int = 2,
    ) -> None:
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.min_child_samples = min_child_samples
        self.lambda_l1 = lambda_l1
        self.lambda_l2 = lambda_l2
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.balance_classes = balance_classes
        self.refit = refit
        self.tune_trials = tune_trials
        self.tune_timeout_s = tune_timeout_s
        self.one_se_rule = one_se_rule
        self.seed = seed
        self.num_threads = num_threads

    def tree_params(self) -> dict[str, Any]:
        """The LightGBM parameters that shape the trees (the ones tuning chooses)."""
        return {key: getattr(self, key) for key in TUNED_PARAMS}

    def _lgb_params(self, labels: np.ndarray) -> dict[str, Any]:
        """Booster parameters for training on `labels` (class weight and thread count depend on them)."""
        positives = int(labels.sum())
        weight = (len(labels) - positives) / positives if self.balance_classes and positives else 1.0
        return {
            "objective": "binary",
            "metric": "auc",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_data_in_leaf": self.min_child_samples,
            "lambda_l1": self.lambda_l1,
            "lambda_l2": self.lambda_l2,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1 else 0,
            "scale_pos_weight": weight,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "feature_pre_filter": False,  # one binned dataset serves every min_child_samples the tuner tries
            "num_threads": 1 if len(labels) < SMALL_FIT_ROWS else self.num_threads,
            "verbosity": -1,
        }

    def tree_cost(self) -> int:
        """Size of one tree, leaves x depth (depth bounded by the leaves): what exact TreeSHAP pays per tree.

        The tree count is left out on purpose: it is chosen by early stopping for the setting, and
        preferring few trees would prefer under-fitted models with a small learning rate.
        """
        depth = self.num_leaves - 1 if self.max_depth <= 0 else min(self.max_depth, self.num_leaves - 1)
        return self.num_leaves * max(depth, 1)

    def patience(self) -> int:
        """Early-stopping patience in rounds: `early_stopping_rounds` at PATIENCE_RATE or above, more below it.

        Patience is meant as an amount of learning without improvement, and one round at rate 0.01 learns a
        tenth of one at 0.1. Counted in plain rounds, a slow setting was stopped at a noisy early peak of a
        small fold's AUC curve (or on a plateau while one strong feature kept winning the split) and the
        one-SE rule then kept it as the cheapest: 14 stumps at rate 0.011, 9 distinct scores, book AUC 0.662
        vs 0.684 for the same setting given patience in proportion (bench/RESULTS.md, wave 6).
        """
        return math.ceil(self.early_stopping_rounds * max(1.0, PATIENCE_RATE / self.learning_rate))

    def smoothing_window(self) -> int:
        """Rounds the fold AUC curves are averaged over before a trial is judged (CURVE_SMOOTHING_ROUNDS, in
        rounds at PATIENCE_RATE: a slower setting's spike spans proportionally more rounds)."""
        return math.ceil(CURVE_SMOOTHING_ROUNDS * max(1.0, PATIENCE_RATE / self.learning_rate))

    # ----------------------------------------------------------------------------------- data
    @staticmethod
    def _is_categorical(column: pd.Series) -> bool:
        return isinstance(column.dtype, pd.CategoricalDtype) or not (
            pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
        )

    def _learn_levels(self, frame: pd.DataFrame) -> dict[str, list[str]]:
        levels: dict[str, list[str]] = {}
        for name in self.feature_names_in_:
            if self._is_categorical(frame[name]):
                seen = frame[name].astype("string").dropna().unique()
                levels[name] = sorted(str(v) for v in seen)
        return levels

    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        """Select the model's features in training order and give them the training dtypes.

        Categoricals get exactly the training levels (unseen values become missing), so the
        booster's category codes mean the same at scoring as at training.
        """
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise DataContractError(
                f"scoring input: {counted(len(missing), 'model feature')} missing, e.g. {missing[:5]}; "
                f"the model was trained on {counted(len(self.feature_names_in_), 'feature')}."
            )
        columns: dict[str, Any] = {}
        for name in self.feature_names_in_:
            values = X[name]
            if name in self.categories_ and _holds_numbers(values):
                raise DataContractError(
                    f"feature '{name}': the model learnt it as categorical (levels {self.categories_[name][:3]}...) "
                    f"but it holds numbers (dtype {values.dtype}); pass its levels as strings or categories."
                )
            if name in self.categories_:
                as_text = values.astype("string")
                known = as_text.where(as_text.isin(self.categories_[name]))
                columns[name] = pd.Categorical(known, categories=self.categories_[name])
            else:
                columns[name] = _to_float(values, name)
        return pd.DataFrame(columns, index=X.index)

    # ------------------------------------------------------------------------------------ fit
    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        *,
        train_index: pd.Index,
        valid_index: pd.Index,
        folds: Sequence[Fold] = (),
        tuning_folds: Sequence[Fold] | None = None,
        groups: pd.Series | np.ndarray | None = None,
        progress: ProgressCallback | None = None,
        on_trial: Callable[[Any], None] | None = None,
        feature_set: FeatureSet | None = None,
    ) -> ChurnRiskModel:
        """Tune on the folds, evaluate and calibrate on the validation rows, refit.

        `X`/`y` are every labelled row (unique index). `train_index` rows train the evaluation
        model, which predicts the `valid_index` rows for the reported metrics; `folds` are
        (training, validation) row pairs inside `train_index` for choosing the parameters and the
        tree count. `tuning_folds` (default: `folds`) may be a sample of them for the search on
        large tables; the tree count is then early-stopped on the latest full fold alone. Without
        folds (data too thin) the tree count is early-stopped on the validation rows; a note says so.
        `groups` (e.g. account ids, aligned with `X`) keep an account's rows in one calibration fold;
        without them every row is its own group.
        """
        if not X.index.is_unique:
            raise ModelError("ChurnRiskModel.fit: X needs a unique index (e.g. reset it after pd.concat).")
        y_all = _binary(y, "all labelled")
        if groups is not None:
            groups = pd.Series(groups).astype(str).to_numpy()
            if len(groups) != len(X):
                raise ModelError(
                    f"ChurnRiskModel.fit: {counted(len(groups), 'group')} for {counted(len(X), 'row')} of X."
                )
        self.feature_names_in_ = [str(c) for c in X.columns]
        if not self.feature_names_in_:
            raise DataContractError("training input: no feature columns.")
        self.feature_set_ = feature_set or FeatureSet.of(self.feature_names_in_)
        if list(self.feature_set_.names) != self.feature_names_in_:
            raise ModelError("ChurnRiskModel.fit: the feature set names other columns than X has, or another order.")
        self.categories_ = self._learn_levels(X)
        self.classes_ = np.array([0, 1])
        self.notes_: list[str] = []
        self.metadata_: dict[str, Any] = {}
        frame = self.prepare(X)
        train_pos, valid_pos = _positions(X.index, train_index, "train"), _positions(X.index, valid_index, "valid")
        y_train = _binary(y_all[train_pos], "training")
        _binary(y_all[valid_pos], "validation")  # both classes, or the validation AUC means nothing
        categorical = list(self.categories_) or "auto"
        dataset = lgb.Dataset(
            frame, label=y_all, categorical_feature=categorical, params=self._lgb_params(y_all), free_raw_data=False
        ).construct()  # constructed before subsetting, so every booster keeps the categorical levels

        fold_pos = [(_positions(X.index, a, "fold train"), _positions(X.index, b, "fold valid")) for a, b in folds]
        self.search_ = None
        self.finalists_: list[dict[str, Any]] = []
        if fold_pos:
            # On a sampled search (large tables) the tree count is chosen on the full rows of the latest
            # fold only: one early-stopped fit instead of one per fold, on the fold closest to deployment.
            tree_cv = CrossValidator(y_all, dataset, fold_pos[-1:] if tuning_folds is not None else fold_pos)
            if self.tune_trials > 0:
                from models.tuning import search

                configured = clone(self)
                sample = fold_pos
                if tuning_folds is not None:
                    sample = [(_positions(X.index, a, "fold train"), _positions(X.index, b, "fold valid"))
                              for a, b in tuning_folds]  # fmt: skip
                self.search_ = search(
                    self, CrossValidator(y_all, dataset, sample), progress=progress, on_trial=on_trial
                )
                self.set_params(**self.search_.chosen.params)
                if tuning_folds is not None:
                    finalists = {
                        "one-SE choice on the sample": self.search_.chosen.params,
                        "best on the sample": self.search_.best.params,
                        "configured": configured.tree_params(),
                    }
                    self.cv_ = self._judge_finalists(tree_cv, configured, finalists)
                else:
                    self.cv_ = tree_cv.evaluate(self)
            else:
                self.cv_ = tree_cv.evaluate(self)
            self.best_iteration_ = self.cv_.deployed_trees
            if self.best_iteration_ >= self.n_estimators:
                self.notes_.append(
                    f"early stopping never stopped: the model uses all model.n_estimators = {self.n_estimators} "
                    "trees; a larger cap may score higher"
                )
            evaluation = lgb.train(self._lgb_params(y_train), dataset.subset(train_pos), self.best_iteration_)
        else:
            self.cv_ = None
            self.notes_.append(
                "too few labelled rows for cross-validation: the tree count was early-stopped on the validation "
                "rows, so the validation AUC is optimistic"
            )
            evaluation = lgb.train(
                self._lgb_params(y_train),
                dataset.subset(train_pos),
                num_boost_round=self.n_estimators,
                valid_sets=[dataset.subset(valid_pos)],
                callbacks=[lgb.early_stopping(self.patience(), first_metric_only=True, verbose=False)],
            )
            self.best_iteration_ = int(evaluation.best_iteration or evaluation.current_iteration())
            evaluation = lgb.Booster(model_str=evaluation.model_to_string(num_iteration=self.best_iteration_))

        # Reported numbers: out-of-time scores of the evaluation booster, probabilities from the calibrator
        # the deployed recipe fits on the training rows alone (it never saw a validation row).
        self.validation_index_ = X.index[valid_pos]
        self.validation_raw_ = evaluation.predict(frame.iloc[valid_pos], raw_score=True)
        train_calibrator = self._cross_fitted_calibrator(dataset, frame, y_all, train_pos, groups, progress)
        self.validation_proba_ = train_calibrator.predict(self.validation_raw_)
        self.train_rows_ = len(train_pos)
        if self.refit:
            self.booster_ = lgb.train(self._lgb_params(y_all), dataset, num_boost_round=self.best_iteration_)
            self.fit_rows_ = len(frame)
            self.calibrator_ = self._cross_fitted_calibrator(
                dataset, frame, y_all, np.arange(len(frame)), groups, progress
            )
        else:
            self.booster_ = evaluation
            self.fit_rows_ = self.train_rows_
            self.calibrator_ = train_calibrator
        self.selection_ = self._selection_summary()
        sample_rows = X.sample(n=min(REFERENCE_ROWS, len(X)), random_state=self.seed)
        self.reference_ = sample_rows.assign(churn_probability=self.predict_proba(sample_rows)[:, 1])
        return self

    def _judge_finalists(
        self, cv: CrossValidator, configured: ChurnRiskModel, finalists: dict[str, dict[str, Any]]
    ) -> CVResult:
        """Keep whichever finalist of a sampled search scores best on the latest full fold (cheaper on a tie).

        A search on a sample of the rows favours simple trees (fewer rows support less structure): at
        a million rows it picked one-split trees that scored 0.018 validation AUC below the configured
        15-leaf setting. The full latest fold, which sets the tree count anyway, decides between the
        sample's choice, the sample's best and the configured setting; each distinct one costs one
        early-stopped fit there.
        """
        distinct: dict[tuple, tuple[list[str], dict[str, Any]]] = {}
        for label, params in finalists.items():
            distinct.setdefault(tuple(sorted(params.items())), ([], params))[0].append(label)
        judged = []
        for labels, params in distinct.values():
            candidate = clone(configured).set_params(**params)
            result = cv.evaluate(candidate)
            judged.append((result.score, -candidate.tree_cost(), params, result))
            self.finalists_.append(
                {
                    "finalist": " = ".join(labels),
                    "full_fold_auc": result.score,
                    "trees": result.trees,
                    "kept": False,
                    **params,
                }
            )
        best = max(range(len(judged)), key=lambda i: judged[i][:2])
        self.finalists_[best]["kept"] = True
        self.notes_.append(
            "sampled search: "
            + "; ".join(f"{f['finalist']} {f['full_fold_auc']:.4f}" for f in self.finalists_)
            + f" AUC on the latest full fold; kept the {self.finalists_[best]['finalist']}"
        )
        *_, params, result = judged[best]
        self.set_params(**params)
        return result

    def _cross_fitted_calibrator(
        self,
        dataset: lgb.Dataset,
        frame: pd.DataFrame,
        labels: np.ndarray,
        positions: np.ndarray,
        groups: np.ndarray | None,
        progress: ProgressCallback | None,
    ) -> Calibrator:
        """Calibrator on out-of-fold log-odds of boosters trained like the one fitted on `positions`.

        Folds hold whole accounts (`groups`), so no member scores an account it trained on; each
        member has the chosen parameters and tree count. The pooled out-of-fold scores (kept as
        `calibration_raw_`, for the rows `calibration_positions_` of X) are what the calibrator learns from.
        """
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

        positions = np.sort(positions)
        y = labels[positions]
        group = groups[positions] if groups is not None else np.arange(len(positions))
        churned_groups = len(np.unique(group[y == 1]))
        renewed_groups = len(np.unique(group[y == 0]))
        n_folds = min(CALIBRATION_FOLDS, churned_groups, renewed_groups)
        if n_folds < 2:
            raise DataContractError(
                f"labelled rows: {counted(churned_groups, 'churned account')} and "
                f"{counted(renewed_groups, 'renewed account')}; calibrating out of sample needs at least 2 of each: "
                "use a longer history or a book with more accounts."
            )
        repeated = len(np.unique(group)) < len(group)
        splitter = (
            StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=self.seed)
            if repeated
            else StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=self.seed)
        )
        raw = np.empty(len(positions), dtype=float)
        for number, (fit_rows, held_out) in enumerate(splitter.split(np.zeros(len(y)), y, group if repeated else None)):
            member = lgb.train(self._lgb_params(y[fit_rows]), dataset.subset(positions[fit_rows]), self.best_iteration_)
            raw[held_out] = member.predict(frame.iloc[positions[held_out]], raw_score=True)
            if progress is not None:
                progress("calibrate", number + 1, n_folds)
        self.calibration_positions_, self.calibration_raw_ = positions, raw
        return Calibrator.fit(raw, y, self.calibration)

    # -------------------------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        try:
            check_is_fitted(self, "booster_")
        except NotFittedError as exc:
            raise ModelError("ChurnRiskModel is not fitted yet; call fit() or load a trained model.") from exc

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Booster log-odds (before calibration): the scale SHAP values add up to."""
        self._check_fitted()
        return self.booster_.predict(self.prepare(X), raw_score=True)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): column 1 is the churn probability."""
        raw = self.predict_raw(X)
        churn = self.calibrator_.predict(raw)
        return np.column_stack([1 - churn, churn])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 (churns) where the calibrated churn probability is at least one half, else 0."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP values per feature (log-odds), plus `BASE_VALUE`; each row sums to predict_raw."""
        self._check_fitted()
        values = self.booster_.predict(self.prepare(X), pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.feature_names_in_, BASE_VALUE], index=X.index)

    def feature_importance(self, kind: Literal["gain", "split"] = "gain") -> pd.Series:
        self._check_fitted()
        importance = self.booster_.feature_importance(importance_type=kind)
        return pd.Series(importance, index=self.feature_names_in_, name=kind).sort_values(ascending=False)

    def _selection_summary(self) -> dict[str, Any]:
        """How the parameters and the tree count were chosen: flat and loggable."""
        summary: dict[str, Any] = {"trees": self.best_iteration_, "tuned": self.search_ is not None}
        if self.cv_ is not None:
            summary |= {
                "cv_folds": len(self.cv_.fold_scores),
                "cv_auc": self.cv_.score,
                "cv_auc_std": self.cv_.std,
                "cv_auc_se": self.cv_.se,
            }
        if self.search_ is not None:
            summary |= self.search_.summary()
        for number, finalist in enumerate(self.finalists_):
            summary |= {f"finalist_{number}_{key}": value for key, value in finalist.items()}
        return summary

    # --------------------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write the booster (LightGBM text format), metadata (JSON) and drift reference (parquet)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_FILE).write_text(self.booster_.model_to_string())
        meta = {
            "params": self.get_params(),
            "feature_names": self.feature_names_in_,
            "categories": self.categories_,
            "calibrator": self.calibrator_.to_dict(),
            "best_iteration": self.best_iteration_,
            "train_rows": self.train_rows_,
            "fit_rows": self.fit_rows_,
            "selection": self.selection_,
            "notes": self.notes_,
            "metadata": self.metadata_,
            "feature_set": self.feature_set_.to_dict(),
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1, default=str))
        self.reference_.to_parquet(directory / REFERENCE_FILE, index=False)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ChurnRiskModel:
        directory = Path(directory)
        if not (directory / META_FILE).exists():
            raise ModelError(f"{directory} holds no saved ChurnRiskModel ({META_FILE} is missing).")
        meta = json.loads((directory / META_FILE).read_text())
        model = cls(**meta["params"])
        model.feature_names_in_ = meta["feature_names"]
        model.categories_ = meta["categories"]
        model.classes_ = np.array([0, 1])
        model.calibrator_ = Calibrator(**meta["calibrator"])
        model.best_iteration_ = meta["best_iteration"]
        model.train_rows_ = meta["train_rows"]
        model.fit_rows_ = meta["fit_rows"]
        model.selection_ = meta.get("selection", {})
        model.notes_ = meta.get("notes", [])
        model.metadata_ = meta["metadata"]
        # models saved before the feature set was: their features with the registry's categories
        saved = meta.get("feature_set")
        model.feature_set_ = FeatureSet.from_dict(saved) if saved else FeatureSet.of(model.feature_names_in_)
        model.booster_ = lgb.Booster(model_str=(directory / MODEL_FILE).read_text())
        reference = directory / REFERENCE_FILE
        model.reference_ = pd.read_parquet(reference) if reference.exists() else pd.DataFrame()
        return model


def _positions(index: pd.Index, rows: pd.Index, side: str) -> np.ndarray:
    positions = index.get_indexer(pd.Index(rows))
    if (positions < 0).any():
        strays = counted(int((positions < 0).sum()), f"{side} row is not a row", f"{side} rows are not rows")
        raise ModelError(f"ChurnRiskModel.fit: {strays} of X.")
    return positions


def _binary(labels: pd.Series | np.ndarray, side: str) -> np.ndarray:
    values = pd.Series(labels)
    if values.isna().any():
        raise DataContractError(
            f"{side} labels: {counted(int(values.isna().sum()), 'missing value')}; censored rows cannot train."
        )
    array = values.astype(int).to_numpy()
    if not np.isin(array, (0, 1)).all() or len(np.unique(array)) < 2:
        raise DataContractError(
            f"{side} labels must hold both 0 (renewed) and 1 (churned); found values {sorted(set(array.tolist()))[:5]}."
        )
    return array


def _holds_numbers(values: pd.Series) -> bool:
    """A numeric column with values: not a categorical feature's levels (all-missing is just missing)."""
    numeric = pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype)
    return bool(numeric and values.notna().any())


def _to_float(values: pd.Series, name: str) -> np.ndarray:
    """Numeric feature as float64; numbers stored as text are parsed, blanks become missing."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    text = values.astype("string").str.strip()
    parsed = pd.to_numeric(text.replace("", pd.NA), errors="coerce")
    bad = parsed.isna() & text.notna() & (text != "")
    if bad.any():
        examples = [f"row {idx}: {val!r}" for idx, val in text[bad].head(3).items()]
        raise DataContractError(
            f"feature '{name}': {counted(int(bad.sum()), 'value is not a number', 'values are not numbers')} "
            f"({', '.join(examples)})."
        )
    return parsed.to_numpy(dtype="float64", na_value=np.nan)
