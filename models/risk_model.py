"""The renewal-risk model: LightGBM on snapshot features, calibrated on out-of-time data.

Why this shape:
- Native categoricals keep segment/plan/industry as one column each, so SHAP contributions map
  one-to-one onto features (and from there onto health categories).
- Shallow trees (default 15 leaves, depth 4) keep exact TreeSHAP cheap: its cost grows with
  trees x leaves x depth^2, and churn signals are mostly monotone, so depth buys little.
- The tree count is chosen by early stopping on the out-of-time validation rows; the
  calibrator is fitted on those rows' predictions, so `churn_probability` is a frequency on
  *future* snapshots, not on the training period. Class weighting (which shifts raw scores)
  is undone by that calibration.
- For production the booster is refitted on all labelled rows with the chosen tree count; the
  evaluation numbers come from the pre-refit booster (`validation_raw_`, `validation_proba_`),
  because after refitting the validation rows are in-sample.
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on shared or busy cores (batch hosts, CI) spinning
# made small fits ~10x slower. Must be set before LightGBM loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit

from pipeline.config import ModelSettings
from pipeline.errors import ChurnError, DataContractError

CalibrationKind = Literal["isotonic", "sigmoid"]
PROBABILITY_FLOOR = 1e-4  # isotonic steps can reach exactly 0 or 1; no account is that certain
MODEL_FILE = "booster.txt"
META_FILE = "model.json"
# A sample of the training features (with the model's probability) to measure drift against at scoring.
REFERENCE_FILE = "reference.parquet"
REFERENCE_ROWS = 5_000


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

            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, labels)
            return cls(kind, knots_x=iso.X_thresholds_.tolist(), knots_y=iso.y_thresholds_.tolist())
        if kind == "sigmoid":
            from sklearn.linear_model import LogisticRegression

            platt = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), labels.astype(int))
            return cls(kind, slope=float(platt.coef_[0, 0]), intercept=float(platt.intercept_[0]))
        raise ChurnError(f"model.calibration: unknown method '{kind}' (use isotonic or sigmoid).")

    def predict(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=float)
        if self.kind == "isotonic":
            proba = np.interp(raw, self.knots_x, self.knots_y)
        else:
            proba = expit(self.slope * raw + self.intercept)
        return np.clip(proba, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def cross_fitted_probabilities(
    raw: np.ndarray, labels: np.ndarray, kind: CalibrationKind, seed: int, folds: int = 5
) -> np.ndarray:
    """Calibrated probabilities where each row's calibrator never saw that row.

    The production calibrator uses every validation row; scoring those same rows with it would
    make calibration error look better than it is on new data. Cross-fitting gives honest
    numbers at the cost of calibrators fitted on 80% of the rows.
    """
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels, dtype=int)
    n_folds = min(folds, int(np.bincount(labels, minlength=2).min()))
    if n_folds < 2:
        raise DataContractError(
            "validation rows: fewer than 2 churned or renewed rows; calibration cannot be checked out of sample."
        )
    out = np.empty(len(raw), dtype=float)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fit_rows, held_out in splitter.split(raw.reshape(-1, 1), labels):
        out[held_out] = Calibrator.fit(raw[fit_rows], labels[fit_rows], kind).predict(raw[held_out])
    return out


class ChurnRiskModel:
    """LightGBM churn classifier with out-of-time calibration, in scikit-learn style."""

    def __init__(
        self,
        *,
        num_leaves: int = 7,
        max_depth: int = 3,
        learning_rate: float = 0.05,
        n_estimators: int = 400,
        min_child_samples: int = 40,
        feature_fraction: float = 0.8,
        bagging_fraction: float = 0.8,
        early_stopping_rounds: int = 40,
        calibration: CalibrationKind = "isotonic",
        balance_classes: bool = True,
        refit: bool = True,
        seed: int = 42,
        num_threads: int = 2,
    ) -> None:
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.balance_classes = balance_classes
        self.refit = refit
        self.seed = seed
        self.num_threads = num_threads
        self.metadata: dict[str, Any] = {}

    @classmethod
    def from_settings(cls, settings: ModelSettings) -> ChurnRiskModel:
        return cls(
            num_leaves=settings.num_leaves,
            max_depth=settings.max_depth,
            learning_rate=settings.learning_rate,
            n_estimators=settings.n_estimators,
            min_child_samples=settings.min_child_samples,
            feature_fraction=settings.feature_fraction,
            bagging_fraction=settings.bagging_fraction,
            early_stopping_rounds=settings.early_stopping_rounds,
            calibration=settings.calibration,
            balance_classes=settings.balance_classes,
            refit=settings.refit,
            seed=settings.seed,
            num_threads=settings.num_threads,
        )

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (what MLflow logs as parameters)."""
        return {
            key: getattr(self, key)
            for key in (
                "num_leaves",
                "max_depth",
                "learning_rate",
                "n_estimators",
                "min_child_samples",
                "feature_fraction",
                "bagging_fraction",
                "early_stopping_rounds",
                "calibration",
                "balance_classes",
                "refit",
                "seed",
                "num_threads",
            )
        }

    def _lgb_params(self, labels: np.ndarray) -> dict[str, Any]:
        positives = int(labels.sum())
        weight = (len(labels) - positives) / positives if self.balance_classes and positives else 1.0
        return {
            "objective": "binary",
            "metric": "auc",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1 else 0,
            "scale_pos_weight": weight,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }

    # ----------------------------------------------------------------------------------- data
    @staticmethod
    def _is_categorical(column: pd.Series) -> bool:
        return isinstance(column.dtype, pd.CategoricalDtype) or not (
            pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
        )

    def _learn_levels(self, frames: list[pd.DataFrame]) -> dict[str, list[str]]:
        levels: dict[str, list[str]] = {}
        for name in self.feature_names:
            if self._is_categorical(frames[0][name]):
                seen = pd.concat([f[name].astype("string") for f in frames], ignore_index=True).dropna().unique()
                levels[name] = sorted(str(v) for v in seen)
        return levels

    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        """Select the model's features in training order and give them the training dtypes.

        Categoricals get exactly the training levels (unseen values become missing), so the
        booster's category codes mean the same at scoring as at training.
        """
        missing = [c for c in self.feature_names if c not in X.columns]
        if missing:
            raise DataContractError(
                f"scoring input: {len(missing)} model feature(s) missing, e.g. {missing[:5]}; "
                f"the model was trained on {len(self.feature_names)} features."
            )
        columns: dict[str, Any] = {}
        for name in self.feature_names:
            values = X[name]
            if name in self.categories:
                as_text = values.astype("string")
                known = as_text.where(as_text.isin(self.categories[name]))
                columns[name] = pd.Categorical(known, categories=self.categories[name])
            else:
                columns[name] = _to_float(values, name)
        return pd.DataFrame(columns, index=X.index)

    # ------------------------------------------------------------------------------------ fit
    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        X_valid: pd.DataFrame,
        y_valid: pd.Series | np.ndarray,
        *,
        X_full: pd.DataFrame | None = None,
        y_full: pd.Series | np.ndarray | None = None,
    ) -> ChurnRiskModel:
        """Early-stop on the validation rows, calibrate on them, then refit on all rows.

        `X_full`/`y_full` are every labelled row (including rows the out-of-time gap kept out
        of training) and must contain the training rows (same index); by default the refit
        uses training plus validation rows. Features are binned once, on all labelled rows, and
        the training set is a subset of those bins: at a million rows binning is not free.
        """
        y_train, y_check = _binary(y, "training"), _binary(y_valid, "validation")
        self.feature_names = [str(c) for c in X.columns]
        if not self.feature_names:
            raise DataContractError("training input: no feature columns.")
        if X_full is None:
            X_full, y_full = pd.concat([X, X_valid]), np.concatenate([y_train, y_check])
        self.categories = self._learn_levels([X_full, X_valid])
        full_frame, y_all = self.prepare(X_full), _binary(y_full, "all labelled")
        train_positions = full_frame.index.get_indexer(X.index) if full_frame.index.is_unique else None
        if train_positions is None or (train_positions < 0).any():
            raise ChurnError("ChurnRiskModel.fit: X_full must hold every training row of X, with a unique index.")
        if not np.array_equal(y_all[train_positions], y_train):
            raise ChurnError("ChurnRiskModel.fit: y_full disagrees with y on the training rows.")
        valid_frame = self.prepare(X_valid)

        params = self._lgb_params(y_train)
        categorical = list(self.categories) or "auto"
        full_set = lgb.Dataset(full_frame, label=y_all, categorical_feature=categorical, params=params)
        train_set = full_set.subset(np.sort(train_positions))
        valid_set = lgb.Dataset(valid_frame, label=y_check, reference=full_set)
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=self.n_estimators,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False)],
        )
        self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())
        self.validation_raw_ = booster.predict(valid_frame, raw_score=True, num_iteration=self.best_iteration_)
        self.calibrator_ = Calibrator.fit(self.validation_raw_, y_check, self.calibration)
        self.validation_proba_ = cross_fitted_probabilities(
            self.validation_raw_, y_check, self.calibration, seed=self.seed
        )
        self.train_rows_ = len(train_positions)

        if self.refit:
            booster = lgb.train(self._lgb_params(y_all), full_set, num_boost_round=self.best_iteration_)
            self.fit_rows_ = len(full_frame)
        else:
            booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=self.best_iteration_))
            self.fit_rows_ = self.train_rows_
        self.booster_ = booster
        sample = X_full.sample(n=min(REFERENCE_ROWS, len(X_full)), random_state=self.seed)[self.feature_names]
        self.reference_ = sample.assign(churn_probability=self.predict_proba(sample)[:, 1])
        return self

    # -------------------------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise ChurnError("ChurnRiskModel is not fitted yet; call fit() or load a trained model.")

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Booster log-odds (class-weighted, before calibration): the scale SHAP values add up to."""
        self._check_fitted()
        return self.booster_.predict(self.prepare(X), raw_score=True)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): column 1 is the churn probability."""
        raw = self.predict_raw(X)
        churn = self.calibrator_.predict(raw)
        return np.column_stack([1 - churn, churn])

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP values per feature (log-odds), plus `bias`; each row sums to predict_raw."""
        self._check_fitted()
        values = self.booster_.predict(self.prepare(X), pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.feature_names, "bias"], index=X.index)

    def feature_importance(self, kind: Literal["gain", "split"] = "gain") -> pd.Series:
        self._check_fitted()
        importance = self.booster_.feature_importance(importance_type=kind)
        return pd.Series(importance, index=self.feature_names, name=kind).sort_values(ascending=False)

    # --------------------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write the booster (LightGBM text format) and metadata (JSON) into `directory`."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_FILE).write_text(self.booster_.model_to_string())
        meta = {
            "params": self.get_params(),
            "feature_names": self.feature_names,
            "categories": self.categories,
            "calibrator": self.calibrator_.to_dict(),
            "best_iteration": self.best_iteration_,
            "train_rows": self.train_rows_,
            "fit_rows": self.fit_rows_,
            "metadata": self.metadata,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1, default=str))
        self.reference_.to_parquet(directory / REFERENCE_FILE, index=False)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ChurnRiskModel:
        directory = Path(directory)
        if not (directory / META_FILE).exists():
            raise ChurnError(f"{directory} holds no saved ChurnRiskModel ({META_FILE} is missing).")
        meta = json.loads((directory / META_FILE).read_text())
        model = cls(**meta["params"])
        model.feature_names = meta["feature_names"]
        model.categories = meta["categories"]
        model.calibrator_ = Calibrator(**meta["calibrator"])
        model.best_iteration_ = meta["best_iteration"]
        model.train_rows_ = meta["train_rows"]
        model.fit_rows_ = meta["fit_rows"]
        model.metadata = meta["metadata"]
        model.booster_ = lgb.Booster(model_str=(directory / MODEL_FILE).read_text())
        reference = directory / REFERENCE_FILE
        model.reference_ = pd.read_parquet(reference) if reference.exists() else pd.DataFrame()
        return model


def _binary(labels: pd.Series | np.ndarray, side: str) -> np.ndarray:
    values = pd.Series(labels)
    if values.isna().any():
        raise DataContractError(
            f"{side} labels: {int(values.isna().sum())} missing values; censored rows cannot train."
        )
    array = values.astype(int).to_numpy()
    if not np.isin(array, (0, 1)).all() or len(np.unique(array)) < 2:
        raise DataContractError(
            f"{side} labels must hold both 0 (renewed) and 1 (churned); found values {sorted(set(array.tolist()))[:5]}."
        )
    return array


def _to_float(values: pd.Series, name: str) -> np.ndarray:
    """Numeric feature as float64; numbers stored as text are parsed, blanks become missing."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    text = values.astype("string").str.strip()
    parsed = pd.to_numeric(text.replace("", pd.NA), errors="coerce")
    bad = parsed.isna() & text.notna() & (text != "")
    if bad.any():
        examples = [f"row {idx}: {val!r}" for idx, val in text[bad].head(3).items()]
        raise DataContractError(f"feature '{name}': {int(bad.sum())} values are not numbers ({', '.join(examples)}).")
    return parsed.to_numpy(dtype="float64", na_value=np.nan)
