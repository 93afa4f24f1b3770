"""Benchmark `churn generate`: events per second per table and peak memory.

    python bench/generate.py --accounts 2000 [--years 3] [--seed 0] [--usage-intensity 1] [--out bench/out/generated]

`--usage-intensity` multiplies usage events per active user (the bulk stream; default 1 leaves
every file unchanged): the 80M-event shape of issue 13 is `--accounts 6000 --usage-intensity 12.5`
(about 13,000 events per account instead of ~2,300).

Prints one line per table (rows, seconds spent generating and writing it, rows per second) and
the process's peak resident memory (getrusage maxrss).
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

from features.contract import EVENT_TABLES
from pipeline.synthetic import generate


def peak_memory_mb() -> float:
    """Peak resident set size of this process in MiB (maxrss is KiB on Linux, bytes on macOS)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--usage-intensity", type=float, default=1.0, help="usage events per active user x this")
    parser.add_argument("--out", type=Path, default=Path("bench/out/generated"))
    args = parser.parse_args()

    summary = generate(
        args.out, n_accounts=args.accounts, seed=args.seed, years=args.years, usage_intensity=args.usage_intensity
    )
    memory = peak_memory_mb()
    for name in EVENT_TABLES:
        rows, seconds = summary.rows[name], summary.table_seconds[name]
        print(
            f"generate {name:<16} {rows:>12,} rows {seconds:7.2f} s {rows / max(seconds, 1e-9):>12,.0f} rows/s "
            f"peak {memory:,.0f} MiB"
        )
    print(
        f"generate {'all events':<16} {summary.events:>12,} rows {summary.seconds:7.2f} s "
        f"{summary.events / summary.seconds:>12,.0f} rows/s peak {memory:,.0f} MiB "
        f"({summary.accounts:,} accounts, {args.years:g} years, churn per renewal {summary.churn_rate:.1%})"
    )


if __name__ == "__main__":
    main()
