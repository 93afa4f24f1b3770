"""Benchmark: batch scoring with exact TreeSHAP explanations by health category, and their cost against model size.

Measures, on synthetic accounts with ~80 features (4 categorical), the churn model that
`ChurnRiskModel` picks on this benchmark world with the default tuning budget (stratified CV
folds, Optuna search, one-SE rule; `--fixed` instead trains `--trees` trees of the configured
default size):
- `models.explain.explain` (LightGBM pred_contrib in chunks, both cores) and `top_drivers`
  (the plain-words column) in accounts per second and peak extra memory, at 100k and 1M rows;
- `shap.TreeExplainer` on the same model in the same run (timed on a sample, extrapolated);
- the trade-off between model size (trees x leaves), validation AUC and explanation speed.

Run: `MLFLOW_DISABLE_TELEMETRY=true .venv/bin/python bench/score.py` (a few minutes on
2 cores); `--rows 20000 --sizes 50x7` for a smoke run. Results also go to bench/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0]).resolve() == HERE:
    sys.path.pop(0)  # bench/features.py would shadow the `features` package

from pipeline.runtime import configure_process  # noqa: E402

configure_process()  # as the `churn` command does, before LightGBM and MLflow load

import lightgbm as lgb  # noqa: E402
import shap  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from features.registry import all_specs, category_map  # noqa: E402
from models.explain import explain, top_drivers  # noqa: E402
from pipeline.config import ModelSettings  # noqa: E402

OUT_DIR = HERE / "out"
CATEGORICAL = {"segment": ["smb", "mid", "enterprise"], "plan": ["basic", "pro", "premium", "enterprise"]}
CATEGORICAL |= {"industry": [f"industry_{i}" for i in range(12)], "region": ["emea", "amer", "apac", "latam"]}
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
LABEL_SEED = 99
# shap announces its output format for LightGBM on every call; the values are what we time.
warnings.filterwarnings("ignore", message="LightGBM binary classifier with TreeExplainer")


def feature_names(count: int) -> list[str]:
    """Registered numeric feature names first (so drivers render with real templates), then fillers."""
    specs = all_specs()
    registered = [n for n, s in specs.items() if s.kind == "numeric" and n not in CATEGORICAL]
    numeric = registered[: count - len(CATEGORICAL)]
    numeric += [f"signal_{i:02d}" for i in range(count - len(CATEGORICAL) - len(numeric))]
    return numeric + list(CATEGORICAL)


def synthetic_accounts(rows: int, names: list[str], seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Skewed numeric features with some gaps, categorical levels, and a churn label that depends on ~15 of them."""
    rng = np.random.default_rng(seed)
    numeric = [n for n in names if n not in CATEGORICAL]
    values = rng.gamma(2.0, 1.0, size=(rows, len(numeric)))
    values[rng.uniform(size=values.shape) < 0.03] = np.nan
    frame = pd.DataFrame(values, columns=numeric)
    for name, levels in CATEGORICAL.items():
        frame[name] = pd.Categorical.from_codes(rng.integers(0, len(levels), rows), categories=levels)
    weights = np.zeros(len(numeric))
    weights[:15] = np.random.default_rng(LABEL_SEED).normal(0, 0.5, 15)  # the same churn mechanism in every sample
    centred = np.nan_to_num(values - 2.0)
    interaction = 0.4 * centred[:, 0] * (centred[:, 1] > 0)
    logit = centred @ weights + interaction + 0.7 * (frame["plan"] == "basic").to_numpy() - 1.5
    label = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, label


def train(X: pd.DataFrame, y: np.ndarray, trees: int, leaves: int, depth: int) -> lgb.Booster:
    params = {
        "objective": "binary",
        "num_leaves": leaves,
        "max_depth": depth,
        "learning_rate": 0.05,
        "min_child_samples": 40,
        "num_threads": 2,
        "verbosity": -1,
        "seed": 7,
    }
    return lgb.train(params, lgb.Dataset(X, y), num_boost_round=trees)


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES


@contextmanager
def peak_memory() -> Iterator[dict[str, float]]:
    """Peak resident memory above the level at entry, sampled every 5 ms (sees C++ allocations too)."""
    result = {"peak_mb": 0.0}
    start, peak, done = _rss(), [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], _rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        done.set()
        sampler.join()
        result["peak_mb"] = max(0, max(peak[0], _rss()) - start) / 2**20


def timed(action: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """(result, wall seconds, CPU seconds of all threads, peak extra MB).

    CPU seconds are what to trust on a machine shared with other jobs: wall time there depends on load.
    """
    with peak_memory() as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        value = action()
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return value, seconds, cpu_seconds, memory["peak_mb"]


def bench_scale(
    booster: lgb.Booster, probability: Callable[[pd.DataFrame], Any], names: list[str], rows: int, shap_sample: int
) -> dict[str, Any]:
    X, _ = synthetic_accounts(rows, names, seed=rows)
    categories = category_map(names)
    _, proba_s, _, proba_mb = timed(lambda: probability(X))
    explanation, explain_s, explain_cpu, explain_mb = timed(lambda: explain(booster, X, categories))
    _, drivers_s, _, drivers_mb = timed(lambda: top_drivers(explanation.contributions, X, n=3))
    sample = X.iloc[: min(shap_sample, rows)]
    explainer = shap.TreeExplainer(booster)
    _, shap_s, shap_cpu, shap_mb = timed(lambda: explainer.shap_values(sample))
    result = {
        "rows": rows,
        "input_mb": X.memory_usage(deep=True).sum() / 2**20,
        "probability_s": proba_s,
        "probability_rows_per_s": rows / proba_s,
        "probability_peak_mb": proba_mb,
        "explain_s": explain_s,
        "explain_cpu_s": explain_cpu,
        "explain_rows_per_s": rows / explain_s,
        "explain_peak_mb": explain_mb,
        "top_drivers_s": drivers_s,
        "top_drivers_rows_per_s": rows / drivers_s,
        "top_drivers_peak_mb": drivers_mb,
        "shap_sample_rows": len(sample),
        "shap_rows_per_s": len(sample) / shap_s,
        "shap_cpu_s_per_1k_rows": shap_cpu / len(sample) * 1000,
        "explain_cpu_s_per_1k_rows": explain_cpu / rows * 1000,
        "shap_s_extrapolated": shap_s * rows / len(sample),
        "shap_peak_mb_on_sample": shap_mb,
        "load_average": os.getloadavg()[0],
    }
    return result


def bench_sizes(names: list[str], sizes: list[tuple[int, int]], rows: int) -> list[dict[str, Any]]:
    """Model size vs validation AUC vs explanation speed, all trained on the same accounts."""
    X, y = synthetic_accounts(rows, names, seed=1)
    X_valid, y_valid = synthetic_accounts(rows // 2, names, seed=2)
    categories = category_map(names)
    table = []
    for trees, leaves in sizes:
        depth = max(3, int(np.ceil(np.log2(leaves + 1))))
        booster = train(X, y, trees, leaves, depth)
        auc = roc_auc_score(y_valid, booster.predict(X_valid, num_threads=2))
        runs = [timed(lambda b=booster: explain(b, X_valid, categories)) for _ in range(2)]
        seconds, cpu_seconds = min(r[1] for r in runs), min(r[2] for r in runs)
        table.append(
            {
                "trees": trees,
                "leaves": leaves,
                "max_depth": depth,
                "auc": auc,
                "explain_rows_per_s": len(X_valid) / seconds,
                "explain_cpu_s_per_1k_rows": cpu_seconds / len(X_valid) * 1000,
                "load_average": os.getloadavg()[0],
            }
        )
    return table


def tuned_model(X: pd.DataFrame, y: np.ndarray, trials: int | None, timeout: float | None) -> tuple[Any, str, list]:
    """The model `churn train` would deploy on these accounts (default settings and search budget).

    Returns the fitted `ChurnRiskModel`, a one-line summary and the search's complete trials (best
    CV AUC first; the one-SE rule chose the cheapest of those within its paired standard error of the best).
    """
    from models.split import stratified_folds, stratified_split

    table = pd.DataFrame({"account_id": np.arange(len(y)).astype(str), "label": y}, index=X.index)
    overrides = {} if trials is None else {"tune_trials": trials}
    overrides |= {} if timeout is None else {"tune_timeout_s": timeout}
    settings = ModelSettings(**overrides)
    split = stratified_split(table, validation_share=settings.validation_share, seed=settings.seed)
    folds = stratified_folds(table.loc[split.train_index], n_folds=settings.cv_folds, seed=settings.seed)
    started = time.perf_counter()
    model = settings.estimator().fit(
        X, y, train_index=split.train_index, valid_index=split.valid_index, folds=folds.pairs()
    )
    selection = model.selection_
    valid_auc = roc_auc_score(y[split.valid_index], model.validation_raw_)
    how = (
        f"tuned in {time.perf_counter() - started:.0f} s, search {selection.get('tuning_seconds', 0):.0f} s "
        f"({selection.get('trials', 0)} trials, {selection.get('trials_complete', 0)} complete; "
        f"CV AUC {selection['cv_auc']:.4f} ± {selection.get('cv_auc_std', float('nan')):.4f}, "
        f"validation AUC {valid_auc:.4f})"
    )
    trials_table = []
    if model.search_ is not None:
        search = model.search_
        for trial in sorted(search.trials, key=lambda t: -t.score if t.state == "complete" else 0):
            if trial.state == "complete":
                trials_table.append(
                    {"trial": trial.number, "cv_auc": trial.score, "trees": trial.trees, "cost": trial.cost,
                     "chosen": trial.number == search.chosen.number, "seconds": trial.seconds} | trial.params
                )  # fmt: skip
    return model, how, trials_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--features", type=int, default=80)
    parser.add_argument("--trees", type=int, default=150)
    parser.add_argument("--train-rows", type=int, default=50_000)
    parser.add_argument("--shap-sample", type=int, default=20_000)
    parser.add_argument(
        "--sizes", nargs="*", default=["50x7", "100x7", "200x7", "100x15", "150x15", "300x15", "150x31", "200x63"],
        help="model sizes for the trade-off table, as TREESxLEAVES",
    )  # fmt: skip
    parser.add_argument("--fixed", action="store_true", help="train --trees trees of the default size, no search")
    parser.add_argument("--trials", type=int, help="search trials (default: the configured model.tune_trials)")
    parser.add_argument("--timeout", type=float, help="search timeout in s (default: the configured tune_timeout_s)")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    names = feature_names(args.features)
    X_train, y_train = synthetic_accounts(args.train_rows, names, seed=0)
    if args.fixed:
        leaves, depth = ModelSettings().num_leaves, ModelSettings().max_depth
        booster, how, trials = train(X_train, y_train, args.trees, leaves, depth), "fixed size, no search", []
        probability: Callable[[pd.DataFrame], Any] = lambda X: booster.predict(X, num_threads=2)  # noqa: E731
    else:
        model, how, trials = tuned_model(X_train, y_train, args.trials, args.timeout)
        booster, probability = model.booster_, model.predict_proba
    params = booster.params
    print(
        f"model: {booster.num_trees()} trees, {params.get('num_leaves')} leaves, depth {params.get('max_depth')}, "
        f"{len(names)} features ({how}); cores: {os.cpu_count()}"
    )

    if trials:
        print("\nsearch trials (complete, best CV AUC first; * chosen by the one-SE rule):")
        print("trial  CV AUC  trees  leaves  depth  cost  seconds")
        for t in trials:
            mark = "*" if t["chosen"] else " "
            print(
                f"{mark}{t['trial']:<5} {t['cv_auc']:.4f} {t['trees']:6} {t['num_leaves']:7} {t['max_depth']:6} "
                f"{t['cost']:5.0f} {t['seconds']:8.1f}"
            )
    scales = [bench_scale(booster, probability, names, rows, args.shap_sample) for rows in args.rows]
    print("\nprobability: wall s, rows/s | explain: rows, wall s, rows/s, CPU s per 1k rows, peak MB |")
    print("top_drivers: wall s, rows/s |")
    print("shap.TreeExplainer on a sample: rows/s, CPU s per 1k rows, wall s extrapolated to all rows | load average")
    for r in scales:
        print(
            f"{r['probability_s']:6.1f} {r['probability_rows_per_s']:9,.0f} | "
            f"{r['rows']:<10,} {r['explain_s']:7.1f} {r['explain_rows_per_s']:7,.0f} "
            f"{r['explain_cpu_s_per_1k_rows']:6.3f} {r['explain_peak_mb']:6.0f} | "
            f"{r['top_drivers_s']:6.1f} {r['top_drivers_rows_per_s']:7,.0f} | {r['shap_rows_per_s']:7,.0f} "
            f"{r['shap_cpu_s_per_1k_rows']:6.3f} {r['shap_s_extrapolated']:7.1f} | {r['load_average']:.1f}"
        )

    sizes = [tuple(int(p) for p in size.split("x")) for size in args.sizes]
    trade_off = bench_sizes(names, sizes, args.train_rows) if sizes else []
    if trade_off:
        print("\ntrees  leaves  depth  valid AUC  explain rows/s  cpu-s/1k rows  load")
        for t in trade_off:
            print(
                f"{t['trees']:<6} {t['leaves']:<7} {t['max_depth']:<6} {t['auc']:9.4f}  "
                f"{t['explain_rows_per_s']:14,.0f}  {t['explain_cpu_s_per_1k_rows']:13.3f}  {t['load_average']:.1f}"
            )

    OUT_DIR.mkdir(exist_ok=True)
    report = {
        "features": len(names),
        "trees": booster.num_trees(),
        "model": how,
        "params": {k: params.get(k) for k in ("num_leaves", "max_depth", "learning_rate", "min_data_in_leaf")},
        "scales": scales,
        "trade_off": trade_off,
        "trials": trials,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "process_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10,  # KiB on Linux
    }
    (OUT_DIR / "score.json").write_text(json.dumps(report, indent=2))
    print(
        f"\nload average {load_before:.1f} before, {report['load_after']:.1f} after; "
        f"process peak memory {report['process_peak_mb']:,.0f} MiB"
    )
    print(f"written: {OUT_DIR / 'score.json'}")


if __name__ == "__main__":
    main()
