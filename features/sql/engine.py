"""Where feature SQL runs: one small interface over a DuckDB connection or a Spark session.

Families never write DDL. They hand a SELECT to `materialize` when later statements read its rows
several times (snapshots, daily roll-ups of the event tables), or to `define` when one later
statement reads it once. Both engines store the first kind (DuckDB as a temporary table, Spark as
a checkpointed DataFrame registered as a temporary view, so later statements start from stored rows
instead of re-running the chain of views before them) and keep the second as a plain view, so the
statement that reads it plans it with its own work: one Spark job or DuckDB statement per stored
table, not per intermediate.
A family's own table is `define`d and then `store`d: its windows are computed in a job of their own,
so the final join's tasks hold joins only.

On DuckDB the views matter for wall time: a table of one row per snapshot fits one row group, and
DuckDB scans a row group on one thread, so each such table stored on its own ran on one of the two
cores. Read inside one statement, a family's window aggregations are independent pipelines that
DuckDB's scheduler runs side by side, and nothing is written and read back in between.
pyspark is never imported here: the Spark engine is handed a session by the pipeline, which starts
one only when asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from features.sql.dialect import DUCKDB, SPARK, Dialect

if TYPE_CHECKING:  # pragma: no cover - typing only
    import duckdb
    from pyspark.sql import DataFrame, SparkSession


class Engine(Protocol):
    dialect: Dialect

    def materialize(self, name: str, select_sql: str) -> None:
        """Run `select_sql` and keep its rows as table `name` for the following statements."""

    def define(self, name: str, select_sql: str) -> None:
        """Name `select_sql` as `name` for one later statement (the engine may compute it there)."""

    def store(self, name: str) -> None:
        """Compute a table made by `define` now and keep its rows (a family's table before the final join)."""

    def rows(self, select_sql: str) -> list[tuple[Any, ...]]:
        """Run a (small) query and return its rows."""

    def frame(self, select_sql: str) -> pd.DataFrame:
        """Run a query and return its result as pandas."""

    def drop_intermediates(self) -> None:
        """Drop every table and view `materialize`, `define` and `store` made."""


class DuckDBEngine:
    dialect = DUCKDB

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._made: list[tuple[str, str]] = []  # (TABLE or VIEW, name), in the order they were made
        self._views: dict[str, str] = {}  # name -> SELECT of each view `define` made

    def materialize(self, name: str, select_sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select_sql}")
        self._made.append(("TABLE", name))

    def define(self, name: str, select_sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {select_sql}")
        self._made.append(("VIEW", name))
        self._views[name] = select_sql

    def store(self, name: str) -> None:
        select_sql = self._views.pop(name)
        self.con.execute(f"DROP VIEW {name}")
        self._made.remove(("VIEW", name))
        self.materialize(name, select_sql)

    def rows(self, select_sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(select_sql).fetchall()

    def frame(self, select_sql: str) -> pd.DataFrame:
        return self.con.execute(select_sql).df()

    def drop_intermediates(self) -> None:
        for kind, name in reversed(self._made):
            self.con.execute(f"DROP {kind} IF EXISTS {name}")
        self._made.clear()
        self._views.clear()


class SparkEngine:
    dialect = SPARK

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self._made: dict[str, Any] = {}

    def materialize(self, name: str, select_sql: str) -> None:
        frame = self.spark.sql(select_sql).localCheckpoint(eager=True)
        frame.createOrReplaceTempView(name)
        self._made[name] = frame

    def define(self, name: str, select_sql: str) -> None:
        # A SQL view, analysed afresh wherever it is used: a view of an analysed DataFrame keeps its
        # column ids, and two views built on the same rows (one family's windows) then collide when
        # one statement joins both ("cannot resolve u.account_id" with adaptive execution off).
        self.spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {select_sql}")
        self._made[name] = self.spark.table(name)

    def store(self, name: str) -> None:
        frame = self.spark.sql(f"SELECT * FROM {name}").localCheckpoint(eager=True)
        frame.createOrReplaceTempView(name)
        self._made[name] = frame

    def rows(self, select_sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.spark.sql(select_sql).collect()]

    def frame(self, select_sql: str) -> pd.DataFrame:
        return self.spark.sql(select_sql).toPandas()

    def dataframe(self, select_sql: str) -> DataFrame:
        """The query as a lazy Spark DataFrame (for writing from the cluster without collecting)."""
        return self.spark.sql(select_sql)

    def drop_intermediates(self) -> None:
        for name, frame in reversed(list(self._made.items())):
            self.spark.catalog.dropTempView(name)
            frame.unpersist()
        self._made.clear()
