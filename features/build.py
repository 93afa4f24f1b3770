"""The feature engine: snapshot table (keys, label, term end, features) for a set of as_of dates.

All work runs as SQL on an `Engine` (`features/sql/engine.py`): the dataset's DuckDB connection by
default, or a Spark session. Snapshots and labels first, then each family present in the data
builds `_ft_<source>` from its daily roll-ups, and one final join assembles the table of
`features/table.py`. The SQL is the same on both engines; intermediate tables are dropped
afterwards, whatever happens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from features.contract import CanonicalData
from features.errors import DataContractError, counted
from features.families import FAMILIES
from features.families.base import FamilyContext, family_table
from features.families.usage import SOURCE as USAGE
from features.families.usage import product_names
from features.feature_set import FeatureSet
from features.labels import TERMS, snapshots_sql, terms_sql
from features.progress import ProgressCallback, report
from features.registry import absence_reason, lookup, sources_of
from features.settings import FeatureSettings
from features.snapshots import normalise_as_of, snapshot_dates
from features.sql.engine import DuckDBEngine, Engine
from features.sql.timeline import LANDED, SNAPSHOTS, build_timeline, landed_sql
from features.table import ACCOUNT_ID, AS_OF, DATA_DAYS_COLUMNS, LABEL, TERM_END, with_product_names

__all__ = ["build_features", "built_features", "snapshot_dates", "with_feature_dtypes"]

STAGE = "building features"
log = logging.getLogger("churn.features")


def build_features(
    dataset: CanonicalData,
    as_of_dates: Iterable,
    settings: FeatureSettings,
    grace_days: int,
    progress: ProgressCallback | None = None,
    feature_set: FeatureSet | None = None,
    engine: Engine | None = None,
    extra: Collection[str] = (),
) -> pd.DataFrame:
    """One row per (account, as_of) with an active term: label, term end and every feature, as pandas.

    Families whose table is absent from the data produce no columns; a snapshot's values depend
    only on data before its as_of, never on the other dates of the call, and, bit for bit, not on the
    rows' order or the engine's threads (fractional numbers are summed exactly: `timeline.exact`). With a
    model's `feature_set`, exactly its features are built, in its order (DataContractError when the data
    cannot produce one of them), with the value settings it recorded (`FeatureSet.built_with`), and those of
    `extra` (e.g. a scorecard's metrics) the data can produce; the labels follow `grace_days`. `engine`
    defaults to DuckDB on the dataset's connection.
    """
    engine = engine or DuckDBEngine(dataset.con)
    with built_features(dataset, engine, as_of_dates, settings, grace_days, progress, feature_set, extra) as built:
        table = engine.frame(f"{built.select} ORDER BY {AS_OF}, {ACCOUNT_ID}")
    return with_product_names(with_feature_dtypes(table), built.product_names)


@dataclass(frozen=True)
class BuiltTable:
    """The SELECT of an assembled feature table and the product feature names its usage columns count
    (`usage.product_names`), which the table carries (`features.table.PRODUCT_NAMES`)."""

    select: str
    product_names: Mapping[str, str]


@contextmanager
def built_features(
    dataset: CanonicalData,
    engine: Engine,
    as_of_dates: Iterable,
    settings: FeatureSettings,
    grace_days: int,
    progress: ProgressCallback | None = None,
    feature_set: FeatureSet | None = None,
    extra: Collection[str] = (),
) -> Iterator[BuiltTable]:
    """Build every family on `engine` and yield the SELECT of the assembled table (with its product feature
    names), valid inside the block: callers collect it (ordering it as they need) or write it from the engine.
    It has no ORDER BY: on Spark a global sort of the whole table would run the final join twice (range sampling,
    then the sort) for writers that partition by as_of anyway."""
    dates = normalise_as_of(as_of_dates)
    usage_keys = feature_set.usage_keys if feature_set is not None else None
    # A model's features are built with the values it learnt them with; the labels keep the configured rule.
    feature_settings, feature_grace = (
        (settings, grace_days) if feature_set is None else feature_set.built_with(settings, grace_days)
    )
    ctx = FamilyContext(feature_settings, feature_grace, dataset.present_columns, usage_keys, dataset.exact_sums)
    families = [f for f in FAMILIES if f.SOURCE == "accounts" or f.SOURCE in dataset.event_tables]
    steps = len(families) + 2
    d = engine.dialect

    def done_steps(done: int) -> None:
        report(progress, STAGE, done, steps)

    try:
        done_steps(0)
        started = time.perf_counter()
        build_timeline(engine, dates, _first_day(dataset, dates[0] - pd.Timedelta(days=ctx.horizon)), ctx.horizon)
        engine.materialize(TERMS, terms_sql(d, feature_grace))
        engine.materialize(SNAPSHOTS, snapshots_sql(d, grace_days, pd.Timestamp(dataset.data_end)))
        engine.define(LANDED, landed_sql(d))
        log.info("features: timeline, terms and snapshots built in %.2f s", time.perf_counter() - started)
        done_steps(1)
        built: list[tuple[str, list[str]]] = []
        for done, family in enumerate(families, start=2):
            started = time.perf_counter()
            built.append((family.SOURCE, family.build(engine, ctx)))
            # Each family's windows are computed in their own job: left lazy, every family's joins and
            # aggregations ran inside the final join's tasks, more than a 100M-event build's memory held.
            engine.store(family_table(family.SOURCE))
            # Where the build's time goes, per family (Spark computes `define`d tables lazily, later).
            log.info("features: %s family built in %.2f s", family.SOURCE, time.perf_counter() - started)
            done_steps(done)
        usage = [columns for source, columns in built if source == USAGE]
        names = product_names(engine, ctx, usage[0]) if usage else {}
        yield BuiltTable(_assemble_sql(built, feature_set, extra), names)
        done_steps(steps)
    finally:
        engine.drop_intermediates()


def _first_day(dataset: CanonicalData, fallback: pd.Timestamp) -> pd.Timestamp:
    """The first day any event table has a row: where the calendar starts."""
    first = dataset.first_event
    return fallback if first is None else min(first, fallback)


def _assemble_sql(
    built: list[tuple[str, list[str]]], feature_set: FeatureSet | None, extra: Collection[str] = ()
) -> str:
    """The final join; with a feature set, exactly its features in its order, then those of `extra` the data
    produced. The days of each table's data (`DATA_DAYS_COLUMNS`, for the words) follow the features either way."""
    made = {name: f"f{index}.{name}" for index, (_, names) in enumerate(built) for name in names}
    features = {name: select for name, select in made.items() if name not in DATA_DAYS_COLUMNS}
    if feature_set is None:
        wanted = list(features)
    else:
        wanted = _exactly(features, feature_set)
        wanted += [name for name in dict.fromkeys(extra) if name in features and name not in wanted]
    wanted += [name for name in made if name in DATA_DAYS_COLUMNS]
    select = [f"s.{ACCOUNT_ID}", f"s.{AS_OF}", f"s.label AS {LABEL}", f"s.term_end AS {TERM_END}"]
    select += [made[name] for name in wanted]
    joins = []
    for index, (source, _) in enumerate(built):
        alias = f"f{index}"
        joins.append(
            f"LEFT JOIN {family_table(source)} {alias} ON {alias}.account_id = s.account_id AND {alias}.as_of = s.as_of"
        )
    return f"SELECT {', '.join(select)} FROM {SNAPSHOTS} s {' '.join(joins)}"


def _exactly(made: dict[str, str], feature_set: FeatureSet) -> list[str]:
    """The set's features, in its order; a feature the data cannot produce fails."""
    missing = [name for name in feature_set.names if name not in made]
    if missing:
        sources = sources_of(made)
        reasons = "; ".join(
            f"{name} ({absence_reason(name, sources, made) if lookup(name) else 'not a feature this engine builds'})"
            for name in missing[:5]
        )
        raise DataContractError(
            f"The model was trained on {counted(len(feature_set.names), 'feature')}; this data cannot produce "
            f"{len(missing)} of them: {reasons}{', ...' if len(missing) > 5 else ''}. Score data with the same "
            "tables and columns as the training data (and the same features.windows), or retrain on this data."
        )
    return list(feature_set.names)


def with_feature_dtypes(table: pd.DataFrame) -> pd.DataFrame:
    """Keys as str / datetime64[us], label as nullable Int8, features float64 or category.

    Built as one new frame: a hundred columns replaced one by one leave a frame of as many blocks, which pandas
    then warns about ("highly fragmented") at the next column a command adds."""
    keys = {ACCOUNT_ID: str, AS_OF: "datetime64[us]", TERM_END: "datetime64[us]", LABEL: "Int8"}
    typed = {}
    for column in table.columns:
        categorical = (spec := lookup(column)) is not None and spec.kind == "categorical"
        typed[column] = table[column].astype(keys.get(column, "category" if categorical else "float64"))
    return pd.DataFrame(typed, index=table.index)
