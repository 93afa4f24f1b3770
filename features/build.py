"""The feature engine: snapshot table (keys, label, term end, features) for a set of as_of dates.

All work runs as SQL in the dataset's DuckDB connection: snapshots and labels first, then each
family present in the data builds `_ft_<source>` from its daily roll-ups, and one final join
assembles the table of `features/table.py`. Intermediate tables live in the connection as
`_ft_*` temporary tables and are dropped afterwards, whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pandas as pd

from features.contract import CanonicalData
from features.daily import SNAPSHOTS, TEMP_PREFIX, as_of_table_sql, intervals_sql, window_map_sql
from features.errors import DataContractError
from features.families import FAMILIES
from features.families.base import FamilyContext, family_table
from features.feature_set import FeatureSet
from features.labels import snapshots_sql, terms_sql
from features.progress import ProgressCallback, report
from features.registry import absence_reason, lookup, sources_of
from features.settings import FeatureSettings
from features.snapshots import normalise_as_of, snapshot_dates
from features.table import ACCOUNT_ID, AS_OF, LABEL, META_COLUMNS, TERM_END

__all__ = ["build_features", "snapshot_dates"]

STAGE = "building features"


def build_features(
    dataset: CanonicalData,
    as_of_dates: Iterable,
    settings: FeatureSettings,
    grace_days: int,
    progress: ProgressCallback | None = None,
    feature_set: FeatureSet | None = None,
) -> pd.DataFrame:
    """One row per (account, as_of) with an active term: label, term end and every feature.

    Families whose table is absent from the data produce no columns; a snapshot's values depend
    only on data before its as_of, never on the other dates of the call. With a model's
    `feature_set`, exactly its features are built, in its order (DataContractError when the data
    cannot produce one of them).
    """
    dates = normalise_as_of(as_of_dates)
    usage_keys = feature_set.usage_keys if feature_set is not None else None
    ctx = FamilyContext(settings, grace_days, dataset.present_columns, usage_keys)
    families = [f for f in FAMILIES if f.SOURCE == "accounts" or f.SOURCE in dataset.event_tables]
    con: duckdb.DuckDBPyConnection = dataset.con
    steps = len(families) + 2

    def done_steps(done: int) -> None:
        report(progress, STAGE, done, steps)

    def run(sql: str) -> list[tuple]:
        return con.execute(sql).fetchall()

    try:
        done_steps(0)
        for statement in (
            as_of_table_sql(dates),
            window_map_sql(ctx.horizon),
            intervals_sql(),
            terms_sql(grace_days),
            snapshots_sql(grace_days, pd.Timestamp(dataset.data_end)),
        ):
            run(statement)
        done_steps(1)
        built: list[tuple[str, list[str]]] = []
        for done, family in enumerate(families, start=2):
            built.append((family.SOURCE, family.build(run, ctx)))
            done_steps(done)
        table = _assemble(con, built)
        done_steps(steps)
    finally:
        _drop_temporary_tables(con)
    table = _with_feature_dtypes(table)
    return table if feature_set is None else _exactly(table, feature_set)


def _exactly(table: pd.DataFrame, feature_set: FeatureSet) -> pd.DataFrame:
    """The table with exactly the set's features, in its order; a feature the data cannot produce fails."""
    missing = [name for name in feature_set.names if name not in table.columns]
    if missing:
        sources = sources_of(table.columns[len(META_COLUMNS) :])
        reasons = "; ".join(
            f"{name} ({absence_reason(name, sources) if lookup(name) else 'not a feature this engine builds'})"
            for name in missing[:5]
        )
        raise DataContractError(
            f"The model was trained on {len(feature_set.names)} features; this data cannot produce "
            f"{len(missing)} of them: {reasons}{', ...' if len(missing) > 5 else ''}. Score data with the same "
            "tables and columns as the training data (and the same features.windows), or retrain on this data."
        )
    return table[[*META_COLUMNS, *feature_set.names]]


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
