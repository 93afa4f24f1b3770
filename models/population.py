"""Who is scored: trials and accounts whose terms have all ended are not the book a CS team runs.

A default scorecard forced onto a free trial or a customer that has already left only adds red
accounts nobody can act on. Scoring leaves both out of the scores and the alerts (and says how
many) unless asked to keep them; `account_status` says which kind each scored row is.
"""

from __future__ import annotations

import fnmatch

import numpy as np
import pandas as pd

ACCOUNT_STATUS = "account_status"
ACTIVE, TRIAL, CHURNED = "active", "trial", "churned"


def trial_mask(features: pd.DataFrame, trial_plans: list[str]) -> np.ndarray:
    """Rows on a trial: the current plan matches one of `trial_plans` (case-insensitive shell patterns,
    e.g. `*trial*`), or the account pays nothing (ARR 0). Without a `plan` or `arr` column that test
    cannot fire; a missing ARR is unknown, not zero."""
    trial = np.zeros(len(features), dtype=bool)
    if "plan" in features.columns and trial_plans:
        patterns = [p.lower() for p in trial_plans]
        plans = features["plan"].astype("string").str.lower()
        trial |= plans.map(lambda p: p is not pd.NA and any(fnmatch.fnmatchcase(p, q) for q in patterns)).to_numpy(
            dtype=bool, na_value=False
        )
    if "arr" in features.columns:
        arr = pd.to_numeric(features["arr"], errors="coerce").to_numpy(dtype=float)
        trial |= arr == 0
    return trial


def churned_accounts(subscriptions: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Last term end of each account whose terms seen before `as_of` have all ended by then.

    Only terms starting before `as_of` count (a later one is data after the date); an account with
    one of them still running is active, not churned. Index: account_id (str).
    """
    day = pd.Timestamp(as_of).normalize()
    started = subscriptions[pd.to_datetime(subscriptions["start_date"]) < day]
    last_end = pd.to_datetime(started["end_date"]).groupby(started["account_id"].astype(str)).max()
    return last_end[last_end < day]


def unstarted_accounts(accounts: pd.Series, subscriptions: pd.DataFrame, as_of: pd.Timestamp) -> tuple[int, int]:
    """(accounts whose first term starts on or after `as_of`, accounts with no term at all) among the ids
    `accounts`: with no term before the date they are neither scored nor churned, yet are in the book."""
    day = pd.Timestamp(as_of).normalize()
    ids = accounts.astype(str)
    termed = subscriptions["account_id"].astype(str)
    started = termed[pd.to_datetime(subscriptions["start_date"]) < day]
    waiting = ids[~ids.isin(started)]
    later = int(waiting.isin(termed).sum())
    return later, len(waiting) - later
