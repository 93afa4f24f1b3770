"""Spike (issue 13): the portable feature SQL gives the current engine's values on DuckDB, and the
same values on Spark (exact for counts, 1e-9 relative for ratios), point-in-time on both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.build import build_features, snapshot_dates
from features.portable.build import build_portable_features
from features.portable.engine import DuckDBEngine, SparkEngine
from features.testing import RANDOM_DATA_END, RANDOM_START, random_tables
from pipeline.config import FeatureSettings
from pipeline.loading import Dataset, load_dataset
from pipeline.synthetic.generate import generate
from tests.test_leakage import rewrite_after

KEYS = ["account_id", "as_of", "label", "term_end"]


def build_args(dataset: Dataset) -> dict:
    first = min(stats.first for name, stats in dataset.report.tables.items() if name in dataset.event_tables)
    return {"grace_days": 30, "data_end": dataset.data_end, "first_day": first}


def spark_inputs(spark, dataset: Dataset, folder: Path) -> None:
    """Register the loader's canonical tables on Spark (the prototype has no Spark loader yet)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("accounts", "subscriptions", *dataset.event_tables):
        path = folder / f"{name}.parquet"
        dataset.con.execute(f"COPY (SELECT * FROM \"{name}\") TO '{path}' (FORMAT parquet)")
        spark.read.parquet(str(path)).createOrReplaceTempView(name)


def assert_same_features(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Keys and label exact; every feature exact where integral, else within 1e-9 relative."""
    got, expected = got.reset_index(drop=True), expected[list(got.columns)].reset_index(drop=True)
    assert len(got) == len(expected) > 0
    assert (got.account_id.astype(str) == expected.account_id.astype(str)).all()
    for column in ("as_of", "term_end"):
        assert (got[column].astype("datetime64[us]") == expected[column].astype("datetime64[us]")).all(), column
    for column in got.columns[2:]:
        if column == "term_end":
            continue
        x = pd.to_numeric(got[column]).astype(float).to_numpy()
        y = pd.to_numeric(expected[column]).astype(float).to_numpy()
        assert np.array_equal(np.isnan(x), np.isnan(y)), f"{column}: missing values differ"
        integral = np.all(np.isnan(y) | (y == np.round(y)))
        if integral:
            assert np.array_equal(x, y, equal_nan=True), f"{column}: counts differ"
        else:
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=0, err_msg=column)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Dataset:
    folder = tmp_path_factory.mktemp("world")
    generate(folder, n_accounts=120, seed=3, years=2.0)
    return load_dataset(folder)


def current_engine(dataset: Dataset, dates: list[pd.Timestamp]) -> pd.DataFrame:
    return build_features(dataset, dates, FeatureSettings(), grace_days=30)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_portable_sql_on_duckdb_equals_the_current_engine_on_random_data(seed):
    dataset = Dataset.from_frames(random_tables(seed), data_end=RANDOM_DATA_END)
    dates = [RANDOM_START + pd.Timedelta(days=d) for d in (45, 200, 201, 380, 640)]
    got = build_portable_features(DuckDBEngine(dataset.con), dates, **build_args(dataset))
    assert_same_features(got, current_engine(dataset, dates))


def test_portable_sql_on_duckdb_equals_the_current_engine_on_a_generated_world(world):
    dates = snapshot_dates(world, "monthly")
    got = build_portable_features(DuckDBEngine(world.con), dates, **build_args(world))
    assert_same_features(got, current_engine(world, dates))


@pytest.mark.spark
def test_spark_builds_the_same_features_as_duckdb(spark, world, tmp_path):
    dates = snapshot_dates(world, "monthly")
    spark_inputs(spark, world, tmp_path)
    on_spark = build_portable_features(SparkEngine(spark), dates, **build_args(world))
    assert_same_features(on_spark, build_portable_features(DuckDBEngine(world.con), dates, **build_args(world)))
    assert [t.name for t in spark.catalog.listTables() if t.name.startswith("_ft_")] == []  # intermediates dropped


@pytest.mark.spark
def test_rows_at_or_after_as_of_change_no_snapshot_on_spark(spark, tmp_path):
    as_of = RANDOM_START + pd.Timedelta(days=400)
    tables = random_tables(7)
    built = []
    for name, frames in (("before", tables), ("after", rewrite_after(tables, as_of, 8))):
        dataset = Dataset.from_frames(frames, data_end=RANDOM_DATA_END)
        spark_inputs(spark, dataset, tmp_path / name)
        built.append(build_portable_features(SparkEngine(spark), [as_of], **build_args(dataset)).drop(columns="label"))
    assert len(built[0]) > 0
    pd.testing.assert_frame_equal(built[0], built[1], check_exact=False, rtol=1e-9)
