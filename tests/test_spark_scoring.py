"""Spike (issue 13): scoring a Spark feature table with mapInPandas gives the driver's scores table,
as long as each task holds whole health-score populations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import build_features, snapshot_dates
from features.table import LABEL, feature_columns
from models.risk_model import ChurnRiskModel
from pipeline.config import load_settings
from pipeline.loading import load_dataset
from pipeline.score import score_table
from pipeline.stages import health_config
from pipeline.synthetic.generate import generate

pytestmark = pytest.mark.spark


def differing_columns(got: pd.DataFrame, expected: pd.DataFrame) -> list[str]:
    got = got.sort_values("account_id").reset_index(drop=True)
    expected = expected.sort_values("account_id").reset_index(drop=True)
    assert list(got.account_id) == list(expected.account_id)
    bad = []
    for column in expected.columns:
        a, b = got[column], expected[column]
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            same = np.isclose(a.astype(float), b.astype(float), rtol=1e-9, atol=0, equal_nan=True)
        else:
            same = (a.astype(str) == b.astype(str)).to_numpy()
        if not same.all():
            bad.append(column)
    return bad


def test_map_in_pandas_scores_equal_the_driver_scores(spark, tmp_path):
    from pipeline.spark_scoring import score_on_spark, spark_frame

    generate(tmp_path / "data", n_accounts=150, seed=5, years=2.5)
    dataset = load_dataset(tmp_path / "data")
    settings = load_settings(None)
    table = build_features(dataset, snapshot_dates(dataset, "monthly"), settings.features, grace_days=30)
    labelled = table[table[LABEL].notna()]
    cut = labelled.as_of.sort_values().iloc[int(len(labelled) * 0.7)]
    train, valid = labelled[labelled.as_of < cut], labelled[labelled.as_of >= cut]
    features = feature_columns(table)
    model = ChurnRiskModel.from_settings(settings.model).fit(
        train[features], train[LABEL].astype(int), valid[features], valid[LABEL].astype(int).to_numpy(),
        X_full=labelled[features], y_full=labelled[LABEL],
    )  # fmt: skip
    scorecard = health_config(settings)
    today = table[table.as_of == table.as_of.max()].reset_index(drop=True)
    expected = score_table(today, model, scorecard, settings)

    schema = spark.createDataFrame(expected).schema
    frame = spark_frame(spark, today)
    whole = score_on_spark(frame, model, scorecard, settings, schema, ["as_of", "segment"], 4).toPandas()
    assert differing_columns(whole, expected) == []
    # Split across tasks regardless of population, the percentile metrics rank within fragments.
    split = score_on_spark(frame, model, scorecard, settings, schema, [], 4).toPandas()
    assert "health_score" in differing_columns(split, expected)
