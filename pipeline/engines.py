"""Which engine computes features and scores: DuckDB in-process (default) or Apache Spark.

The Spark session (and its JVM) is started only here, only when the settings ask for Spark, and
once per process. Validation always runs first, on the shared code path, so bad input fails with
the same message on both engines before any Spark job runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from features.sql.engine import DuckDBEngine, Engine, SparkEngine
from pipeline.config import Settings
from pipeline.loading import Dataset

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession


def spark_session(settings: Settings) -> SparkSession:
    """The process's Spark session for these settings (started on first use)."""
    from pipeline.spark import start_spark

    return start_spark(settings.spark.master, settings.spark.spark_conf())


@contextmanager
def feature_engine(dataset: Dataset, settings: Settings) -> Iterator[Engine]:
    """The engine the settings name, with the dataset's canonical tables in place; Spark errors
    surface as one-paragraph ChurnErrors."""
    if settings.engine == "duckdb":
        yield DuckDBEngine(dataset.con)
        return
    from pipeline.spark import spark_errors
    from pipeline.spark_loading import register_tables

    spark = spark_session(settings)
    with spark_errors():
        register_tables(spark, dataset)
        yield SparkEngine(spark)
