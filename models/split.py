"""Training/validation splits that mimic production: train on the past, validate on the future.

A snapshot's label is only known `grace_days` after its term ends (SPEC: churn and renewal), so
a training row whose term ends shortly before the validation start would carry an outcome that
was observed *during* validation. The out-of-time split therefore keeps a gap: training rows
need `term_end + grace_days < cutoff`, validation rows have `as_of >= cutoff`.

An account may appear on both sides of an out-of-time split, but never with the same term: a
validation row's term ends after the cutoff, a training row's term ended before it. That is the
production situation too (the model scores next year's renewals of accounts it trained on).
Prepared per-account tables without a time column get a stratified split instead, grouped by id
so an account that appears on several rows never sits on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from features.errors import DataContractError, counted
from features.table import ACCOUNT_ID, AS_OF, LABEL, TERM_END


class OneSidedError(DataContractError):
    """A side of a split holds one outcome only. `fact` is the message without its advice, for a caller
    that knows the likelier cause (`pipeline.stages.blame_cadence`)."""

    def __init__(self, fact: str, hint: str) -> None:
        super().__init__(f"{fact}; {hint}")
        self.fact = fact


@dataclass(frozen=True)
class Split:
    """Row labels (index values of the input table) of the training and validation rows."""

    train_index: pd.Index
    valid_index: pd.Index
    kind: str
    cutoff: pd.Timestamp | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Flat, loggable summary (MLflow params)."""
        summary: dict[str, Any] = {
            "split_kind": self.kind,
            "train_rows": len(self.train_index),
            "valid_rows": len(self.valid_index),
        }
        if self.cutoff is not None:
            summary["validation_start"] = self.cutoff.date().isoformat()
        summary.update(self.details)
        return summary


def _labelled(table: pd.DataFrame, label_col: str) -> pd.DataFrame:
    missing = [c for c in (label_col,) if c not in table.columns]
    if missing:
        raise DataContractError(f"feature table: column '{label_col}' is missing (columns: {list(table.columns)[:8]}).")
    labelled = table[table[label_col].notna()]
    if labelled.empty:
        raise DataContractError(
            f"feature table: no labelled rows ({counted(len(table), 'row')}, all '{label_col}' values are "
            "missing/censored); "
            "training needs snapshots whose renewal outcome is known — use a longer history or a later --data-end."
        )
    churned = int(labelled[label_col].astype(int).sum())
    if churned in (0, len(labelled)):
        outcome, absent = ("renewed", "churned") if churned == 0 else ("churned", "renewed")
        raise DataContractError(
            f"feature table: all {counted(len(labelled), 'labelled row')} {outcome}: the data holds no {absent} "
            "example to learn from, and a churn model needs both outcomes (check that the data's terms and their "
            "outcomes are complete, or use a longer history)."
        )
    return labelled


def _require_both_classes(labels: pd.Series, side: str, hint: str, span: str = "") -> None:
    """Refuse a side with one outcome only; `span` names the dates of an out-of-time side, so the user
    sees which window lacks churners (a backtest of `compare` is that validation window)."""
    counts = labels.astype(int).value_counts()
    if counts.get(0, 0) == 0 or counts.get(1, 0) == 0:
        raise OneSidedError(
            f"{side} rows{span} hold only one class ({counts.get(1, 0)} churned, {counts.get(0, 0)} renewed)", hint
        )


def out_of_time_split(
    table: pd.DataFrame,
    *,
    validation_share: float,
    grace_days: int,
    time_col: str = AS_OF,
    term_end_col: str = TERM_END,
    label_col: str = LABEL,
) -> Split:
    """Split labelled snapshots at a date so the last ~`validation_share` of them validate.

    The cutoff is the earliest snapshot date such that the rows on or after it are at most the
    requested share (at least one date always validates); rows of one date are never divided.
    """
    for col in (time_col, term_end_col):
        if col not in table.columns:
            raise DataContractError(f"feature table: column '{col}' is missing; the out-of-time split needs it.")
    labelled = _labelled(table, label_col)
    dates = pd.to_datetime(labelled[time_col])
    if dates.isna().any():
        examples = labelled.index[dates.isna()][:3].tolist()
        raise DataContractError(
            f"feature table.{time_col}: {counted(int(dates.isna().sum()), 'missing date')} (rows {examples})."
        )

    rows_per_date = dates.value_counts().sort_index()
    if len(rows_per_date) < 2:
        raise DataContractError(
            f"feature table.{time_col}: all {counted(len(labelled), 'labelled row shares', 'labelled rows share')} "
            f"the date {rows_per_date.index[0].date()}; an out-of-time split needs at least two snapshot dates."
        )
    share_from_date = rows_per_date[::-1].cumsum()[::-1] / len(labelled)
    eligible = share_from_date[share_from_date <= validation_share]
    cutoff = eligible.index[0] if len(eligible) else rows_per_date.index[-1]

    gap = pd.Timedelta(days=grace_days)
    term_end = pd.to_datetime(labelled[term_end_col])
    in_valid = dates >= cutoff
    label_known_before_cutoff = (term_end + gap) < cutoff
    in_train = ~in_valid & label_known_before_cutoff
    if not in_train.any():
        raise DataContractError(
            f"out-of-time split: no training rows — every snapshot before the validation start {cutoff.date()} "
            f"has a label observed after it (term_end + {grace_days} grace days >= {cutoff.date()}). "
            "Use a longer history or a smaller model.validation_share (which moves the validation start later)."
        )
    hint = "use a longer history or change model.validation_share."
    last = dates.max().date()
    gap_rows = labelled.loc[~in_valid & ~label_known_before_cutoff, label_col].astype(int)
    train_hint = hint
    if len(gap_rows):  # the rows before the start that the gap left out: why a class the table holds is missing
        train_hint = (
            f"{counted(len(gap_rows), 'more snapshot')} before it ({int(gap_rows.sum()):,} churned) "
            f"{'has an outcome' if len(gap_rows) == 1 else 'have outcomes'} known only after it (term_end + "
            f"{grace_days} grace days >= {cutoff.date()}), so they cannot train; {hint}"
        )
    _require_both_classes(
        labelled.loc[in_train, label_col],
        "training",
        train_hint,
        f" (snapshots before {cutoff.date()} whose outcome is known by then)",
    )
    _require_both_classes(
        labelled.loc[in_valid, label_col], "validation", hint, f" (snapshots {cutoff.date()} to {last})"
    )
    return Split(
        train_index=labelled.index[in_train.to_numpy()],
        valid_index=labelled.index[in_valid.to_numpy()],
        kind="out_of_time",
        cutoff=cutoff,
        details={
            "gap_rows_dropped": int((~in_valid & ~label_known_before_cutoff).sum()),
            "grace_days": grace_days,
            "train_last_label_observed": (term_end[in_train].max() + gap).date().isoformat(),
            "valid_dates": int(dates[in_valid].nunique()),
        },
    )


def stratified_split(
    table: pd.DataFrame,
    *,
    validation_share: float,
    seed: int,
    id_col: str = ACCOUNT_ID,
    label_col: str = LABEL,
) -> Split:
    """Random split that keeps the churn rate on both sides; grouped by `id_col` when ids repeat."""
    labelled = _labelled(table, label_col)
    labels = labelled[label_col].astype(int)
    ids = labelled[id_col].astype(str).to_numpy()
    hint = "the table has too few churned or renewed rows for a validation split."
    counts = labels.value_counts()
    if min(counts.get(0, 0), counts.get(1, 0)) < 2:  # one row of a class cannot be on both sides
        raise DataContractError(
            f"labelled rows hold {counts.get(1, 0)} churned and {counts.get(0, 0)} renewed; {hint} "
            "It needs at least 2 of each, one to train on and one to validate."
        )
    if pd.Series(ids).duplicated().any():
        n_folds = max(2, round(1 / validation_share))
        folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        train_pos, valid_pos = next(folds.split(np.zeros(len(labels)), labels, groups=ids))
        kind = "stratified_grouped"
    else:
        train_pos, valid_pos = train_test_split(
            np.arange(len(labels)), test_size=validation_share, stratify=labels, random_state=seed
        )
        kind = "stratified"
    _require_both_classes(labels.iloc[train_pos], "training", hint)
    _require_both_classes(labels.iloc[valid_pos], "validation", hint)
    return Split(
        train_index=labelled.index[np.sort(train_pos)],
        valid_index=labelled.index[np.sort(valid_pos)],
        kind=kind,
    )


# ------------------------------------------------------------------------------ cross-validation
MIN_TRAIN_CLASS_ROWS = 10  # churned and renewed rows a fold needs to learn anything
MIN_VALID_CLASS_ROWS = 5  # ... and to be judged on (an AUC from fewer is noise)


@dataclass(frozen=True)
class Folds:
    """Cross-validation folds (each a Split) and, when fewer than requested, why."""

    splits: list[Split]
    requested: int
    kind: str
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.splits)

    def pairs(self) -> list[tuple[pd.Index, pd.Index]]:
        return [(s.train_index, s.valid_index) for s in self.splits]


def _class_counts(labels: pd.Series) -> tuple[int, int]:
    values = labels.astype(int)
    return int((values == 1).sum()), int((values == 0).sum())


def _fold_problem(train: pd.Series, valid: pd.Series) -> str | None:
    """Why a fold cannot be used, or None."""
    (train_churned, train_renewed), (valid_churned, valid_renewed) = _class_counts(train), _class_counts(valid)
    if min(train_churned, train_renewed) < MIN_TRAIN_CLASS_ROWS:
        return f"{train_churned} churned / {train_renewed} renewed training rows (needs {MIN_TRAIN_CLASS_ROWS} of each)"
    if min(valid_churned, valid_renewed) < MIN_VALID_CLASS_ROWS:
        return (
            f"{valid_churned} churned / {valid_renewed} renewed validation rows (needs {MIN_VALID_CLASS_ROWS} of each)"
        )
    return None


def rolling_origin_folds(
    table: pd.DataFrame,
    *,
    n_folds: int,
    grace_days: int,
    time_col: str = AS_OF,
    term_end_col: str = TERM_END,
    label_col: str = LABEL,
) -> Folds:
    """Expanding-window folds over time: train on the past, validate on the next period.

    The labelled rows are cut by date into `n_folds + 1` blocks of about equal size. Fold k
    validates on block k+1 (`as_of` from its cut to the next cut) and trains on rows before the
    cut whose outcome was observed before it (`term_end + grace_days < cut`), so no training
    label comes from the validation period. Folds without enough churned and renewed rows on
    either side are left out, with a note; the caller decides what to do with fewer folds.
    """
    labelled = _labelled(table, label_col)
    dates = pd.to_datetime(labelled[time_col])
    known = pd.to_datetime(labelled[term_end_col]) + pd.Timedelta(days=grace_days)
    rows_per_date = dates.value_counts().sort_index()
    share_before = rows_per_date.cumsum().shift(fill_value=0) / len(labelled)
    cuts: list[pd.Timestamp] = []
    for k in range(1, n_folds + 1):
        candidates = share_before.index[share_before >= k / (n_folds + 1)]
        if len(candidates) and (not cuts or candidates[0] > cuts[-1]):
            cuts.append(candidates[0])
    splits, notes = [], []
    for k, cut in enumerate(cuts):
        end = cuts[k + 1] if k + 1 < len(cuts) else None
        in_valid = (dates >= cut) & (dates < end if end is not None else True)
        in_train = (dates < cut) & (known < cut)
        problem = _fold_problem(labelled.loc[in_train, label_col], labelled.loc[in_valid, label_col])
        if problem:
            notes.append(f"CV fold from {cut.date()} left out: {problem}")
            continue
        splits.append(
            Split(
                train_index=labelled.index[in_train.to_numpy()],
                valid_index=labelled.index[in_valid.to_numpy()],
                kind="rolling_origin",
                cutoff=cut,
            )
        )
    if len(cuts) < n_folds:
        notes.append(
            f"only {counted(len(rows_per_date), 'snapshot date')}: {counted(len(cuts), 'CV cut')} instead of {n_folds}"
        )
    return Folds(splits, n_folds, "rolling_origin", notes)


def stratified_folds(
    table: pd.DataFrame, *, n_folds: int, seed: int, id_col: str = ACCOUNT_ID, label_col: str = LABEL
) -> Folds:
    """Stratified K-fold for tables without time (grouped by `id_col` when ids repeat)."""
    labelled = _labelled(table, label_col)
    labels = labelled[label_col].astype(int).to_numpy()
    churned, renewed = int(labels.sum()), int(len(labels) - labels.sum())
    usable = min(n_folds, churned // MIN_VALID_CLASS_ROWS, renewed // MIN_VALID_CLASS_ROWS)
    notes = []
    if usable < n_folds:
        notes.append(
            f"{churned} churned / {renewed} renewed rows allow {counted(max(usable, 0), 'CV fold')} of the {n_folds} "
            f"requested (each fold validates on at least {MIN_VALID_CLASS_ROWS} of each)"
        )
    if usable < 2:
        return Folds([], n_folds, "stratified", notes)
    ids = labelled[id_col].astype(str).to_numpy()
    grouped = bool(pd.Series(ids).duplicated().any())
    splitter = (
        StratifiedGroupKFold(n_splits=usable, shuffle=True, random_state=seed)
        if grouped
        else StratifiedKFold(n_splits=usable, shuffle=True, random_state=seed)
    )
    splits = [
        Split(
            train_index=labelled.index[np.sort(train)],
            valid_index=labelled.index[np.sort(valid)],
            kind="stratified_grouped" if grouped else "stratified",
        )
        for train, valid in splitter.split(np.zeros(len(labels)), labels, groups=ids if grouped else None)
    ]
    return Folds(splits, n_folds, "stratified", notes)


def sample_folds(folds: Folds, table: pd.DataFrame, *, max_rows: int, seed: int, id_col: str = ACCOUNT_ID) -> Folds:
    """The same folds restricted to a seeded sample of whole accounts, when they hold more than `max_rows` rows.

    Sampling accounts (not rows) keeps each account's history whole and every fold's dates as
    they are, so the sample respects time exactly like the full folds; it makes a hyperparameter
    search affordable on a million snapshots. Folds the sample leaves too thin are dropped.
    """
    if not folds.splits:  # too few churners for any fold: nothing to sample
        return folds
    used = pd.Index(np.unique(np.concatenate([np.asarray(s.train_index.append(s.valid_index)) for s in folds.splits])))
    if len(used) <= max_rows:
        return folds
    ids = table.loc[used, id_col].astype(str)
    accounts = ids.unique()
    rng = np.random.default_rng(seed)
    keep_count = max(1, int(len(accounts) * max_rows / len(used)))
    kept = set(rng.choice(accounts, size=keep_count, replace=False))
    in_sample = ids.isin(kept)
    sampled_rows = in_sample.index[in_sample.to_numpy()]
    splits = []
    for split in folds.splits:
        train = split.train_index[split.train_index.isin(sampled_rows)]
        valid = split.valid_index[split.valid_index.isin(sampled_rows)]
        if _fold_problem(table.loc[train, LABEL], table.loc[valid, LABEL]) is None:
            splits.append(Split(train, valid, split.kind, split.cutoff, {"sampled_accounts": keep_count}))
    note = f"tuned on {keep_count:,} of {len(accounts):,} accounts ({int(in_sample.sum()):,} of {len(used):,} rows)"
    return Folds(splits, folds.requested, folds.kind, [note])
