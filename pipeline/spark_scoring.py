"""Scoring a Spark feature table: the same scoring core as the DuckDB path, run by Spark tasks.

`score_table` (pipeline/score.py) is row-local except for the health score's percentile metrics,
which rank an account within its population (`population_by`, e.g. as_of, and a metric's
`within`, e.g. segment). Those points are computed here in Spark SQL over the whole table, with
pandas' rule (average rank of ties, `(rank - 0.5) / count * 100`), and handed to the core in the
columns `percentile_rules` names; every other step then works on any slice of rows, so
`mapInPandas` scores Arrow batches wherever they are. The model, scorecard and settings travel
once as a broadcast pickle. History, trends, alerts and drift stay on the driver: they compare
one row per account with the previous run.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import pandas as pd

from features.registry import lookup
from features.table import categorical_columns
from models.healthscore import percentile_rules
from models.risk_model import ChurnRiskModel
from models.scorecard import PercentileMetric, ScorecardConfig
from pipeline.config import Settings
from pipeline.score import score_features, score_table

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

SCHEMA_SAMPLE_ROWS = 64


def percentile_points_sql(view: str, columns: Iterable[str], scorecard: ScorecardConfig) -> str:
    """The rows of `view` with one column of percentile points per percentile rule of the scorecard."""
    columns = set(columns)
    population = scorecard.population_by if scorecard.population_by in columns else None
    ranked = []
    for (metric, rule_json), name in percentile_rules(scorecard):
        rule = PercentileMetric.model_validate_json(rule_json)
        if metric not in columns:
            continue  # the core reports the missing metric itself
        value = f"CAST(`{metric}` AS DOUBLE)"
        if rule.default is not None:
            value = f"coalesce({value}, CAST({float(rule.default)!r} AS DOUBLE))"
        groups = [f"`{c}`" for c in (population, rule.within) if c and c in columns]
        group = f"PARTITION BY {', '.join(groups)}" if groups else ""
        ties = f"PARTITION BY {', '.join([*groups, value])}"
        average_rank = f"(rank() OVER ({group} ORDER BY {value} ASC NULLS LAST) + (count(*) OVER ({ties}) - 1) / 2.0)"
        pct = f"((CAST({average_rank} AS DOUBLE) - 0.5) / count({value}) OVER ({group}) * 100.0)"
        points = f"(100.0 - {pct})" if rule.healthier == "lower" else pct
        ranked.append(f"CASE WHEN {value} IS NULL THEN NULL ELSE {points} END AS `{name}`")
    return f"SELECT *{''.join(', ' + r for r in ranked)} FROM {view}"


def _spark_type(dtype) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "bigint"
    if pd.api.types.is_float_dtype(dtype):
        return "double"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp_ntz"
    return "string"


def scores_schema(scores: pd.DataFrame) -> str:
    """The scores table's Spark schema (DDL), from a table the core scored."""
    return ", ".join(f"`{name}` {_spark_type(dtype)}" for name, dtype in scores.dtypes.items())


def score_on_spark(
    features: DataFrame, model: ChurnRiskModel, scorecard: ScorecardConfig, settings: Settings
) -> tuple[DataFrame, tuple[str, ...], pd.Series]:
    """The scores table of `features` (a Spark feature table of one or more as_of dates), lazily, the
    scoring core's notes and its column dtypes (from a few rows scored on the driver, which also give
    the schema)."""
    spark = features.sparkSession
    view = "__churn_scoring_features"
    features.createOrReplaceTempView(view)
    ranked = spark.sql(percentile_points_sql(view, features.columns, scorecard))
    categorical = [
        name for name in features.columns if (spec := lookup(name)) is not None and spec.kind == "categorical"
    ]
    sample = features.limit(SCHEMA_SAMPLE_ROWS).toPandas().astype(dict.fromkeys(categorical, "category"))
    scored = score_features(sample, model, scorecard, settings)
    schema: StructType | str = scores_schema(scored.scores)
    payload = spark.sparkContext.broadcast(pickle.dumps((model, scorecard, settings, categorical)))

    def score_batches(batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model_, scorecard_, settings_, categorical_ = pickle.loads(payload.value)
        for batch in batches:
            if not batch.empty:
                typed = batch.astype(dict.fromkeys(categorical_, "category"))
                yield score_table(typed, model_, scorecard_, settings_)

    return ranked.mapInPandas(score_batches, schema), scored.notes, scored.scores.dtypes


def spark_frame(spark, table: pd.DataFrame) -> DataFrame:
    """A pandas feature table as a Spark DataFrame (categories as strings)."""
    return spark.createDataFrame(table.astype(dict.fromkeys(categorical_columns(table), "object")))


def collect_scores(scores: DataFrame, dtypes: pd.Series) -> pd.DataFrame:
    """The scores on the driver with the scoring core's dtypes, in row order (as_of, account_id). A categorical
    column takes its categories from every row, as on DuckDB: `dtypes` come from the few rows scored for the
    schema, and a value none of them holds (an account of a new segment) would be lost."""
    typed = {name: "category" if isinstance(dtype, pd.CategoricalDtype) else dtype for name, dtype in dtypes.items()}
    frame = scores.toPandas().astype(typed)
    return frame.sort_values(["as_of", "account_id"], kind="stable", ignore_index=True)
