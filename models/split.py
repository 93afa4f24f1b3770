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
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from features.table import ACCOUNT_ID, AS_OF, LABEL, TERM_END
from pipeline.errors import DataContractError


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
            f"feature table: no labelled rows ({len(table)} rows, all '{label_col}' values are missing/censored); "
            "training needs snapshots whose renewal outcome is known — use a longer history or a later --data-end."
        )
    return labelled


def _require_both_classes(labels: pd.Series, side: str, hint: str) -> None:
    counts = labels.astype(int).value_counts()
    if counts.get(0, 0) == 0 or counts.get(1, 0) == 0:
        raise DataContractError(
            f"{side} rows hold only one class ({counts.get(1, 0)} churned, {counts.get(0, 0)} renewed); {hint}"
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
        raise DataContractError(f"feature table.{time_col}: {int(dates.isna().sum())} missing dates (rows {examples}).")

    rows_per_date = dates.value_counts().sort_index()
    if len(rows_per_date) < 2:
        raise DataContractError(
            f"feature table.{time_col}: all {len(labelled)} labelled rows share the date "
            f"{rows_per_date.index[0].date()}; an out-of-time split needs at least two snapshot dates."
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
    _require_both_classes(labelled.loc[in_train, label_col], "training", hint)
    _require_both_classes(labelled.loc[in_valid, label_col], "validation", hint)
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
    _require_both_classes(labels, "labelled", "a churn model needs churned and renewed examples.")
    ids = labelled[id_col].astype(str).to_numpy()
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
    hint = "the table has too few churned or renewed rows for a validation split."
    _require_both_classes(labels.iloc[train_pos], "training", hint)
    _require_both_classes(labels.iloc[valid_pos], "validation", hint)
    return Split(
        train_index=labelled.index[np.sort(train_pos)],
        valid_index=labelled.index[np.sort(valid_pos)],
        kind=kind,
    )
