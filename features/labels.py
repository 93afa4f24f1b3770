"""Terms, snapshots and labels: the SPEC's churn and renewal rules, written once, in portable SQL.

A term is active at as_of when start_date < as_of <= end_date. E (`term_end`) is the latest end
among the active terms. The account *renews* when some term starts no later than E + grace_days
and ends after E (`renews_sql`); otherwise it churns at E (label 1). The outcome is *censored*
(label NULL) when E + grace_days is after the end of the data (`censored_sql`). The snapshot set
and everything but the label use only terms that started before as_of. Terms of accounts missing
from `accounts` are never snapshots (the contract excludes them everywhere).

Terms are few per account, so every lookup "terms of this account that ..." is an equality join on
account_id with a range condition, aggregated per snapshot: both engines hash-join on the account
and filter, at a cost of (snapshots x terms of the account).

The same two rules label the snapshots here and count renewed, churned and censored terms in
`churn validate` (`term_outcomes_sql`), so the report and the training labels cannot disagree.
"""

from __future__ import annotations

import pandas as pd

from features.contract import TABLES
from features.sql.dialect import Dialect
from features.sql.timeline import ASOF_TABLE, agg_where, count_where

TERMS = "_ft_terms"


def renews_sql(d: Dialect, new: str, end: str, grace_days: int) -> str:
    """The renewal rule: term `new` (an alias with start_date, end_date) renews a term ending at `end`."""
    return f"({new}.start_date <= {end} + {d.days(int(grace_days))} AND {new}.end_date > {end})"


def censored_sql(d: Dialect, end: str, grace_days: int, data_end: pd.Timestamp) -> str:
    """The outcome of a term ending at `end` is not known yet: its grace period reaches past the data."""
    return f"({end} + {d.days(int(grace_days))} > {d.timestamp(data_end)})"


TERM_COLUMNS = ", ".join(column.name for column in TABLES["subscriptions"].columns)
"""What a term is: rows equal in every contract column are one term (the labels and validate's counts take them so)."""


def terms_sql(d: Dialect, grace_days: int) -> str:
    """Every valid term with a stable id (start order), whether it renews an earlier term, and the
    seats of the term it renews (`prev_seats`: the latest-ending such term).

    A row repeating another in every column is one term (an export that wrote it twice): counted twice,
    it doubled the account's ARR and its renewals so far (validation reports such rows)."""
    return f"""
        WITH t AS (
            SELECT row_number() OVER (ORDER BY account_id, start_date, end_date, plan NULLS LAST,
                                      seats NULLS LAST, arr NULLS LAST) AS term_id,
                   account_id, start_date, end_date, arr, seats, plan
            FROM (SELECT DISTINCT {TERM_COLUMNS} FROM subscriptions
                  WHERE account_id IS NOT NULL AND start_date IS NOT NULL AND end_date IS NOT NULL
                    AND account_id IN (SELECT account_id FROM accounts)) distinct_terms
        ), predecessor AS (
            SELECT t.term_id, u.seats AS prev_seats,
                   row_number() OVER (PARTITION BY t.term_id ORDER BY u.end_date DESC, u.start_date DESC,
                                      u.term_id DESC) AS rank
            FROM t JOIN t AS u
              ON u.account_id = t.account_id AND u.start_date < t.start_date
             AND {renews_sql(d, "t", "u.end_date", grace_days)}
        )
        SELECT t.*, p.term_id IS NOT NULL AS is_renewal, p.prev_seats
        FROM t LEFT JOIN predecessor p ON p.term_id = t.term_id AND p.rank = 1
    """


def snapshots_sql(d: Dialect, grace_days: int, data_end: pd.Timestamp) -> str:
    """One row per (account, as_of) with an active term: term end, label, landing date, seat count.

    The label looks ahead: the account renewed when some term of it renews E (`renews_sql`).
    `landed_at` is the account's created_at, or its first term start when that is earlier;
    `seat_norm` is the licensed seats of the active terms (their maximum: add-on and overlapping
    renewal terms cover the same users), 1 when unknown, the denominator of every per-seat feature.
    """
    return f"""
        WITH active AS (
            SELECT t.account_id, a.as_of, max(t.end_date) AS term_end,
                   {agg_where("max", "t.seats", "t.seats > 0")} AS seats
            FROM {TERMS} t JOIN {ASOF_TABLE} a ON t.start_date < a.as_of AND a.as_of <= t.end_date
            GROUP BY t.account_id, a.as_of
        ), firsts AS (
            SELECT account_id, min(start_date) AS first_start FROM {TERMS} GROUP BY account_id
        ), renewed AS (
            SELECT s.account_id, s.as_of, {count_where(renews_sql(d, "n", "s.term_end", grace_days))} AS renewals
            FROM active s JOIN {TERMS} n ON n.account_id = s.account_id
            GROUP BY s.account_id, s.as_of
        )
        SELECT s.account_id, s.as_of, s.term_end,
               CAST(CASE WHEN {censored_sql(d, "s.term_end", grace_days, data_end)} THEN NULL
                         WHEN r.renewals > 0 THEN 0 ELSE 1 END AS TINYINT) AS label,
               least(acc.created_at, f.first_start) AS landed_at,
               coalesce(s.seats, 1.0) AS seat_norm
        FROM active s
        JOIN firsts f ON f.account_id = s.account_id
        JOIN accounts acc ON acc.account_id = s.account_id
        JOIN renewed r ON r.account_id = s.account_id AND r.as_of = s.as_of
    """


def term_outcomes_sql(d: Dialect, terms: str, grace_days: int, data_end: pd.Timestamp) -> str:
    """(terms, renewed, churned, censored) over the table `terms`, each term judged by its own end date; a row
    repeating another in every column is one term, as `terms_sql` takes it."""
    return f"""
        WITH distinct_terms AS (SELECT DISTINCT {TERM_COLUMNS} FROM {terms}), outcome AS (
            SELECT {censored_sql(d, "t.end_date", grace_days, data_end)} AS censored,
                   EXISTS (SELECT 1 FROM distinct_terms n WHERE n.account_id = t.account_id
                           AND {renews_sql(d, "n", "t.end_date", grace_days)}) AS renewed
            FROM distinct_terms t
        )
        SELECT count(*), {count_where("NOT censored AND renewed")}, {count_where("NOT censored AND NOT renewed")},
               {count_where("censored")}
        FROM outcome
    """
