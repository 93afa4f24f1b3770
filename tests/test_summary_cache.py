"""The summaries of older rows kept between scoring runs (`pipeline/summary_cache.py`) never change a
score: a run that reads them gives exactly the features of one that computes them, and editing,
adding or removing an input file makes the run summarise that file again (or no longer read it).
Also: a time-partitioned (hive folder) copy of the data gives the same one-date features, and a
time limit before the read start makes the run read everything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.build import build_features
from features.settings import FeatureSettings
from pipeline.loading import load_dataset
from pipeline.recent_history import RECENT_TABLES, read_start
from pipeline.summary_cache import file_identity
from tests.conftest import book_settings

WHEN = "2025-01-15"


def _features(data: Path, model, cache: Path | None = None, *, whole: bool = False, **options) -> pd.DataFrame:
    read_from = None if whole else read_start([WHEN], FeatureSettings())
    dataset = load_dataset(data, read_from=read_from, summary_cache=cache, **options)
    dataset.con.execute("SET threads = 1")  # sums in one order: equal inputs give bit-identical outputs
    return build_features(dataset, [WHEN], FeatureSettings(), 30, feature_set=model.feature_set_)


def _entries(cache: Path) -> dict[str, int]:
    """Entry file name -> inode: a rewritten entry gets a new inode."""
    return {p.name: p.stat().st_ino for p in sorted(cache.rglob("*.parquet"))}


@pytest.fixture(scope="module")
def model(book):
    from pipeline.tracking import load_model

    settings, result = book_settings(book, "cache-model")
    return load_model(result.model_uri, settings)


@pytest.fixture(scope="module")
def expected(book, model) -> pd.DataFrame:
    """The date's features computed without a cache; they equal the whole history's (test_recent_history)."""
    return _features(book[1], model)


@pytest.fixture()
def data(book, tmp_path: Path) -> Path:
    """A copy of the book's data whose recent tables are in three files each (one can be edited alone)."""
    target = tmp_path / "data"
    shutil.copytree(book[1], target, ignore=shutil.ignore_patterns("_truth"))
    for name in RECENT_TABLES:
        frame = pq.read_table(target / name).to_pandas()
        shutil.rmtree(target / name)
        (target / name).mkdir()
        for part, rows in enumerate(frame.iloc[i::3] for i in range(3)):
            _write(rows, target / name / f"part-{part}.parquet")
    return target


def _write(frame: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def test_a_cached_run_gives_the_features_of_an_uncached_one_and_rewrites_nothing(data, model, tmp_path) -> None:
    cache = tmp_path / "cache"
    uncached = _features(data, model)
    first = _features(data, model, cache)
    entries = _entries(cache)
    assert len(entries) == 3 * 3  # logins: days; usage events: days and workflow steps; per file
    second = _features(data, model, cache)
    assert _entries(cache) == entries  # the second run read the entries, wrote none
    pd.testing.assert_frame_equal(first, uncached, check_exact=True)
    pd.testing.assert_frame_equal(second, uncached, check_exact=True)


def test_editing_adding_or_removing_a_file_summarises_it_again(data, model, expected, tmp_path) -> None:
    cache = tmp_path / "cache"
    _features(data, model, cache)
    start = read_start([WHEN], FeatureSettings())
    usage = data / "usage_events"

    # Edit: drop one file's older rows of the most active accounts (features then change).
    part = usage / "part-0.parquet"
    frame = pq.read_table(part).to_pandas()
    busy = frame["account_id"].value_counts().index[:20]
    before = _entries(cache)
    _write(frame[~(frame["account_id"].isin(busy) & (frame["ts"] < start))], part)
    edited = _features(data, model, cache)
    assert not edited.equals(expected)
    pd.testing.assert_frame_equal(edited, _features(data, model), check_exact=True)
    after = _entries(cache)
    changed = set(after) - set(before)
    assert len(changed) == 2 and len(after) == len(before)  # part-0's two entries replaced, the others kept
    assert {name: after[name] for name in after if name not in changed} == {
        name: before[name] for name in before if name in after
    }

    # Add: a file with older rows of the busy accounts back; remove: the edited file.
    _write(frame[frame["account_id"].isin(busy) & (frame["ts"] < start)], usage / "part-3.parquet")
    pd.testing.assert_frame_equal(_features(data, model, cache), _features(data, model), check_exact=True)
    part.unlink()
    pd.testing.assert_frame_equal(_features(data, model, cache), _features(data, model), check_exact=True)


def test_a_file_rewritten_with_its_old_modification_time_is_summarised_again(data, model, tmp_path) -> None:
    cache = tmp_path / "cache"
    _features(data, model, cache)
    part = data / "logins" / "part-1.parquet"
    identity, stat = file_identity(part), part.stat()
    frame = pq.read_table(part).to_pandas()
    latest = frame.groupby("account_id")["ts"].idxmax()
    frame = frame.drop(index=latest.iloc[:30])  # the last login of 30 accounts: gone
    _write(frame, part)
    os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as a copy keeping times would
    assert file_identity(part)["mtime_ns"] == identity["mtime_ns"]
    assert file_identity(part)["footer"] != identity["footer"]
    pd.testing.assert_frame_equal(_features(data, model, cache), _features(data, model), check_exact=True)


def test_churn_score_keeps_the_summaries_in_the_workdir_and_scores_as_the_whole_history(book, data) -> None:
    from pipeline.stages import load, score_date

    settings, result = book_settings(book, "cache-scores")
    when = pd.Timestamp(WHEN).date()
    runs = []
    for read_from in (None, read_start([WHEN], FeatureSettings()), read_start([WHEN], FeatureSettings())):
        dataset = load(data, settings, None, read_from)
        dataset.con.execute("SET threads = 1")
        runs.append(score_date(dataset, when, settings, result.model_uri, history=False).scores)
    assert len(list((settings.workdir_path / "cache" / "older-rows").rglob("*.parquet"))) == 3 * 3
    assert len(list((settings.workdir_path / "cache" / "window-rows").rglob("*.parquet"))) == 2 * 3  # the third run's
    pd.testing.assert_frame_equal(runs[1], runs[0], check_exact=True)
    pd.testing.assert_frame_equal(runs[2], runs[0], check_exact=True)


def test_a_time_partitioned_copy_gives_the_same_features(data, model, expected, tmp_path) -> None:
    """Hive folders `event_date=YYYY-MM-DD/` (a lakehouse export): read from the start on, cached alike."""
    for name in RECENT_TABLES:
        frame = pq.read_table(data / name).to_pandas()
        shutil.rmtree(data / name)
        frame = frame.assign(event_date=frame["ts"].dt.date.astype(str)).sort_values(["ts", "account_id"])
        pq.write_to_dataset(pa.Table.from_pandas(frame, preserve_index=False), data / name, ["event_date"])
    assert len(list((data / "usage_events").iterdir())) > 300
    cache = tmp_path / "cache"
    pd.testing.assert_frame_equal(_features(data, model, cache), expected, check_exact=True)
    pd.testing.assert_frame_equal(_features(data, model, cache), expected, check_exact=True)


def test_a_time_limit_before_the_read_start_reads_everything(data) -> None:
    """Rows after `--data-end` are excluded: older rows could be, so nothing is summarised."""
    start = read_start([WHEN], FeatureSettings())
    dataset = load_dataset(data, data_end=start - pd.Timedelta(days=10), read_from=start)
    assert dataset.read_from == {}
    dataset = load_dataset(data, data_end=start + pd.Timedelta(days=10), read_from=start)
    assert dataset.read_from == dict.fromkeys(RECENT_TABLES, start)
