"""Point-in-time correctness: rows at or after as_of never change a snapshot, nor do other as_of dates.

Random small datasets (seeded numpy driven by hypothesis) exercise every family and optional
column; the rows dated at or after as_of are then replaced by an unrelated random set -- so rows
are changed, added and deleted at once, some exactly at as_of, reusing the same users, workflow
runs and features -- tickets open at as_of get another (or no) later close date, and invoices
unpaid at as_of another (or no) later payment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from features.build import build_features
from features.registry import data_days_column, lookup, spec
from features.table import LABEL, categorical_columns
from pipeline.loading import Dataset
from tests.feature_data import EVENT_TIME, RANDOM_DATA_END, RANDOM_SETTINGS, RANDOM_START, random_tables, rewrite_after

DAYS_SINCE = [f"days_since_last_{event}" for event in ("login", "use", "ticket", "training", "touchpoint", "survey")]


def features(tables: dict[str, pd.DataFrame], dates: list[pd.Timestamp]) -> pd.DataFrame:
    """Snapshot keys and features; categories as plain values (their levels follow the rows present)."""
    dataset = Dataset.from_frames(tables, data_end=RANDOM_DATA_END)
    table = build_features(dataset, dates, RANDOM_SETTINGS, grace_days=30).drop(columns=LABEL)
    return table.astype({column: object for column in categorical_columns(table)})


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), day=st.integers(30, 700))
def test_rows_at_or_after_as_of_change_no_snapshot(seed, day):
    as_of = RANDOM_START + pd.Timedelta(days=day)
    tables = random_tables(seed)
    before = features(tables, [as_of])
    assume(len(before) > 0)
    after = features(rewrite_after(tables, as_of, seed + 1), [as_of])
    pd.testing.assert_frame_equal(before, after, check_exact=False, rtol=1e-9)


def start_late(tables: dict[str, pd.DataFrame], seed: int, as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Each event table without its rows before a day of its own (a late export): after some accounts
    landed, and for about a third of the tables after as_of too (no row before it)."""
    rng = np.random.default_rng(seed)
    late = dict(tables)
    for name, column in EVENT_TIME.items():
        start = as_of + pd.Timedelta(days=int(rng.integers(1, 60))) if rng.random() < 0.3 else None
        start = start or RANDOM_START + pd.Timedelta(days=int(rng.integers(0, max((as_of - RANDOM_START).days, 1))))
        late[name] = tables[name][tables[name][column] >= start].reset_index(drop=True)
    return late


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), day=st.integers(30, 700))
def test_a_late_export_rows_at_or_after_as_of_change_no_snapshot(seed, day):
    """The tables' first days decide what is counted since landing: rows at or after as_of must not move them
    (a table whose first row is at or after as_of says nothing, whatever it holds later)."""
    as_of = RANDOM_START + pd.Timedelta(days=day)
    tables = start_late(random_tables(seed), seed + 2, as_of)
    before = features(tables, [as_of])
    assume(len(before) > 0)
    after = features(rewrite_after(tables, as_of, seed + 1), [as_of])
    pd.testing.assert_frame_equal(before, after, check_exact=False, rtol=1e-9)
    # a "days since" counts from its table's first row where that is after the landing: never further back --
    # except to the account's own rows from before it landed (a touchpoint before the first term), which happened
    for name in DAYS_SINCE:
        source = spec(name).source
        data_days = before[data_days_column(source)]
        late = data_days < before["tenure_days"]
        bound = before["tenure_days"].where(~late, data_days)
        events = tables[source]
        times = events.loc[events[EVENT_TIME[source]] < as_of].groupby("account_id")[EVENT_TIME[source]].min()
        first_row = times.dt.floor("D").reindex(before["account_id"]).set_axis(before.index)
        since_first_row = (as_of - first_row).dt.days
        assert (before[name] <= np.fmax(bound, since_first_row)).all(), name
    # a window longer than 90 days is missing where the table starts inside it, after the landing
    for name in [c for c in before.columns if (found := lookup(c)) is not None and found.whole]:
        data_days = before[data_days_column(spec(name).source)]
        partial = (data_days < spec(name).window) & (data_days < before["tenure_days"])
        assert before.loc[partial, name].isna().all(), name


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), days=st.lists(st.integers(30, 700), min_size=2, max_size=6, unique=True))
def test_a_snapshot_does_not_depend_on_the_other_dates_of_the_call(seed, days):
    tables = random_tables(seed)
    dates = [RANDOM_START + pd.Timedelta(days=d) for d in days]
    together = features(tables, dates)
    alone = features(tables, [dates[0]])
    common = [c for c in alone.columns if c in together.columns]
    assert len(common) >= len(alone.columns) - RANDOM_SETTINGS.top_features  # only per-feature columns may differ
    subset = together[together.as_of == dates[0]].reset_index(drop=True)[common]
    pd.testing.assert_frame_equal(alone[common], subset, check_exact=False, rtol=1e-9)
