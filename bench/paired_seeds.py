"""Is the model's gap to a baseline real or the noise of a small scored book? Many seeds, bigger books.

    python bench/paired_seeds.py --shape minimal_weekly --seeds 101 102 103 [--work DIR] [--variant NAME KEY=VALUE ...]
        [--horizon-calibrators]
    python bench/paired_seeds.py --work DIR --pool    (every row of DIR/paired_seeds.jsonl, per shape and pooled)

bench/quality.py scores one book per dataset: the accounts active at CUT (a few dozen churners on
the foreign B2C shapes), so a model-minus-baseline AUC gap of 0.03 can be luck. Here each seed is a
new history of a foreign shape (bench/worlds/foreign.py, its default size), the default model is
trained exactly as `churn train` trains it (`pipeline.train.fit_and_evaluate`: out-of-time split,
rolling-origin folds, the search, cross-fitted calibration; no MLflow) on what is known at CUT,
and the book is every labelled monthly snapshot of the 12 months after CUT (true outcomes; the
SPEC's point-in-time features make the full history's table equal to the cut one before CUT).
`--shape` is a foreign shape or one of our generator's worlds (`ours_<world>`, 2,000 accounts, as in
bench/quality.py), or a public table of bench/quality.py (`telecom_churn`, `ibm_telco`): then each seed is a
split seed of its stratified 70/30 split (seed 0 is the Quality row's), the model trains as `churn train
--table` trains it (stratified split and folds) and the book is the 30 % held out.
The baselines (bench/quality.py's) train on the same rows and score the same book. Per seed:
model minus baseline ROC AUC with a paired bootstrap over accounts; over seeds: the mean gap with
a t interval. `--variant` adds model settings to compare on the same rows (e.g. `--variant es200
early_stopping_rounds=200`), or upper-case constants of models.risk_model / models.tuning (e.g. `--variant
old_patience PATIENCE_RATE=0`: patience in plain rounds, as before wave 6; `--variant one_se_trees
TREE_SE_FRACTION=1`: trials judged at the within-one-SE tree count, measured and left out in wave 7;
`--variant judged_count DEPLOYED_TREE_SE_FRACTION=0`: the deployed tree count at the mean CV curve's maximum,
as before wave 7; `--variant raw_curves CURVE_SMOOTHING_ROUNDS=0`: trials judged on unsmoothed fold curves,
as before wave 8). Calibration is compared per variant as ECE, |mean predicted - observed|, the risk bands'
mean |predicted - observed| and, with the generator's true probabilities, the mean predicted minus the mean
true probability of rows renewing within NEAR_RENEWAL_DAYS and beyond. `--horizon-calibrators` adds
calibrators that also see the days to renewal, fitted on the deployed model's own out-of-fold log-odds (the
rows its calibrator learned from; no extra training): measured in wave 9 and left out (bench/RESULTS.md), with
`term_isotonic` (one map per term-length group) measured in wave 13 and left out. Each row also holds the model's
mean predicted, observed and true churn per snapshot month (`by_month`: seasonality) and per term length
(`by_term`: monthly, annual, multi-year; for every variant).
Histories and feature tables are cached under --work; rows go to --work/paired_seeds.jsonl.
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
    NEAR_RENEWAL_DAYS,
    START,
    THIRD_YEARS,
    YEARS,
    TableDataset,
    _auc,
    band_table,
    baseline_probabilities,
    mean_with_interval,
    paired_gaps,
    point_metrics,
    split_table,
)
from bench.worlds import foreign, history, public, third  # noqa: E402
from features.table import ACCOUNT_ID, AS_OF, LABEL, TERM_END  # noqa: E402
from models import risk_model, tuning  # noqa: E402
from models.risk_model import Calibrator, ChurnRiskModel  # noqa: E402
from models.split import out_of_time_split, rolling_origin_folds, stratified_folds, stratified_split  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.prepared_table import prepare_table, read_prepared_table  # noqa: E402
from pipeline.progress import set_progress  # noqa: E402
from pipeline.stages import build_feature_table, load  # noqa: E402
from pipeline.synthetic.worlds import WORLDS  # noqa: E402
from pipeline.train import fit_and_evaluate  # noqa: E402

BOOK_MONTHS = 12
OURS_ACCOUNTS = 2000  # our generator's worlds at bench/quality.py's size
TABLES = {table.name: table for table in public.TABLES}
SHAPES = [
    *foreign.SHAPES,
    *(f"third_{shape}" for shape in third.SHAPES),
    *(f"ours_{world}" for world in WORLDS),
    *TABLES,
]
HORIZON = "days_to_renewal"
TERM_LENGTH = "term_length_days"
# --horizon-calibrators: one map per group of days to renewal (edges inclusive); a group with fewer churners or
# renewals than this keeps the pooled map
HORIZON_EDGES = (90, 180)
MIN_GROUP_OUTCOMES = 50


def book_and_training(table: pd.DataFrame, cut: pd.Timestamp, grace_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows as known at CUT: earlier snapshots, labels only where resolved before CUT;
    the book: labelled snapshots of the BOOK_MONTHS after CUT)."""
    training = table[table[AS_OF] < cut].copy()
    unresolved = pd.to_datetime(training[TERM_END]) + pd.Timedelta(days=grace_days) >= cut
    training.loc[unresolved, LABEL] = np.nan
    later = (table[AS_OF] >= cut) & (table[AS_OF] < cut + pd.DateOffset(months=BOOK_MONTHS))
    return training, table[later & table[LABEL].notna()]


def train_like_churn(training: pd.DataFrame, settings: Settings):
    """The model `churn train` would deploy on this snapshot table, or `churn train --table` on a prepared table
    without time (no snapshot dates: stratified split and folds, no grace gap); same fit, no logging."""
    model, n_folds = settings.model, settings.model.cv_folds
    if training[AS_OF].notna().any():
        grace = settings.data.grace_days
        split = out_of_time_split(training, validation_share=model.validation_share, grace_days=grace)
        folds = rolling_origin_folds(training.loc[split.train_index], n_folds=n_folds, grace_days=grace)
    else:
        grace = 0
        split = stratified_split(training, validation_share=model.validation_share, seed=model.seed)
        folds = stratified_folds(training.loc[split.train_index], n_folds=n_folds, seed=model.seed)
    evaluated = fit_and_evaluate(
        training, split, folds, settings, grace_days=grace, rule_risk=None, scorecard=None, progress=None,
        source="feature table",
    )  # fmt: skip
    return evaluated.model


def table_split(name: str, seed: int, work: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, book) of a public table: bench/quality.py's stratified 70/30 split at `seed`, written to
    CSV and read back as `churn train --table` / `churn score --table` read it (the Quality row is seed 0)."""
    folder = work / f"{name}-split{seed}"
    if not (folder / "test.csv").exists():
        train_frame, test_frame = split_table(TableDataset(name, TABLES[name]), seed)
        folder.mkdir(parents=True, exist_ok=True)
        train_frame.to_csv(folder / "train.csv", index=False)
        test_frame.to_csv(folder / "test.csv", index=False)
    training, book = (
        prepare_table(read_prepared_table(folder / f"{part}.csv"), public.ID, public.LABEL, None)[0]
        for part in ("train", "test")
    )
    return training, book


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


def simulate(shape: str, full: Path, seed: int) -> None:
    if shape in foreign.SHAPES:
        accounts = foreign.SHAPES[shape].accounts
        foreign.simulate(full, shape=shape, accounts=accounts, seed=seed, start=START, years=YEARS)
    elif shape.startswith("third_"):
        name = shape.removeprefix("third_")
        third.simulate(
            full, shape=name, accounts=third.SHAPES[name].accounts, seed=seed, start=START, years=THIRD_YEARS
        )
    else:
        from pipeline.synthetic import generate

        generate(full, OURS_ACCOUNTS, seed=seed, start=START, years=YEARS, world=shape.removeprefix("ours_"))


def true_probabilities(full: Path, book: pd.DataFrame) -> np.ndarray:
    """The generator's churn probability of each book row's term (the term ending at the row's E)."""
    terms = pd.read_parquet(full / history.TRUTH)
    terms = terms.assign(account_id=terms[ACCOUNT_ID].astype(str), term_end=pd.to_datetime(terms["end_date"]))
    truth = terms.groupby([ACCOUNT_ID, TERM_END])["p_churn"].max()
    keys = pd.MultiIndex.from_arrays([book[ACCOUNT_ID].astype(str), pd.to_datetime(book[TERM_END])])
    return truth.reindex(keys).to_numpy(dtype=float)


def horizon_groups(days: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(HORIZON_EDGES, dtype=float), np.asarray(days, dtype=float), side="left")


def horizon_calibrators(model: ChurnRiskModel, labelled: pd.DataFrame, book: pd.DataFrame) -> dict[str, np.ndarray]:
    """Book probabilities of calibrators that also see the days to renewal, fitted on the deployed model's own
    out-of-fold log-odds (`calibration_raw_`: exactly the rows and scores its calibrator learned from).

    horizon_isotonic: the configured calibrator per group of days to renewal (HORIZON_EDGES); horizon_platt:
    Platt scaling with an intercept and a slope per group; horizon_offset: the deployed calibrator's log-odds
    plus an intercept per group (one logistic regression); term_isotonic: the configured calibrator per group
    of term length (TERM_GROUPS: monthly, annual, multi-year).
    """
    from scipy.special import logit
    from sklearn.linear_model import LogisticRegression

    positions = model.calibration_positions_
    raw, y = model.calibration_raw_, labelled[LABEL].to_numpy(dtype=int)[positions]
    group = horizon_groups(labelled[HORIZON].to_numpy(dtype=float)[positions])
    book_raw = model.predict_raw(book[model.feature_names_in_])
    book_group = horizon_groups(book[HORIZON].to_numpy(dtype=float))
    pooled = model.calibrator_.predict(book_raw)

    def per_group_map(group: np.ndarray, book_group: np.ndarray) -> np.ndarray:
        out = pooled.copy()
        for g in np.unique(group):
            chosen = group == g
            if min(y[chosen].sum(), (1 - y[chosen]).sum()) >= MIN_GROUP_OUTCOMES:
                fitted = Calibrator.fit(raw[chosen], y[chosen], model.calibration)
                out[book_group == g] = fitted.predict(book_raw[book_group == g])
        return out

    per_group = per_group_map(group, book_group)
    terms = {}
    if TERM_LENGTH in labelled.columns:  # wave 13: monthly terms over-predicted, annual ones under (third simulator)
        term_of = term_group(labelled[TERM_LENGTH].to_numpy(dtype=float)[positions])
        terms["term_isotonic"] = per_group_map(term_of, term_group(book[TERM_LENGTH].to_numpy(dtype=float)))

    def dummies(g: np.ndarray) -> np.ndarray:
        return np.column_stack([(g == k).astype(float) for k in range(1, len(HORIZON_EDGES) + 1)])

    def platt_design(r: np.ndarray, g: np.ndarray) -> np.ndarray:
        d = dummies(g)
        return np.column_stack([r, d, d * r[:, None]])

    platt = LogisticRegression(C=1e6).fit(platt_design(raw, group), y)
    deployed_logit = logit(model.calibrator_.predict(raw))
    offset = LogisticRegression(C=1e6).fit(np.column_stack([deployed_logit, dummies(group)]), y)
    book_logit = logit(pooled)
    return {
        "horizon_isotonic": per_group,
        "horizon_platt": platt.predict_proba(platt_design(book_raw, book_group))[:, 1],
        "horizon_offset": offset.predict_proba(np.column_stack([book_logit, dummies(book_group)]))[:, 1],
        **terms,
    }


def calibration(y: np.ndarray, p: np.ndarray, truth: np.ndarray | None, days: np.ndarray | None) -> dict[str, Any]:
    """ECE, mean predicted and observed, the risk bands' row-weighted |mean predicted - observed| (and against
    the mean true probability), and predicted minus true within and beyond NEAR_RENEWAL_DAYS."""
    out: dict[str, Any] = {k: point_metrics(y, p, probability=True)[k] for k in ("ece", "mean_predicted", "observed")}
    out["abs_mean_gap"] = abs(out["mean_predicted"] - out["observed"])
    bands = band_table(y, p, truth)
    out["bands"] = bands
    out["band_error"] = sum(b["accounts"] * abs(b["mean_predicted"] - b["observed"]) for b in bands) / len(y)
    if truth is not None:
        out["band_error_true"] = sum(b["accounts"] * abs(b["mean_predicted"] - b["true_mean"]) for b in bands) / len(y)
        if days is not None:
            for side, chosen in (("near", days <= NEAR_RENEWAL_DAYS), ("far", days > NEAR_RENEWAL_DAYS)):
                if chosen.any():
                    out[f"{side}_minus_true"] = float(p[chosen].mean() - truth[chosen].mean())
    return out


def by_group(groups: np.ndarray, y: np.ndarray, p: np.ndarray, truth: np.ndarray | None) -> dict[str, list[float]]:
    """Per group of book rows: [rows, mean predicted, observed, mean true probability (NaN unknown)].

    By snapshot month: a model that reads a seasonal dip of activity (summer, the holidays) as disengagement
    over-predicts the months whose feature windows hold the dip. By term length: a model that does not separate
    monthly from annual terms over-predicts one and under-predicts the other. The truth says which is real."""
    known = truth if truth is not None else np.full(len(p), np.nan)
    return {
        str(group): [int(chosen.sum()), float(p[chosen].mean()), float(y[chosen].mean()), float(np.mean(known[chosen]))]
        for group in sorted(set(groups))
        for chosen in [groups == group]
    }


TERM_GROUPS = ((45, "monthly"), (400, "annual"))  # term length in days up to which a term is in the group


def term_group(days: np.ndarray) -> np.ndarray:
    edges, names = zip(*TERM_GROUPS, strict=True)
    return np.array([*names, "multi-year"])[np.searchsorted(np.asarray(edges, dtype=float), days, side="left")]


def history_split(
    shape: str, seed: int, work: Path, settings: Settings
) -> tuple[Path, pd.Timestamp, pd.DataFrame, pd.DataFrame]:
    """(the full history, CUT, training rows as known at CUT, the next year's book) of one generated history."""
    full = work / f"{shape}-{seed}"
    if not (full / history.TRUTH).exists():
        simulate(shape, full, seed)
    cached = full / "table-monthly.parquet"
    if cached.exists():
        table = pd.read_parquet(cached)
    else:
        table = build_feature_table(load(full, settings), settings)
        table.to_parquet(cached)
    table = table.reset_index(drop=True)
    cut = pd.Timestamp((history.data_end(full) - pd.DateOffset(months=CUT_MONTHS)).date())
    return full, cut, *book_and_training(table, cut, settings.data.grace_days)


def run_seed(
    shape: str, seed: int, work: Path, variants: dict[str, dict[str, Any]], with_horizon: bool = False
) -> dict[str, Any]:
    """One history (generator seed) or one split of a public table (split seed): the default model, each variant
    and the baselines trained on the same rows and compared on the same book."""
    settings = Settings()
    if shape in TABLES:
        full, cut = None, None
        training, book = table_split(shape, seed, work)
    else:
        full, cut, training, book = history_split(shape, seed, work, settings)
    y = book[LABEL].astype(int).to_numpy()
    row: dict[str, Any] = {
        "shape": shape, "seed": seed, "cut": cut and str(cut.date()), "book_rows": len(book),
        "book_churners": int(y.sum()), "book_accounts": int(book[ACCOUNT_ID].nunique()),
        "train_rows": int(training[LABEL].notna().sum()), "train_churners": int(training[LABEL].sum()),
    }  # fmt: skip
    scores = baseline_probabilities(training[training[LABEL].notna()], book, seed=settings.model.seed)
    compared = list(variants)
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
        if name == "model" and with_horizon:
            labelled = training[training[LABEL].notna()]  # the rows `fit` saw, in its order
            horizon = horizon_calibrators(model, labelled, book)
            scores |= horizon
            compared += list(horizon)
    truth = true_probabilities(full, book) if full is not None and (full / history.TRUTH).exists() else None
    days = book[HORIZON].to_numpy(dtype=float) if HORIZON in book.columns else None
    row["auc"] = {name: _auc(y, s) for name, s in scores.items()}
    row["calibration"] = {name: calibration(y, scores[name], truth, days) for name in ("model", *compared)}
    if book[AS_OF].notna().any():
        row["by_month"] = by_group(
            pd.to_datetime(book[AS_OF]).dt.strftime("%Y-%m").to_numpy(), y, scores["model"], truth
        )
    if TERM_LENGTH in book.columns:
        terms = term_group(book[TERM_LENGTH].to_numpy(dtype=float))
        row["by_term"] = {name: by_group(terms, y, scores[name], truth) for name in ("model", *compared)}
    accounts = book[ACCOUNT_ID].to_numpy()
    row["gaps"] = paired_gaps(y, scores, accounts, n_boot=300, seed=7)
    row["variant_gaps"] = {name: row["auc"][name] - row["auc"]["model"] for name in compared}
    row["variant_intervals"] = {}  # variant - model in AUC with its paired bootstrap interval on this book
    for name in compared:
        both = {"model": scores[name], "default": scores["model"]}
        row["variant_intervals"][name] = paired_gaps(y, both, accounts, 300, seed=7, against=("default",))["default"]
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
            for v, (gap, low, high) in r.get("variant_intervals", {}).items():
                ours, theirs = r["calibration"]["model"], r["calibration"][v]
                lines.append(
                    f"  {v} - model: AUC {gap:+.4f} [{low:+.4f}, {high:+.4f}] ({r['auc'][v]:.4f} vs "
                    f"{r['auc']['model']:.4f}); ECE {theirs['ece']:.4f} vs {ours['ece']:.4f}; |mean predicted - "
                    f"observed| {theirs['abs_mean_gap']:.4f} vs {ours['abs_mean_gap']:.4f}"
                )
        lines += [f"{shape} mean of {len(runs)} seeds, {line}" for line in comparisons(runs)]
    if len({r["shape"] for r in rows}) > 1:
        lines += [f"all shapes, {len(rows)} seeds, {line}" for line in comparisons(rows)]
    return "\n".join(lines)


CALIBRATION_METRICS = (
    "ece", "mean_predicted", "abs_mean_gap", "band_error", "band_error_true", "near_minus_true", "far_minus_true",
)  # fmt: skip


def comparisons(runs: list[dict[str, Any]]) -> list[str]:
    """Mean over seeds with a 95 % t interval: gaps to the baselines, and each variant minus the model in AUC
    and calibration (the model's own level beside it)."""
    series = {f"gap to {b}": [r["gaps"][b][0] for r in runs] for b in BASELINES}
    for metric in CALIBRATION_METRICS:
        values = [r["calibration"]["model"].get(metric) for r in runs]
        if all(v is not None for v in values):
            series[f"model {metric}"] = values
    for v in [v for v in runs[0]["variant_gaps"] if all(v in r["variant_gaps"] for r in runs)]:
        series[f"{v} - model"] = [r["variant_gaps"][v] for r in runs]
        for metric in CALIBRATION_METRICS:
            values = [(r["calibration"][v].get(metric), r["calibration"]["model"].get(metric)) for r in runs]
            if all(a is not None and b is not None for a, b in values):
                series[f"{v} - model, {metric}"] = [a - b for a, b in values]
    lines = []
    for name, values in series.items():
        mean, low, high = mean_with_interval(values)
        lines.append(f"{name}: {mean:+.4f} [{low:+.4f}, {high:+.4f}]")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=SHAPES)
    parser.add_argument("--seeds", nargs="+", type=int,
                        help="generator seeds (event shapes) or split seeds (public tables)")  # fmt: skip
    parser.add_argument("--work", type=Path, default=HERE / "out" / "paired_seeds")
    parser.add_argument("--variant", nargs="+", action="append", default=[], metavar=("NAME", "KEY=VALUE"),
                        help="model settings to compare with the default on the same rows")  # fmt: skip
    parser.add_argument("--horizon-calibrators", action="store_true",
                        help="also compare calibrators that see the days to renewal")  # fmt: skip
    parser.add_argument("--pool", action="store_true",
                        help="only summarise every row of --work/paired_seeds.jsonl, per shape and pooled")  # fmt: skip
    args = parser.parse_args(argv)
    if args.pool:
        print(summary([json.loads(line) for line in (args.work / "paired_seeds.jsonl").read_text().splitlines()]))
        return 0
    if not (args.shape and args.seeds):
        parser.error("--shape and --seeds are required (unless --pool)")
    if args.horizon_calibrators and args.shape in TABLES:
        parser.error(f"--horizon-calibrators needs days to renewal; {args.shape} is a prepared table")
    variants = {v[0]: {k: yaml.safe_load(x) for k, x in (p.split("=", 1) for p in v[1:])} for v in args.variant}
    set_progress(False)
    warnings.filterwarnings("ignore")
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        row = run_seed(args.shape, seed, args.work, variants, args.horizon_calibrators)
        rows.append(row)
        with (args.work / "paired_seeds.jsonl").open("a") as out:
            out.write(json.dumps(row) + "\n")
        print(summary([row]).splitlines()[0], flush=True)
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
