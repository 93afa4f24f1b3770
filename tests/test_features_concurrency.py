"""The DuckDB build runs the feature families at once, each on its own cursor (`Engine.each`): the
table must be the one a build of one family after another gives, and a family that fails must fail
the build with its own error, stop the others and leave no intermediate table behind."""

from __future__ import annotations

import datetime
import logging
import threading
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from features.build import build_features, snapshot_dates
from features.errors import DataContractError
from features.families import FAMILIES
from features.feature_set import FeatureSet
from features.settings import FeatureSettings
from features.sql.engine import DuckDBEngine, one_after_another
from pipeline.loading import Dataset, load_dataset
from pipeline.synthetic import generate

SETTINGS = FeatureSettings()


class OneAfterAnother(DuckDBEngine):
    """The DuckDB engine with the families run in order on its own connection, as Spark runs them."""

    def each(self, jobs, finished):
        return one_after_another(self, jobs, finished)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """Generated parquet data: every family's table is present and a cursor sees the views."""
    out = tmp_path_factory.mktemp("concurrency") / "data"
    generate(out, n_accounts=40, seed=5, start="2023-01-01", years=1.5)
    return load_dataset(Path(out))


def intermediates(dataset: Dataset) -> list[str]:
    """The build's tables left in the database (its intermediates are all named `_ft_...`)."""
    tables = dataset.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    return [name for (name,) in tables if name.startswith("_ft_")]


def test_families_built_at_once_give_the_table_built_one_after_another(world, caplog):
    dates = snapshot_dates(world, "monthly")[::3]
    calls: list[tuple[str, int, int]] = []
    with caplog.at_level(logging.INFO, logger="churn.features"):
        together = build_features(world, dates, SETTINGS, 30, progress=lambda *args: calls.append(args))
    built_on = {r.threadName for r in caplog.records if r.getMessage().endswith(" s") and "family" in r.getMessage()}
    assert len(built_on) == len(FAMILIES) and threading.main_thread().name not in built_on  # really at once
    in_order = build_features(world, dates, SETTINGS, 30, engine=OneAfterAnother(world.con))
    assert len(together) > 0 and together.shape[1] > 60
    pd.testing.assert_frame_equal(together, in_order)  # same rows, columns, order, dtypes and values
    steps = len(FAMILIES) + 2
    assert [done for _, done, _ in calls] == list(range(steps + 1)) and {total for *_, total in calls} == {steps}
    assert intermediates(world) == []


def test_a_failing_family_fails_the_build_with_its_own_error_and_leaves_nothing_behind(world):
    """A model whose usage key is not of the key form: the usage family raises while the others run."""
    dates = snapshot_dates(world, "monthly")[-2:]
    bad = FeatureSet.of(["logins_per_seat_30d", "usage_Not-A-Key_per_seat_30d"])
    with pytest.raises(DataContractError, match=r"feature set: usage keys \['Not-A-Key'\] are not of the form"):
        build_features(world, dates, SETTINGS, 30, feature_set=bad)
    assert intermediates(world) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("churn-features")]
    table = build_features(world, dates, SETTINGS, 30, feature_set=FeatureSet.of(["logins_per_seat_30d"]))
    assert list(table.columns[4:]) == ["logins_per_seat_30d"]  # the connection is still fine


def test_a_connection_with_temporary_views_builds_one_family_after_another(caplog):
    """Registered frames are temporary views a cursor cannot see: the families run in order, on the
    connection itself, and the table is the same."""
    frames = {
        "accounts": pd.DataFrame({"account_id": ["A", "B"], "created_at": ["2024-01-01"] * 2}),
        "subscriptions": pd.DataFrame(
            {"account_id": ["A", "B"], "start_date": ["2024-01-01"] * 2, "end_date": ["2025-01-01"] * 2}
        ),
        "logins": pd.DataFrame({"account_id": ["A", "A", "B"], "ts": ["2024-02-01", "2024-02-03", "2024-02-20"]}),
        "usage_events": pd.DataFrame({"account_id": ["A"], "ts": ["2024-02-02"], "feature": ["reports"]}),
    }
    dataset = Dataset.from_frames(frames)
    with caplog.at_level(logging.INFO, logger="churn.features"):
        table = build_features(dataset, ["2024-03-01"], SETTINGS, 30)
    assert {r.threadName for r in caplog.records} == {threading.main_thread().name}
    assert table.set_index("account_id").loc["A", "logins_per_seat_30d"] > 0
    assert intermediates(dataset) == []


def test_the_cursors_run_with_the_connections_session_settings():
    """A cursor starts from the database's settings; the time zone decides the day of a timestamp
    with an offset, so the jobs must see the connection's own."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Kolkata'")

    def job(engine) -> tuple[str, object]:
        day = "CAST(TIMESTAMPTZ '2024-03-01 20:00:00+00' AS DATE)"
        return threading.current_thread().name, engine.rows(f"SELECT {day}")[0][0]

    ran = DuckDBEngine(con).each([job, job], lambda _index: None)
    assert [day for _, day in ran] == [datetime.date(2024, 3, 2)] * 2  # 01:30 on March 2 in Kolkata
    assert threading.main_thread().name not in {name for name, _ in ran}
