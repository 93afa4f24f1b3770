"""Snapshot dates: the as_of dates a feature table is built for (SPEC "Snapshots and labels").

Which accounts are snapshots at those dates, and their labels, is `features/labels.py`.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from features.contract import CanonicalData
from features.errors import ConfigError

HORIZON_DAYS = 90
"""Longest fixed look-back of the feature families (90-day means and rates)."""

CADENCES = ("monthly", "weekly")


def snapshot_dates(
    dataset: CanonicalData, cadence: str = "monthly", start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
) -> list[pd.Timestamp]:
    """Regular as_of dates (midnights) over the history the data covers, up to `end` (default: data end).

    Without `start`, the first date is the first month start (monthly) or Monday (weekly) that
    follows both the earliest term start and `HORIZON_DAYS` of event history, so that every
    trailing window of every snapshot lies inside the observed data (an earlier snapshot would
    read "no activity" where the data simply had not begun). With `start`, dates step from
    `start` itself (e.g. the 15th of each month).
    """
    if cadence not in CADENCES:
        raise ConfigError(f"Unknown snapshot cadence '{cadence}': use one of {', '.join(CADENCES)}.")
    last = _midnight(end) if end is not None else pd.Timestamp(dataset.data_end)
    anchor = _midnight(start) if start is not None else first_snapshot_date(dataset, cadence)
    if anchor is None:
        return []
    step = pd.DateOffset(months=1) if cadence == "monthly" else pd.DateOffset(days=7)
    dates: list[pd.Timestamp] = []
    while (date := anchor + step * len(dates)) <= last:
        dates.append(pd.Timestamp(date).as_unit("us"))
    return dates


def first_snapshot_date(dataset: CanonicalData, cadence: str) -> pd.Timestamp | None:
    """The first regular snapshot date without `start` (see `snapshot_dates`); None without terms."""
    earliest = _history_start(dataset)
    if earliest is None:
        return None
    if cadence == "monthly":
        return earliest.normalize().replace(day=1) + pd.DateOffset(months=1)
    return earliest.normalize() + pd.Timedelta(days=7 - earliest.dayofweek)


def _history_start(dataset: CanonicalData) -> pd.Timestamp | None:
    """The latest of the first term start and the first event + HORIZON_DAYS (None without terms)."""
    first_term = dataset.con.execute("SELECT min(start_date) FROM subscriptions").fetchone()[0]
    if first_term is None:
        return None
    first_event = dataset.first_event  # as validation measured it: the event tables may live on another engine
    if first_event is None:
        return pd.Timestamp(first_term)
    return max(pd.Timestamp(first_term), first_event + pd.Timedelta(days=HORIZON_DAYS))


def normalise_as_of(dates: Iterable) -> list[pd.Timestamp]:
    """Validate as_of dates: at least one, each a midnight (naive UTC); sorted, duplicates removed."""
    parsed = []
    for value in dates:
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"as_of date {value!r} is not a date (e.g. '2024-03-01').") from exc
        if pd.isna(ts):
            raise ConfigError("as_of dates must not be empty or NaT.")
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        if ts != ts.normalize():
            raise ConfigError(
                f"as_of dates must be midnights (a snapshot covers whole days), got {ts.isoformat()}; "
                f"use e.g. '{ts.normalize().date().isoformat()}'."
            )
        parsed.append(ts.as_unit("us"))
    if not parsed:
        raise ConfigError("No as_of dates given: pass at least one snapshot date.")
    return sorted(set(parsed))


def _midnight(value) -> pd.Timestamp:
    return normalise_as_of([value])[0]
