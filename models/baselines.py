"""Baselines the renewal-risk model must beat on the same validation rows.

A boosted model earns its complexity only if it clearly ranks churners better than (a) a
regularised logistic regression on the same features and (b) the rule-based health score the
team already uses. The logistic pipeline imputes (with missing-value indicators, because "no
tickets ever" carries signal), scales, and one-hot encodes categoricals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler


def _as_text(frame: pd.DataFrame) -> np.ndarray:
    """Categoricals as plain objects with missing values as a level of their own."""
    return frame.astype("string").fillna("(missing)").to_numpy(dtype=object)


def logistic_baseline(
    numeric_columns: list[str], categorical_columns: list[str], seed: int = 42, max_iter: int = 500
) -> Pipeline:
    """Unfitted pipeline: impute + scale numerics, one-hot categoricals, L2 logistic regression."""
    numeric = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()
    )
    categorical = make_pipeline(
        FunctionTransformer(_as_text, feature_names_out="one-to-one"),
        OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20, sparse_output=False),
    )
    preprocess = ColumnTransformer(
        [("numeric", numeric, numeric_columns), ("categorical", categorical, categorical_columns)],
        remainder="drop",
    )
    model = LogisticRegression(C=1.0, max_iter=max_iter, random_state=seed)
    return Pipeline([("preprocess", preprocess), ("model", model)])


def fit_logistic_baseline(
    X: pd.DataFrame, y: pd.Series | np.ndarray, categorical_columns: list[str], seed: int = 42
) -> Pipeline:
    """Fit the logistic baseline; `predict_proba(X)[:, 1]` is its churn probability."""
    numeric_columns = [c for c in X.columns if c not in set(categorical_columns)]
    pipeline = logistic_baseline(numeric_columns, list(categorical_columns), seed=seed)
    return pipeline.fit(X, np.asarray(y, dtype=int))
