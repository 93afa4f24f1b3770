"""LAER lifecycle stage of each scored account: land, adopt, expand or renew.

Customer-success teams run different plays per stage (onboarding in Land, adoption programmes in
Adopt, upsell in Expand, renewal calls in Renew), so alerts and reports are filtered by it.
An account whose terms have all ended (`account_status` churned, scored with `--include-churned`) has no
stage (null): no renewal is ahead of it, and LAER stages are plays for customers still under contract.
Precedence otherwise, first match wins:
1. renew  - the term ends within `renew_window_days`, or within the last quarter of a shorter term
            (the renewal conversation is what matters now; a monthly or weekly subscriber is
            not renewing all the time, only in the last week or days of its term);
2. land   - the account landed less than `land_days` ago (still onboarding);
3. expand - seats grew at the last renewal by at least `expand_seat_growth`, or more users are
            active than licensed (`user_utilisation_30d` above `expand_utilisation`, where the seat count
            `seats` is known: an account without one is counted whole, its utilisation is its active users);
4. adopt  - everyone else.
The stage needs `tenure_days` and `days_to_renewal` (the feature table's names, which a prepared table
uses too): without either column, or for a row missing either value (unless it is renewing), the stage is
empty (null), never a guess. Seat growth (`seat_change_last_renewal`) and utilisation
(`user_utilisation_30d`) only ever make an account `expand`: an absent column or missing value does not fire
that rule, as with a data folder without `subscriptions.seats` and `logins.user_id`.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from features.errors import counted
from models.population import churned_mask
from models.scores import DAYS_TO_RENEWAL, LIFECYCLE_STAGE

LAND, ADOPT, EXPAND, RENEW = "land", "adopt", "expand", "renew"
TENURE_DAYS = "tenure_days"
SEAT_GROWTH = "seat_change_last_renewal"
UTILISATION = "user_utilisation_30d"
SEATS = "seats"
REQUIRED: tuple[str, ...] = (TENURE_DAYS, DAYS_TO_RENEWAL)
"""Columns without which no row gets a stage."""


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    """The numeric column, or all-missing when the table lacks it (every comparison is then False)."""
    if name not in table.columns:
        return pd.Series(np.nan, index=table.index, dtype=float)
    return pd.to_numeric(table[name], errors="coerce").astype(float)


def lifecycle_stage(
    table: pd.DataFrame,
    *,
    land_days: float,
    renew_window_days: float,
    expand_seat_growth: float,
    expand_utilisation: float,
) -> pd.Series:
    """The LAER stage per row of a feature table, aligned with its index (thresholds: `lifecycle:` settings);
    null where `tenure_days` or `days_to_renewal` is unknown, or the account churned (see the module docstring)."""
    days_to_renewal = _column(table, DAYS_TO_RENEWAL)
    term_length = _column(table, "term_length_days")
    tenure = _column(table, TENURE_DAYS)
    seat_growth = _column(table, SEAT_GROWTH)
    utilisation = _column(table, UTILISATION).where(_column(table, SEATS).notna())  # else: users, not a share

    window = np.fmin(renew_window_days, term_length / 4)  # no term length: the configured window
    renew = days_to_renewal <= window
    land = tenure < land_days
    # Growth must be positive: a threshold of 0 means "any growth", not "no change".
    grew = (seat_growth > 0) & (seat_growth >= expand_seat_growth)
    expand = grew | (utilisation > expand_utilisation)

    unknown = days_to_renewal.isna() | tenure.isna()  # renewing, new or not: the rules below cannot tell
    stage = np.select(
        [churned_mask(table), renew, unknown, land, expand], [None, RENEW, None, LAND, EXPAND], default=ADOPT
    )
    return pd.Series(stage, index=table.index, dtype=str, name=LIFECYCLE_STAGE)


def stage_gaps(scores: pd.DataFrame) -> str | None:
    """Why rows of a scores table have no `lifecycle_stage` (a prepared table's warning); None when all have one.

    The scores carry `tenure_days` and `days_to_renewal` (null when the scored table lacked them)."""
    blank = int(scores[LIFECYCLE_STAGE].isna().sum())
    if not blank:
        return None
    absent = [name for name in REQUIRED if scores[name].isna().all()]
    if absent:
        return (
            f"lifecycle_stage is empty: the table has no {' or '.join(absent)} column (days since the account "
            "landed; days until its term ends), which the LAER stage is computed from"
        )
    return f"lifecycle_stage is empty for {counted(blank, 'row')} whose {' or '.join(REQUIRED)} is blank"


def expand_gap(columns: Collection[str]) -> str | None:
    """Why no row of a table with these columns can be `expand` (a prepared table's warning); None when one can.

    Said only where stages are computed at all (`stage_gaps` covers a table without `REQUIRED`)."""
    if not set(REQUIRED) <= set(columns) or SEAT_GROWTH in columns or {UTILISATION, SEATS} <= set(columns):
        return None
    if UTILISATION in columns:
        return (
            f"lifecycle_stage is never expand: the table has no {SEAT_GROWTH} column (seat growth at the last "
            f"renewal), and its {UTILISATION} counts only beside a {SEATS} column (the licensed seats it is a share "
            "of), so accounts that grew are adopt"
        )
    return (
        f"lifecycle_stage is never expand: the table has no {SEAT_GROWTH} or {UTILISATION} column (seat growth "
        "at the last renewal; active users per licensed seat), which the expand stage is computed from, so "
        "accounts that grew are adopt"
    )
