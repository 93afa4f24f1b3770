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
    from pyspark.sql import DataFrame, SparkSession


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


def sample_accounts(table: DataFrame, max_rows: int, seed: int) -> tuple[DataFrame, str | None]:
    """A Spark feature table cut to about `max_rows` snapshots by keeping a seeded sample of whole
    accounts (a hash of account_id and `seed`), and a note saying so; the table itself when it fits.

    The sample ignores labels and dates, so the churn rate, the calibration and the out-of-time
    split are unbiased, and all snapshots of a kept account stay together.
    """
    table = table.localCheckpoint(eager=True)
    rows = table.count()
    if rows <= max_rows:
        return table, None
    share = max_rows / rows
    kept = table.where(f"pmod(xxhash64(account_id, {int(seed)}), 1000000) < {int(share * 1_000_000)}")
    note = (
        f"training on a seeded sample of {share:.1%} of the accounts ({rows:,} snapshots exceed "
        f"spark.train_max_rows = {max_rows:,})"
    )
    return kept, note
