"""LAER lifecycle stage of each scored account: land, adopt, expand or renew.

Customer-success teams run different plays per stage (onboarding in Land, adoption programmes in
Adopt, upsell in Expand, renewal calls in Renew), so alerts and reports are filtered by it.
Precedence, first match wins:
1. renew  - the term ends within `renew_window_days`, or within the last quarter of a shorter term
            (the renewal conversation is what matters now; a monthly or weekly subscriber is
            not renewing all the time, only in the last week or days of its term);
2. land   - the account landed less than `land_days` ago (still onboarding);
3. expand - seats grew at the last renewal by at least `expand_seat_growth`, or more users are
            active than licensed (`user_utilisation_30d` above `expand_utilisation`);
4. adopt  - everyone else.
A rule whose input column is absent (prepared tables) or missing for a row does not fire.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.scores import DAYS_TO_RENEWAL, LIFECYCLE_STAGE

LAND, ADOPT, EXPAND, RENEW = "land", "adopt", "expand", "renew"


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
    """The LAER stage per row of a feature table, aligned with its index (thresholds: `lifecycle:` settings)."""
    days_to_renewal = _column(table, DAYS_TO_RENEWAL)
    term_length = _column(table, "term_length_days")
    tenure = _column(table, "tenure_days")
    seat_growth = _column(table, "seat_change_last_renewal")
    utilisation = _column(table, "user_utilisation_30d")

    window = np.fmin(renew_window_days, term_length / 4)  # no term length: the configured window
    renew = days_to_renewal <= window
    land = tenure < land_days
    # Growth must be positive: a threshold of 0 means "any growth", not "no change".
    grew = (seat_growth > 0) & (seat_growth >= expand_seat_growth)
    expand = grew | (utilisation > expand_utilisation)

    stage = np.select([renew, land, expand], [RENEW, LAND, EXPAND], default=ADOPT)
    return pd.Series(stage, index=table.index, dtype=str, name=LIFECYCLE_STAGE)
