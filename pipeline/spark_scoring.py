"""Spike (issue 13): the scoring core applied to a Spark feature table with mapInPandas.

The model, scorecard and settings travel once per task as one broadcast pickle; each task scores
its rows with the same `score_table` as the DuckDB path. The health score's percentile metrics rank
an account within its population (`population_by`, e.g. as_of, and a metric's `within`, e.g.
segment), so a task must hold whole populations: rows are partitioned by those keys and a task's
Arrow batches are scored together. (At scale, the ranks would be computed in Spark SQL first; see
the design notes.) History, trends and alerts stay on the driver: they are one row per account.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from features.table import categorical_columns
from models.risk_model import ChurnRiskModel
from models.scorecard import ScorecardConfig
from pipeline.config import Settings
from pipeline.score import score_table

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType


def score_on_spark(
    features: DataFrame,
    model: ChurnRiskModel,
    scorecard: ScorecardConfig,
    settings: Settings,
    schema: StructType,
    population: Sequence[str],
    partitions: int,
) -> DataFrame:
    """The scores table of `features` (a Spark DataFrame of one or more as_of dates), lazily.

    `schema` is the scores table's Spark schema; `population` the columns whose values delimit the
    groups percentile metrics rank within.
    """
    spark = features.sparkSession
    categorical = [
        f.name for f in features.schema.fields if f.dataType.typeName() == "string" and f.name != "account_id"
    ]
    payload = spark.sparkContext.broadcast(pickle.dumps((model, scorecard, settings, categorical)))

    def score_partition(batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model_, scorecard_, settings_, categorical_ = pickle.loads(payload.value)
        parts = [batch for batch in batches if not batch.empty]
        if not parts:  # a task whose partition holds no population
            return
        frame = pd.concat(parts, ignore_index=True)  # whole populations, not one Arrow batch at a time
        yield score_table(frame.astype(dict.fromkeys(categorical_, "category")), model_, scorecard_, settings_)

    return features.repartition(partitions, *population).mapInPandas(score_partition, schema)


def spark_frame(spark, table: pd.DataFrame):
    """A pandas feature table as a Spark DataFrame (categories as strings)."""
    return spark.createDataFrame(table.astype(dict.fromkeys(categorical_columns(table), "object")))
