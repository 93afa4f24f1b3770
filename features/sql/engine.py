"""Where feature SQL runs: one small interface over a DuckDB connection or a Spark session.

Families never write DDL. They hand a SELECT to `materialize` when later statements read its rows
several times (snapshots, daily roll-ups of the event tables), or to `define` when one later
statement reads it once. DuckDB stores both as temporary tables. Spark stores the first kind as a
checkpointed DataFrame registered as a temporary view (so later statements start from stored rows
instead of re-running the chain of views before them) and keeps the second as a plain view, so the
statement that reads it plans it in the same job: one Spark job per stored table, not per statement.
A family's own table is `define`d and then `store`d: its windows are computed in a job of their own,
so the final join's tasks hold joins only.
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
        """Drop every table `materialize` made."""


class DuckDBEngine:
    dialect = DUCKDB

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._made: list[str] = []

    def materialize(self, name: str, select_sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select_sql}")
        self._made.append(name)

    def define(self, name: str, select_sql: str) -> None:
        self.materialize(name, select_sql)

    def store(self, name: str) -> None:
        """Nothing to do: `define` already stored the rows."""

    def rows(self, select_sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(select_sql).fetchall()

    def frame(self, select_sql: str) -> pd.DataFrame:
        return self.con.execute(select_sql).df()

    def drop_intermediates(self) -> None:
        for name in reversed(self._made):
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        self._made.clear()


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
