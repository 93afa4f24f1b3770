"""The checked window rows kept between scoring runs (`pipeline/window_cache.py`) never change a
result: a run that takes them from the cache gives exactly the features and validation report of
one that reads the files; an edited file is read again (its entry replaced, the others kept); a
later date reuses the entries for `REUSE_DAYS`, then stores new ones; a bad value is reported as
without a cache and never kept; rows whose fate depends on the other tables (unknown accounts) are
judged every run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.build import build_features
from features.errors import DataContractError
from features.settings import FeatureSettings
from pipeline.loading import Dataset, load_dataset
from pipeline.recent_history import RECENT_TABLES, read_start
from pipeline.window_cache import REUSE_DAYS

WHEN = "2025-01-15"


def _load(data: Path, cache: Path | None, when: str = WHEN) -> Dataset:
    dataset = load_dataset(data, read_from=read_start([when], FeatureSettings()), window_cache=cache)
    dataset.con.execute("SET threads = 1")  # sums in one order: equal inputs give bit-identical outputs
    return dataset


def _features(dataset: Dataset, model) -> pd.DataFrame:
    return build_features(dataset, [WHEN], FeatureSettings(), 30, feature_set=model.feature_set_)


def _rows(dataset: Dataset, name: str) -> pd.DataFrame:
    """A table's rows in one order (a parallel read of several files has none)."""
    return dataset.con.execute(f"SELECT * FROM {name} ORDER BY ALL").df()


def _same_load(cached: Dataset, uncached: Dataset) -> None:
    """Equal report (counts, first/last, warnings with their example rows) and event rows, summary
    rows included: what the features are computed from (equal features: the first test)."""
    assert cached.report.tables == uncached.report.tables
    assert cached.report.warnings == uncached.report.warnings
    assert cached.data_end == uncached.data_end
    for name in RECENT_TABLES:
        pd.testing.assert_frame_equal(_rows(cached, name), _rows(uncached, name), check_exact=True)


def _entries(cache: Path) -> dict[str, int]:
    """Entry file name -> inode: a rewritten entry gets a new inode."""
    return {p.name: p.stat().st_ino for p in sorted(cache.rglob("*.parquet"))}


@pytest.fixture(scope="module")
def model(book):
    from pipeline.tracking import load_model
    from tests.conftest import book_settings

    settings, result = book_settings(book, "window-model")
    return load_model(result.model_uri, settings)


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


def test_a_cached_run_equals_an_uncached_one_and_an_edited_file_is_read_again(data, model, tmp_path) -> None:
    cache = tmp_path / "cache"
    uncached = _load(data, None)
    _same_load(_load(data, cache), uncached)  # reads every file, stores their entries
    entries = _entries(cache)
    assert len(entries) == 2 * 3  # per table and file
    cached = _load(data, cache)  # reads no file
    assert _entries(cache) == entries
    _same_load(cached, uncached)
    pd.testing.assert_frame_equal(_features(cached, model), _features(uncached, model), check_exact=True)

    # Edit the window rows of one file: it is read again (the other two taken from the cache).
    part = data / "usage_events" / "part-1.parquet"
    frame = pq.read_table(part).to_pandas()
    recent = frame["ts"] >= read_start([WHEN], FeatureSettings())
    frame.loc[recent, "quantity"] = frame.loc[recent, "quantity"] * 2 + 1
    _write(frame, part)
    edited = _load(data, cache)
    assert not _rows(edited, "usage_events").equals(_rows(uncached, "usage_events"))
    _same_load(edited, _load(data, None))
    after = _entries(cache)
    changed = set(after) - set(entries)
    assert len(changed) == 1 and len(after) == len(entries)  # part-1's entry replaced, the others kept
    assert {n: i for n, i in after.items() if n not in changed} == {n: i for n, i in entries.items() if n in after}


def test_a_later_date_reuses_the_entries_then_refreshes_them(data, tmp_path) -> None:
    cache = tmp_path / "cache"
    _load(data, cache)
    entries = _entries(cache)
    later = str((pd.Timestamp(WHEN) + pd.Timedelta(days=REUSE_DAYS)).date())
    _same_load(_load(data, cache, later), _load(data, None, later))
    assert _entries(cache) == entries  # rows from the earlier start on, those from the later one kept
    too_late = str((pd.Timestamp(later) + pd.Timedelta(days=1)).date())
    _same_load(_load(data, cache, too_late), _load(data, None, too_late))
    assert len(_entries(cache)) == len(entries) and not set(_entries(cache)) & set(entries)  # all replaced


def test_a_bad_value_is_reported_as_without_a_cache_and_never_kept(data, tmp_path) -> None:
    cache = tmp_path / "cache"
    _load(data, cache)
    entries = _entries(cache)
    part = data / "logins" / "part-2.parquet"  # after two kept files: its rows are numbered after theirs
    frame = pq.read_table(part).to_pandas()
    frame.loc[frame.index[-3:], "ts"] = pd.NaT  # read (a row without a date may be recent), then fatal
    _write(frame, part)
    with pytest.raises(DataContractError) as uncached:
        _load(data, None)
    with pytest.raises(DataContractError) as cached:
        _load(data, cache)
    assert str(cached.value) == str(uncached.value)
    assert "logins.ts: 3 values are missing (rows " in str(cached.value)
    assert _entries(cache) == entries  # nothing stored for the bad file


def test_rows_of_unknown_accounts_are_judged_every_run(data, tmp_path) -> None:
    """A kept file's rows of an account missing from `accounts` are excluded (and cited) each run."""
    cache = tmp_path / "cache"
    _load(data, cache)
    accounts = pq.read_table(data / "accounts.parquet").to_pandas()
    dropped = pq.read_table(data / "usage_events" / "part-2.parquet").to_pandas()["account_id"].iloc[-1]
    _write(accounts[accounts["account_id"] != dropped], data / "accounts.parquet")
    cached, uncached = _load(data, cache), _load(data, None)
    unknown = [w for w in cached.report.warnings if w.problem == "rows for accounts not in accounts"]
    assert {w.table for w in unknown} >= {"usage_events"}
    _same_load(cached, uncached)
