"""Where feature SQL runs: one small interface over a DuckDB connection or a Spark session.

Families never write DDL. They hand a SELECT to `materialize` when later statements read its rows
several times (snapshots, daily roll-ups of the event tables), or to `define` when one later
statement reads it once. DuckDB stores both as temporary tables. Spark stores the first kind as a
checkpointed DataFrame registered as a temporary view (so later statements start from stored rows
instead of re-running the chain of views before them) and keeps the second as a plain view, so the
statement that reads it plans it in the same job: one Spark job per stored table, not per statement.
A family's own table is `define`d and then `store`d: its windows are computed in a job of their own,
so the final join's tasks hold joins only.

`each` runs independent jobs (the families): DuckDB runs them at once, each on its own cursor,
because most of a build's ~50 statements read tables of ~100k snapshot rows, one row group, which
DuckDB runs on one thread; Spark runs them one after another (it parallelises inside each job).

pyspark is never imported here: the Spark engine is handed a session by the pipeline, which starts
one only when asked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pandas as pd

from features.sql.dialect import DUCKDB, SPARK, Dialect

if TYPE_CHECKING:  # pragma: no cover - typing only
    import duckdb
    from pyspark.sql import DataFrame, SparkSession

Result = TypeVar("Result")


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

    def each(self, jobs: Sequence[Callable[[Engine], Result]], finished: Callable[[int], None]) -> list[Result]:
        """Run independent jobs, each handed the engine to run its statements on, and return their
        results in the jobs' order; `finished(index)` is called on this thread as each job ends. The
        first job to fail stops the others and its error is raised."""


SETTINGS = "SELECT name, value FROM duckdb_settings()"
PROGRESS_BAR = "enable_progress_bar"  # the connection's display: not for the cursors of `each`


class DuckDBEngine:
    """Intermediates are tables of the (in-memory) database, not temporary tables, which only the
    connection that made them sees: the cursors of `each` read the snapshots and write their own."""

    dialect = DUCKDB

    def __init__(
        self, con: duckdb.DuckDBPyConnection, made: list[str] | None = None, stop: threading.Event | None = None
    ) -> None:
        self.con = con
        self._made = [] if made is None else made  # shared with the engines of `each`'s cursors
        self._stop = stop  # set when another job of `each` failed: run no further statement

    def _execute(self, sql: str) -> duckdb.DuckDBPyConnection:
        if self._stop is not None and self._stop.is_set():
            raise RuntimeError("feature build stopped: another family failed or the build was interrupted")
        return self.con.execute(sql)

    def materialize(self, name: str, select_sql: str) -> None:
        self._execute(f"CREATE OR REPLACE TABLE {name} AS {select_sql}")
        self._made.append(name)

    def define(self, name: str, select_sql: str) -> None:
        self.materialize(name, select_sql)

    def store(self, name: str) -> None:
        """Nothing to do: `define` already stored the rows."""

    def rows(self, select_sql: str) -> list[tuple[Any, ...]]:
        return self._execute(select_sql).fetchall()

    def frame(self, select_sql: str) -> pd.DataFrame:
        return self._execute(select_sql).df()

    def drop_intermediates(self) -> None:
        for name in reversed(self._made):
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        self._made.clear()

    def each(self, jobs: Sequence[Callable[[Engine], Result]], finished: Callable[[int], None]) -> list[Result]:
        """All jobs at once, each on a cursor of its own (DuckDB shares its threads between them);
        one after another on this connection when it holds temporary tables or views (registered
        frames, a scoring run's recent rows), which a cursor cannot see. When a job fails, or this
        thread is interrupted, the other jobs' statements are interrupted and awaited before the
        error is raised: no statement outlives the call."""
        if len(jobs) < 2 or self._has_temporary_objects():
            return one_after_another(self, jobs, finished)
        stop = threading.Event()
        cursors = [self._cursor() for _ in jobs]
        pool = ThreadPoolExecutor(len(jobs), thread_name_prefix="churn-features")
        try:
            futures = {
                pool.submit(job, DuckDBEngine(cursor, self._made, stop)): index
                for index, (job, cursor) in enumerate(zip(jobs, cursors, strict=True))
            }
            results: dict[int, Result] = {}
            pending: set[Future[Result]] = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in sorted(done, key=futures.__getitem__):
                    results[futures[future]] = future.result()  # a failed job raises its own error here
                    finished(futures[future])
            return [results[index] for index in range(len(jobs))]
        finally:
            stop.set()
            for cursor in cursors:
                cursor.interrupt()  # nothing to interrupt on a cursor whose job has ended
            pool.shutdown(wait=True)
            for cursor in cursors:
                cursor.close()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor with this connection's session settings: a new one starts from the database's,
        and the time zone, for one, decides the days of timestamps with an offset in the views."""
        cursor = self.con.cursor()
        defaults = dict(cursor.execute(SETTINGS).fetchall())
        for name, value in self.con.execute(f"{SETTINGS} WHERE scope = 'LOCAL'").fetchall():
            if value is not None and value != defaults.get(name) and not name.startswith(PROGRESS_BAR):
                quoted = value.replace("'", "''")
                cursor.execute(f"SET {name} = '{quoted}'")
        return cursor

    def _has_temporary_objects(self) -> bool:
        (count,) = self.con.execute(
            "SELECT (SELECT count(*) FROM duckdb_tables() WHERE temporary)"
            " + (SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal)"
        ).fetchone()
        return count > 0


def one_after_another(
    engine: Engine, jobs: Sequence[Callable[[Engine], Result]], finished: Callable[[int], None]
) -> list[Result]:
    """`Engine.each` on one connection or session: the jobs in order."""
    results = []
    for index, job in enumerate(jobs):
        results.append(job(engine))
        finished(index)
    return results


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
        frame = self.spark.sql(select_sql)
        frame.createOrReplaceTempView(name)
        self._made[name] = frame

    def store(self, name: str) -> None:
        frame = self._made[name].localCheckpoint(eager=True)
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

    def each(self, jobs: Sequence[Callable[[Engine], Result]], finished: Callable[[int], None]) -> list[Result]:
        """One after another: each job's Spark jobs already use every executor core."""
        return one_after_another(self, jobs, finished)
