"""Terms, snapshots and labels: the SPEC's churn and renewal rules, written once.

A term is active at as_of when start_date < as_of <= end_date. E (`term_end`) is the latest end
among the active terms. The account *renews* when some term starts no later than E + grace_days
and ends after E (`renews_sql`); otherwise it churns at E (label 1). The outcome is *censored*
(label NULL) when E + grace_days is after the end of the data (`censored_sql`). The snapshot set
and everything but the label use only terms that started before as_of. Terms of accounts missing
from `accounts` are never snapshots (the contract excludes them everywhere; loading already
leaves them out).

The same two rules label the snapshots here and count renewed, churned and censored terms in
`churn validate` (`term_outcomes_sql`), so the report and the training labels cannot disagree.
"""

from __future__ import annotations

import pandas as pd

from features.daily import ASOF_TABLE, SNAPSHOTS, timestamp_literal

TERMS = "_ft_terms"


def renews_sql(new: str, end: str, grace_days: int) -> str:
    """The renewal rule: term `new` (an alias with start_date, end_date) renews a term ending at `end`."""
    return f"({new}.start_date <= {end} + to_days({int(grace_days)}) AND {new}.end_date > {end})"


def censored_sql(end: str, grace_days: int, data_end: pd.Timestamp) -> str:
    """The outcome of a term ending at `end` is not known yet: its grace period reaches past the data."""
    return f"({end} + to_days({int(grace_days)}) > {timestamp_literal(data_end)})"


def terms_sql(grace_days: int) -> str:
    """Every term, numbered in start order, with its renewal facts and the account's history so far.

    A term renews an earlier one when it starts after it and the renewal rule holds between them;
    `prev_seats` are the seats of the term it renews (the latest-ending such term). Running over
    the account's terms by start date (terms starting the same day together): `renewals_so_far`,
    `latest_renewal` (term id of the last renewal) and `latest_end` (the latest end date). All of
    it uses only terms starting no later than the row's own start, so an ASOF lookup "latest
    start before as_of" is point-in-time.
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
             AND {renews_sql("t", "u.end_date", grace_days)}
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

    The label looks ahead: the account renewed when some term of it renews E (`renews_sql`).
    `landed_at` is the account's created_at, or its first term start when that is earlier;
    `seat_norm` is the licensed seats of the active terms (their maximum: add-on and overlapping
    renewal terms cover the same users), 1 when unknown, the denominator of every per-seat feature.
    """
    return f"""
        CREATE OR REPLACE TEMP TABLE {SNAPSHOTS} AS
        WITH active AS (
            SELECT t.account_id, a.as_of, max(t.end_date) AS term_end,
                   max(t.seats) FILTER (WHERE t.seats > 0) AS seats
            FROM {TERMS} t JOIN {ASOF_TABLE} a ON t.start_date < a.as_of AND a.as_of <= t.end_date
            GROUP BY t.account_id, a.as_of
        ), firsts AS (
            SELECT account_id, min(start_date) AS first_start FROM {TERMS} GROUP BY account_id
        )
        SELECT s.account_id, s.as_of, s.term_end,
               CAST(CASE WHEN {censored_sql("s.term_end", grace_days, data_end)} THEN NULL
                         WHEN EXISTS (SELECT 1 FROM {TERMS} n WHERE n.account_id = s.account_id
                                      AND {renews_sql("n", "s.term_end", grace_days)}) THEN 0
                         ELSE 1 END AS TINYINT) AS label,
               least(acc.created_at, f.first_start) AS landed_at,
               coalesce(s.seats, 1.0) AS seat_norm
        FROM active s
        JOIN firsts f ON f.account_id = s.account_id
        JOIN accounts acc ON acc.account_id = s.account_id
    """


def term_outcomes_sql(terms: str, grace_days: int, data_end: pd.Timestamp) -> str:
    """(terms, renewed, churned, censored) over the table `terms`, each term judged by its own end date."""
    return f"""
        WITH outcome AS (
            SELECT {censored_sql("t.end_date", grace_days, data_end)} AS censored,
                   EXISTS (SELECT 1 FROM {terms} n WHERE n.account_id = t.account_id
                           AND {renews_sql("n", "t.end_date", grace_days)}) AS renewed
            FROM {terms} t
        )
        SELECT count(*), count_if(NOT censored AND renewed), count_if(NOT censored AND NOT renewed), count_if(censored)
        FROM outcome
    """
