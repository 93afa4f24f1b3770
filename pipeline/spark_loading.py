"""The input tables on Spark: the same files, the same canonical columns, the same kept rows.

Validation stays one code path (`pipeline/validation.py`, run by `load_dataset` before Spark is
involved), so a malformed table fails with the same message on both engines and nothing reaches
Spark that DuckDB could not parse. Spark then reads the same files itself (`spark.read`, so the
events are scanned by the cluster, not by the driver) and defines one temporary view per table,
named as the table, with the contract's canonical types and the report's kept rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from features.contract import TABLES, Column
from features.errors import DataContractError
from features.sql.dialect import SPARK
from pipeline.loading import Dataset
from pipeline.validation import keep_condition

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

SPARK_TYPES = {
    "id": "STRING",
    "string": "STRING",
    "code": "STRING",
    "timestamp": "TIMESTAMP_NTZ",
    "float": "DOUBLE",
    "int": "BIGINT",
    "bool": "BOOLEAN",
}
NATIVE = {"float": "double", "int": "bigint", "bool": "boolean"}


def spark_cast(column: Column, raw_type: str) -> str:
    """Spark SQL for the contract's cast of `column` (see `Column.cast_sql`, its DuckDB twin).

    `raw_type` is Spark's simple type string. Text timestamps are parsed as instants (offsets
    honoured) in the session's UTC zone, then kept as naive UTC.
    """
    raw = f"`{column.name}`"
    if column.type == "timestamp":
        if raw_type in ("timestamp_ntz", "timestamp", "date"):
            return f"CAST({raw} AS TIMESTAMP_NTZ)"
        return f"CAST(try_cast(trim(CAST({raw} AS STRING)) AS TIMESTAMP_LTZ) AS TIMESTAMP_NTZ)"
    if raw_type == NATIVE.get(column.type):
        return raw
    return {
        "id": f"NULLIF(trim(CAST({raw} AS STRING)), '')",
        "string": f"NULLIF(trim(CAST({raw} AS STRING)), '')",
        "code": f"NULLIF(lower(trim(CAST({raw} AS STRING))), '')",
        "float": f"try_cast({raw} AS DOUBLE)",
        "int": f"try_cast({raw} AS BIGINT)",
        "bool": f"try_cast({raw} AS BOOLEAN)",
    }[column.type]


def _select(column: Column, raw_type: str | None) -> str:
    if raw_type is None:
        return f"CAST({column.default} AS {SPARK_TYPES[column.type]}) AS `{column.name}`"
    expression = spark_cast(column, raw_type)
    if column.default != "NULL":
        expression = f"coalesce({expression}, {column.default})"
    return f"{expression} AS `{column.name}`"


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
        select = ", ".join(_select(column, types.get(column.name)) for column in TABLES[name].columns)
        keep = "true"
        if dataset.report.keep.get(name, "true") != "true":
            keep = keep_condition(name, dataset.report.time_limit, "accounts", SPARK.timestamp)
        spark.sql(f"SELECT * FROM (SELECT {select} FROM `__raw_{name}`) typed WHERE {keep}").createOrReplaceTempView(
            name
        )
