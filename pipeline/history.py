"""The score history: every scoring run's table, kept so trends and alerts can look back.

Layout: `<workdir>/history/as_of=YYYY-MM-DD/part.parquet`, one partition per scoring date (the
hive convention). Each part holds its `as_of` column too: DuckDB reads the folder as it is, while pyarrow (and
pandas) refuse to merge that timestamp with the folder names' text unless told `partitioning=None`.
A partition is staged under a hidden name in the history folder and renamed onto its `part.parquet`, which replaces the
file atomically: scoring the same date again replaces it without a moment where the date is
missing, so re-running a job is idempotent. The `model_version` column inside says which model
produced each run. The scoring commit (`pipeline/commit.py`) stages partitions the same way.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from features.errors import ChurnError, counted
from features.table import ACCOUNT_ID, AS_OF
from models.scores import SCORECARD_HASH, upgrade
from pipeline.io import Staged, remove_stale_temporaries, temporary_sibling, write_staged

PARTITION_PREFIX = f"{AS_OF}="
PART_FILE = "part.parquet"
TREND_METRICS: tuple[str, ...] = ("health_score", "churn_probability")
SOURCE_KEY = b"churn.data"
"""Parquet metadata of a history partition: the data folder its run scored (named when another book comes)."""
SAME_BOOK_SHARE = 0.5
"""A run of a date the history holds must share this share of the accounts of the smaller of the two runs
(same id, same landing day): a re-run of the same book shares nearly all, another export (whose run would
replace the book's partition of that date) almost none. A run of another date is another book only when the
ids it shares with the history's nearest run mostly landed on other days (two exports numbering their
accounts alike, A001...): ids it does not share compare nothing, and a book with heavy churn scored months
later shares few. Runs of fewer than `SAME_BOOK_MIN` accounts are not judged (an `--include-churned` run's
partitions of a few ended accounts at their last days)."""
SAME_BOOK_MIN = 20
_REFERENCE_AS_OF = "_reference_as_of"
_CARD = "_scorecard_hash"
SCORECARD_BOUND: tuple[str, ...] = ("health_score",)  # trends that mean something only within one scorecard


def partition_path(history_dir: str | Path, as_of: pd.Timestamp) -> Path:
    return Path(history_dir) / f"{PARTITION_PREFIX}{as_of:%Y-%m-%d}" / PART_FILE


def later_dates(history_dir: str | Path, as_of: str | pd.Timestamp) -> list[str]:
    """The scoring dates of the history after `as_of`: a backfill's later runs, whose trends and alerts were
    computed without it."""
    day = pd.Timestamp(as_of).normalize()
    return [f"{d:%Y-%m-%d}" for d in _partitions(history_dir) if d > day]


def _scoring_dates(scores: pd.DataFrame, what: str) -> pd.Series:
    if AS_OF not in scores.columns or ACCOUNT_ID not in scores.columns:
        raise ChurnError(f"{what} needs '{ACCOUNT_ID}' and '{AS_OF}' columns; it has {list(scores.columns)[:10]}.")
    dates = pd.to_datetime(scores[AS_OF], errors="coerce")
    if dates.isna().any():
        rows = list(scores.index[dates.isna()][:3])
        raise ChurnError(
            f"{what}: {counted(int(dates.isna().sum()), 'row has', 'rows have')} no valid '{AS_OF}' date (rows {rows})."
        )
    return dates.dt.normalize()


def stage_partitions(history_dir: str | Path, scores: pd.DataFrame, token: str) -> list[tuple[pd.DataFrame, Staged]]:
    """Per scoring date in `scores`: its rows and where they are staged (hidden, in the history folder)."""
    history_dir = Path(history_dir)
    dates = _scoring_dates(scores, "The scores to append to the history")
    staged = []
    for day, run in scores.groupby(dates, sort=True):
        target = partition_path(history_dir, day)
        for path, kind in ((target.parent, "folder"), (target, "file")):  # refused before anything is written
            if path.exists() and not (path.is_dir() if kind == "folder" else path.is_file()):
                raise ChurnError(
                    f"Score history: {path} should be the partition {kind} of {day.date()} but is not a {kind}; "
                    "move it out of the history folder (churn never replaces what it did not write)."
                )
        remove_stale_temporaries(target.parent)  # partition folders of killed runs of earlier versions
        staged.append(
            (
                run.reset_index(drop=True),
                Staged(temporary_sibling(history_dir / target.parent.name, "stage", token), target),
            )
        )
    return staged


def append_scores(history_dir: str | Path, scores: pd.DataFrame) -> list[Path]:
    """Store a scoring run, replacing any earlier run of the same as_of dates. Returns the files written.

    All partitions are staged before any replaces an old one, so a failure leaves the history as it was.
    """
    staged = stage_partitions(history_dir, scores, secrets.token_hex(4))
    try:
        for run, item in staged:
            write_staged(run, [item], "history", "parquet")
        for _, item in staged:
            item.place()
    finally:
        for _, item in staged:
            item.discard()
    return [item.target for _, item in staged]


@dataclass(frozen=True)
class OtherBook:
    """A run whose accounts are not those of the history's nearest run: another book in the same workdir."""

    as_of: str  # the nearest run's date
    source: str | None  # its data folder, when its partition records it
    earlier: int  # accounts of that run
    now: int  # accounts of this run
    same: int  # accounts of both, same id and same landing day
    alike: int  # ids of both whose landing days differ


def landing_days(frame: pd.DataFrame) -> pd.Series:
    """Each row's account landing day (as_of - tenure_days): with the id, what tells one book's account from
    another's of the same id (two exports that number their accounts alike, A001...)."""
    tenure = pd.to_numeric(frame["tenure_days"], errors="coerce")
    return _scoring_dates(frame, "The scores") - pd.to_timedelta(tenure.round(), unit="D")


def other_book(history_dir: str | Path, scored: pd.DataFrame) -> OtherBook | None:
    """`OtherBook` when this run (`scored`: account_id, as_of, tenure_days) and the history's run nearest its
    date (that date's own run first, then the earlier one on a tie) are two books by `SAME_BOOK_SHARE`'s rule,
    an account being the same in both by id and landing day; None otherwise, or when either has no landing
    days (prepared tables). A book's daily export folder changes name, its accounts do not."""
    found = _partitions(history_dir)
    if not found or scored.empty or "tenure_days" not in scored.columns:
        return None
    as_of = _scoring_dates(scored, "The scores").max()  # ended accounts (--include-churned) at earlier days
    day = min(found, key=lambda d: (abs(d - as_of), d > as_of))
    path = found[day]
    earlier = _read([path], [ACCOUNT_ID, AS_OF, "tenure_days"])
    if "tenure_days" not in earlier.columns or earlier.empty:
        return None
    keys = {
        name: pd.DataFrame({ACCOUNT_ID: frame[ACCOUNT_ID].astype(str), "_landed": landing_days(frame)})
        .dropna()
        .drop_duplicates(ACCOUNT_ID)
        for name, frame in (("earlier", earlier), ("now", scored))
    }
    both = keys["earlier"].merge(keys["now"], on=ACCOUNT_ID, suffixes=("_earlier", "_now"))
    same = int((both["_landed_earlier"] == both["_landed_now"]).sum())
    smaller = min(len(keys["earlier"]), len(keys["now"]))
    alike = same < SAME_BOOK_SHARE * smaller if day == as_of else same < len(both) - same
    if smaller < SAME_BOOK_MIN or not alike:
        return None
    source = (pq.read_schema(path).metadata or {}).get(SOURCE_KEY)
    return OtherBook(
        f"{day:%Y-%m-%d}",
        source.decode() if source else None,
        len(keys["earlier"]),
        len(keys["now"]),
        same,
        len(both) - same,
    )


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
        try:
            wanted = None if columns is None else [c for c in columns if c in pq.read_schema(path).names]
            frames.append(upgrade(pd.read_parquet(path, columns=wanted)))  # runs written by earlier versions
        except (OSError, ValueError) as exc:  # pyarrow's errors of a damaged file (ArrowInvalid is a ValueError)
            raise ChurnError(
                f"Score history partition {path} cannot be read ({exc}); nothing was written. Move its folder "
                f"{path.parent.name} out of {path.parent.parent} (the trends and alerts of later runs lose that "
                "date) or restore it from a backup, then run again."
            ) from exc
    if not frames:
        return pd.DataFrame(columns=list(columns or (ACCOUNT_ID, AS_OF)))
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class HistoryRead:
    """The partitions a scoring run compares with, as they were when it read them: at its commit the run
    checks that no other run put one in place since (two runs of one working folder at once, e.g. a
    scheduler's backfill running dates in parallel), or its trends and alerts would land compared with a
    history that is not the one they land in -- the later date's alerts against the run before the earlier one.

    The partitions dated before `as_of` (what trends and alerts read), or every other date with
    `every_date` (`--rescore-history` rewrites them all), each as (inode, size, modification time).
    """

    history_dir: Path
    as_of: pd.Timestamp
    every_date: bool = False
    seen: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @classmethod
    def now(cls, history_dir: str | Path, as_of: str | pd.Timestamp, every_date: bool = False) -> HistoryRead:
        day = pd.Timestamp(as_of).normalize()
        return cls(Path(history_dir), day, every_date, _partition_state(Path(history_dir), day, every_date))

    def changed(self) -> list[str]:
        """The scoring dates whose partition was added, replaced or removed since the run read the history."""
        now = _partition_state(self.history_dir, self.as_of, self.every_date)
        return sorted(day for day in self.seen.keys() | now.keys() if self.seen.get(day) != now.get(day))


def _partition_state(history_dir: Path, as_of: pd.Timestamp, every_date: bool) -> dict[str, tuple[int, int, int]]:
    state = {}
    for day, path in _partitions(history_dir).items():
        if day < as_of or (every_date and day != as_of):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            state[f"{day:%Y-%m-%d}"] = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return state


def read_history(history_dir: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Every stored run, oldest first (empty frame when there is no history yet).

    `columns` limits what is read; columns a run lacks are left out of that run's rows.
    """
    return _read(_partitions(history_dir).values(), columns)


def latest_before(history: pd.DataFrame, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """Each account's latest row of a history frame strictly before `as_of`, oldest first (empty when none).

    What "since the previous scoring run" compares with: the previous run's row for every account it
    scored, and for an account it did not score (a gap between two terms, an account back after it
    left) the last run that did -- compared with the previous run only, such an account raised no
    drop or band alert however far it fell while away.
    """
    if history.empty:
        return history
    dates = pd.to_datetime(history[AS_OF]).dt.normalize()
    before = dates < pd.Timestamp(as_of).normalize()
    if not before.any():
        return history.iloc[0:0]
    earlier = history[before].assign(**{_REFERENCE_AS_OF: dates[before]}).sort_values(_REFERENCE_AS_OF, kind="stable")
    latest = ~earlier[ACCOUNT_ID].astype(str).duplicated(keep="last")
    return earlier[latest].drop(columns=_REFERENCE_AS_OF).reset_index(drop=True)


def trends(history: pd.DataFrame, current: pd.DataFrame, days: Sequence[int] = (30, 90)) -> pd.DataFrame:
    """Change of health score and churn probability over each span in `days`, aligned with `current`.

    For a span of d days an account's reference is its run nearest to as_of - d (the older one on
    a tie), accepted only within d/2 days of that date. Runs rarely fall exactly d days apart:
    monthly runs thus get a 30-day change from the run one month back even after a 28-day
    February, while a run 200 days old never passes for a 90-day reference. The window
    [as_of - 3d/2, as_of - d/2] also keeps a re-run of the current date out. No run in the
    window gives NaN. Columns: `<metric>_change_<d>d` for each metric of TREND_METRICS in `current`.
    """
    current_dates = _scoring_dates(current, "The current scores")
    metrics = [m for m in TREND_METRICS if m in current.columns]
    result = pd.DataFrame(index=current.index)
    for span in days:
        if span <= 0:
            raise ChurnError(f"Trend spans must be positive numbers of days, e.g. (30, 90); got {list(days)}.")
        for metric in metrics:
            result[f"{metric}_change_{span}d"] = float("nan")
    known = [m for m in metrics if m in history.columns]
    if history.empty or not known:
        return result
    runs = history[[ACCOUNT_ID, *known]].assign(
        **{
            ACCOUNT_ID: history[ACCOUNT_ID].astype(str),
            _REFERENCE_AS_OF: _scoring_dates(history, "The score history").astype("datetime64[us]"),
            _CARD: _scorecards(history, current),
        }
    )
    runs = runs.drop_duplicates([ACCOUNT_ID, _REFERENCE_AS_OF], keep="last").sort_values(
        _REFERENCE_AS_OF, kind="stable"
    )
    now = pd.DataFrame(
        {
            ACCOUNT_ID: current[ACCOUNT_ID].astype(str).to_numpy(),
            _CARD: _scorecards(current, current).to_numpy(),
            "_row": range(len(current)),
        }
    )
    for span in days:
        now["_target"] = (current_dates - pd.Timedelta(days=span)).astype("datetime64[us]").to_numpy()
        for metric in known:
            # The health score compares like with like: only with runs of the same scorecard.
            by = [ACCOUNT_ID, _CARD] if metric in SCORECARD_BOUND else [ACCOUNT_ID]
            usable = runs.dropna(subset=[metric])
            reference = pd.merge_asof(
                now.sort_values("_target", kind="stable"),
                usable[[*by, _REFERENCE_AS_OF, metric]],
                left_on="_target",
                right_on=_REFERENCE_AS_OF,
                by=by,
                direction="nearest",
                tolerance=pd.Timedelta(days=span / 2),
            ).sort_values("_row")
            value = pd.to_numeric(current[metric], errors="coerce").astype(float).to_numpy()
            result[f"{metric}_change_{span}d"] = value - reference[metric].astype(float).to_numpy()
    return result


def _scorecards(frame: pd.DataFrame, current: pd.DataFrame) -> pd.Series:
    """The scorecard hash of each row; rows without one (earlier churn versions) pass for the current
    run's scorecard, since nothing says it changed."""
    fallback = current[SCORECARD_HASH].dropna() if SCORECARD_HASH in current.columns else pd.Series(dtype=str)
    unknown = str(fallback.iloc[0]) if len(fallback) else ""
    if SCORECARD_HASH not in frame.columns:
        return pd.Series(unknown, index=frame.index, dtype=str)
    return frame[SCORECARD_HASH].astype("string").fillna(unknown).astype(str)
