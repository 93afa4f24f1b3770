"""Parity of the two engines: `--engine spark` builds the features and the scores the DuckDB path
builds (exact for counts, 1e-9 relative otherwise), point-in-time on Spark too, and bad input
fails with the same message.

One local[2] session (conftest `spark`) and one small generated world serve every test: a Spark
build costs a job per statement, so the data are tiny and each table is built once.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from features.build import build_features
from features.sql.engine import SparkEngine
from features.table import product_names, read_feature_table, recorded_values
from pipeline.config import load_settings
from pipeline.loading import load_dataset
from pipeline.spark_loading import load_on_spark, register_tables
from pipeline.spark_scoring import collect_scores
from pipeline.stages import build_feature_table, load, score_date, train_on_table
from pipeline.synthetic import generate
from tests.feature_data import RANDOM_DATA_END, RANDOM_SETTINGS, RANDOM_START, padded, random_tables, rewrite_after
from tests.helpers import (
    ATTRIBUTE_CARD,
    assert_same_report,
    assert_same_table,
    expected_scorecard,
    run_cli,
    tiny_tables,
    with_tier,
    write_tables,
)

pytestmark = pytest.mark.spark

SCORE_DATE = date(2024, 9, 1)


PRODUCT_NAMES = {"dashboards": "検索", "reports": "Отчёты"}
"""Product features renamed in the world's usage: names that are not ASCII get hashed columns."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, spark):
    """A small generated history, its DuckDB feature table and a champion model. Its product features have
    names that are not ASCII (`PRODUCT_NAMES`) and its accounts a team's own `tier` column (`with_tier`), so
    every build and scoring below also checks those on Spark without a data load and a build of their own."""
    root = tmp_path_factory.mktemp("spark_world")
    data = root / "data"
    generate(data, n_accounts=60, seed=7, start="2023-01-01", years=1.75)
    usage = pd.read_parquet(data / "usage_events")
    assert set(PRODUCT_NAMES) <= set(usage["feature"])
    shutil.rmtree(data / "usage_events")
    (data / "usage_events").mkdir()
    usage.assign(feature=usage["feature"].map(lambda name: PRODUCT_NAMES.get(name, name))).to_parquet(
        data / "usage_events" / "part-00000.parquet", index=False
    )
    accounts = with_tier(data)
    settings = load_settings(None, {"workdir": str(root / "work"), "model": {"n_estimators": 60, "tune_trials": 0}})
    dataset = load_dataset(data)
    table = build_feature_table(dataset, settings)
    result = train_on_table(table, settings, None, promote=True, console=Console(quiet=True))
    return root, data, settings, dataset, table, result, accounts


def test_churn_features_on_spark_reads_a_uri_and_writes_the_duckdb_table_partitioned_by_as_of(world, capsys):
    """The folder also carries the product feature names DuckDB finds: names that are not ASCII have hashed
    columns, and the folder records the names (its sidecar), so a model trained on it (`churn train --features
    FOLDER`) says "uses of 検索"."""
    root, data, settings, _, expected, _, _ = world
    out = root / "features_spark"
    code, text = run_cli(["features", "--data", data.as_uri(), "--out", str(out), "--engine", "spark"], capsys)
    assert code == 0, text
    assert "partitioned by as_of" in text
    dates = sorted(p.name for p in out.iterdir() if p.name.startswith("as_of="))
    assert dates == [f"as_of={d:%Y-%m-%d}" for d in sorted(expected.as_of.unique())]
    got = read_feature_table(str(out))
    assert_same_table(got, expected)
    assert recorded_values(out) == settings.feature_values()  # for `churn train --features FOLDER`
    names = product_names(got)
    assert names == product_names(expected)
    assert set(PRODUCT_NAMES.values()) <= set(names.values()), names


def test_a_date_with_no_active_account_writes_an_empty_table_with_the_duckdb_columns(world, capsys):
    """Spark writes no partition for 0 rows, and reading the folder back to count it failed ("Unable to
    infer schema"); the table now keeps its columns, as DuckDB's empty table does, and the command warns."""
    root, data, settings, dataset, _, _, _ = world
    out = root / "features_spark_empty"
    code, text = run_cli(
        ["features", "--data", str(data), "--out", str(out), "--engine", "spark", "--as-of", "2000-01-01"], capsys
    )
    assert code == 0, text
    assert "no account has a term active on 2000-01-01: the first term in subscriptions starts on" in text
    got = read_feature_table(str(out))
    expected = build_feature_table(dataset, settings, as_of=date(2000, 1, 1))
    assert got.empty and expected.empty and list(got.columns) == list(expected.columns)


def test_point_in_time_on_spark_and_the_same_values_as_duckdb(spark, tmp_path):
    """Rows at or after as_of never change a Spark snapshot; edge-case data give DuckDB's values, among them
    logins and trainings that name no user (active users and the trained share are missing there, not 0).

    One build holds both versions of the history, as two sets of accounts (`b:` before, `a:` after
    rewriting everything at or after as_of): a snapshot's features depend on its own account only.
    The tables are CSV, so Spark parses every value from text as DuckDB does, with every id, code and
    date padded with tabs, line breaks, no-break or ideographic spaces: both engines trim the same
    characters (their own `trim` functions differ); dates are also written with offsets, a space before
    '+0200' or '-01:30' (DuckDB's cast refused it). Adaptive execution is off, as some clusters run: the
    build's views must still resolve (a family's two window views once collided on their column ids there).
    """
    as_of = RANDOM_START + pd.Timedelta(days=400)
    tables = random_tables(11)
    logins = tables["logins"]  # users no row names: active users and the trained share are missing, not 0
    tables["logins"] = logins.assign(user_id=logins["user_id"].where(logins["account_id"] != "A0"))
    tables["trainings"] = tables["trainings"].assign(
        user_id=pd.Series(pd.NA, index=tables["trainings"].index, dtype="string")
    )
    versions = {"b:": tables, "a:": rewrite_after(tables, as_of, 12)}
    both = {
        name: pd.concat([v[name].assign(account_id=prefix + v[name].account_id) for prefix, v in versions.items()])
        for name in tables
    }
    data = write_tables(tmp_path / "data", padded(both), "csv")
    for csv in data.glob("*.csv"):  # header names padded with spaces, which DuckDB's CSV reader trims (Spark's did not)
        header, rest = csv.read_text(encoding="utf-8").split("\n", 1)
        csv.write_text(",".join(f" {name}\u00a0" for name in header.split(",")) + "\n" + rest, encoding="utf-8")
    dataset = load_dataset(data, data_end=RANDOM_DATA_END)
    assert dataset.report.exclusions == []
    spark_dataset = load_on_spark(spark, str(data), data_end=RANDOM_DATA_END)
    assert_same_report(spark_dataset.report, dataset.report)  # edge values: exclusions and warnings with rows
    register_tables(spark, spark_dataset)
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        on_spark = build_features(spark_dataset, [as_of], RANDOM_SETTINGS, 30, engine=SparkEngine(spark))
    finally:
        spark.conf.unset("spark.sql.adaptive.enabled")
    on_duckdb = build_features(dataset, [as_of], RANDOM_SETTINGS, 30)
    assert on_duckdb["active_users_90d"].isna().any() and on_duckdb["trained_users_share"].isna().any()
    assert_same_table(on_spark, on_duckdb)
    halves = [
        on_spark[on_spark.account_id.str.startswith(prefix)]
        .assign(account_id=lambda t, p=prefix: t.account_id.str.removeprefix(p))
        .drop(columns="label")
        for prefix in versions
    ]
    assert len(halves[0]) > 0
    assert_same_table(halves[1], halves[0])


def test_scoring_on_spark_from_a_uri_gives_the_duckdb_scores_and_scorecards(world, spark, tmp_path):
    """Spark reads and validates the files from a file:// URI, builds the features (with the ended
    accounts' last days: --include-churned) and scores them as the DuckDB path does. Segments on csm and a
    team's own tier: Spark keeps them in its accounts, the rows its tasks score (mapInPandas) carry them, and
    every account gets the scorecard, hence the scores, DuckDB gives it."""
    _, data, settings, _, _, result, accounts = world
    (tmp_path / "card.yaml").write_text(ATTRIBUTE_CARD)
    settings = settings.model_copy(update={"healthscore": str(tmp_path / "card.yaml")})
    dataset = load(data, settings)
    expected = score_date(dataset, SCORE_DATE, settings, result.model_uri, history=False, include_churned=True)
    spark_settings = settings.model_copy(update={"engine": "spark"})
    on_spark = load(data.as_uri(), spark_settings)
    assert_same_report(on_spark.report, dataset.report)
    # Tiny Arrow batches: every task scores slices of the population, the percentiles still rank all of it.
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "7")
    try:
        got = score_date(on_spark, SCORE_DATE, spark_settings, result.model_uri, history=False, include_churned=True)
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert len(expected.scores) > 7
    assert (expected.scores["account_status"] == "churned").any()
    assert_same_table(got.scores, expected.scores)
    chosen = got.scores["health_scorecard"]
    assert chosen.tolist() == expected_scorecard(accounts)[got.scores["account_id"]].tolist()
    assert {"digital", "platinum"} <= set(chosen)


def test_collected_scores_keep_a_category_the_rows_scored_for_the_schema_lack(spark):
    """`churn score --engine spark` typed the collected scores by the 64 rows scored on the driver for the
    schema: an account of a segment none of them had (a new `government` segment) came out with no segment in
    the scores file, where DuckDB keeps it."""
    scores = pd.DataFrame({"account_id": ["A", "B", "C"], "segment": ["mid", "smb", "government"]})
    scores["as_of"] = pd.Timestamp("2024-09-01")
    schema_rows = scores.head(2).astype({"segment": "category"})
    got = collect_scores(spark.createDataFrame(scores), schema_rows.dtypes)
    assert got["segment"].tolist() == ["mid", "smb", "government"]
    assert got["segment"].dtype == scores["segment"].astype("category").dtype  # DuckDB's categories


def test_bad_input_fails_with_the_same_message_on_both_engines(tmp_path, capsys):
    tables = tiny_tables()
    tables["logins"].loc[1, "ts"] = "yesterday"
    data = write_tables(tmp_path / "bad", tables)
    messages = []
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"features_{engine}"
        code, text = run_cli(["features", "--data", str(data), "--out", f"{out}.parquet", "--engine", engine], capsys)
        assert code == 1
        assert not Path(f"{out}.parquet").exists()
        messages.append(text)
    assert messages[0] == messages[1]
    assert "logins.ts: 1 value is not a date (rows 2: 'yesterday')" in messages[1]
    assert "Traceback" not in messages[1] and "org.apache" not in messages[1]


def test_training_sample_keeps_whole_accounts_seeded_and_unbiased(spark):
    from pipeline.engines import sample_accounts

    rng = np.random.default_rng(0)
    accounts = np.repeat([f"acc{i:04d}" for i in range(400)], 10)
    frame = pd.DataFrame({"account_id": accounts, "label": (rng.random(accounts.size) < 0.2).astype(int)})
    table = spark.createDataFrame(frame)
    same, note = sample_accounts(table, 4000, seed=42)
    assert note is None and same.count() == 4000
    kept, note = sample_accounts(table, 1000, seed=42)
    sample = kept.toPandas()
    assert note is not None and "25.0% of the accounts" in note
    assert 600 <= len(sample) <= 1400
    assert (sample.groupby("account_id").size() == 10).all()  # whole accounts
    assert set(sample.account_id) == set(sample_accounts(table, 1000, seed=42)[0].toPandas().account_id)
    assert set(sample.account_id) != set(sample_accounts(table, 1000, seed=7)[0].toPandas().account_id)
    assert abs(sample.label.mean() - frame.label.mean()) < 0.05
