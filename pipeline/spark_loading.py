"""The input tables on Spark: read, checked and typed by the cluster, wherever the files are.

`--data` is a folder the cluster can read: a local path, or any Hadoop-compatible URI
(`hdfs://`, `s3a://`, `abfss://`, `gs://`, `file://`) whose filesystem the cluster's Hadoop
configuration provides. Tables are found in it as `load_dataset` finds them locally
(`<table>.parquet`, `<table>.csv`, `<table>.csv.gz` or a folder `<table>/` of parquet parts), but listed through
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

import csv
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import duckdb
import pandas as pd

from features.contract import TABLES
from features.errors import ChurnError, DataContractError, counted
from features.sql.dialect import EPOCH_NANOS, SPARK
from pipeline.loading import (
    PARQUET_MAGIC,
    PARQUET_MIN_BYTES,
    Dataset,
    header_names,
    hidden,
    is_csv,
    ragged_reason,
    refuse_case_twins,
    refuse_lookalike,
    refuse_mixed_ids,
    refuse_unread_parts,
    table_files,
    unreadable_parquet,
    utc_connection,
)
from pipeline.validation import (
    SOURCE_ROW,
    canonical_view,
    kept_columns,
    partition_keys,
    validate,
    with_checked,
)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

Progress = Callable[[str, int, int], None]
CSV_OPTIONS = {
    "header": True,
    "inferSchema": False,
    "sep": ",",
    "quote": '"',
    "escape": '"',
    "multiLine": True,
    "mode": "FAILFAST",
}
"""All text, quoting as DuckDB reads it (doubled quotes, line breaks inside quotes); multiLine also makes
the file one task, so the read order is the file order. A row with more or fewer fields than the header
fails the read, as on DuckDB (Spark's default filled or dropped fields silently)."""
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
        self.partitioned: dict[str, frozenset[str]] = {}  # folder URI -> keys of its parts' hive-style folders

    def _resolve(self, uri: str) -> tuple[Any, Any]:
        """The path made absolute (qualified: scheme, and a relative one resolved where the driver runs), as the
        filesystem lists a folder's files: a folder's parts are named by what follows its path."""
        path = self._jvm.org.apache.hadoop.fs.Path(uri)
        fs = path.getFileSystem(self._conf)
        return fs.makeQualified(path), fs

    def kind(self, uri: str) -> str | None:
        """'file', 'folder' or None when nothing is there."""
        path, fs = self._resolve(uri)
        if not fs.exists(path):
            return None
        return "folder" if fs.getFileStatus(path).isDirectory() else "file"

    def names(self, uri: str) -> list[str]:
        """The names of a folder's entries (files and folders, one level)."""
        path, fs = self._resolve(uri)
        return [str(status.getPath().getName()) for status in fs.listStatus(path)]

    def _parquet_files(self, name: str, uri: str) -> list[Any]:
        path, fs = self._resolve(uri)
        root = len(path.toUri().getPath().rstrip("/"))
        found, files = fs.listFiles(path, True), {}
        while found.hasNext():
            part = found.next().getPath()
            below = str(part.toUri().getPath())[root:].split("/")
            if not any(map(hidden, below)):
                files["/".join(below[1:])] = part
        refuse_unread_parts(name, uri, files)
        return list(files.values())

    def lines(self, uri: str) -> Iterator[bytes]:
        """A file's lines, their ends kept, read a MiB at a time on the driver (only to name a bad row); a
        compressed file (`.gz`) decompressed by the codec Hadoop reads it with."""
        path, fs = self._resolve(uri)
        codec = self._jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(self._conf).getCodec(path)
        stream = fs.open(path) if codec is None else codec.createInputStream(fs.open(path))
        try:
            rest = b""
            while chunk := bytes(stream.readNBytes(1 << 20)):
                *whole, rest = (rest + chunk).split(b"\n")
                yield from (line + b"\n" for line in whole)
            if rest:
                yield rest
        finally:
            stream.close()

    def parts(self, name: str, uri: str, kind: str) -> list[Part]:
        """The parquet file of table `name`, or every part of its folder in DuckDB's order (the folder listed
        once), each with its footer's schema (footers only: a cheap read per file; a broken one is named with
        its file)."""
        if kind == "file":
            paths = [self._resolve(uri)[0]]
        else:
            paths = sorted(self._parquet_files(name, uri), key=lambda part: _path_order(part.toString()))
            root = len(self._resolve(uri)[0].toUri().getPath().rstrip("/"))
            below = (str(path.toUri().getPath())[root:].split("/")[1:-1] for path in paths)
            self.partitioned[uri] = partition_keys(below)
        found = []
        for path in paths:
            named = uri if kind == "file" else path.toString()  # a file as the user gave it
            with _named_errors(name, path.toString()):
                schema = self._footer_schema(name, named, path)
            refuse_case_twins(name, named, [field.getName() for field in schema.getFields()])
            nanos = frozenset(
                field.getName()
                for field in schema.getFields()
                if "TIMESTAMP(NANOS" in str(field.getLogicalTypeAnnotation())
            )
            found.append(Part(path.toString(), str(schema.toString()), nanos))
        return found

    def _footer_schema(self, name: str, named: str, path: Any) -> Any:
        """A parquet file's schema, from its footer; a file whose footer does not read is `named` as DuckDB
        says it (`unreadable_parquet`), not in parquet-mr's words."""
        from py4j.protocol import Py4JJavaError

        parquet = self._jvm.org.apache.parquet.hadoop
        try:
            reader = parquet.ParquetFileReader.open(parquet.util.HadoopInputFile.fromPath(path, self._conf))
        except Py4JJavaError as exc:
            java = exc.java_exception
            reason = str(java.getMessage() or java.toString()).splitlines()[0]
            raise unreadable_parquet(name, named, reason, self._tail(path)) from exc
        try:
            return reader.getFooter().getFileMetaData().getSchema()
        finally:
            reader.close()

    def _tail(self, path: Any) -> bytes | None:
        """The last 4 bytes of a file, as `unreadable_parquet` takes them."""
        from py4j.protocol import Py4JJavaError

        fs = path.getFileSystem(self._conf)
        try:
            size = fs.getFileStatus(path).getLen()
            if size < PARQUET_MIN_BYTES:
                return b""
            stream = fs.open(path)
            try:
                stream.seek(size - len(PARQUET_MAGIC))
                return bytes(stream.readNBytes(len(PARQUET_MAGIC)))
            finally:
                stream.close()
        except Py4JJavaError:
            return None


@dataclass(frozen=True)
class Part:
    """One parquet file of a table: its URI, its footer's schema as text and its columns of timestamps in
    nanoseconds (Spark reads them as their epoch count: `spark.sql.legacy.parquet.nanosAsLong`)."""

    uri: str
    schema: str
    nanos: frozenset[str]


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
    for uri in (f"{data}/{entry}" for entry in table_files(name)):
        with _named_errors(name, uri):
            kind = files.kind(uri)
        if kind is not None:
            found.append((uri, kind))
    if len(found) > 1:
        listed = ", ".join(uri.rsplit("/", 1)[-1] for uri, _ in found)
        raise DataContractError(f"Table '{name}' is given more than once in {data} ({listed}); keep one.")
    if not found:
        with _named_errors(name, data):
            refuse_lookalike(data, name, files.names(data))
    return found[0] if found else None


def _path_order(uri: str) -> list[str]:
    """Files in the order DuckDB numbers them (`sorted` paths: component by component)."""
    return uri.split("/")


def read_raw(
    spark: SparkSession, files: HadoopFiles, name: str, uri: str, kind: str
) -> tuple[DataFrame, dict[str, str]]:
    """One table as found (CSV file as text, parquet file or folder of parts) and its raw column types,
    each row numbered in `SOURCE_ROW` as DuckDB numbers it: 1-based, in file order, a folder's files in
    path order.

    A folder's parts may differ in columns and types (exports appended by different tools, pandas writing
    nanoseconds and another tool microseconds): parts with the same footer schema are read together, and a
    column whose type differs between them is read in the type DuckDB's `union_by_name` gives it
    (`_common_type`), so both engines check the same values."""
    from pyspark.sql import functions as F

    if is_csv(uri) and kind == "file":
        first = spark.read.options(**{**CSV_OPTIONS, "header": False}).csv(uri).first()
        names = header_names(name, uri, None if first is None else list(first))
        refuse_case_twins(name, uri, names)
        raw = spark.read.options(**CSV_OPTIONS).csv(uri).toDF(*names)
        _check_fields(raw, files, name, uri)
        return raw.withColumn(SOURCE_ROW, F.monotonically_increasing_id() + 1), _types(raw)
    parts = files.parts(name, uri, kind)
    if not parts:
        raise DataContractError(f"Table '{name}': folder {uri} holds no .parquet files.")
    groups: dict[str, list[Part]] = {}
    for part in parts:
        groups.setdefault(part.schema, []).append(part)
    if len(groups) == 1:  # the usual case: the file or folder read as one
        reader = (
            spark.read if kind == "file" else spark.read.options(recursiveFileLookup=True, pathGlobFilter="*.parquet")
        )
        frames = [(reader.parquet(uri), next(iter(groups.values())))]
    else:
        frames = [
            (spark.read.parquet(*(_literal(part.uri) for part in members)), members) for members in groups.values()
        ]
    read, typed_parts = [], []
    for frame, members in frames:
        types = _types(frame)
        types |= {column: EPOCH_NANOS for column in members[0].nanos if types.get(column) == "bigint"}
        metadata = frame.metadataColumn("_metadata")  # Spark's, even beside a data column of that name
        located = frame.withColumns({"__file": metadata.file_path, "__index": metadata.row_index})
        read.append((located, types))
        typed_parts += [(part.uri, types) for part in members]
    refuse_mixed_ids(name, sorted(typed_parts, key=lambda part: _path_order(part[0])))
    columns = list(dict.fromkeys(column for _, types in read for column in types))
    common = {column: _common_type({types.get(column) for _, types in read}) for column in columns}
    located = reduce(
        lambda a, b: a.unionByName(b),
        [
            frame.selectExpr(*(_as_type(c, types.get(c), common[c]) for c in columns), "__file", "__index")
            for frame, types in read
        ],
    )
    if kind == "file":
        return located.withColumn(SOURCE_ROW, F.col("__index") + 1).drop("__file", "__index"), common
    per_file = located.groupBy("__file").count().collect()
    offsets, total = [], 0
    for row in sorted(per_file, key=lambda r: _path_order(unquote(r["__file"]))):  # file_path is URL-encoded
        offsets.append((row["__file"], total))
        total += row["count"]
    starts = spark.createDataFrame(offsets, "`__file` STRING, `__offset` BIGINT")
    numbered = located.join(F.broadcast(starts), "__file")
    return numbered.withColumn(SOURCE_ROW, F.col("__offset") + F.col("__index") + 1).drop(
        "__file", "__index", "__offset"
    ), common


def _check_fields(raw: DataFrame, files: HadoopFiles, name: str, uri: str) -> None:
    """Parse every field of a CSV table once: a row with more or fewer fields than the header fails the read
    (`CSV_OPTIONS`), named here with its table, file and row, which only then are found by reading the file
    (Spark's error does not tell which row), and so do rows that are not UTF-8 (Spark reads their bytes as
    U+FFFD)."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    from pipeline.spark import spark_error_message

    try:
        ((_, replaced),) = raw.selectExpr("count(hash(*))", "count_if(contains(concat_ws('', *), '\ufffd'))").collect()
    except (PySparkException, Py4JError) as exc:
        reason = spark_error_message(exc)
        if "Malformed records are detected" in str(exc):
            ragged = _ragged_row(files.lines(uri), len(raw.columns))
            reason = ragged_reason(*ragged) if ragged else "a row has more or fewer fields than the header"
        raise DataContractError(f"Table '{name}': cannot read {uri}: {reason}") from exc
    if replaced:  # Spark decodes bytes that are not UTF-8 as U+FFFD where DuckDB refuses the file
        raise DataContractError(
            f"Table '{name}': cannot read {uri}: {counted(replaced, 'row is', 'rows are')} not UTF-8 text "
            "(this file is not utf-8 encoded: save it as UTF-8)"
        )


def _ragged_row(lines: Iterable[bytes], wanted: int) -> tuple[int, str, int, int] | None:
    """The first row of a CSV file's `lines` with more or fewer fields than `wanted`, as `ragged_reason` takes
    it: numbered as DuckDB numbers rows (the header 1, a blank line counted), its lines joined by '; '."""
    taken: list[str] = []

    def text() -> Iterator[str]:
        for line in lines:
            taken.append(line.decode("utf-8", errors="replace").removeprefix("\ufeff"))
            yield taken[-1]

    try:
        for number, fields in enumerate(csv.reader(text()), 1):
            if fields and len(fields) != wanted:
                return number, "; ".join(line.rstrip("\r\n") for line in taken), wanted, len(fields)
            taken.clear()
    except csv.Error:  # a row Python's reader refuses (a field over its size limit): the row stays unnamed
        pass
    return None


def _literal(uri: str) -> str:
    """A file's URI as a Hadoop glob matching only that file (Spark expands glob characters in paths)."""
    return re.sub(r"([\\*?\[\]{}])", r"\\\1", uri)


def _types(frame: DataFrame) -> dict[str, str]:
    return {f.name: f.dataType.simpleString() for f in frame.schema.fields}


_TIMES = frozenset({"timestamp", "timestamp_ntz", "date", EPOCH_NANOS})
_INTEGERS = frozenset({"tinyint", "smallint", "int", "bigint"})


def _common_type(types: set[str | None]) -> str:
    """The type of a column whose parts differ in type, as DuckDB's `union_by_name` unites them: any
    timestamps and dates a naive timestamp, integers a BIGINT, numbers a DOUBLE, anything else text."""
    present = {t for t in types if t is not None}
    if len(present) == 1:
        return present.pop()
    if present <= _TIMES:
        return "timestamp_ntz"
    if present <= _INTEGERS:
        return "bigint"
    if all(t in _INTEGERS or t in ("float", "double") or t.startswith("decimal") for t in present):
        return "double"
    return "string"


def _as_type(column: str, raw_type: str | None, common: str) -> str:
    """A part's column in the table's `common` type (NULL where the part lacks it)."""
    name = SPARK.quote(column)
    if raw_type is None:
        return f"CAST(NULL AS {'bigint' if common == EPOCH_NANOS else common}) AS {name}"
    if raw_type == common:
        return name
    value = SPARK.contract_cast("timestamp", name, raw_type) if raw_type in _TIMES else name
    return f"CAST({value} AS {common}) AS {name}"


def load_on_spark(
    spark: SparkSession,
    data: str,
    data_end: str | pd.Timestamp | None = None,
    grace_days: int = 30,
    progress: Progress | None = None,
    now: pd.Timestamp | None = None,
    attributes: Collection[str] = (),
    repeats: bool = False,
) -> SparkDataset:
    """Read, validate and type every contract table found in `data` (a path or URI the cluster reads)
    on Spark; the same errors, report and kept rows (and kept accounts `attributes`) as `load_dataset`
    on DuckDB."""
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
            raw, types = read_raw(spark, files, name, uri, kind)
        raw.createOrReplaceTempView(f"__raw_{name}")
        raw_types[name] = types
        sources[name] = uri
    if not sources and files.kind(data) != "folder":
        raise DataContractError(f"Data directory {data} does not exist or is not a directory.")
    try:
        kept = {"accounts": kept_columns("accounts", raw_types.get("accounts", {}), attributes)}
        runner = SparkRunner(spark)
        partitioned = {name: files.partitioned.get(uri, frozenset()) for name, uri in sources.items()}
        report = validate(
            runner,
            raw_types,
            data_end,
            grace_days,
            now,
            numbered=frozenset(raw_types),
            kept=kept,
            partitioned=partitioned,
            repeats=repeats,
        )
        frames = _kept_tables(spark, raw_types, report.keep, kept)
        con = _collected(frames)
    except (PySparkException, Py4JError) as exc:
        raise DataContractError(f"The input data cannot be read: {spark_error_message(exc)}") from exc
    finally:
        for name in raw_types:
            spark.catalog.dropTempView(f"__raw_{name}")
            spark.catalog.dropTempView(canonical_view(name))
    return SparkDataset.validated(con, sources, raw_types, report, frames=frames)


def _kept_tables(
    spark: SparkSession, raw_types: dict[str, dict[str, str]], keep: dict[str, str], kept: Mapping[str, list[str]]
) -> dict[str, Any]:
    """Each table's kept rows in canonical columns (and its `kept` ones), as the session's view named as
    the table (accounts first: the others' kept rows refer to it)."""
    frames = {}
    for name in (n for n in TABLES if n in raw_types):
        names = [*(column.name for column in TABLES[name].columns), *kept.get(name, ())]
        columns = ", ".join(SPARK.quote(column) for column in names)
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
