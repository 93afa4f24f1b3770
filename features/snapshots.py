"""Snapshots and labels (SPEC "Snapshots and labels"): which accounts are active at each as_of, and
whether the term active then was renewed.

A term is active at as_of when start_date < as_of <= end_date. E (`term_end`) is the latest end
among the active terms. The account renews when some term starts no later than E + grace_days
and ends after E; otherwise it churns at E (label 1). The label is censored (NULL) when
E + grace_days is after the end of the data. The snapshot set and everything but the label use
only terms that started before as_of. Terms of accounts missing from `accounts` are never
snapshots (the contract excludes them everywhere; loading already leaves them out).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from features.daily import ASOF_TABLE, SNAPSHOTS, days_between, timestamp_literal
from pipeline.contract import TABLES
from pipeline.errors import ConfigError

HORIZON_DAYS = 90
"""Longest fixed look-back of the feature families (90-day means and rates)."""

TERMS = "_ft_terms"
CADENCES = ("monthly", "weekly")


def snapshot_dates(
    dataset, cadence: str = "monthly", start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
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
    if start is not None:
        anchor = _midnight(start)
    else:
        earliest = _history_start(dataset)
        if earliest is None:
            return []
        if cadence == "monthly":
            anchor = earliest.normalize().replace(day=1) + pd.DateOffset(months=1)
        else:
            anchor = earliest.normalize() + pd.Timedelta(days=7 - earliest.dayofweek)
    step = pd.DateOffset(months=1) if cadence == "monthly" else pd.DateOffset(days=7)
    dates: list[pd.Timestamp] = []
    while (date := anchor + step * len(dates)) <= last:
        dates.append(pd.Timestamp(date).as_unit("us"))
    return dates


def _history_start(dataset) -> pd.Timestamp | None:
    """The latest of the first term start and the first event + HORIZON_DAYS (None without terms)."""
    first_term = dataset.subscriptions["start_date"].min()
    if pd.isna(first_term):
        return None
    firsts = [
        dataset.con.execute(f'SELECT min("{TABLES[name].time_column}") FROM "{name}"').fetchone()[0]
        for name in dataset.event_tables
    ]
    firsts = [pd.Timestamp(ts) for ts in firsts if ts is not None]
    if not firsts:
        return pd.Timestamp(first_term)
    return max(pd.Timestamp(first_term), min(firsts) + pd.Timedelta(days=HORIZON_DAYS))


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


def terms_sql(grace_days: int) -> str:
    """Every term, numbered in start order, with its renewal facts and the account's history so far.

    A term renews an earlier one when it starts after it, no later than its end + grace, and ends
    after it (the SPEC's renewal rule seen from the new term); `prev_seats` are the seats of the
    term it renews (the latest-ending such term). Running over the account's terms by start date
    (terms starting the same day together): `renewals_so_far`, `latest_renewal` (term id of the
    last renewal) and `latest_end` (the latest end date). All of it uses only terms starting no
    later than the row's own start, so an ASOF lookup "latest start before as_of" is point-in-time.
    """
    return f"""
        CREATE OR REPLACE TEMP TABLE {TERMS} AS
        WITH t AS (
            SELECT row_number() OVER (ORDER BY account_id, start_date, end_date, plan, seats, arr) AS term_id,
                   account_id, start_date, end_date, arr, seats, plan
            FROM subscriptions
            WHERE account_id IS NOT NULL AND start_date IS NOT NULL AND end_date IS NOT NULL
              AND account_id IN (SELECT account_id FROM accounts)
        ), predecessor AS (
            SELECT t.term_id, u.seats AS prev_seats,
                   row_number() OVER (PARTITION BY t.term_id ORDER BY u.end_date DESC, u.start_date DESC,
                                      u.term_id DESC) AS rank
            FROM t JOIN t AS u
              ON u.account_id = t.account_id AND u.start_date < t.start_date
             AND t.start_date <= u.end_date + to_days({grace_days}) AND t.end_date > u.end_date
        ), marked AS (
            SELECT t.*, p.term_id IS NOT NULL AS is_renewal, p.prev_seats
            FROM t LEFT JOIN predecessor p ON p.term_id = t.term_id AND p.rank = 1
        )
        SELECT *,
               count(*) FILTER (WHERE is_renewal) OVER history AS renewals_so_far,
               max(term_id) FILTER (WHERE is_renewal) OVER history AS latest_renewal,
               max(end_date) OVER history AS latest_end
        FROM marked
        WINDOW history AS (PARTITION BY account_id ORDER BY start_date RANGE UNBOUNDED PRECEDING)
    """


def snapshots_sql(grace_days: int, data_end: pd.Timestamp) -> str:
    """One row per (account, as_of) with an active term: term end, label, landing date, seat count.

    The label looks ahead with one ASOF lookup: the latest end among terms starting no later than
    E + grace is after E exactly when some such term ends after E (renewal). `landed_at` is the
    account's created_at, or its first term start when that is earlier; `seat_norm` is the
    licensed seats of the active terms (their maximum: add-on and overlapping renewal terms
    cover the same users), 1 when unknown, the denominator of every per-seat feature.
    """
    grace = f"to_days({grace_days})"
    return f"""
        CREATE OR REPLACE TEMP TABLE {SNAPSHOTS} AS
        WITH active AS (
            SELECT t.account_id, a.as_of, max(t.end_date) AS term_end,
                   max(t.seats) FILTER (WHERE t.seats > 0) AS seats
            FROM {TERMS} t JOIN {ASOF_TABLE} a ON t.start_date < a.as_of AND a.as_of <= t.end_date
            GROUP BY t.account_id, a.as_of
        ), firsts AS (
            SELECT account_id, min(start_date) AS first_start FROM {TERMS} GROUP BY account_id
        ), horizon AS (
            SELECT *, term_end + {grace} AS renew_by FROM active
        )
        SELECT s.account_id, s.as_of, s.term_end,
               CAST(CASE WHEN s.renew_by > {timestamp_literal(data_end)} THEN NULL
                         WHEN later.latest_end > s.term_end THEN 0 ELSE 1 END AS TINYINT) AS label,
               least(acc.created_at, f.first_start) AS landed_at,
               coalesce(s.seats, 1.0) AS seat_norm
        FROM horizon s
        JOIN firsts f ON f.account_id = s.account_id
        JOIN accounts acc ON acc.account_id = s.account_id
        ASOF LEFT JOIN {TERMS} later ON later.account_id = s.account_id AND s.renew_by >= later.start_date
    """


def tenure_sql() -> str:
    """Days since the account landed, the fallback of every "days since last X" that never happened."""
    return days_between("s.landed_at", "s.as_of")
