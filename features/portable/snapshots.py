"""Snapshots and labels (SPEC "Snapshots and labels") in portable SQL.

Terms are few per account, so every lookup "terms of this account that started before X" is an
equality join on account_id with a range condition, aggregated per snapshot: both engines hash-join
on the account and filter, and the cost is (snapshots x terms of the account), not a range join.
That replaces the ASOF lookup of the label: the account renews when a term starting no later than
E + grace ends after E, i.e. when the latest end among those terms is after E.
"""

from __future__ import annotations

import pandas as pd

from features.portable.dialect import Dialect
from features.portable.timeline import ASOF_TABLE, agg_where

TERMS = "_ft_terms"


def terms_sql(d: Dialect, grace_days: int) -> str:
    """Every valid term with a stable id (start order), and whether it renews an earlier term (a term
    of the account ending before it, that it starts no later than grace days after, and outlasts)."""
    return f"""
        WITH t AS (
            SELECT row_number() OVER (ORDER BY account_id, start_date, end_date, plan NULLS LAST,
                                      seats NULLS LAST, arr NULLS LAST) AS term_id,
                   account_id, start_date, end_date, arr, seats, plan
            FROM subscriptions
            WHERE account_id IS NOT NULL AND start_date IS NOT NULL AND end_date IS NOT NULL
        ), renewing AS (
            SELECT DISTINCT t.term_id
            FROM t JOIN t AS u
              ON u.account_id = t.account_id AND u.start_date < t.start_date
             AND t.start_date <= u.end_date + {d.days(grace_days)} AND t.end_date > u.end_date
        )
        SELECT t.*, r.term_id IS NOT NULL AS is_renewal
        FROM t LEFT JOIN renewing r ON r.term_id = t.term_id
    """


def snapshots_sql(d: Dialect, grace_days: int, data_end: pd.Timestamp) -> str:
    """One row per (account, as_of) with an active term: term end, label, landing date, seat count."""
    grace = d.days(grace_days)
    return f"""
        WITH active AS (
            SELECT t.account_id, a.as_of, max(t.end_date) AS term_end,
                   {agg_where("max", "t.seats", "t.seats > 0")} AS seats
            FROM {TERMS} t JOIN {ASOF_TABLE} a ON t.start_date < a.as_of AND a.as_of <= t.end_date
            GROUP BY t.account_id, a.as_of
        ), firsts AS (
            SELECT account_id, min(start_date) AS first_start FROM {TERMS} GROUP BY account_id
        ), horizon AS (
            SELECT *, term_end + {grace} AS renew_by FROM active
        ), later AS (
            SELECT s.account_id, s.as_of, max(t.end_date) AS latest_end
            FROM horizon s JOIN {TERMS} t ON t.account_id = s.account_id AND t.start_date <= s.renew_by
            GROUP BY s.account_id, s.as_of
        )
        SELECT s.account_id, s.as_of, s.term_end,
               CAST(CASE WHEN s.renew_by > {d.timestamp(data_end)} THEN NULL
                         WHEN later.latest_end > s.term_end THEN 0 ELSE 1 END AS TINYINT) AS label,
               least(coalesce(acc.created_at, f.first_start), f.first_start) AS landed_at,
               coalesce(s.seats, 1.0) AS seat_norm
        FROM horizon s
        JOIN firsts f ON f.account_id = s.account_id
        LEFT JOIN accounts acc ON acc.account_id = s.account_id
        LEFT JOIN later ON later.account_id = s.account_id AND later.as_of = s.as_of
    """
