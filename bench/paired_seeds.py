"""Is the model's gap to a baseline real or the noise of a small scored book? Many seeds, bigger books.

    python bench/paired_seeds.py --shape minimal_weekly --seeds 101 102 103 [--work DIR] [--variant NAME KEY=VALUE ...]

bench/quality.py scores one book per dataset: the accounts active at CUT (a few dozen churners on
the foreign B2C shapes), so a model-minus-baseline AUC gap of 0.03 can be luck. Here each seed is a
new history of a foreign shape (bench/worlds/foreign.py, its default size), the default model is
trained exactly as `churn train` trains it (`pipeline.train.fit_and_evaluate`: out-of-time split,
rolling-origin folds, the search, cross-fitted calibration; no MLflow) on what is known at CUT,
and the book is every labelled monthly snapshot of the 12 months after CUT (true outcomes; the
SPEC's point-in-time features make the full history's table equal to the cut one before CUT).
The baselines (bench/quality.py's) train on the same rows and score the same book. Per seed:
model minus baseline ROC AUC with a paired bootstrap over accounts; over seeds: the mean gap with
a t interval. `--variant` adds model settings to compare on the same rows (e.g. `--variant es200
early_stopping_rounds=200`), or upper-case constants of models.risk_model / models.tuning (e.g. `--variant
old_patience PATIENCE_RATE=0`: patience in plain rounds, as before wave 6; `--variant one_se_trees
TREE_SE_FRACTION=1`: trials judged at the within-one-SE tree count, measured and left out in wave 7;
`--variant judged_count DEPLOYED_TREE_SE_FRACTION=0`: the deployed tree count at the mean CV curve's maximum,
as before wave 7; `--variant raw_curves CURVE_SMOOTHING_ROUNDS=0`: trials judged on unsmoothed fold curves,
as before wave 8). Histories and feature
tables are cached under --work; rows go to --work/paired_seeds.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0]).resolve() == HERE:
    sys.path.pop(0)  # bench/features.py would shadow the `features` package
sys.path.insert(0, str(HERE.parent))

from bench.quality import (  # noqa: E402
    BASELINES,
    CUT_MONTHS,
    START,
    YEARS,
    _auc,
    baseline_probabilities,
    mean_with_interval,
    paired_gaps,
    point_metrics,
)
from bench.worlds import foreign, history  # noqa: E402
from features.table import ACCOUNT_ID, AS_OF, LABEL, TERM_END  # noqa: E402
from models import risk_model, tuning  # noqa: E402
from models.split import out_of_time_split, rolling_origin_folds  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.progress import set_progress  # noqa: E402
from pipeline.stages import build_feature_table, load  # noqa: E402
from pipeline.train import fit_and_evaluate  # noqa: E402

BOOK_MONTHS = 12


def book_and_training(table: pd.DataFrame, cut: pd.Timestamp, grace_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows as known at CUT: earlier snapshots, labels only where resolved before CUT;
    the book: labelled snapshots of the BOOK_MONTHS after CUT)."""
    training = table[table[AS_OF] < cut].copy()
    unresolved = pd.to_datetime(training[TERM_END]) + pd.Timedelta(days=grace_days) >= cut
    training.loc[unresolved, LABEL] = np.nan
    later = (table[AS_OF] >= cut) & (table[AS_OF] < cut + pd.DateOffset(months=BOOK_MONTHS))
    return training, table[later & table[LABEL].notna()]


def train_like_churn(training: pd.DataFrame, settings: Settings):
    """The model `churn train` would deploy on this snapshot table (same split, folds and fit; no logging)."""
    grace = settings.data.grace_days
    split = out_of_time_split(training, validation_share=settings.model.validation_share, grace_days=grace)
    folds = rolling_origin_folds(training.loc[split.train_index], n_folds=settings.model.cv_folds, grace_days=grace)
    evaluated = fit_and_evaluate(
        training, split, folds, settings, grace_days=grace, rule_risk=None, scorecard=None, progress=None,
        source="feature table",
    )  # fmt: skip
    return evaluated.model


@contextmanager
def model_constants(values: dict[str, Any]) -> Iterator[None]:
    """Set module constants of models.risk_model / models.tuning for one variant, then restore them."""
    saved = []
    for key, value in values.items():
        module = next((m for m in (risk_model, tuning) if hasattr(m, key)), None)
        if module is None:
            raise SystemExit(f"--variant {key}: not a setting of the model nor a constant of models.risk_model/tuning")
        saved.append((module, key, getattr(module, key)))
        setattr(module, key, value)
    try:
        yield
    finally:
        for module, key, value in saved:
            setattr(module, key, value)


def run_seed(shape: str, seed: int, work: Path, variants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    full = work / f"{shape}-{seed}"
    if not (full / history.TRUTH).exists():
        foreign.simulate(
            full, shape=shape, accounts=foreign.SHAPES[shape].accounts, seed=seed, start=START, years=YEARS
        )
    settings = Settings()
    cached = full / "table-monthly.parquet"
    if cached.exists():
        table = pd.read_parquet(cached)
    else:
        table = build_feature_table(load(full, settings), settings)
        table.to_parquet(cached)
    table = table.reset_index(drop=True)
    cut = pd.Timestamp((history.data_end(full) - pd.DateOffset(months=CUT_MONTHS)).date())
    training, book = book_and_training(table, cut, settings.data.grace_days)
    y = book[LABEL].astype(int).to_numpy()
    row: dict[str, Any] = {
        "shape": shape, "seed": seed, "cut": str(cut.date()), "book_rows": len(book), "book_churners": int(y.sum()),
        "book_accounts": int(book[ACCOUNT_ID].nunique()), "train_rows": int(training[LABEL].notna().sum()),
        "train_churners": int(training[LABEL].sum()),
    }  # fmt: skip
    scores = baseline_probabilities(training[training[LABEL].notna()], book, seed=settings.model.seed)
    for name, overrides in {"model": {}, **variants}.items():
        constants = {k: v for k, v in overrides.items() if k.isupper()}  # e.g. PATIENCE_RATE=0: the rule before wave 6
        update = {k: v for k, v in overrides.items() if not k.isupper()}
        chosen = settings.model_copy(update={"model": settings.model.model_copy(update=update)})
        clock = time.process_time()
        with model_constants(constants):
            model = train_like_churn(training.copy(), chosen)
        scores[name] = model.predict_proba(book[model.feature_names_in_])[:, 1]
        row[f"{name}_cpu_s"] = round(time.process_time() - clock, 1)
        row[f"{name}_trees"] = {**model.tree_params(), "trees": model.best_iteration_}
    row["auc"] = {name: _auc(y, s) for name, s in scores.items()}
    row["calibration"] = {
        name: {k: point_metrics(y, scores[name], probability=True)[k] for k in ("ece", "mean_predicted", "observed")}
        for name in ("model", *variants)
    }
    row["gaps"] = paired_gaps(y, scores, book[ACCOUNT_ID].to_numpy(), n_boot=300, seed=7)
    row["variant_gaps"] = {name: row["auc"][name] - row["auc"]["model"] for name in variants}
    return row


def summary(rows: list[dict[str, Any]]) -> str:
    """Per seed the paired gaps; over seeds their mean with a 95 % t interval."""
    lines = []
    for shape in sorted({r["shape"] for r in rows}):
        runs = [r for r in rows if r["shape"] == shape]
        for r in runs:
            gaps = ", ".join(f"{b} {g[0]:+.3f} [{g[1]:+.3f}, {g[2]:+.3f}]" for b, g in r["gaps"].items())
            lines.append(
                f"{shape} seed {r['seed']}: book {r['book_rows']:,} ({r['book_churners']}), trained on "
                f"{r['train_rows']:,} ({r['train_churners']}); model {r['auc']['model']:.3f}; gap to {gaps}"
            )
        series = {f"gap to {b}": [r["gaps"][b][0] for r in runs] for b in BASELINES}
        for v in runs[0]["variant_gaps"]:
            series[f"{v} - model"] = [r["variant_gaps"][v] for r in runs]
            for metric in ("ece", "mean_predicted"):
                series[f"{v} - model, {metric}"] = [
                    r["calibration"][v][metric] - r["calibration"]["model"][metric] for r in runs
                ]
        for name, values in series.items():
            mean, low, high = mean_with_interval(values)
            lines.append(f"{shape} mean of {len(values)} seeds, {name}: {mean:+.4f} [{low:+.4f}, {high:+.4f}]")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=list(foreign.SHAPES), required=True)
    parser.add_argument("--seeds", nargs="+", type=int, required=True)
    parser.add_argument("--work", type=Path, default=HERE / "out" / "paired_seeds")
    parser.add_argument("--variant", nargs="+", action="append", default=[], metavar=("NAME", "KEY=VALUE"),
                        help="model settings to compare with the default on the same rows")  # fmt: skip
    args = parser.parse_args(argv)
    variants = {v[0]: {k: yaml.safe_load(x) for k, x in (p.split("=", 1) for p in v[1:])} for v in args.variant}
    set_progress(False)
    warnings.filterwarnings("ignore")
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        row = run_seed(args.shape, seed, args.work, variants)
        rows.append(row)
        with (args.work / "paired_seeds.jsonl").open("a") as out:
            out.write(json.dumps(row) + "\n")
        print(summary([row]).splitlines()[0], flush=True)
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
