"""Benchmark `churn train`: training time and peak memory at 100k and 1M snapshot rows x ~100 features.

    python bench/train.py [--rows 100000 1000000] [--features 100] [--threads 2] [--model-only]
                          [--trials N] [--timeout SECONDS]

Each size runs in a fresh process, so its peak resident memory (getrusage maxrss) is its own. The
data are synthetic snapshot rows in the feature-table format (monthly snapshots, term ends, a
churn label driven non-linearly by a dozen of the features, two categoricals); the timed work is
`ChurnRiskModel.fit` with the default tuning budget (search on rolling-origin folds, sampled to
`model.tune_max_rows` rows; cross-validated tree count on all fold rows; evaluation booster;
refit on all labelled rows; calibration cross-fitted over accounts, 5 member fits on the training
rows and 5 on all labelled rows) and, unless --model-only, the whole `train_model` stage
(logistic baseline, evaluation, plots, MLflow logging and registration in a temporary SQLite store).
`--trials 0` measures training without a search; `--timeout` sets `model.tune_timeout_s`, the search's
safety net (a value above the search's length measures the whole trial budget whatever the load). The fit's
progress events time its parts: the search, the tree count and evaluation fits, the refit and the
calibration member fits (each a wall-clock stretch between two events).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0]).resolve() == HERE:
    sys.path.pop(0)  # bench/features.py would shadow the `features` package

from pipeline.runtime import configure_process  # noqa: E402

OUT_DIR = HERE / "out"

configure_process()  # as the `churn` command does, before LightGBM and MLflow load


def peak_memory_mb() -> float:
    """Peak resident set size of this process in MiB (maxrss is KiB on Linux, bytes on macOS)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10


def synthetic_feature_table(rows: int, features: int, seed: int = 0) -> pd.DataFrame:
    """Monthly snapshots over two years; the last few months' outcomes are still unknown (censored)."""
    rng = np.random.default_rng(seed)
    months = 24
    accounts = max(1, rows // months)
    as_of = pd.Timestamp("2022-01-01") + pd.to_timedelta(np.arange(rows) % months * 30, unit="D")
    term_end = as_of + pd.to_timedelta(rng.integers(15, 366, rows), unit="D")
    numeric = rng.standard_normal((rows, features - 2), dtype=np.float32).astype(np.float64)
    segment = rng.integers(0, 3, rows)
    logit = (
        -2.0
        + numeric[:, :6] @ np.array([0.8, -0.6, 0.5, -0.4, 0.3, 0.3])
        + 0.7 * (numeric[:, 6] > 1.0)
        - 0.5 * numeric[:, 7] * numeric[:, 8]
        + 0.4 * np.abs(numeric[:, 9])
        + np.array([0.4, 0.0, -0.5])[segment]
    )
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    data_end = as_of.max()
    known = (term_end + pd.Timedelta(days=30)) <= data_end
    table = pd.DataFrame(
        {
            "account_id": pd.Series(np.arange(rows) // months % accounts).map("acc{:07d}".format),
            "as_of": as_of.astype("datetime64[us]"),
            "label": pd.array(np.where(known, label, 0), dtype="Int8"),
            "term_end": term_end.astype("datetime64[us]"),
            "segment": pd.Categorical.from_codes(segment, ["smb", "mid", "enterprise"]),
            "plan": pd.Categorical.from_codes(rng.integers(0, 4, rows), ["basic", "pro", "business", "enterprise"]),
        }
    )
    table.loc[~known, "label"] = pd.NA
    numeric_frame = pd.DataFrame(numeric, columns=[f"f{i:03d}" for i in range(features - 2)])
    return pd.concat([table, numeric_frame], axis=1)


class FitTimeline:
    """Wall-clock seconds of the parts of `ChurnRiskModel.fit`, from its progress events.

    The search reports after each trial and once when it ends; each calibration member reports when
    it is done, in two series (members on the training rows, then on all labelled rows). Between the
    end of the search and the first member lie the tree-count fit and the evaluation fit; between the
    two series, the refit. A series' first member is taken to last as long as its others on average.
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.events: list[tuple[str, int, float]] = []

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.events.append((stage, done, time.perf_counter() - self.start))

    def parts(self, total_seconds: float) -> dict[str, float]:
        search_end = max((t for stage, _, t in self.events if stage != "calibrate"), default=0.0)
        members = [(done, t) for stage, done, t in self.events if stage == "calibrate"]
        starts = [i for i, (done, _) in enumerate(members) if done == 1]
        parts = {"search_s": search_end}
        if len(starts) != 2 or starts[1] < 2:
            return parts
        first, second = [t for _, t in members[: starts[1]]], [t for _, t in members[starts[1] :]]
        first_each, second_each = np.diff(first).mean(), np.diff(second).mean()
        parts["trees_and_evaluation_s"] = first[0] - first_each - search_end
        parts["calibration_members_train_s"] = first[-1] - first[0] + first_each
        parts["refit_s"] = second[0] - second_each - first[-1]
        parts["calibration_members_all_s"] = second[-1] - second[0] + second_each
        parts["calibration_members"] = len(members)
        parts["post_search_s"] = total_seconds - search_end
        return parts


def run_one(
    rows: int, features: int, threads: int, model_only: bool, trials: int | None, timeout: float | None
) -> dict:
    from sklearn.metrics import roc_auc_score

    from features.table import feature_columns
    from models.split import out_of_time_split, rolling_origin_folds, sample_folds
    from pipeline.config import Settings

    table = synthetic_feature_table(rows, features)
    data_mb = table.memory_usage(deep=True).sum() / 2**20
    model_settings = {"num_threads": threads} | ({} if trials is None else {"tune_trials": trials})
    model_settings |= {} if timeout is None else {"tune_timeout_s": timeout}
    load_before = os.getloadavg()[0]
    settings = Settings(model=model_settings)
    split = out_of_time_split(table, validation_share=settings.model.validation_share, grace_days=30)
    start = time.perf_counter()
    timeline = FitTimeline()
    folds = rolling_origin_folds(table.loc[split.train_index], n_folds=settings.model.cv_folds, grace_days=30)
    tuning = sample_folds(folds, table, max_rows=settings.model.tune_max_rows, seed=settings.model.seed)
    names = feature_columns(table)
    labelled = table[table["label"].notna()]
    model = settings.model.estimator().fit(
        labelled[names],
        labelled["label"],
        train_index=split.train_index,
        valid_index=split.valid_index,
        folds=folds.pairs(),
        tuning_folds=tuning.pairs() if tuning is not folds else None,
        groups=labelled["account_id"],
        progress=timeline,
    )
    model_seconds = time.perf_counter() - start
    selection = model.selection_
    result = {
        "rows": rows,
        "features": len(names),
        "train_rows": len(split.train_index),
        "valid_rows": len(split.valid_index),
        "data_mb": data_mb,
        "model_seconds": model_seconds,
        "parts": timeline.parts(time.perf_counter() - timeline.start),
        "tuning_seconds": selection.get("tuning_seconds", 0.0),
        "trials": selection.get("trials", 0),
        "trials_pruned": selection.get("trials_pruned", 0),
        "cv_auc": selection.get("cv_auc", float("nan")),
        "cv_auc_std": selection.get("cv_auc_std", float("nan")),
        "trials_complete": selection.get("trials_complete", 0),
        "chosen_cv_auc": selection.get("chosen_cv_auc", float("nan")),
        "best_cv_auc": selection.get("best_cv_auc", float("nan")),
        "params": model.tree_params(),
        "finalists": model.finalists_,  # a sampled search's finalists judged on the latest full fold
        "model_valid_auc": roc_auc_score(labelled.loc[split.valid_index, "label"].astype(int), model.validation_raw_),
        "trees": model.best_iteration_,
        "leaves": model.num_leaves,
        "max_depth": model.max_depth,
    }
    if not model_only:
        from pipeline.train import train_model

        with tempfile.TemporaryDirectory() as workdir:
            settings = Settings(workdir=workdir, model=model_settings)
            start = time.perf_counter()
            trained = train_model(table, settings)
            result["stage_seconds"] = time.perf_counter() - start
            result["valid_auc"] = trained.overall()["model"]["roc_auc"]
            result["logistic_auc"] = trained.overall()["logistic"]["roc_auc"]
    result["peak_mb"] = peak_memory_mb()
    result["load_before"] = load_before
    result["load"] = os.getloadavg()[0]  # other work on the machine slows every number above
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model-only", action="store_true", help="Time ChurnRiskModel.fit only.")
    parser.add_argument("--trials", type=int, help="Optuna trials (default: the configured model.tune_trials).")
    parser.add_argument(
        "--timeout", type=float, help="Search timeout in seconds (default: the configured model.tune_timeout_s)."
    )
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)  # one size, JSON out
    args = parser.parse_args()

    if args.single:
        result = run_one(args.rows[0], args.features, args.threads, args.model_only, args.trials, args.timeout)
        print(json.dumps(result))
        return
    for rows in args.rows:
        command = [sys.executable, __file__, "--single", "--rows", str(rows), "--features", str(args.features)]
        command += ["--threads", str(args.threads)] + (["--model-only"] if args.model_only else [])
        command += [] if args.trials is None else ["--trials", str(args.trials)]
        command += [] if args.timeout is None else ["--timeout", str(args.timeout)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        if done.returncode != 0:
            sys.exit(f"bench/train.py failed at {rows:,} rows:\n{done.stderr[-3000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        stage = (
            ""
            if args.model_only
            else (
                f", whole stage {r['stage_seconds']:6.1f} s "
                f"(AUC model {r['valid_auc']:.3f} / logistic {r['logistic_auc']:.3f})"
            )
        )
        print(
            f"train {r['rows']:>10,} rows x {r['features']} features ({r['train_rows']:,} train / "
            f"{r['valid_rows']:,} valid, {r['data_mb']:,.0f} MiB): model fit {r['model_seconds']:6.1f} s "
            f"(search {r['tuning_seconds']:.0f} s, {r['trials']} trials, {r['trials_complete']} complete, "
            f"{r['trials_pruned']} pruned; {r['trees']} trees x {r['leaves']} leaves, depth {r['max_depth']}; "
            f"CV AUC {r['cv_auc']:.3f} ± {r['cv_auc_std']:.3f}, validation AUC {r['model_valid_auc']:.3f})"
            f"{stage}, peak {r['peak_mb']:,.0f} MiB, load average {r['load_before']:.1f} -> {r['load']:.1f}"
        )
        print("  parts (wall s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["parts"].items()))
        OUT_DIR.mkdir(exist_ok=True)
        (OUT_DIR / f"train-{rows}.json").write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
