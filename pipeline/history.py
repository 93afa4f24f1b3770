"""The score history: every scoring run's table, kept so trends and alerts can look back.

Layout: `<workdir>/history/as_of=YYYY-MM-DD/part.parquet`, one partition per scoring date (the
hive convention, so DuckDB, Spark or pyarrow can read the folder directly). Each partition is
written whole and atomically; scoring the same date again replaces it, so re-running a job is
idempotent. The `model_version` column inside says which model produced each run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from features.table import ACCOUNT_ID, AS_OF
from pipeline.errors import ChurnError
from pipeline.io import atomic_path

PARTITION_PREFIX = f"{AS_OF}="
PART_FILE = "part.parquet"
TREND_METRICS: tuple[str, ...] = ("health_score", "churn_probability")


def partition_path(history_dir: str | Path, as_of: pd.Timestamp) -> Path:
    return Path(history_dir) / f"{PARTITION_PREFIX}{as_of:%Y-%m-%d}" / PART_FILE


def _scoring_dates(scores: pd.DataFrame, what: str) -> pd.Series:
    if AS_OF not in scores.columns or ACCOUNT_ID not in scores.columns:
        raise ChurnError(f"{what} needs '{ACCOUNT_ID}' and '{AS_OF}' columns; it has {list(scores.columns)[:10]}.")
    dates = pd.to_datetime(scores[AS_OF], errors="coerce")
    if dates.isna().any():
        rows = list(scores.index[dates.isna()][:3])
        raise ChurnError(f"{what}: {int(dates.isna().sum())} row(s) have no valid '{AS_OF}' date (rows {rows}).")
    return dates.dt.normalize()


def append_scores(history_dir: str | Path, scores: pd.DataFrame) -> list[Path]:
    """Store a scoring run, replacing any earlier run of the same as_of date(s). Returns the files written.

    All partitions are written before any replaces an old one, so a failure leaves the history as it was.
    """
    dates = _scoring_dates(scores, "The scores to append to the history")
    written = []
    with ExitStack() as stack:
        for day, run in scores.groupby(dates, sort=True):
            target = partition_path(history_dir, day)
            tmp_dir = stack.enter_context(atomic_path(target.parent))
            tmp_dir.mkdir()
            run.reset_index(drop=True).to_parquet(tmp_dir / PART_FILE, index=False)
            written.append(target)
    return written


def _partitions(history_dir: str | Path) -> dict[pd.Timestamp, Path]:
    """Scoring date -> partition file, oldest first (folders that are not partitions are ignored)."""
    found = {}
    for path in Path(history_dir).glob(f"{PARTITION_PREFIX}*/{PART_FILE}"):
        day = pd.to_datetime(path.parent.name.removeprefix(PARTITION_PREFIX), format="%Y-%m-%d", errors="coerce")
        if not pd.isna(day):
            found[day] = path
    return dict(sorted(found.items()))


def _read(paths: Iterable[Path], columns: Sequence[str] | None) -> pd.DataFrame:
    frames = []
    for path in paths:
        wanted = None if columns is None else [c for c in columns if c in pq.read_schema(path).names]
        frames.append(pd.read_parquet(path, columns=wanted))
    if not frames:
        return pd.DataFrame(columns=list(columns or (ACCOUNT_ID, AS_OF)))
    return pd.concat(frames, ignore_index=True)


def read_history(history_dir: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Every stored run, oldest first (empty frame when there is no history yet).

    `columns` limits what is read; columns a run lacks are left out of that run's rows.
    """
    return _read(_partitions(history_dir).values(), columns)


def previous_scores(
    history_dir: str | Path, as_of: str | pd.Timestamp, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """The latest stored run strictly before `as_of` (empty frame when there is none)."""
    cutoff = pd.Timestamp(as_of).normalize()
    earlier = [path for day, path in _partitions(history_dir).items() if day < cutoff]
    return _read(earlier[-1:], columns)


def trends(history: pd.DataFrame, current: pd.DataFrame, days: Sequence[int] = (30, 90)) -> pd.DataFrame:
    """Change of health score and churn probability over each span in `days`, aligned with `current`.

    For a span of d days the reference is the latest run at or before as_of - d (the closest
    earlier run far enough back); an account absent from that run, or no such run, gives NaN.
    Columns: `<metric>_change_<d>d` for each metric of TREND_METRICS present in `current`.
    """
    current_dates = _scoring_dates(current, "The current scores")
    metrics = [m for m in TREND_METRICS if m in current.columns]
    result = pd.DataFrame(index=current.index)
    for span in days:
        for metric in metrics:
            result[f"{metric}_change_{span}d"] = float("nan")
    if history.empty or not metrics:
        return result
    history_dates = _scoring_dates(history, "The score history")
    run_dates = history_dates.drop_duplicates().sort_values()
    for as_of, rows in current.groupby(current_dates):
        for span in days:
            eligible = run_dates[run_dates <= as_of - pd.Timedelta(days=span)]
            if eligible.empty:
                continue
            reference = history[history_dates == eligible.iloc[-1]].drop_duplicates(ACCOUNT_ID, keep="last")
            reference = reference.set_index(ACCOUNT_ID)
            for metric in metrics:
                if metric not in reference.columns:
                    continue
                before = rows[ACCOUNT_ID].map(reference[metric]).astype(float)
                result.loc[rows.index, f"{metric}_change_{span}d"] = rows[metric].astype(float) - before
    return result
