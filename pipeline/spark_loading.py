"""The input tables on Spark: read, checked and typed by the cluster, wherever the files are.

`--data` is a folder the cluster can read: a local path, or any Hadoop-compatible URI
(`hdfs://`, `s3a://`, `abfss://`, `gs://`, `file://`) whose filesystem the cluster's Hadoop
configuration provides. Tables are found in it as `load_dataset` finds them locally
(`<table>.parquet`, `<table>.csv` or a folder `<table>/` of parquet parts), but listed through
the Hadoop FileSystem API of the session's JVM: the driver never needs to hold the data.

Validation is the one of `pipeline/validation.py`, run by Spark (`SparkRunner`): the same SQL
checks on the dialect's spellings, the same `ValidationReport`, the same messages. Examples cite
rows as DuckDB does (1-based, in file order, a folder's files in name order): every raw view
numbers its rows in `SOURCE_ROW` from the file's own row index (parquet) or read order (a CSV file
is one task). Each table then becomes a temporary view, named as the table, of its kept rows in
the contract's canonical types. Only `accounts` and `subscriptions` (small) are collected on the
driver, as the DuckDB path keeps them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from features.contract import TABLES
from features.errors import ChurnError, DataContractError
from features.sql.dialect import EPOCH_NANOS, SPARK
from pipeline.loading import Dataset, utc_connection
from pipeline.validation import SOURCE_ROW, canonical_view, validate, with_checked

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

Progress = Callable[[str, int, int], None]
CSV_OPTIONS = {"header": True, "inferSchema": False, "sep": ",", "quote": '"', "escape": '"', "multiLine": True}
"""All text, quoting as DuckDB reads it (doubled quotes, line breaks inside quotes); multiLine also makes
the file one task, so the read order is the file order."""
CONNECTOR_HINT = (
    "the cluster has no Hadoop filesystem for this scheme: s3a://, abfss:// and gs:// need their connector "
    "(hadoop-aws, hadoop-azure, gcs-connector) on the cluster and its credentials in the Hadoop configuration "
    "(`spark.hadoop.*` settings, e.g. under spark.conf in the configuration)"
)


@dataclass
class SparkDataset(Dataset):
    """A dataset read and validated by Spark. `frames` are its canonical tables (kept rows), made the
    session's temporary views named as the tables by `register_tables`; `con` holds only `accounts`
    and `subscriptions`, collected."""

    frames: dict[str, Any] = field(default_factory=dict)


class SparkRunner:
    """Validation's SQL on a Spark session (`pipeline.validation.Runner`)."""

    dialect = SPARK

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.spark.sql(sql).collect()]

    def view(self, name: str, sql: str) -> None:
        self.spark.sql(sql).createOrReplaceTempView(name)

    def canonical(self, table: str, sql: str, checked: str | None = None) -> None:
        self.view(canonical_view(table), with_checked(sql, checked))

    def drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)


class HadoopFiles:
    """Existence and listing of paths through the Hadoop FileSystem API of the session's JVM."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _resolve(self, uri: str) -> tuple[Any, Any]:
        path = self._jvm.org.apache.hadoop.fs.Path(uri)
        return path, path.getFileSystem(self._conf)

    def kind(self, uri: str) -> str | None:
        """'file', 'folder' or None when nothing is there."""
        path, fs = self._resolve(uri)
        if not fs.exists(path):
            return None
        return "folder" if fs.getFileStatus(path).isDirectory() else "file"

    def has_parquet(self, uri: str) -> bool:
        """A folder holds a .parquet file at any depth (hidden ones, `_`/`.`, are not read by Spark)."""
        return next(self._parquet_files(uri), None) is not None

    def _parquet_files(self, uri: str) -> Iterator[Any]:
        path, fs = self._resolve(uri)
        found = fs.listFiles(path, True)
        while found.hasNext():
            part = found.next().getPath()
            if part.getName().endswith(".parquet") and not part.getName().startswith(("_", ".")):
                yield part

    def nanosecond_timestamps(self, uri: str, kind: str, columns: set[str]) -> set[str]:
        """Which of `columns` are parquet timestamps in nanoseconds (Spark reads them as their epoch count:
        `spark.sql.legacy.parquet.nanosAsLong`), from the footer of the file or of a folder's first part."""
        if not columns:
            return set()
        if kind == "file":
            path = self._resolve(uri)[0]
        else:
            path = min(self._parquet_files(uri), key=lambda part: _path_order(part.toString()))
        parquet = self._jvm.org.apache.parquet.hadoop
        reader = parquet.ParquetFileReader.open(parquet.util.HadoopInputFile.fromPath(path, self._conf))
        try:
            fields = reader.getFooter().getFileMetaData().getSchema().getFields()
        finally:
            reader.close()
        return {
            field.getName()
            for field in fields
            if field.getName() in columns and "TIMESTAMP(NANOS" in str(field.getLogicalTypeAnnotation())
        }


@contextmanager
def _named_errors(name: str, uri: str) -> Iterator[None]:
    """A Spark or Hadoop error reading a table, as a DataContractError naming the table and the URI."""
    from py4j.protocol import Py4JError, Py4JJavaError
    from pyspark.errors import PySparkException

    from pipeline.spark import spark_error_message

    try:
        yield
    except Py4JJavaError as exc:
        java = exc.java_exception
        kind, reason = java.getClass().getSimpleName(), str(java.getMessage() or java.toString())
        hint = f"; {CONNECTOR_HINT}" if kind in ("UnsupportedFileSystemException", "ClassNotFoundException") else ""
        raise DataContractError(f"Table '{name}': cannot read {uri}: {reason.splitlines()[0]}{hint}.") from exc
    except (PySparkException, Py4JError) as exc:
        raise DataContractError(f"Table '{name}': cannot read {uri}: {spark_error_message(exc)}") from exc


def _locate(files: HadoopFiles, data: str, name: str) -> tuple[str, str] | None:
    """(URI, kind) of the table in `data`, as `pipeline.loading` finds it in a local folder."""
    found = []
    for uri in (f"{data}/{name}.parquet", f"{data}/{name}.csv", f"{data}/{name}"):
        with _named_errors(name, uri):
            kind = files.kind(uri)
        if kind is not None:
            found.append((uri, kind))
    if len(found) > 1:
        listed = ", ".join(uri.rsplit("/", 1)[-1] for uri, _ in found)
        raise DataContractError(f"Table '{name}' is given more than once in {data} ({listed}); keep one.")
    return found[0] if found else None


def _path_order(uri: str) -> list[str]:
    """Files in the order DuckDB numbers them (`sorted` paths: component by component)."""
    return uri.split("/")


def read_raw(spark: SparkSession, files: HadoopFiles, name: str, uri: str, kind: str) -> DataFrame:
    """One table as found (CSV file as text, parquet file or folder of parts), each row numbered in
    `SOURCE_ROW` as DuckDB numbers it: 1-based, in file order, a folder's files in path order."""
    from pyspark.sql import functions as F

    if uri.endswith(".csv") and kind == "file":
        raw = spark.read.options(**CSV_OPTIONS).csv(uri)
        return raw.withColumn(SOURCE_ROW, F.monotonically_increasing_id() + 1)
    if kind == "folder" and not files.has_parquet(uri):
        raise DataContractError(f"Table '{name}': folder {uri} holds no .parquet files.")
    reader = spark.read
    if kind == "folder":  # parts may differ in columns, as DuckDB's union_by_name allows (a job to read them all)
        reader = reader.options(mergeSchema=True, recursiveFileLookup=True, pathGlobFilter="*.parquet")
    raw = reader.parquet(uri)  # reads the footers: a broken one fails here, named with its table
    index = F.col("_metadata.row_index")
    if kind == "file":
        return raw.withColumn(SOURCE_ROW, index + 1)
    per_file = raw.groupBy(F.col("_metadata.file_path").alias("file")).count().collect()
    offsets, total = [], 0
    for row in sorted(per_file, key=lambda r: _path_order(r["file"])):
        offsets.append((row["file"], total))
        total += row["count"]
    starts = spark.createDataFrame(offsets, "`__file` STRING, `__offset` BIGINT")
    located = raw.withColumns({"__file": F.col("_metadata.file_path"), "__index": index})
    numbered = located.join(F.broadcast(starts), "__file").withColumn(
        SOURCE_ROW, F.col("__offset") + F.col("__index") + 1
    )
    return numbered.drop("__file", "__index", "__offset")


def load_on_spark(
    spark: SparkSession,
    data: str,
    data_end: str | pd.Timestamp | None = None,
    grace_days: int = 30,
    progress: Progress | None = None,
    now: pd.Timestamp | None = None,
) -> SparkDataset:
    """Read, validate and type every contract table found in `data` (a path or URI the cluster reads)
    on Spark; the same errors, report and kept rows as `load_dataset` on DuckDB."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    from pipeline.spark import spark_error_message

    data = str(data).rstrip("/")
    files = HadoopFiles(spark)
    raw_types: dict[str, dict[str, str]] = {}
    sources: dict[str, str] = {}
    for done, name in enumerate(TABLES, start=1):
        if progress:
            progress("reading tables", done, len(TABLES))
        located = _locate(files, data, name)
        if located is None:
            continue
        uri, kind = located
        with _named_errors(name, uri):
            raw = read_raw(spark, files, name, uri, kind)
            types = {f.name: f.dataType.simpleString() for f in raw.schema.fields if f.name != SOURCE_ROW}
            times = {c.name for c in TABLES[name].columns if c.type == "timestamp" and types.get(c.name) == "bigint"}
            types |= dict.fromkeys(files.nanosecond_timestamps(uri, kind, times), EPOCH_NANOS)
        raw.createOrReplaceTempView(f"__raw_{name}")
        raw_types[name] = types
        sources[name] = uri
    if not sources and files.kind(data) != "folder":
        raise DataContractError(f"Data directory {data} does not exist or is not a directory.")
    try:
        report = validate(SparkRunner(spark), raw_types, data_end, grace_days, now, numbered=frozenset(raw_types))
        frames = _kept_tables(spark, raw_types, report.keep)
        con = _collected(frames)
    except (PySparkException, Py4JError) as exc:
        raise DataContractError(f"The input data cannot be read: {spark_error_message(exc)}") from exc
    finally:
        for name in raw_types:
            spark.catalog.dropTempView(f"__raw_{name}")
            spark.catalog.dropTempView(canonical_view(name))
    return SparkDataset.validated(con, sources, raw_types, report, frames=frames)


def _kept_tables(spark: SparkSession, raw_types: dict[str, dict[str, str]], keep: dict[str, str]) -> dict[str, Any]:
    """Each table's kept rows in canonical columns, as the session's view named as the table (accounts
    first: the others' kept rows refer to it)."""
    frames = {}
    for name in (n for n in TABLES if n in raw_types):
        columns = ", ".join(SPARK.quote(column.name) for column in TABLES[name].columns)
        frame = spark.sql(f"SELECT {columns} FROM {SPARK.quote(canonical_view(name))} WHERE {keep[name]}")
        frame.createOrReplaceTempView(name)
        frames[name] = frame
    return frames


def _collected(frames: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """`accounts` and `subscriptions` collected into DuckDB tables, so the driver's frames have the
    types and order of the DuckDB path."""
    con = utc_connection()
    for name in ("accounts", "subscriptions"):
        rows = frames[name].toArrow()
        con.register("__collected", rows)
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM __collected')
        con.unregister("__collected")
    return con


def register_tables(spark: SparkSession, dataset: Dataset) -> None:
    """Make the dataset's canonical tables the session's views named as the tables (a session may hold
    several datasets; the one being built is made current)."""
    if not isinstance(dataset, SparkDataset):
        raise ChurnError(
            "The Spark engine computes from tables Spark read and validated itself: load the data with the "
            "Spark engine (`--engine spark`, or `engine: spark` in the configuration)."
        )
    for name, frame in dataset.frames.items():
        frame.createOrReplaceTempView(name)
