"""What each rolling-origin CV fold trains and validates on, per data folder (issue 10's open question).

A fold trains on snapshots before its cut whose outcome was known before it (`term_end + grace_days <
cut`), so the earliest folds hold few rows, and on annual terms mostly snapshots close to their renewal,
while they validate on snapshots of every horizon. The tuner averages the folds' AUCs and prunes trials
after each fold in order, so this prints what each fold is: rows, churners, churn rate, accounts and the
median days to renewal, on each side.

    python bench/folds.py DATA [DATA ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0]).resolve() == HERE:
    sys.path.pop(0)  # bench/features.py would shadow the `features` package

from features.table import AS_OF, LABEL, TERM_END  # noqa: E402
from models.split import out_of_time_split, rolling_origin_folds  # noqa: E402
from pipeline.config import load_settings  # noqa: E402
from pipeline.loading import load_dataset  # noqa: E402
from pipeline.stages import build_feature_table  # noqa: E402


def _side(rows: pd.DataFrame) -> str:
    horizon = (pd.to_datetime(rows[TERM_END]) - rows[AS_OF]).dt.days
    return (
        f"{len(rows):,} rows, {int(rows[LABEL].sum()):,} churned ({rows[LABEL].astype(float).mean():.3f}), "
        f"{rows['account_id'].nunique():,} accounts, median {horizon.median():.0f} days to renewal"
    )


def describe(data: str) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        settings = load_settings(None, {"workdir": workdir})
        table = build_feature_table(load_dataset(data), settings)
    model, grace_days = settings.model, settings.data.grace_days
    split = out_of_time_split(table, validation_share=model.validation_share, grace_days=grace_days)
    train = table.loc[split.train_index]
    folds = rolling_origin_folds(train, n_folds=model.cv_folds, grace_days=grace_days)
    labelled = train[train[LABEL].notna()]
    print(f"{data}: training part {_side(labelled)}")
    for fold in folds.splits:
        print(f"  cut {fold.cutoff.date()}: train {_side(train.loc[fold.train_index])}")
        print(f"  {'':15} valid {_side(train.loc[fold.valid_index])}")
    for note in folds.notes:
        print(f"  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", help="data folders")
    for data in parser.parse_args().data:
        describe(data)


if __name__ == "__main__":
    main()
