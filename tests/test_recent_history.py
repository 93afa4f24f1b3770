"""Scoring one date reads logins and usage events from its longest window on (`pipeline/recent_history.py`).

On real parquet with a real model: the features and scores equal those of the whole history for
dates near the start of the data, in the middle and at the end; rows at or after the date change
nothing; a bad row the date reads stops the run with the same message as a whole-history check,
one older than the windows is left to `churn validate`.
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
from pipeline.loading import load_dataset
from pipeline.recent_history import RECENT_TABLES, read_start
from pipeline.stages import score_date
from tests.helpers import book_settings

DATES = ("2023-03-20", "2023-05-01", "2024-02-14", "2025-07-01")  # first: its windows reach before the data


def _single_threaded(dataset):
    """One DuckDB thread: sums of doubles in the same order, so equal inputs give bit-identical outputs."""
    dataset.con.execute("SET threads = 1")
    return dataset


def _whole(data: Path):
    return _single_threaded(load_dataset(data))


def _recent(data: Path, when: str):
    return _single_threaded(load_dataset(data, read_from=read_start([when], FeatureSettings())))


def _features(dataset, when: str, model) -> pd.DataFrame:
    return build_features(dataset, [when], FeatureSettings(), 30, feature_set=model.feature_set_)


@pytest.fixture(scope="module")
def model(book):
    from pipeline.tracking import load_model

    settings, result = book_settings(book, "recent-model")
    return load_model(result.model_uri, settings)


def test_the_book_has_history_before_the_windows_and_workflows(book) -> None:
    dataset = book[2]
    start = read_start([DATES[-1]], FeatureSettings())
    older = dataset.con.execute(f"SELECT count(*) FROM usage_events WHERE ts < TIMESTAMP '{start}'").fetchone()[0]
    runs = dataset.con.execute("SELECT count(DISTINCT workflow_id) FROM usage_events").fetchone()[0]
    assert older > 10_000 and runs > 100


@pytest.mark.parametrize("when", DATES)
def test_one_date_features_equal_the_whole_history(book, model, when: str) -> None:
    _, data, _, _ = book
    recent = _recent(data, when)
    assert set(recent.read_from) == set(RECENT_TABLES)
    whole = _features(_whole(data), when, model)
    pd.testing.assert_frame_equal(_features(recent, when, model), whole, check_exact=True)
    assert len(whole) > 20


def test_one_date_scores_equal_the_whole_history_at_the_start_and_the_end(book) -> None:
    _, data, dataset, _ = book
    settings, result = book_settings(book, "recent-scores")
    last = dataset.data_end.normalize() + pd.Timedelta(days=1)  # the latest date there is data before
    for when in (DATES[0], last.date().isoformat()):
        runs = [
            score_date(loaded, pd.Timestamp(when).date(), settings, result.model_uri, history=False)
            for loaded in (_whole(data), _recent(data, when))
        ]
        pd.testing.assert_frame_equal(runs[1].scores, runs[0].scores, check_exact=True)
        assert len(runs[0].scores) > 20


def _rewrite(source: Path, target: Path, change) -> Path:
    """A copy of the data directory with `change(name, frame) -> frame` applied to the recent tables."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("_truth"))
    for name in RECENT_TABLES:
        folder = target / name
        frame = pq.read_table(folder).to_pandas()
        shutil.rmtree(folder)
        folder.mkdir()
        changed = change(name, frame)
        half = len(changed) // 2  # two files: row numbers run on across them
        for part, rows in enumerate((changed.iloc[:half], changed.iloc[half:])):
            pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), folder / f"part-{part}.parquet")
    return target


def test_rows_at_or_after_the_date_change_nothing(book, model, tmp_path: Path) -> None:
    _, data, _, _ = book
    when = pd.Timestamp(DATES[2])

    def rewrite_the_future(name: str, frame: pd.DataFrame) -> pd.DataFrame:
        past = frame[frame["ts"] < when]
        burst = past.tail(500).assign(ts=when)  # at as_of itself: not before it
        return pd.concat([past, burst, frame[frame["ts"] >= when].sample(frac=0.3, random_state=1)])

    changed = _rewrite(data, tmp_path / "changed", rewrite_the_future)
    expected = _features(_recent(data, DATES[2]), DATES[2], model)
    pd.testing.assert_frame_equal(_features(_recent(changed, DATES[2]), DATES[2], model), expected, check_exact=True)


def test_the_first_row_of_a_table_older_than_the_windows_reaches_a_one_date_read(book, model, tmp_path: Path) -> None:
    """What is counted since landing depends on the table's first day (`since_landing`): a row long before
    the windows, before every landing (of an account landed later: kept, reported), must reach the read."""
    _, data, dataset, _ = book
    first_landing = pd.Timestamp(dataset.accounts["created_at"].min())

    def add_an_early_row(name: str, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([frame.head(1).assign(ts=first_landing - pd.Timedelta(days=30)), frame])

    when = DATES[2]
    changed = _rewrite(data, tmp_path / "early", add_an_early_row)
    whole = _features(_whole(changed), when, model)
    assert whole["days_to_first_value"].notna().all()  # every account landed after the data starts
    pd.testing.assert_frame_equal(_features(_recent(changed, when), when, model), whole, check_exact=True)


def test_an_extra_column_named_filename_is_ignored_by_a_one_date_read(book, model, tmp_path: Path) -> None:
    """A document product's usage events with a column `filename`: an extra column, ignored by `churn validate`,
    `features` and `train`, but scoring read the files with DuckDB's own `filename` column and stopped on its
    'Option filename adds column "filename"' error; the read filling the caches and the one reading them alike."""
    _, data, _, _ = book
    when = DATES[2]

    def name_the_files(name: str, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(filename=[f"report-{i}.pdf" for i in range(len(frame))])

    named = _rewrite(data, tmp_path / "named", name_the_files)
    whole = _features(_whole(data), when, model)
    for _ in range(2):
        recent = load_dataset(
            named,
            read_from=read_start([when], FeatureSettings()),
            summary_cache=tmp_path / "summaries",
            window_cache=tmp_path / "windows",
        )
        assert set(recent.read_from) == set(RECENT_TABLES)
        pd.testing.assert_frame_equal(_features(_single_threaded(recent), when, model), whole, check_exact=True)


def _with_bad_quantity(at: pd.Timestamp):
    def change(name: str, frame: pd.DataFrame) -> pd.DataFrame:
        if name == "usage_events":
            row = frame.index[(frame["ts"] >= at)][0]
            frame.loc[row, "quantity"] = -3.0
        return frame

    return change


def test_a_bad_row_the_date_reads_stops_the_run_with_the_whole_history_message(book, tmp_path: Path) -> None:
    _, data, _, _ = book
    when = DATES[2]
    bad = _rewrite(data, tmp_path / "bad", _with_bad_quantity(pd.Timestamp(when) - pd.Timedelta(days=10)))
    with pytest.raises(DataContractError) as whole:
        load_dataset(bad)
    with pytest.raises(DataContractError) as recent:
        load_dataset(bad, read_from=read_start([when], FeatureSettings()))
    assert "usage_events.quantity: 1 value is not a finite number >= 0 (rows " in str(whole.value)
    assert str(recent.value) == str(whole.value)


def test_a_bad_row_older_than_the_windows_is_left_to_churn_validate(book, tmp_path: Path) -> None:
    _, data, _, _ = book
    when = DATES[-1]
    bad = _rewrite(data, tmp_path / "old", _with_bad_quantity(pd.Timestamp("2023-02-01")))
    with pytest.raises(DataContractError, match=r"usage_events\.quantity"):
        load_dataset(bad)
    recent = load_dataset(bad, read_from=read_start([when], FeatureSettings()))
    assert recent.read_from == dict.fromkeys(RECENT_TABLES, read_start([when], FeatureSettings()))


def test_a_date_past_the_windows_of_the_data_end_still_finds_the_data_end(book, tmp_path: Path) -> None:
    """Scoring months after the data's last event read no row of logins or usage events: the data end came from
    the small tables read whole (an earlier day), or, with usage events the only event table, the run stopped
    with "no dated event rows left to tell where it ends"."""
    _, data, dataset, _ = book
    usage_only = tmp_path / "usage_only"
    usage_only.mkdir()
    for name in ("accounts.parquet", "subscriptions.parquet", "usage_events"):
        (usage_only / name).symlink_to(data / name)
    when = (dataset.data_end + pd.Timedelta(days=200)).normalize()
    for folder in (data, usage_only):
        recent = load_dataset(folder, read_from=read_start([when], FeatureSettings()))
        assert recent.data_end == load_dataset(folder).data_end
