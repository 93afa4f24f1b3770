"""Exact per-account explanations of the churn model, in the vocabulary of the health score.

LightGBM's `pred_contrib` computes exact TreeSHAP (the same routine `shap.TreeExplainer` calls
for LightGBM models), in C++ over all cores. Contributions are in log-odds of churn: positive
raises the risk. Summing them per health category gives the `ml_<category>` columns, so a CSM
reads the rule-based health score and the model side by side, category by category.

The scoring core passes the model's own input (`ChurnRiskModel.prepare`: its columns in training
order, categoricals with the training levels), which is checked and used as is.

Rows are explained in chunks so memory stays bounded by the result, not by LightGBM's
intermediate copies, and so a progress callback can report on million-row runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import islice, repeat
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.errors import counted
from features.families.account import RENEWALS
from features.families.base import window_family
from features.progress import ProgressCallback, report
from features.registry import (
    SEATS,
    TENURE_DAYS,
    data_days_column,
    days_matter,
    describe,
    describer,
    is_actionable,
    lookup,
    template_fields,
)
from models.drift import check_required_features
from models.errors import ModelError
from models.population import churned_mask, days_to_term_end
from models.scores import ACTIONABLE_LOG_ODDS, CONTEXT, CONTEXT_LOG_ODDS, TOP_DRIVERS, ml_column

DEFAULT_CHUNK_ROWS = 50_000
DRIVER_SEPARATOR = "; "
# Contributions are summed in double precision; anything beyond this is a real inconsistency.
ADDITIVITY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Explanation:
    """Per-row SHAP explanation of a binary LightGBM model (all frames share the input's index).

    `contributions`: one column per model feature; `base_value`: the expected raw score;
    `by_category`: `ml_<category>` sums; `raw_score`: the model's log-odds, equal to
    `contributions.sum(axis=1) + base_value` for every row. With no rows, `base_value` is NaN.
    """

    contributions: pd.DataFrame
    base_value: float
    by_category: pd.DataFrame
    raw_score: pd.Series


def model_input(booster: lgb.Booster, X: pd.DataFrame) -> pd.DataFrame:
    """The columns the booster was trained on, in its order, with categorical columns as pandas categories.

    LightGBM matches columns by position, not name, and maps category levels with the level lists
    it stored at training (`pandas_categorical`). Input from `ChurnRiskModel.prepare` (the scoring
    core's) is already exactly that and passes through untouched; a bare booster's caller may pass
    the columns in any order, with text for categories.
    """
    names = booster.feature_name()
    check_required_features(X, names, "the table to explain")
    frame = X if list(X.columns) == names else X[names]
    text_columns = [
        c for c in names if pd.api.types.is_string_dtype(frame[c]) or pd.api.types.is_object_dtype(frame[c])
    ]
    if text_columns:
        frame = frame.astype(dict.fromkeys(text_columns, "category"))
    categorical = [c for c in names if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    trained = len(booster.pandas_categorical or [])
    if len(categorical) != trained:
        raise ModelError(
            f"The model was trained with {counted(trained, 'categorical feature')} but the table to explain has "
            f"{len(categorical)} ({', '.join(categorical) or 'none'}). Pass the features with the same "
            "types as in training (categorical columns as strings or pandas categories)."
        )
    return frame


def explain(
    booster: lgb.Booster,
    frame: pd.DataFrame,
    categories: Mapping[str, str],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    num_threads: int | None = None,
    progress: ProgressCallback | None = None,
) -> Explanation:
    """Exact TreeSHAP contributions of every row of `frame` (the model's input), summed per health category.

    `categories` maps each model feature to its health category (see `models.categories`).
    `num_threads` defaults to every core this process may use. Raises ChurnError when a feature
    is missing, has no category, or when the contributions do not add up to the model's raw score.
    """
    if booster.num_model_per_iteration() != 1:
        raise ModelError(
            f"Explanations need a binary churn model; this model has {booster.num_model_per_iteration()} "
            "outputs per iteration (multiclass)."
        )
    frame = model_input(booster, frame)
    names = list(frame.columns)
    uncategorised = [name for name in names if name not in categories]
    if uncategorised:
        raise ModelError(
            f"{counted(len(uncategorised), 'model feature has', 'model features have')} no health category: "
            f"{', '.join(uncategorised[:10])}. "
            "Map them in the feature registry or with features.category_overrides in the configuration."
        )
    threads = num_threads or _usable_cores()
    contributions = np.empty((len(frame), len(names)), dtype=np.float64)
    raw_score = np.empty(len(frame), dtype=np.float64)
    base_value = float("nan")
    for start in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[start : start + chunk_rows]
        try:
            out = booster.predict(chunk, pred_contrib=True, num_threads=threads)
        except lgb.basic.LightGBMError as exc:
            raise ModelError(f"LightGBM cannot explain this model: {exc}") from exc
        raw = booster.predict(chunk, raw_score=True, num_threads=threads)
        _assert_additive(out, raw, start, frame.index)
        contributions[start : start + len(chunk)] = out[:, :-1]
        raw_score[start : start + len(chunk)] = raw
        base_value = float(out[0, -1])
        report(progress, "explain", start + len(chunk), len(frame))
    contribution_frame = pd.DataFrame(contributions, index=frame.index, columns=names, copy=False)
    return Explanation(
        contributions=contribution_frame,
        base_value=base_value,
        by_category=_sum_by_category(contributions, names, categories, frame.index),
        raw_score=pd.Series(raw_score, index=frame.index, name="raw_score"),
    )


def actionable_split(contributions: pd.DataFrame) -> pd.DataFrame:
    """Per row, the log-odds the actionable features add and those the context features add.

    The two columns add up to the model's score minus its base value, like the `ml_<category>`
    columns; how they compare says how much of an account's risk a CSM can work on.
    """
    actionable = np.array([is_actionable(c) for c in contributions.columns], dtype=bool)
    values = contributions.to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {ACTIONABLE_LOG_ODDS: values[:, actionable].sum(axis=1), CONTEXT_LOG_ODDS: values[:, ~actionable].sum(axis=1)},
        index=contributions.index,
    )


def actionable_share(split: pd.DataFrame) -> float:
    """Share of the model's attribution (mean |log-odds|) that is actionable, from `actionable_split` columns."""
    magnitude = split[[ACTIONABLE_LOG_ODDS, CONTEXT_LOG_ODDS]].abs().mean()
    total = float(magnitude.sum())
    return float(magnitude[ACTIONABLE_LOG_ODDS]) / total if total > 0 else float("nan")


_ORDINALS = ("first", "second", "third", "fourth", "fifth")


OPEN_ENDED_DAYS = 3652.5
"""Ten years: a renewal date or a term beyond it is an open-ended (evergreen) contract in practice, whose
`end_date` (2999-01-01, 9999-12-31) stands for "no end"; it is said as such, not as "355412 days away"."""


def _span(days: float) -> str:
    """A length of time: days under a month, whole months under two years, then years. The unit follows the
    number said, so that 726 days are "2.0 years", not "24 months", as 730 days are."""
    months = round(days / 30.44)
    if days < 30.44:
        return counted(round(days), "day")
    if months < 24:
        return counted(months, "month")
    return f"{days / 365.25:.1f} years"


def _term(days: float) -> str:
    if days > OPEN_ENDED_DAYS:
        return "open-ended term"
    return f"{days / 30.44:.0f}-month term" if days >= 28 else f"{days:.0f}-day term"


def _until(days: float) -> str:
    """Time to a renewal date under ten years away: in days up to a year, then in months or years."""
    return counted(round(days), "day") if days <= 365 else _span(days)


def _ended(days: float) -> str:
    """A term that ended `-days` days ago (`days` < 0, the days to a renewal date gone by)."""
    return f"term ended {counted(round(-days), 'day')} ago"


def _today(days: float) -> bool:
    """Whether a renewal date `days` away is today: said "today", not "in 0 days" or "0 days away"."""
    return round(days) == 0


def renewal_words(days: float) -> str:
    """When the current term ends, as a CSM reads it: "renewal in 10 days", "renewal in 14 months", "renewal
    today", "term ended 3 days ago", "no renewal date within 10 years" (an evergreen term), "renewal date unknown"
    (NaN)."""
    if pd.isna(days):
        return "renewal date unknown"
    if days > OPEN_ENDED_DAYS:
        return "no renewal date within 10 years"
    if _today(days):
        return "renewal today"
    return f"renewal in {_until(days)}" if days > 0 else _ended(days)


def _ordinal(renewals: float) -> str:
    """The coming renewal after `renewals` earlier ones: in words up to the fifth, then 6th, 21st, 82nd, 113th
    (weekly and monthly terms renew dozens of times)."""
    n = int(renewals)
    if 0 <= n < len(_ORDINALS):
        return _ORDINALS[n]
    n += 1
    return f"{n}{'th' if n % 100 in (11, 12, 13) else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _present(value: Any) -> bool:
    return value is not None and not pd.isna(value) and bool(str(value).strip())


def context_words(features: pd.DataFrame) -> pd.Series:
    """Per row, the account's context in words -- "first renewal, 10 days away, 12-month term, customer
    for 11 months, smb segment" -- stated beside the actionable drivers instead of among them. An account
    whose terms have all ended (`account_status` churned, scored on its last day, dated the run's as_of) is
    "churned, term ended 320 days ago", not "first renewal, today"."""

    def numbers(column: str) -> list[float]:
        if column not in features.columns:
            return [np.nan] * len(features)
        return pd.to_numeric(features[column], errors="coerce").astype(float).tolist()

    def texts(column: str) -> list[Any]:
        return features[column].tolist() if column in features.columns else [None] * len(features)

    rows = zip(
        churned_mask(features).tolist(),
        numbers(RENEWALS),
        days_to_term_end(features).tolist(),
        numbers("term_length_days"),
        numbers("tenure_days"),
        texts("segment"),
        texts("plan"),
        strict=True,
    )
    out = []
    for gone, renewals, days, term, tenure, segment, plan in rows:
        parts = []
        which = "churned" if gone else "renewal" if np.isnan(renewals) else f"{_ordinal(renewals)} renewal"
        if days > OPEN_ENDED_DAYS:
            parts += [] if np.isnan(renewals) else [describe(RENEWALS, renewals)]
            parts.append(renewal_words(days))
        elif not np.isnan(days):
            when = "today" if _today(days) else f"{_until(days)} away" if days > 0 else _ended(days)
            parts.append(f"{which}, {when}")
        elif not np.isnan(renewals):
            parts.append(describe(RENEWALS, renewals))
        if not np.isnan(term) and term > 0:
            parts.append(_term(term))
        if not np.isnan(tenure):
            parts.append(f"customer for {_span(tenure)}")
        parts += [f"{value} {name}" for name, value in (("segment", segment), ("plan", plan)) if _present(value)]
        out.append(", ".join(parts))
    return pd.Series(out, index=features.index, dtype=str, name=CONTEXT)


def _usable_cores() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _assert_additive(out: np.ndarray, raw: np.ndarray, offset: int, index: pd.Index) -> None:
    """SHAP's local accuracy: contributions + base value == raw score, row by row."""
    error = np.abs(out.sum(axis=1) - raw)
    bad = np.flatnonzero(error > ADDITIVITY_TOLERANCE * np.maximum(1.0, np.abs(raw)))
    if bad.size:
        rows = ", ".join(str(index[offset + i]) for i in bad[:3])
        raise ModelError(
            f"SHAP contributions do not add up to the model's raw score for {counted(bad.size, 'row')} "
            f"(e.g. index {rows}; largest gap {error.max():.3g}). The explanation would be wrong; "
            "check that the model file is intact and the LightGBM version matches the training run."
        )


def _sum_by_category(
    contributions: np.ndarray, names: list[str], categories: Mapping[str, str], index: pd.Index
) -> pd.DataFrame:
    ordered = list(dict.fromkeys(categories[name] for name in names))
    membership = np.zeros((len(names), len(ordered)))
    for row, name in enumerate(names):
        membership[row, ordered.index(categories[name])] = 1.0
    return pd.DataFrame(contributions @ membership, index=index, columns=[ml_column(c) for c in ordered])


def top_drivers(contributions: pd.DataFrame, X: pd.DataFrame, n: int = 3) -> pd.Series:
    """Per row, the `n` features that raise the churn risk most, in plain words, joined with "; ".

    Only positive contributions count (a row whose model output no feature raises gets "").
    Each driver is rendered by `features.registry.describe` with the feature's value and the
    companion columns its template cites. Each fact is said once: two features in the same words (both
    login gaps of an account with fewer than 2 login days) once, and the windows of one metric
    (`events_per_seat_7d`, `_30d`, `_90d`: "no product events in the last 7 days; ... 30 days; ... 90
    days") once, in the words of the window that raises the risk most, or, where several of its windows
    are zero, of the longest of those (none in 90 days says none in 7). The next-ranked features take
    the freed places, so a row shows `n` drivers wherever `n` distinct facts raise its risk.
    """
    if not contributions.index.equals(X.index):
        raise ModelError("top_drivers needs the contributions and the feature table on the same rows (index).")
    if n < 1 or contributions.shape[1] == 0:
        return pd.Series("", index=contributions.index, dtype=str, name=TOP_DRIVERS)
    names = list(contributions.columns)
    check_required_features(X, names, "the feature table for top drivers")
    values = contributions.to_numpy(dtype=np.float64)
    families = [window_family(name) for name in names]
    said: list[dict[str, _Driver]] = [{} for _ in range(len(values))]
    # rank `n` features per row; rows short of `n` distinct drivers rank further, until every ranked one is said
    rows, ranked, k = np.arange(len(values)), 0, min(n, len(names))
    while len(rows):
        block = values if ranked == 0 else values[rows]
        top = _largest_columns(block, k)[:, ranked:]
        positive = np.take_along_axis(block, top, axis=1) > 0
        words = np.full(top.shape, "", dtype=object)
        for column in np.unique(top[positive]):
            at, slots = np.nonzero((top == column) & positive)
            words[at, slots] = _render(names[column], X, rows[at])
        for row, row_top, row_words in zip(rows.tolist(), top.tolist(), words.tolist(), strict=True):
            for column, text in zip(row_top, row_words, strict=True):
                if text:
                    _say(said[row], text, column, families[column])
        short = n - np.fromiter((len(said[row]) for row in rows.tolist()), dtype=np.intp, count=len(rows))
        more = (short > 0) & positive[:, -1]  # the last ranked feature still raised the risk: the next may too
        ranked, k = k, min(len(names), k + int(short[more].max(initial=0)))
        rows = rows[more] if k > ranked else rows[:0]
    _longest_zero_windows(said, names, families, values, X)
    # a refill may rank past a row's `n`
    texts = [DRIVER_SEPARATOR.join(said.words for said in islice(drivers.values(), n)) for drivers in said]
    return pd.Series(texts, index=contributions.index, dtype=str, name=TOP_DRIVERS)


@dataclass(frozen=True)
class _Driver:
    """A driver of a row as said: its words and the feature (column) they say."""

    words: str
    column: int


def _say(drivers: dict[str, _Driver], words: str, column: int, family: tuple[str, int] | None) -> None:
    """Add a ranked driver to a row's `drivers` (by fact, in rank order) unless its fact is said already: the
    same words, or another window of its metric (keyed by the metric's pattern)."""
    if any(said.words == words for said in drivers.values()):
        return
    drivers.setdefault(words if family is None else family[0], _Driver(words, column))


def _longest_zero_windows(
    said: list[dict[str, _Driver]],
    names: list[str],
    families: list[tuple[str, int] | None],
    values: np.ndarray,
    X: pd.DataFrame,
) -> None:
    """Where a metric is said by a window whose value is zero, say it by the longest of its windows that is zero
    and raises the risk too: "no product events in the last 90 days" says the 7 days' none, not the reverse."""
    windows: dict[str, list[tuple[int, int]]] = {}
    for column, family in enumerate(families):
        if family is not None:
            windows.setdefault(family[0], []).append((family[1], column))
    zero = {
        column: pd.to_numeric(X[names[column]], errors="coerce").to_numpy() == 0
        for listed in windows.values()
        if len(listed) > 1
        for _, column in listed
    }
    wanted: dict[int, list[tuple[int, str]]] = {}  # column -> the (row, metric) to say by it
    for row, drivers in enumerate(said):
        for pattern, driver in drivers.items():
            if driver.column not in zero or not zero[driver.column][row]:
                continue
            longest = max(
                (window, column) for window, column in windows[pattern] if zero[column][row] and values[row, column] > 0
            )
            if longest[1] != driver.column:
                wanted.setdefault(longest[1], []).append((row, pattern))
    for column, places in wanted.items():
        words = _render(names[column], X, np.array([row for row, _ in places]))
        for (row, pattern), text in zip(places, words, strict=True):
            said[row][pattern] = _Driver(text, column)  # the metric keeps the place it ranked at


def _largest_columns(values: np.ndarray, k: int, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
    """Per row, the columns of the `k` largest values, largest first; equal values in column order.

    `k` argmax passes over a chunk copy: for the few drivers a row shows this is several times
    faster than a row-wise partition and sort, and the order of ties is defined.
    """
    top = np.empty((len(values), k), dtype=np.intp)
    for start in range(0, len(values), chunk_rows):
        chunk = values[start : start + chunk_rows].copy()
        rows = np.arange(len(chunk))
        for slot in range(k):
            best = chunk.argmax(axis=1)
            top[start : start + len(chunk), slot] = best
            chunk[rows, best] = -np.inf
    return top


def _render(name: str, X: pd.DataFrame, rows: np.ndarray) -> list[str]:
    """describe() for one feature over many rows, citing only the columns its template uses.

    Values repeat a lot (counts, days, levels), so identical inputs are rendered once.
    """
    values = X[name].iloc[rows].tolist()
    companions = [c for c in template_fields(name) if c in X.columns]
    columns = [X[c].iloc[rows].to_numpy() for c in companions]
    found = lookup(name)
    if found is not None and (found.never or found.since_start or found.window) and TENURE_DAYS in companions:
        # the account's age and the days of its table's data matter only where the words say them: leave them out
        # of the other rows' keys, which then repeat as the values do
        def numbers(column: str) -> np.ndarray:
            if column not in X.columns:
                return np.full(len(rows), np.nan)
            return pd.to_numeric(X[column].iloc[rows], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

        held = data_days_column(found.source)
        matter = days_matter(found, numbers(name), numbers(TENURE_DAYS), numbers(held))
        for i in [companions.index(c) for c in (TENURE_DAYS, held) if c in companions]:
            columns[i] = np.where(matter, columns[i], None)  # None, not NaN: equal in every key
    if found is not None and found.unseated is not None and SEATS in companions:
        at = companions.index(SEATS)  # only whether the account has a seat count matters to the words
        columns[at] = pd.to_numeric(X[SEATS].iloc[rows], errors="coerce").to_numpy() > 0
    contexts = zip(*(c.tolist() for c in columns), strict=True) if companions else repeat(())
    describe = describer(name)
    if not companions:
        # a per-seat feature of a model without a seat count (the data had none): each row is unseated
        row = {} if found is not None and found.unseated is not None else None
        by_value: dict[Any, str] = {}
        return [by_value[v] if v in by_value else by_value.setdefault(v, describe(v, row)) for v in values]
    rendered: dict[tuple[Any, ...], str] = {}
    out = []
    for value, context in zip(values, contexts, strict=False):
        key = (value, *context)
        text = rendered.get(key)
        if text is None:
            text = rendered[key] = describe(value, dict(zip(companions, context, strict=True)))
        out.append(text)
    return out
