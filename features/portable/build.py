"""Build the ported part of the snapshot feature table (keys, label, term end, logins features)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from features.portable import logins
from features.portable.engine import Engine
from features.portable.snapshots import TERMS, snapshots_sql, terms_sql
from features.portable.timeline import SNAPSHOTS, build_timeline

HORIZON_DAYS = 90


def build_portable_features(
    engine: Engine,
    as_of_dates: Iterable[pd.Timestamp],
    *,
    grace_days: int,
    data_end: pd.Timestamp,
    first_day: pd.Timestamp,
    windows: Iterable[int] = (7, 30, 90),
    has_login_users: bool = True,
) -> pd.DataFrame:
    """One row per (account, as_of) with an active term, ordered by (as_of, account_id)."""
    windows = sorted(windows)
    horizon = max(*windows, HORIZON_DAYS)
    d = engine.dialect
    try:
        build_timeline(engine, as_of_dates, first_day, horizon)
        engine.materialize(TERMS, terms_sql(d, grace_days))
        engine.materialize(SNAPSHOTS, snapshots_sql(d, grace_days, data_end))
        names = logins.build(engine, windows, horizon, has_login_users)
        select = ", ".join(f"f.{n}" for n in names)
        return engine.frame(
            f"""
            SELECT s.account_id, s.as_of, s.label, s.term_end, {select}
            FROM {SNAPSHOTS} s LEFT JOIN {logins.TABLE} f ON f.account_id = s.account_id AND f.as_of = s.as_of
            ORDER BY s.as_of, s.account_id
            """
        )
    finally:
        engine.drop_intermediates()
