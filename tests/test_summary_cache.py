"""The summaries of older rows kept between scoring runs (`pipeline/summary_cache.py`) never change a
score: a run that reads them gives exactly the features of one that computes them, and editing,
adding or removing an input file makes the run summarise that file again (or no longer read it).
Also: a time-partitioned (hive folder) copy of the data gives the same one-date features, and a
time limit before the read start makes the run read everything. And the checked window rows kept
beside them (`pipeline/window_cache.py`): see the last section.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.build import build_features
from features.errors import DataContractError
from features.settings import FeatureSettings
from features.sql.dialect import DUCKDB
from pipeline.loading import Dataset, load_dataset
from pipeline.recent_history import RECENT_TABLES, read_start
from pipeline.summary_cache import UNUSED_DAYS, file_identity
from pipeline.window_cache import REUSE_DAYS
from tests.helpers import book_settings

WHEN = "2025-01-15"


def _features(data: Path, model, cache: Path | None = None, *, whole: bool = False, **options) -> pd.DataFrame:
    read_from = None if whole else read_start([WHEN], FeatureSettings())
    dataset = load_dataset(data, read_from=read_from, summary_cache=cache, **options)
    dataset.con.execute("SET threads = 1")  # sums in one order: equal inputs give bit-identical outputs
    return build_features(dataset, [WHEN], FeatureSettings(), 30, feature_set=model.feature_set_)


def _entry_files(cache: Path) -> list[Path]:
    """The entries in a cache folder: summaries are parquet files, window rows DuckDB files."""
    return sorted(p for p in cache.rglob("*") if p.suffix in (".parquet", ".duckdb"))


def _entries(cache: Path) -> dict[str, int]:
    """Entry file name -> inode: a rewritten entry gets a new inode."""
    return {p.name: p.stat().st_ino for p in _entry_files(cache)}


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
    assert len(list((settings.workdir_path / "cache" / "window-rows").rglob("*.duckdb"))) == 2 * 3  # the third run's
    pd.testing.assert_frame_equal(runs[1], runs[0], check_exact=True)
    pd.testing.assert_frame_equal(runs[2], runs[0], check_exact=True)


def _damage(entry: Path, how: str) -> None:
    """Damage a kept entry as a disk, a copy or a person may: cut short, emptied, its last bytes (a
    parquet footer) flipped, or overwritten by an entry of another kind (workflow steps)."""
    data = entry.read_bytes()
    if how == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        entry.write_bytes(b"")
    elif how == "flipped":
        entry.write_bytes(data[:-80] + bytes(b ^ 0xFF for b in data[-80:-40]) + data[-40:])
    else:
        shutil.copyfile(next(p for p in _entry_files(entry.parent) if p.name.endswith(".steps.parquet")), entry)


@pytest.mark.parametrize("how", ["truncated", "empty", "flipped", "steps"])
def test_a_damaged_summary_is_computed_again_and_rewritten(data, model, tmp_path, caplog, how) -> None:
    cache = tmp_path / "cache"
    expected = _features(data, model, cache)
    entries = _entries(cache)
    damaged = next(p for p in _entry_files(cache / "usage_events") if p.name.endswith(".days.parquet"))
    _damage(damaged, how)
    with caplog.at_level(logging.WARNING, logger="pipeline.summary_cache"):
        pd.testing.assert_frame_equal(_features(data, model, cache), expected, check_exact=True)
    assert f"kept summary {damaged} is damaged" in caplog.text
    after = _entries(cache)
    assert after.keys() == entries.keys() and after[damaged.name] != entries[damaged.name]  # rewritten
    caplog.clear()
    pd.testing.assert_frame_equal(_features(data, model, cache), expected, check_exact=True)
    assert "damaged" not in caplog.text and _entries(cache) == after


def test_a_time_partitioned_copy_gives_the_same_features(data, model, expected, tmp_path) -> None:
    """Hive folders `event_date=YYYY-MM-DD/` (a lakehouse export): read from the start on, cached alike;
    of the window rows, the days before the read start get an empty marker each and are not read again."""
    for name in RECENT_TABLES:
        frame = pq.read_table(data / name).to_pandas()
        shutil.rmtree(data / name)
        frame = frame.assign(event_date=frame["ts"].dt.date.astype(str)).sort_values(["ts", "account_id"])
        pq.write_to_dataset(pa.Table.from_pandas(frame, preserve_index=False), data / name, ["event_date"])
    assert len(list((data / "usage_events").iterdir())) > 300
    cache, window = tmp_path / "cache", tmp_path / "window"
    pd.testing.assert_frame_equal(_features(data, model, cache, window_cache=window), expected, check_exact=True)
    entries, markers = _entries(window), {p.name for p in window.rglob("*.none")}
    days = sum(len(list((data / name).iterdir())) for name in RECENT_TABLES)
    assert entries and markers and len(entries) + len(markers) == days
    pd.testing.assert_frame_equal(_features(data, model, cache, window_cache=window), expected, check_exact=True)
    assert _entries(window) == entries and {p.name for p in window.rglob("*.none")} == markers


def test_a_time_limit_before_the_read_start_reads_everything(data) -> None:
    """Rows after `--data-end` are excluded: older rows could be, so nothing is summarised."""
    start = read_start([WHEN], FeatureSettings())
    dataset = load_dataset(data, data_end=start - pd.Timedelta(days=10), read_from=start)
    assert dataset.read_from == {}
    dataset = load_dataset(data, data_end=start + pd.Timedelta(days=10), read_from=start)
    assert dataset.read_from == dict.fromkeys(RECENT_TABLES, start)


# ------------------------------------------------------------------------------ kept window rows
# The checked window rows kept between scoring runs (`pipeline/window_cache.py`) never change a
# result: a run that takes them from the cache gives exactly the rows and validation report of one
# that reads the files (and the features); an edited file is read again (its entry replaced, the
# others kept); a later date reuses the entries for `REUSE_DAYS`, then stores new ones; a bad value
# is reported as without a cache and never kept; rows whose fate depends on the other tables
# (unknown accounts) are judged every run.


def _load_window(data: Path, cache: Path | None, when: str = WHEN) -> Dataset:
    dataset = load_dataset(data, read_from=read_start([when], FeatureSettings()), window_cache=cache)
    dataset.con.execute("SET threads = 1")  # sums in one order: equal inputs give bit-identical outputs
    return dataset


def _window_features(dataset: Dataset, model) -> pd.DataFrame:
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


def _attached(dataset: Dataset) -> list[bool]:
    """Whether each attached window-row entry is read-only."""
    query = "SELECT readonly FROM duckdb_databases() WHERE database_name LIKE '__window_%'"
    return [readonly for (readonly,) in dataset.con.execute(query).fetchall()]


def _read_in_place(dataset: Dataset) -> bool:
    """Every row from the read start on is read from the attached entries where they are: the run holds
    only the older rows' summary rows itself."""
    start = DUCKDB.timestamp(read_start([WHEN], FeatureSettings()))
    for name in RECENT_TABLES:
        held = dataset.con.execute(f'SELECT count(*) FROM "__stored_{name}"').fetchone()[0]
        query = f"SELECT count_if(ts < {start}), count_if(ts >= {start}) FROM {name}"
        ((older, recent),) = dataset.con.execute(query).fetchall()
        if not held == older > 0 < recent:
            return False
    return True


def test_kept_window_rows_give_the_rows_of_a_read_and_an_edited_file_is_read_again(data, model, tmp_path) -> None:
    cache = tmp_path / "cache"
    uncached = _load_window(data, None)
    _same_load(_load_window(data, cache), uncached)  # reads every file, stores their entries
    entries = _entries(cache)
    assert len(entries) == 2 * 3  # per table and file
    cached = _load_window(data, cache)  # reads no file: scans the entries in place, read-only
    assert _entries(cache) == entries
    assert _attached(cached) == [True] * (2 * 3) and _read_in_place(cached)
    _same_load(cached, uncached)
    pd.testing.assert_frame_equal(_window_features(cached, model), _window_features(uncached, model), check_exact=True)

    # Edit the window rows of one file: it is read again (the other two taken from the cache).
    part = data / "usage_events" / "part-1.parquet"
    frame = pq.read_table(part).to_pandas()
    recent = frame["ts"] >= read_start([WHEN], FeatureSettings())
    frame.loc[recent, "quantity"] = frame.loc[recent, "quantity"] * 2 + 1
    _write(frame, part)
    edited = _load_window(data, cache)
    assert not _rows(edited, "usage_events").equals(_rows(uncached, "usage_events"))
    _same_load(edited, _load_window(data, None))
    after = _entries(cache)
    changed = set(after) - set(entries)
    assert len(changed) == 1 and len(after) == len(entries)  # part-1's entry replaced, the others kept
    assert {n: i for n, i in after.items() if n not in changed} == {n: i for n, i in entries.items() if n in after}


def test_a_later_date_reuses_the_kept_window_rows_then_refreshes_them(data, tmp_path) -> None:
    cache = tmp_path / "cache"
    _load_window(data, cache)
    entries = _entries(cache)
    later = str((pd.Timestamp(WHEN) + pd.Timedelta(days=REUSE_DAYS)).date())
    _same_load(_load_window(data, cache, later), _load_window(data, None, later))
    assert _entries(cache) == entries  # rows from the earlier start on, those from the later one kept
    too_late = str((pd.Timestamp(later) + pd.Timedelta(days=1)).date())
    _same_load(_load_window(data, cache, too_late), _load_window(data, None, too_late))
    assert len(_entries(cache)) == len(entries) and not set(_entries(cache)) & set(entries)  # all replaced


def test_a_bad_window_value_is_reported_as_without_a_cache_and_never_kept(data, tmp_path) -> None:
    cache = tmp_path / "cache"
    _load_window(data, cache)
    entries = _entries(cache)
    part = data / "logins" / "part-2.parquet"  # after two kept files: its rows are numbered after theirs
    frame = pq.read_table(part).to_pandas()
    frame.loc[frame.index[-3:], "ts"] = pd.NaT  # read (a row without a date may be recent), then fatal
    _write(frame, part)
    with pytest.raises(DataContractError) as uncached:
        _load_window(data, None)
    with pytest.raises(DataContractError) as cached:
        _load_window(data, cache)
    assert str(cached.value) == str(uncached.value)
    assert "logins.ts: 3 values are missing (rows " in str(cached.value)
    assert _entries(cache) == entries  # nothing stored for the bad file


def test_rows_at_or_after_the_date_change_nothing_with_kept_window_rows(data, model, expected, tmp_path) -> None:
    """Point in time with the cache: rows at or after the date added to one kept file (its entry no
    longer matches: read again) change no feature; the other files' entries are read in place."""
    cache = tmp_path / "cache"
    _load_window(data, cache)
    when = pd.Timestamp(WHEN)
    for name in RECENT_TABLES:
        part = data / name / "part-1.parquet"
        frame = pq.read_table(part).to_pandas()
        burst = frame[frame["ts"] < when].tail(200).assign(ts=when)  # at the date itself: not before it
        later = frame[frame["ts"] >= when].assign(ts=lambda f: f["ts"] + pd.Timedelta(days=1))
        _write(pd.concat([frame, burst, later]), part)
    dataset = _load_window(data, cache)
    assert len(_attached(dataset)) == 2 * 2  # part-1 of each table read again
    pd.testing.assert_frame_equal(_window_features(dataset, model), expected, check_exact=True)


@pytest.mark.parametrize("how", ["not a database", "truncated", "another table's"])
def test_a_damaged_kept_entry_is_read_again_and_rewritten(data, tmp_path, caplog, how) -> None:
    """An entry that cannot be opened or is damaged (a damaged disk, a half-copied workdir, another
    table's entry under its name) costs the run the file's read, never its result or an error; the
    entry is written again."""
    cache = tmp_path / "cache"
    _load_window(data, cache)
    entries = _entries(cache)
    damaged = _entry_files(cache / "usage_events")[0]
    if how == "not a database":
        damaged.write_bytes(b"not a DuckDB database")
    elif how == "truncated":  # its catalog opens; its rows' blocks are cut off
        damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    else:
        shutil.copyfile(_entry_files(cache / "logins")[0], damaged)
    with caplog.at_level(logging.WARNING, logger="pipeline.window_cache"):
        cached = _load_window(data, cache)
    assert f"kept usage_events rows {damaged} unreadable" in caplog.text
    _same_load(cached, _load_window(data, None))
    after = _entries(cache)
    assert after.keys() == entries.keys() and after[damaged.name] != entries[damaged.name]  # rewritten


def test_kept_window_rows_of_unknown_accounts_are_judged_every_run(data, tmp_path) -> None:
    """A kept file's rows of an account missing from `accounts` are excluded (and cited) each run."""
    cache = tmp_path / "cache"
    _load_window(data, cache)
    accounts = pq.read_table(data / "accounts.parquet").to_pandas()
    dropped = pq.read_table(data / "usage_events" / "part-2.parquet").to_pandas()["account_id"].iloc[-1]
    _write(accounts[accounts["account_id"] != dropped], data / "accounts.parquet")
    cached, uncached = _load_window(data, cache), _load_window(data, None)
    unknown = [w for w in cached.report.warnings if w.problem == "rows for accounts not in accounts"]
    assert {w.table for w in unknown} >= {"usage_events"}
    _same_load(cached, uncached)


def test_other_column_types_are_other_code_and_every_file_is_read_again(data, tmp_path) -> None:
    """A file whose `quantity` is stored as text makes every usage file's rows cast from text."""
    cache = tmp_path / "cache"
    _load_window(data, cache)
    before = _entries(cache)
    part = data / "usage_events" / "part-0.parquet"
    frame = pq.read_table(part).to_pandas()
    _write(frame.assign(quantity=frame["quantity"].map(lambda v: None if pd.isna(v) else repr(v))), part)
    _same_load(_load_window(data, cache), _load_window(data, None))
    after = _entries(cache)
    assert len(after) == len(before) and len(set(after) - set(before)) == 3  # the usage files' entries


def test_entries_no_run_used_for_a_month_are_removed_and_the_used_ones_kept(data, model, tmp_path) -> None:
    """An export rewritten under new file names leaves its old entries unusable: they stay until no run
    has used them for UNUSED_DAYS, then go; a run's own entries are marked used, however old."""
    summaries, windows = tmp_path / "older-rows", tmp_path / "window-rows"

    def score_and_list() -> dict[Path, float]:
        _features(data, model, summaries)
        _load_window(data, windows)
        return {p: p.stat().st_mtime for folder in (summaries, windows) for p in _entry_files(folder)}

    old = score_and_list()
    for name in RECENT_TABLES:
        for part in sorted((data / name).glob("part-*.parquet")):
            part.rename(part.with_name(f"rewritten-{part.name}"))
    both = score_and_list()
    assert set(old) < set(both) and len(both) == 2 * len(old)  # the old entries are kept for now
    month_ago = time.time() - (UNUSED_DAYS + 1) * 86_400
    in_use = next(p for p in both if p not in old)
    for entry in [*old, in_use]:
        os.utime(entry, (month_ago, month_ago))
    after = score_and_list()
    assert set(after) == set(both) - set(old)
    assert after[in_use] > month_ago + 86_400
