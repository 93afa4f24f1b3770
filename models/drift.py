"""Monitoring the scoring data against the training data.

A model scores garbage silently when its inputs move away from what it learned on, or when a
feature it needs is absent. The population stability index (PSI) measures the first per feature
and for the score distribution; `check_required_features` refuses the second outright.

PSI = sum over bins of (current share - reference share) * ln(current share / reference share).
Rules of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 (the default threshold) a shift
worth acting on. Those rules assume thousands of rows: with no shift at all, PSI x nm / (n + m)
follows roughly a chi-square law with (bins - 1) degrees of freedom (Yurdakul 2018, "Statistical
properties of the population stability index"), so a book of 40 accounts scores ~0.25 by sampling
noise alone. A feature is therefore flagged only past the threshold *and* past the PSI that pure
noise exceeds once in a thousand at these sizes (`noise_level`).

Nor is one date's book a random sample of the training rows, which pool every snapshot date: a date
the model trained on scored PSI past both (11 features of a generated book, a month before its data
end) from what differs between dates by design: a monthly term is 28 to 31 days long, a 365-day window
is cut short by the data start in the first year, logins depend on the weekday. So a feature is also
flagged only past the PSI of every training snapshot date against the same reference (`date_spread`), by
more than the noise level: a new date drawn like the training dates passes the largest of their PSIs about once
in as many dates (one in 27 is 3 features of 101 on every run, on data without any drift).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import chi2

from features.errors import DataContractError, counted
from models.errors import ModelError

DEFAULT_BINS = 10
# A bin empty on one side counts as half an observation of that side: an unseen level is a large but
# finite shift, and one empty decile in a small book is not (a fixed tiny share made it worth ~0.7).
EMPTY_COUNT = 0.5
# How rarely pure sampling noise may flag a feature: once in a thousand features of unshifted data.
NOISE_CONFIDENCE = 0.999
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
        f"{table_name[:1].upper()}{table_name[1:]} lacks {counted(len(missing), 'feature')} the model needs: {shown}. "
        f"It has {counted(len(table.columns), 'column')} ({present}). Build the features with the same "
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
    return _psi_and_bins(reference, current, bins)[0]


def noise_level(bins_used: int, reference_rows: int, current_rows: int) -> float:
    """The PSI that unshifted data exceeds with probability 1 - NOISE_CONFIDENCE at these sizes."""
    if bins_used < 2:
        return 0.0
    return float(chi2.ppf(NOISE_CONFIDENCE, bins_used - 1) * (1 / reference_rows + 1 / current_rows))


def _psi_and_bins(reference: pd.Series, current: pd.Series, bins: int) -> tuple[float, int]:
    """PSI and the number of bins either side fills (the noise law's degrees of freedom + 1)."""
    if len(reference) == 0 or len(current) == 0:
        raise ModelError(
            f"Cannot compute the population stability index of '{reference.name}': "
            f"the {'reference' if len(reference) == 0 else 'current'} data has no rows."
        )
    if is_categorical(reference) or is_categorical(current):
        ref_counts, cur_counts = _level_counts(reference, current)
    else:
        inner_edges, ref_counts = _reference_bins(reference, bins)
        cur_counts = _bin_counts(_numbers(current), inner_edges)
    return _psi_of_counts(ref_counts, cur_counts)


def _psi_of_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, int]:
    """PSI of two sides' counts in the same bins, and the number of bins either side fills."""
    used = (ref_counts > 0) | (cur_counts > 0)
    ref_shares = np.where(ref_counts > 0, ref_counts, EMPTY_COUNT)[used] / ref_counts.sum()
    cur_shares = np.where(cur_counts > 0, cur_counts, EMPTY_COUNT)[used] / cur_counts.sum()
    return float(np.sum((cur_shares - ref_shares) * np.log(cur_shares / ref_shares))), int(used.sum())


def _level_counts(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    def counts(values: pd.Series) -> pd.Series:
        labels = values.astype(object).where(values.notna(), _MISSING).astype(str)
        return labels.value_counts()

    ref, cur = counts(reference), counts(current)
    levels = ref.index.union(cur.index)
    return ref.reindex(levels, fill_value=0).to_numpy(), cur.reindex(levels, fill_value=0).to_numpy()


def _numbers(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _reference_bins(reference: pd.Series, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """The inner edges of the reference's quantile bins and the reference's count in each (then missing)."""
    ref = _numbers(reference)
    observed = ref[~np.isnan(ref)]
    inner_edges = np.unique(np.quantile(observed, np.linspace(0, 1, bins + 1)[1:-1])) if observed.size else np.array([])
    return inner_edges, _bin_counts(ref, inner_edges)


def _bin_counts(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    missing = np.isnan(values)
    # Bin i holds (edge[i-1], edge[i]]; the last bin is open to the right.
    positions = np.searchsorted(inner_edges, values[~missing], side="left")
    in_bins = np.bincount(positions, minlength=inner_edges.size + 1).astype(float)
    return np.append(in_bins, missing.sum())


def date_spread(
    reference: pd.DataFrame,
    snapshots: pd.DataFrame,
    dates: pd.Series,
    features: Sequence[str],
    bins: int = DEFAULT_BINS,
) -> dict[str, float]:
    """Per feature, the largest PSI of one snapshot date's rows of `snapshots` (dated by `dates`) against `reference`:
    how far a book the model trained on lies from the training data by the between-date differences alone. Each
    numeric reference is binned once, not once per date (~36 dates x ~100 features)."""
    per_date = list(snapshots.groupby(dates.to_numpy(), sort=False).indices.values())
    spread = dict.fromkeys(features, 0.0)
    for name in features:
        reference_values, column = reference[name], snapshots[name]
        if is_categorical(reference_values) or is_categorical(column):
            measured = [_psi_and_bins(reference_values, column.iloc[rows], bins)[0] for rows in per_date]
        else:
            inner_edges, ref_counts = _reference_bins(reference_values, bins)
            values = _numbers(column)
            measured = [_psi_of_counts(ref_counts, _bin_counts(values[rows], inner_edges))[0] for rows in per_date]
        spread[name] = max([0.0, *measured])
    return spread


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str],
    threshold: float,
    bins: int = DEFAULT_BINS,
    spread: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """PSI of each feature of `current` against `reference` (e.g. training data), with a drift flag.

    Columns: feature, psi, noise_level, date_spread (the training dates' own PSI, `spread`; 0 where
    unknown), drifted (psi above the threshold and above the date spread plus the noise level), in the order of
    `features`. Pass the score column (e.g. `churn_probability`) as a feature to monitor the score
    distribution as well.
    """
    check_required_features(reference, features, "the reference (training) data")
    check_required_features(current, features, "the current (scoring) data")
    measured = [_psi_and_bins(reference[name], current[name], bins) for name in features]
    report = pd.DataFrame(
        {
            "feature": pd.Series(list(features), dtype=str),
            "psi": np.array([psi for psi, _ in measured], dtype=float),
            "noise_level": [noise_level(used, len(reference), len(current)) for _, used in measured],
        }
    )
    report["date_spread"] = [float((spread or {}).get(name, 0.0)) for name in features]
    # past the training dates' spread by what sampling noise adds: a new date like them passes their largest PSI
    # about once in as many dates (the noise level alone where the spread is unknown, 0)
    report["drifted"] = report["psi"] > np.maximum(threshold, report["date_spread"] + report["noise_level"])
    return report
