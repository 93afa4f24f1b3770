"""How often the drift flag fires on books drawn from the training distribution, and how often on a
real shift, by book size: the PSI threshold alone against the flag `churn score` raises (threshold
and the sampling-noise level of `models.drift`).

    python bench/drift_noise.py [--reference 5000] [--books 300] [--seed 0]

Each book is one feature: a lognormal, a Poisson count or a normal with 20 % missing values
(in turn), the current sample shifted by 0, 0.5 or 1.0 (location of the log, the normal; the
Poisson mean x 1.5 or x 2). Prints one markdown table: for each shift and size, the share of books
past the threshold (0.25, the default) and the share flagged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0]).resolve() == HERE:
    sys.path.pop(0)  # bench/features.py would shadow the `features` package

from models.drift import drift_report  # noqa: E402

THRESHOLD = 0.25
SIZES = (20, 36, 50, 100, 300, 1000, 6000)
SHIFTS = (0.0, 0.5, 1.0)


def draw(rng: np.random.Generator, kind: int, size: int, shift: float) -> np.ndarray:
    if kind == 0:
        return rng.lognormal(shift, 1, size)
    if kind == 1:
        return rng.poisson(2 * (1 + shift), size).astype(float)
    return np.where(rng.uniform(size=size) < 0.2, np.nan, rng.normal(shift, 1, size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=int, default=5000, help="training (reference) rows")
    parser.add_argument("--books", type=int, default=300, help="books per shift and size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print("| shift | accounts scored | median PSI | past the threshold alone | flagged (threshold and noise level) |")
    print("|---|---|---|---|---|")
    for shift in SHIFTS:
        for size in SIZES:
            rows = []
            for book in range(args.books):
                kind = book % 3
                reference = pd.DataFrame({"x": draw(rng, kind, args.reference, 0.0)})
                current = pd.DataFrame({"x": draw(rng, kind, size, shift)})
                rows.append(drift_report(reference, current, ["x"], THRESHOLD).iloc[0])
            report = pd.DataFrame(rows)
            print(
                f"| {shift} | {size:,} | {report['psi'].median():.3f} | {(report['psi'] > THRESHOLD).mean():.3f} "
                f"| {report['drifted'].mean():.3f} |"
            )


if __name__ == "__main__":
    main()
