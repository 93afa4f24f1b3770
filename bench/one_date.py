"""Benchmark one-date scoring: `churn score --as-of D` as a whole process (start-up, loading, features,
scoring, MLflow run), one measurement per call.

    python bench/one_date.py --data DIR --as-of D --config CFG --out FILE.parquet [--churn BIN]
        [--whole-history] [--cold] [--same-as OTHER.parquet]

Runs `BIN --no-progress score --data DIR --as-of D --config CFG --out FILE --no-history --overwrite`
(BIN defaults to this environment's `churn`; pass another checkout's to time its code) and prints
one table row: wall seconds, CPU seconds (user + sys, all threads) and peak resident memory of the
child, the 1-minute load average before and after. With `--cold`, the summaries of older rows and
the checked window rows kept in the configured workdir (`<workdir>/cache/older-rows`,
`<workdir>/cache/window-rows`) are removed first: the run computes them all, as the first daily
run does. With `--same-as`, also whether the scores equal those of an
earlier run (exactly, and the largest difference in churn_probability).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_peak_memory_gib() -> float:
    """Peak resident set size of the largest finished child process (maxrss is KiB on Linux)."""
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return maxrss / 2**30 if sys.platform == "darwin" else maxrss / 2**20


def compare(scores: Path, other: Path) -> str:
    """'identical' or what differs between two scores files (rows in account order)."""
    a = pd.read_parquet(scores).sort_values("account_id").reset_index(drop=True)
    b = pd.read_parquet(other).sort_values("account_id").reset_index(drop=True)
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        return f"identical ({len(a):,} rows x {a.shape[1]} columns)"
    except AssertionError as exc:
        if len(a) != len(b):
            return f"different row counts {len(a):,} vs {len(b):,}"
        gap = float((a["churn_probability"] - b["churn_probability"]).abs().max())
        return f"differ: {str(exc).splitlines()[0]}; max |churn_probability difference| {gap:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--churn", default=shutil.which("churn") or "churn")
    parser.add_argument("--whole-history", action="store_true", help="pass --whole-history (this checkout only)")
    parser.add_argument("--cold", action="store_true", help="remove the workdir's kept summaries and window rows first")
    parser.add_argument("--same-as", type=Path)
    args = parser.parse_args()
    if args.cold:
        workdir = (yaml.safe_load(Path(args.config).read_text()) or {}).get("workdir")
        if not workdir:
            sys.exit("--cold: the config names no workdir (where the summaries are kept).")
        for kept in ("older-rows", "window-rows"):
            shutil.rmtree(Path(workdir) / "cache" / kept, ignore_errors=True)
    command = [args.churn, "--no-progress", "score", "--data", args.data, "--as-of", args.as_of]
    command += ["--config", args.config, "--out", str(args.out), "--no-history", "--overwrite"]
    command += ["--whole-history"] if args.whole_history else []
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    if finished.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({finished.returncode}):\n{finished.stderr}{finished.stdout}")
    print(finished.stdout.strip().splitlines()[0])
    print("| command | as_of | wall s | CPU s | peak memory GiB | load before / after |")
    print(
        f"| `{' '.join(command[2:])}`{' (cold)' if args.cold else ''} ({args.churn}) | {args.as_of} | {seconds:.1f} | "
        f"{child_cpu_seconds():.1f} | {child_peak_memory_gib():.2f} | {load_before:.1f} / {load_after:.1f} |"
    )
    if args.same_as is not None:
        print(f"scores vs {args.same_as}: {compare(args.out, args.same_as)}")


if __name__ == "__main__":
    main()
