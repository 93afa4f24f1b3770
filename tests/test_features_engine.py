"""The feature engine as a whole: table format, registry coverage, absent sources, clean-up, and
agreement with the plain-pandas reference implementation on generated data."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from features.build import build_features, snapshot_dates
from features.feature_set import FeatureSet
from features.judgement import SOURCE as JUDGEMENT_SOURCE
from features.registry import all_specs, describe, lookup
from features.settings import FeatureSettings
from features.sql.engine import DuckDBEngine
from features.table import DATA_DAYS_COLUMNS, META_COLUMNS, categorical_columns, feature_columns
from pipeline.loading import Dataset, load_dataset
from pipeline.synthetic import generate
from tests.feature_data import RANDOM_DATA_END, RANDOM_START, make_dataset, random_tables

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = FeatureSettings()


def _reference_module():
    spec = importlib.util.spec_from_file_location("pandas_reference", ROOT / "bench" / "pandas_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generated") / "data"
    generate(out, n_accounts=60, seed=3, start="2023-01-01", years=1.5)
    return out


@pytest.fixture(scope="module")
def generated_table(generated) -> pd.DataFrame:
    dataset = load_dataset(generated)
    return build_features(dataset, snapshot_dates(dataset, "monthly"), SETTINGS, grace_days=30)


def test_table_format_and_registry_coverage(generated_table):
    table = generated_table
    assert list(table.columns[:4]) == list(META_COLUMNS)
    assert table["label"].dtype == "Int8" and table["as_of"].dtype == "datetime64[us]"
    assert table["term_end"].dtype == "datetime64[us]"
    assert not table.duplicated(["account_id", "as_of"]).any()
    assert table["as_of"].is_monotonic_increasing
    specs = {name: lookup(name) for name in feature_columns(table)}
    assert all(spec is not None for spec in specs.values()), [n for n, s in specs.items() if s is None]
    from_data = {name for name, spec in all_specs().items() if spec.source != JUDGEMENT_SOURCE}
    assert {spec.category for spec in specs.values()} == {lookup(name).category for name in from_data}
    assert categorical_columns(table) == [n for n, s in specs.items() if s.kind == "categorical"]
    assert all(table[n].dtype == "float64" for n, s in specs.items() if s.kind == "numeric")
    assert from_data <= set(table.columns)  # generated data has every source and column (CSM ratings are no data)


def test_the_feature_table_takes_a_new_column_without_a_fragmentation_warning(generated_table):
    """Scoring adds its own columns to the table; pandas warned "highly fragmented" at each run's first one,
    because the table's hundred columns had been converted one by one."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.PerformanceWarning)
        generated_table.assign(account_status="active")


def test_the_days_of_each_tables_data_ride_beside_the_features_never_as_one(generated, generated_table):
    """What the words of the "days since" features need (`<table>_data_days`) follows the features, with a model's
    feature set too (scoring), and is never a feature: a model trained on the table does not get it."""
    carried = [c for c in generated_table.columns if c in DATA_DAYS_COLUMNS]
    assert carried == [c for c in generated_table.columns if c.endswith("_data_days")]
    assert len(carried) == 7 and not set(carried) & set(feature_columns(generated_table))
    assert list(generated_table.columns[-7:]) == carried
    names = ["days_since_last_login", "tenure_days"]
    dataset = load_dataset(generated)
    scoring = build_features(dataset, [generated_table.as_of.max()], SETTINGS, 30, feature_set=FeatureSet.of(names))
    assert list(scoring.columns) == [*META_COLUMNS, *names, *carried]
    assert (scoring["logins_data_days"] > 0).all()


def test_every_template_renders_a_real_row(generated_table):
    for name in feature_columns(generated_table):
        known = generated_table[generated_table[name].notna()]  # sparse sources (surveys...) leave no row complete
        assert len(known) > 0, name
        row = known.iloc[len(known) // 2].to_dict()
        text = describe(name, row[name], row)
        assert not text.startswith(lookup(name).description), (name, text)  # not the fallback
    assert describe("logins_trend_30d", -0.6, {"logins_per_seat_30d": 3.0, "seats": 10}) == (
        "3.0 logins per seat in 30 days, -60% on the previous 30"
    )
    assert describe("logins_trend_30d", -0.6, {"logins_per_seat_30d": 3.0}) == (  # no seat count: the account's
        "3 logins in 30 days, -60% on the previous 30"
    )


def assert_same_table(engine: pd.DataFrame, reference: pd.DataFrame) -> None:
    assert sorted(reference.columns) == sorted(engine.columns)
    reference = reference[engine.columns]
    pd.testing.assert_frame_equal(
        engine[["account_id", "as_of", "term_end"]], reference[["account_id", "as_of", "term_end"]], check_dtype=False
    )
    assert engine["label"].astype("Float64").equals(reference["label"].astype("Float64"))
    for column in [c for c in engine.columns if c not in META_COLUMNS]:  # features and the days of each table
        if column in categorical_columns(engine):
            assert engine[column].astype(object).equals(reference[column].astype(object)), column
        else:
            np.testing.assert_allclose(engine[column], reference[column].astype(float), rtol=1e-9, err_msg=column)


def test_engine_agrees_with_the_pandas_reference_on_generated_data(generated):
    dataset = load_dataset(generated)
    dates = snapshot_dates(dataset, "monthly")[::2]
    engine = build_features(dataset, dates, SETTINGS, grace_days=30)
    assert_same_table(engine, _reference_module().reference_features(dataset, dates, SETTINGS, grace_days=30))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_engine_agrees_with_the_pandas_reference_on_random_edge_cases(seed):
    dataset = Dataset.from_frames(random_tables(seed), data_end=RANDOM_DATA_END)
    days = np.random.default_rng(seed).integers(30, 700, 6)
    dates = sorted({RANDOM_START + pd.Timedelta(days=int(d)) for d in days})
    settings = FeatureSettings(top_features=3, windows=[7, 45, 120])  # 120: past the start (`whole`)
    engine = build_features(dataset, dates, settings, grace_days=30)
    assert len(engine) > 0
    assert_same_table(engine, _reference_module().reference_features(dataset, dates, settings, grace_days=30))


def test_absent_sources_yield_no_columns_and_temporary_tables_are_dropped():
    logins = pd.DataFrame({"account_id": ["A"], "ts": ["2024-02-01"], "user_id": ["u1"]})
    dataset = make_dataset(logins=logins)
    calls = []
    table = build_features(dataset, ["2024-03-01"], SETTINGS, 30, progress=lambda *args: calls.append(args))
    sources = {lookup(name).source for name in feature_columns(table)}
    assert sources == {"accounts", "logins"}
    assert _temporary(dataset.con) == (set(), set())
    assert [done for _, done, _ in calls] == [0, 1, 2, 3, 4] and {total for *_, total in calls} == {4}


def _temporary(con: duckdb.DuckDBPyConnection) -> tuple[set[str], set[str]]:
    """(temporary tables, temporary views) of the feature engine (named `_ft_...`) on the connection."""
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    views = con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()
    return {n for (n,) in tables if n.startswith("_ft_")}, {n for (n,) in views if n.startswith("_ft_")}


def test_duckdb_computes_a_defined_table_in_the_statement_that_reads_it():
    """A `define`d table is a view until `store`: stored on its own, each table of one row per snapshot
    (one row group) was scanned by one thread while the other core idled."""
    con = duckdb.connect()
    engine = DuckDBEngine(con)
    engine.materialize("_ft_numbers", "SELECT range AS n FROM range(4)")
    engine.define("_ft_doubled", "SELECT 2 * n AS m FROM _ft_numbers")
    engine.define("_ft_total", "SELECT sum(m) AS total FROM _ft_doubled")
    assert _temporary(con) == ({"_ft_numbers"}, {"_ft_doubled", "_ft_total"})
    engine.store("_ft_total")
    assert _temporary(con) == ({"_ft_numbers", "_ft_total"}, {"_ft_doubled"})
    con.execute("DELETE FROM _ft_numbers")  # the stored rows no longer depend on what they were computed from
    assert engine.rows("SELECT total FROM _ft_total") == [(12,)]
    assert engine.rows("SELECT count(*) FROM _ft_doubled") == [(0,)]
    engine.drop_intermediates()
    assert _temporary(con) == (set(), set())


def test_dates_without_active_accounts_give_an_empty_table_with_all_columns():
    table = build_features(make_dataset(), ["2020-01-01"], SETTINGS, 30)
    assert table.empty and "logins_per_seat_30d" in table.columns


def test_accounts_without_events_in_a_present_source_get_zeros_and_missing_averages():
    tickets = pd.DataFrame({"account_id": ["A"], "ticket_id": ["T1"], "opened_at": ["2024-02-01"], "csat": [5.0]})
    subscriptions = pd.DataFrame(
        {
            "account_id": ["A", "B"],
            "start_date": ["2024-01-01"] * 2,
            "end_date": ["2025-01-01"] * 2,
            "seats": [10.0, 4.0],
        }
    )
    accounts = pd.DataFrame({"account_id": ["A", "B"], "created_at": ["2024-01-01"] * 2})
    dataset = make_dataset(accounts_table=accounts, subscriptions_table=subscriptions, support_tickets=tickets)
    table = build_features(dataset, ["2024-03-01"], SETTINGS, 30).set_index("account_id")
    assert table.loc["A", "tickets_30d"] == 1 and table.loc["A", "csat_mean_90d"] == 5
    assert table.loc["B", "tickets_30d"] == 0 and np.isnan(table.loc["B", "csat_mean_90d"])


def test_each_feature_declares_the_optional_columns_it_is_built_from(generated, generated_table):
    """`FeatureSpec.requires` is how a scorecard tells an absent column from a typo: dropping one
    optional column must remove exactly the features that declare it, and nothing else."""
    from features.contract import TABLES

    frames = {
        name: pd.read_parquet(generated / name if (generated / name).is_dir() else generated / f"{name}.parquet")
        for name in TABLES
    }
    as_of = [pd.Timestamp("2024-05-01")]
    full = set(feature_columns(generated_table))
    declared = {c for name in full for c in lookup(name).requires}
    assert declared, "some features must need optional columns"
    for qualified in sorted(declared):
        table, column = qualified.split(".")
        dataset = Dataset.from_frames({**frames, table: frames[table].drop(columns=[column])})
        built = set(feature_columns(build_features(dataset, as_of, SETTINGS, grace_days=30)))
        expected = {name for name in full if qualified in lookup(name).requires}
        assert full - built == expected, qualified
