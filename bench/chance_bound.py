"""Benchmark: the chance test's bootstrap lower bound of the ROC AUC, which every `churn train` now runs.

Compares `models.comparison.auc_lower_bound` (each resample as weights on the rows, one weighted
Mann-Whitney statistic over the distinct scores) with the obvious alternative, `roc_auc_score` on
each resample's repeated rows, on the same 400 account-level resamples, and checks that both give the
same bound. Rows: 8 snapshots per account, 20 % churned, scores with some signal.

Run from the repository root: `.venv/bin/python -m bench.chance_bound` (about two minutes; `--rows 30000`
alone takes seconds).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from models.comparison import auc_lower_bound, cluster_bootstrap_indices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[30_000, 300_000])
    parser.add_argument("--resamples", type=int, default=400)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    for rows in args.rows:
        rng = np.random.default_rng(0)
        accounts = pd.Series(rng.integers(0, rows // 8, rows)).astype(str)
        labels = (rng.random(rows) < 0.2).astype(int)
        scores = labels * 0.3 + rng.random(rows)
        started = time.perf_counter()
        bound = auc_lower_bound(labels, scores, accounts, n_boot=args.resamples)
        weighted = time.perf_counter() - started
        started = time.perf_counter()
        aucs = [roc_auc_score(labels[i], scores[i]) for i in cluster_bootstrap_indices(accounts, args.resamples, 0)]
        plain = time.perf_counter() - started
        same = np.isclose(bound, np.percentile(aucs, 5))
        print(
            f"{rows:,} rows: weighted {weighted:.2f} s ({rows * args.resamples / weighted:,.0f} rows/s), "
            f"roc_auc_score per resample {plain:.2f} s: {plain / weighted:.0f}x; same bound: {same} ({bound:.6f})"
        )


if __name__ == "__main__":
    main()
