"""The feature engine: snapshot table (keys, label, term end, features) for a set of as_of dates.

All work runs as SQL in the dataset's DuckDB connection: snapshots and labels first, then each
family present in the data builds `_ft_<source>` from its daily roll-ups, and one final join
assembles the table of `features/table.py`. Intermediate tables live in the connection as
`_ft_*` temporary tables and are dropped afterwards, whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import duckdb
import pandas as pd

from features.daily import TEMP_PREFIX, as_of_table_sql, intervals_sql, window_map_sql
from features.families import FAMILIES
from features.families.base import FamilyContext, family_table
from features.registry import lookup
from features.snapshots import SNAPSHOTS, normalise_as_of, snapshot_dates, snapshots_sql, terms_sql
from features.table import ACCOUNT_ID, AS_OF, LABEL, TERM_END
from pipeline.config import FeatureSettings

__all__ = ["build_features", "snapshot_dates"]

Progress = Callable[[str, int, int], None]
STAGE = "building features"


def build_features(
    dataset,
    as_of_dates: Iterable,
    settings: FeatureSettings,
    grace_days: int,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """One row per (account, as_of) with an active term: label, term end and every feature.

    Families whose table is absent from the data produce no columns; a snapshot's values depend
    only on data before its as_of, never on the other dates of the call.
    """
    dates = normalise_as_of(as_of_dates)
    ctx = FamilyContext(settings, grace_days, dataset.present_columns)
    families = [f for f in FAMILIES if f.SOURCE == "accounts" or f.SOURCE in dataset.event_tables]
    con: duckdb.DuckDBPyConnection = dataset.con
    steps = len(families) + 2

    def report(done: int) -> None:
        if progress is not None:
            progress(STAGE, done, steps)

    def run(sql: str) -> list[tuple]:
        return con.execute(sql).fetchall()

    try:
        report(0)
        for statement in (
            as_of_table_sql(dates),
            window_map_sql(ctx.horizon),
            intervals_sql(),
            terms_sql(grace_days),
            snapshots_sql(grace_days, pd.Timestamp(dataset.data_end)),
        ):
            run(statement)
        report(1)
        built: list[tuple[str, list[str]]] = []
        for done, family in enumerate(families, start=2):
            built.append((family.SOURCE, family.build(run, ctx)))
            report(done)
        table = _assemble(con, built)
        report(steps)
    finally:
        _drop_temporary_tables(con)
    return _with_feature_dtypes(table)


def _assemble(con: duckdb.DuckDBPyConnection, built: list[tuple[str, list[str]]]) -> pd.DataFrame:
    select = [f"s.{ACCOUNT_ID}", f"s.{AS_OF}", f"s.label AS {LABEL}", f"s.term_end AS {TERM_END}"]
    joins = []
    for index, (source, names) in enumerate(built):
        alias = f"f{index}"
        select += [f"{alias}.{name}" for name in names]
        joins.append(
            f"LEFT JOIN {family_table(source)} {alias} ON {alias}.account_id = s.account_id AND {alias}.as_of = s.as_of"
        )
    sql = f"SELECT {', '.join(select)} FROM {SNAPSHOTS} s {' '.join(joins)} ORDER BY s.as_of, s.account_id"
    return con.execute(sql).df()


def _with_feature_dtypes(table: pd.DataFrame) -> pd.DataFrame:
    """Keys as str / datetime64[us], label as nullable Int8, features float64 or category."""
    table[ACCOUNT_ID] = table[ACCOUNT_ID].astype(str)
    for column in (AS_OF, TERM_END):
        table[column] = table[column].astype("datetime64[us]")
    table[LABEL] = table[LABEL].astype("Int8")
    for column in table.columns[4:]:
        spec = lookup(column)
        if spec is not None and spec.kind == "categorical":
            table[column] = table[column].astype("category")
        else:
            table[column] = table[column].astype("float64")
    return table


def _drop_temporary_tables(con: duckdb.DuckDBPyConnection) -> None:
    names = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND starts_with(table_name, ?)", [TEMP_PREFIX]
    ).fetchall()
    for (name,) in names:
        con.execute(f'DROP TABLE IF EXISTS "{name}"')
