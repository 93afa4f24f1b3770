"""A small simulated snapshot feature table (the format of `features/table.py`) with known truth.

Accounts hold consecutive annual terms; each term has a hidden health `u`; its churn probability
is a known, partly non-linear function of `u` and the segment; monthly snapshots observe `u`
through noisy engagement, adoption and support features. Outcomes are censored when
`term_end + grace_days` is after the end of the data, exactly like the real label rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

SEGMENT_EFFECT = {"smb": 0.5, "mid": 0.0, "enterprise": -0.7}
TERM_DAYS = 365


def simulate_feature_table(
    n_accounts: int = 400,
    *,
    years: float = 4.0,
    seed: int = 0,
    grace_days: int = 30,
    start: str = "2020-01-01",
    noise_features: int = 2,
) -> tuple[pd.DataFrame, pd.Series]:
    """(feature table, true churn probability per row on the same index)."""
    rng = np.random.default_rng(seed)
    origin = pd.Timestamp(start)
    end = origin + pd.Timedelta(days=int(years * 365))
    snapshot_dates = pd.date_range(origin + pd.offsets.MonthBegin(1), end, freq="MS")
    segments = rng.choice(list(SEGMENT_EFFECT), size=n_accounts, p=[0.5, 0.3, 0.2])
    plans = rng.choice(["basic", "pro", "enterprise"], size=n_accounts)
    seats = np.round(rng.lognormal(2.5, 0.8, size=n_accounts)) + 1

    terms = []
    for account in range(n_accounts):
        term_start = origin + pd.Timedelta(days=int(rng.integers(0, int(years * 365 * 0.7))))
        while term_start < end:
            term_end = term_start + pd.Timedelta(days=TERM_DAYS)
            health = rng.normal()
            logit = -1.6 - 1.4 * health + 0.9 * (health < -1.0) + SEGMENT_EFFECT[segments[account]]
            probability = float(expit(logit))
            churned = rng.random() < probability
            terms.append((account, term_start, term_end, health, probability, churned))
            if churned:
                break
            term_start = term_end
    frame = pd.DataFrame(terms, columns=["account", "start", "end", "health", "p", "churned"])

    rows = []
    for term in frame.itertuples(index=False):
        dates = snapshot_dates[(snapshot_dates > term.start) & (snapshot_dates <= term.end)]
        for as_of in dates:
            rows.append((term.account, as_of, term.start, term.end, term.health, term.p, term.churned))
    snaps = pd.DataFrame(rows, columns=["account", "as_of", "start", "end", "health", "p", "churned"])
    n = len(snaps)
    health = snaps["health"].to_numpy()
    account = snaps["account"].to_numpy()
    days_to_renewal = (snaps["end"] - snaps["as_of"]).dt.days.to_numpy().astype(float)
    # health shows more clearly as renewal approaches: the signal the model must learn
    clarity = 0.6 + 0.6 * (1 - days_to_renewal / TERM_DAYS)

    table = pd.DataFrame(
        {
            "account_id": pd.Series([f"acc{a:05d}" for a in account], dtype="string"),
            "as_of": snaps["as_of"].astype("datetime64[us]"),
            "label": pd.array(
                np.where(snaps["end"] + pd.Timedelta(days=grace_days) <= end, snaps["churned"].astype(int), -1),
                dtype="Int8",
            ),
            "term_end": snaps["end"].astype("datetime64[us]"),
        }
    )
    table.loc[table["label"] == -1, "label"] = pd.NA
    table["segment"] = pd.Categorical(segments[account], categories=list(SEGMENT_EFFECT))
    table["plan"] = pd.Categorical(plans[account])
    table["seats"] = seats[account]
    table["arr"] = seats[account] * 600.0
    table["days_to_renewal"] = days_to_renewal
    table["tenure_days"] = (snaps["as_of"] - snaps["start"]).dt.days.to_numpy().astype(float)
    table["logins_per_seat_30d"] = np.exp(0.5 * clarity * health + rng.normal(0, 0.5, n))
    table["active_days_30d"] = np.clip(np.round(15 + 6 * clarity * health + rng.normal(0, 4, n)), 0, 30)
    table["events_per_seat_30d"] = np.exp(0.4 * clarity * health + rng.normal(0, 0.6, n))
    table["tickets_90d"] = rng.poisson(np.exp(0.3 - 0.5 * clarity * health)).astype(float)
    csat = np.clip(np.round(3.5 + 0.6 * health + rng.normal(0, 0.8, n)), 1, 5)
    table["csat_mean_90d"] = np.where(table["tickets_90d"] > 0, csat, np.nan)
    for i in range(noise_features):
        table[f"noise_{i}"] = rng.normal(size=n)
    return table, pd.Series(snaps["p"].to_numpy(), index=table.index, name="true_probability")
