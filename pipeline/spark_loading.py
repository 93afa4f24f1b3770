"""The input tables on Spark: the same files, the same canonical columns, the same kept rows.

Validation stays one code path (`pipeline/validation.py`, run by `load_dataset` before Spark is
involved), so a malformed table fails with the same message on both engines and nothing reaches
Spark that DuckDB could not parse. Spark then reads the same files itself (`spark.read`, so the
events are scanned by the cluster, not by the driver) and defines one temporary view per table,
named as the table, with the contract's canonical types (`Column.select_sql` on the Spark dialect:
the same casts as DuckDB's, written once in `features/sql/dialect.py`) and the report's kept rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from features.contract import TABLES
from features.errors import DataContractError
from features.sql.dialect import SPARK
from pipeline.loading import Dataset
from pipeline.validation import keep_condition

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession


def read_table(spark: SparkSession, source: str) -> DataFrame:
    """One table as the loader finds it: a parquet file, a CSV file (all text, quoting as DuckDB reads
    it: doubled quotes, line breaks inside quotes) or a folder of parquet parts."""
    path = Path(source)
    if path.suffix == ".csv" and not path.is_dir():
        options = {"header": True, "inferSchema": False, "sep": ",", "quote": '"', "escape": '"', "multiLine": True}
        return spark.read.options(**options).csv(source)
    reader = spark.read.option("mergeSchema", True)
    if path.is_dir():
        reader = reader.option("recursiveFileLookup", True).option("pathGlobFilter", "*.parquet")
    return reader.parquet(source)


def register_tables(spark: SparkSession, dataset: Dataset) -> None:
    """Define the canonical view of every table of the (validated) dataset on Spark."""
    for name in (n for n in TABLES if n in dataset.present_columns):  # accounts first: kept rows refer to it
        source = dataset.sources.get(name, "")
        if not Path(source).exists():
            raise DataContractError(
                f"Table '{name}': the Spark engine reads tables from files; {source or 'this table'} is not one."
            )
        raw = read_table(spark, source)
        raw.createOrReplaceTempView(f"__raw_{name}")
        types = {field.name: field.dataType.simpleString() for field in raw.schema.fields}
        select = ", ".join(column.select_sql(types.get(column.name), SPARK) for column in TABLES[name].columns)
        keep = "true"
        if dataset.report.keep.get(name, "true") != "true":
            keep = keep_condition(name, dataset.report.time_limit, "accounts", SPARK.timestamp)
        spark.sql(f"SELECT * FROM (SELECT {select} FROM `__raw_{name}`) typed WHERE {keep}").createOrReplaceTempView(
            name
        )
