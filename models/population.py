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


def churned_mask(frame: pd.DataFrame) -> np.ndarray:
    """Rows of accounts whose terms have all ended (`account_status` churned; none without the column)."""
    if ACCOUNT_STATUS not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame[ACCOUNT_STATUS].eq(CHURNED).to_numpy(dtype=bool, na_value=False)


def days_to_term_end(frame: pd.DataFrame) -> pd.Series:
    """`days_to_renewal` as the scores say it: a churned account is scored on its last day, where its feature is
    0, but dated the run's `as_of`, by which its term ended: the negative days since it ended, as for any term
    that ended (never "renews today"). NaN where the frame lacks the column."""
    from models.scores import AS_OF, DAYS_TO_RENEWAL, TERM_END

    if DAYS_TO_RENEWAL not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float, name=DAYS_TO_RENEWAL)
    days = pd.to_numeric(frame[DAYS_TO_RENEWAL], errors="coerce").astype(float)
    churned = churned_mask(frame)
    if churned.any() and {TERM_END, AS_OF} <= set(frame.columns):
        ended = (pd.to_datetime(frame[TERM_END]) - pd.to_datetime(frame[AS_OF])) / pd.Timedelta(days=1)
        days = days.mask(churned, ended.astype(float))
    return days.rename(DAYS_TO_RENEWAL)


def trial_mask(features: pd.DataFrame, trial_plans: list[str], terms: pd.DataFrame | None = None) -> np.ndarray:
    """Rows on a trial: the current plan matches one of `trial_plans` (case-insensitive shell patterns,
    e.g. `*trial*`), or the account pays nothing (ARR 0). Without a `plan` or `arr` column that test
    cannot fire; a missing ARR is unknown, not zero. With the subscription `terms`, an account paying for
    a term active at the row's `as_of` is no trial, whatever its plan: the plan is that of the term ending
    last, which may be a trial of an add-on offered in the renewal talks."""
    trial = np.zeros(len(features), dtype=bool)
    if "plan" in features.columns and trial_plans:
        trial |= _trial_plan(features["plan"], trial_plans)
    if "arr" in features.columns:
        arr = pd.to_numeric(features["arr"], errors="coerce").to_numpy(dtype=float)
        trial |= arr == 0
    if terms is not None and trial.any():
        trial &= ~_paying(features[["account_id", "as_of"]], terms, trial_plans)
    return trial


def _trial_plan(plans: pd.Series, trial_plans: list[str]) -> np.ndarray:
    patterns = [p.lower() for p in trial_plans]
    lowered = plans.astype("string").str.lower()
    return lowered.map(lambda p: p is not pd.NA and any(fnmatch.fnmatchcase(p, q) for q in patterns)).to_numpy(
        dtype=bool, na_value=False
    )


def _paying(rows: pd.DataFrame, terms: pd.DataFrame, trial_plans: list[str]) -> np.ndarray:
    """Rows (`account_id`, `as_of`) whose account has a term active then (start < as_of <= end) that is no
    trial: its plan matches none of `trial_plans` and its ARR is not 0 (a missing plan or ARR is no trial)."""
    keep = np.ones(len(terms), dtype=bool)
    if "plan" in terms.columns and trial_plans:
        keep &= ~_trial_plan(terms["plan"], trial_plans)
    if "arr" in terms.columns:
        keep &= pd.to_numeric(terms["arr"], errors="coerce").to_numpy(dtype=float) != 0
    paid = terms.loc[keep, ["account_id", "start_date", "end_date"]]
    paid = paid.assign(account_id=paid["account_id"].astype(str))
    keyed = rows.assign(account_id=rows["account_id"].astype(str), row=np.arange(len(rows)))
    active = keyed.merge(paid, on="account_id")
    as_of = pd.to_datetime(active["as_of"])
    active = active[(pd.to_datetime(active["start_date"]) < as_of) & (as_of <= pd.to_datetime(active["end_date"]))]
    return np.isin(np.arange(len(rows)), active["row"].to_numpy())


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
