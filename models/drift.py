"""Monitoring the scoring data against the training data.

A model scores garbage silently when its inputs move away from what it learned on, or when a
feature it needs is absent. The population stability index (PSI) measures the first per feature
and for the score distribution; `check_required_features` refuses the second outright.

PSI = sum over bins of (current share - reference share) * ln(current share / reference share).
Rules of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 (the default threshold) a shift
worth acting on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from features.errors import DataContractError
from models.errors import ModelError

DEFAULT_BINS = 10
# Share given to a bin that is empty on one side, so an unseen level counts as a large but finite shift.
EMPTY_SHARE = 1e-4
_MISSING = "<missing>"


def check_required_features(
    table: pd.DataFrame, required: Iterable[str], table_name: str = "the scoring table"
) -> None:
    """Fail before predicting when a feature the model needs is not a column of `table`."""
    missing = [name for name in required if name not in table.columns]
    if not missing:
        return
    shown = ", ".join(missing[:10]) + (f", ... ({len(missing) - 10} more)" if len(missing) > 10 else "")
    present = ", ".join(map(str, table.columns[:8])) + (", ..." if len(table.columns) > 8 else "")
    raise DataContractError(
        f"{table_name[:1].upper()}{table_name[1:]} lacks {len(missing)} feature(s) the model needs: {shown}. "
        f"It has {len(table.columns)} column(s) ({present}). Build the features with the same "
        "configuration and data sources as the training run, or retrain the model on this data."
    )


def is_categorical(values: pd.Series) -> bool:
    """Levels, not magnitudes: category, string, object and bool columns."""
    return (
        isinstance(values.dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(values)
        or pd.api.types.is_string_dtype(values)
        or pd.api.types.is_object_dtype(values)
    )


def population_stability_index(reference: pd.Series, current: pd.Series, bins: int = DEFAULT_BINS) -> float:
    """PSI of `current` against `reference`; missing values are a bin of their own.

    Numeric values are cut at the reference's quantiles (deciles by default; ties merge bins),
    categorical values compare level shares, so a level unseen in the reference shows as drift.
    """
    if len(reference) == 0 or len(current) == 0:
        raise ModelError(
            f"Cannot compute the population stability index of '{reference.name}': "
            f"the {'reference' if len(reference) == 0 else 'current'} data has no rows."
        )
    if is_categorical(reference) or is_categorical(current):
        ref_shares, cur_shares = _level_shares(reference, current)
    else:
        ref_shares, cur_shares = _quantile_bin_shares(reference, current, bins)
    ref_shares = np.where(ref_shares > 0, ref_shares, EMPTY_SHARE)
    cur_shares = np.where(cur_shares > 0, cur_shares, EMPTY_SHARE)
    return float(np.sum((cur_shares - ref_shares) * np.log(cur_shares / ref_shares)))


def _level_shares(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    def shares(values: pd.Series) -> pd.Series:
        labels = values.astype(object).where(values.notna(), _MISSING).astype(str)
        return labels.value_counts(normalize=True)

    ref, cur = shares(reference), shares(current)
    levels = ref.index.union(cur.index)
    return ref.reindex(levels, fill_value=0).to_numpy(), cur.reindex(levels, fill_value=0).to_numpy()


def _quantile_bin_shares(reference: pd.Series, current: pd.Series, bins: int) -> tuple[np.ndarray, np.ndarray]:
    ref = pd.to_numeric(reference, errors="coerce").to_numpy(dtype=float)
    cur = pd.to_numeric(current, errors="coerce").to_numpy(dtype=float)
    observed = ref[~np.isnan(ref)]
    inner_edges = np.unique(np.quantile(observed, np.linspace(0, 1, bins + 1)[1:-1])) if observed.size else np.array([])

    def shares(values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        # Bin i holds (edge[i-1], edge[i]]; the last bin is open to the right.
        positions = np.searchsorted(inner_edges, values[~missing], side="left")
        counts = np.bincount(positions, minlength=inner_edges.size + 1).astype(float)
        return np.append(counts, missing.sum()) / values.size

    return shares(ref), shares(cur)


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str],
    threshold: float,
    bins: int = DEFAULT_BINS,
) -> pd.DataFrame:
    """PSI of each feature of `current` against `reference` (e.g. training data), with a drift flag.

    Columns: feature, psi, drifted (psi > threshold), in the order of `features`. Pass the score
    column (e.g. `churn_probability`) as a feature to monitor the score distribution as well.
    """
    check_required_features(reference, features, "the reference (training) data")
    check_required_features(current, features, "the current (scoring) data")
    psi = [population_stability_index(reference[name], current[name], bins) for name in features]
    report = pd.DataFrame({"feature": pd.Series(list(features), dtype=str), "psi": np.array(psi, dtype=float)})
    report["drifted"] = report["psi"] > threshold
    return report
