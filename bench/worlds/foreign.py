"""A foreign churn simulator, written apart from `pipeline/synthetic/` on purpose (benchmark only).

Our acceptance runs the pipeline on histories from generators we have never seen; this is the
proxy. Nothing here is shared with the product's generator: its own latent dynamics, its own
event shapes, its own vocabulary and a hazard-based renewal decision.

The world, per account and week:
- engagement e: an Ornstein-Uhlenbeck path around a level that jumps now and then (a new
  competitor, a reorganisation: a lasting shift, mostly down), depressed for the first weeks;
- service pain s <= 0: incidents arrive as a Poisson process (more for bigger accounts) and
  each knocks s down; it heals geometrically;
- breadth b in 0..1: how much of the product the account has discovered (grows with tenure
  and engagement); events draw their feature from the account's first ceil(2 + 10 b) features
  of its own ranking of a 16-feature catalogue.
Usage arrives in sessions (a Poisson number per active user and week, 1 + Poisson events each);
logins are sessions; tickets come from incidents and from new accounts' questions.

Renewal: a term ends in churn with p = 1 - exp(-exp(eta) * term_years), the chance that a
constant hazard fires over the term, where eta adds up the level of engagement over the last
4 weeks, its decline against weeks 8-20 before (only a decline counts), service pain over the
last 8 weeks (worse for disengaged accounts), breadth, tenure, the price rise at the last
renewal and an unobservable per-term shock. `_truth/terms.parquet` holds p and the outcome.

Shapes (what the tables look like): `b2b` (annual and monthly terms, usage, logins and tickets,
rich accounts), `usage_monthly` (B2C: monthly terms, usage events only, accounts with
`account_id, created_at, segment, region`), `minimal_weekly` (weekly terms, logins only,
accounts with `account_id, created_at`, terms with `account_id, start_date, end_date`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

WEEK = pd.Timedelta(days=7)
CATALOGUE = (
    "open_board", "edit_card", "comment", "attach_file", "share_link", "export_csv", "search_all", "tag_item",
    "timeline_view", "automation_rule", "invite_member", "calendar_sync", "api_token", "custom_field",
    "report_build", "audit_log",
)  # fmt: skip
TICKET_KINDS = ("Outage", "Bug", "Question", "Billing")


@dataclass(frozen=True)
class Shape:
    description: str
    accounts: int
    b2c: bool
    term: str  # "mixed" (annual or monthly), "monthly" or "weekly"
    account_columns: tuple[str, ...]
    subscription_columns: tuple[str, ...]
    tables: dict[str, tuple[str, ...]]  # event table -> columns written


SHAPES: dict[str, Shape] = {
    "b2b": Shape(
        "foreign simulator, B2B: annual and monthly terms, usage, logins and tickets",
        1500, b2c=False, term="mixed",
        account_columns=("account_id", "created_at", "segment", "industry", "region", "csm"),
        subscription_columns=("account_id", "start_date", "end_date", "arr", "seats", "plan"),
        tables={
            "usage_events": ("account_id", "ts", "feature", "user_id", "quantity"),
            "logins": ("account_id", "ts", "user_id"),
            "support_tickets": ("account_id", "ticket_id", "opened_at", "closed_at", "priority", "category", "csat"),
        },
    ),
    "usage_monthly": Shape(
        "foreign simulator, B2C: monthly terms, usage events only, accounts with segment and region",
        2500, b2c=True, term="monthly",
        account_columns=("account_id", "created_at", "segment", "region"),
        subscription_columns=("account_id", "start_date", "end_date", "arr", "plan"),
        tables={"usage_events": ("account_id", "ts", "feature")},
    ),
    "minimal_weekly": Shape(
        "foreign simulator, weekly terms, logins only, accounts with account_id and created_at only",
        1200, b2c=True, term="weekly",
        account_columns=("account_id", "created_at"),
        subscription_columns=("account_id", "start_date", "end_date"),
        tables={"logins": ("account_id", "ts")},
    ),
}  # fmt: skip

B2B_SEGMENTS = (("startup", 0.45, 6.0, 0.35), ("growth", 0.40, 25.0, 0.0), ("corporate", 0.15, 80.0, -0.4))
B2C_SEGMENTS = (("individual", 0.6, 1.0, 0.25), ("family", 0.25, 1.0, -0.1), ("student", 0.15, 1.0, 0.45))
REGIONS = (("north", 0.4, 15.0), ("south", 0.3, 13.0), ("east", 0.2, 7.0), ("west", 0.1, 21.0))
INDUSTRIES = ("software", "agency", "logistics", "health", "education", "public", "finance")
PLANS = {"mixed": ("team", "business"), "monthly": ("basic", "plus"), "weekly": ("pass",)}
PRICE = {"team": 300.0, "business": 700.0, "basic": 96.0, "plus": 180.0, "pass": 52.0}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _latents(rng: np.random.Generator, n: int, weeks: int, landed_week: np.ndarray, seats: np.ndarray, b2c: bool):
    """Weekly engagement, service pain and breadth, shape (accounts, weeks)."""
    level = rng.normal(0.0, 0.5, n)
    shifts = np.where(rng.random((n, weeks)) < 0.007, rng.normal(-0.45, 0.6, (n, weeks)), 0.0)
    level_path = level[:, None] + np.cumsum(shifts, axis=1)
    wobble = np.empty((n, weeks))
    wobble[:, 0] = rng.normal(0.0, 0.4, n)
    shocks = rng.normal(0.0, 0.4 * np.sqrt(1 - 0.88**2), (n, weeks))
    for w in range(1, weeks):
        wobble[:, w] = 0.88 * wobble[:, w - 1] + shocks[:, w]
    age = np.arange(weeks)[None, :] - landed_week[:, None]
    ramp = -1.0 * np.exp(-np.clip(age, 0, None) / 3.0)
    engagement = level_path + wobble + ramp

    rate = (0.01 if b2c else 0.02) * np.power(seats, 0.35)[:, None] * np.ones((1, weeks))
    incidents = rng.poisson(rate)
    hits = incidents * rng.uniform(0.5, 1.5, (n, weeks))
    pain = np.empty((n, weeks))
    pain[:, 0] = -hits[:, 0]
    for w in range(1, weeks):
        pain[:, w] = 0.85 * pain[:, w - 1] - hits[:, w]

    curiosity = rng.beta(2.0, 2.5, n)
    breadth = curiosity[:, None] * (1 - np.exp(-np.clip(age, 0, None) / 20.0)) * _sigmoid(engagement + 0.5)
    return engagement, pain, breadth, incidents


def _user_ids(accounts: np.ndarray, users: np.ndarray) -> pd.Series:
    """'<account>/u<n>' ids, formatted once per distinct user."""
    codes, uniques = pd.factorize(pd.Series(accounts).str.cat(pd.Series(users).astype(str), sep="/u"))
    return pd.Series(np.asarray(uniques, dtype=object)[codes], dtype="string")


def _window_mean(values: np.ndarray, rows: np.ndarray, end_week: np.ndarray, start_back: int, stop_back: int):
    """Mean of values[row, end - start_back : end - stop_back] per row (clipped to the grid)."""
    cumsum = np.hstack([np.zeros((values.shape[0], 1)), np.cumsum(values, axis=1)])
    hi = np.clip(end_week - stop_back, 1, values.shape[1])
    lo = np.clip(end_week - start_back, 0, values.shape[1] - 1)
    lo = np.minimum(lo, hi - 1)
    return (cumsum[rows, hi] - cumsum[rows, lo]) / (hi - lo)


def simulate(out_dir: Path, shape: str, accounts: int, seed: int, start: str, years: float) -> dict[str, int]:
    """Write a history of `accounts` accounts from `start` for `years` in the given shape; rows per table."""
    spec = SHAPES[shape]
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    end = t0 + pd.DateOffset(months=round(years * 12))
    lead_weeks = 156  # the installed base landed up to three years before the data starts
    grid0 = t0 - lead_weeks * WEEK
    weeks = int((end - grid0) / WEEK) + 1
    n = accounts

    segments = B2C_SEGMENTS if spec.b2c else B2B_SEGMENTS
    segment = rng.choice(len(segments), n, p=[s[1] for s in segments])
    seats = np.ones(n)
    if not spec.b2c:
        medians = np.array([s[2] for s in segments])[segment]
        seats = np.clip(np.round(rng.lognormal(np.log(medians), 0.5)), 1, 2000)
    base = t0 - pd.to_timedelta(rng.integers(7, lead_weeks * 7, n), unit="D")
    new = t0 + pd.to_timedelta((rng.power(1.3, n) * ((end - t0).days - 45)).astype(int), unit="D")
    created = pd.DatetimeIndex(np.where(rng.random(n) < 0.3, base, new)).sort_values()
    created = created + pd.to_timedelta(rng.integers(8 * 3600, 18 * 3600, n), unit="s")
    landed_week = ((created - grid0) // WEEK).to_numpy().astype(int)
    region = rng.choice(len(REGIONS), n, p=[r[1] for r in REGIONS])
    engagement, pain, breadth, incidents = _latents(rng, n, weeks, landed_week, seats, spec.b2c)

    # ------------------------------------------------------------------ terms and renewals
    if spec.term == "mixed":
        months = np.where(rng.random(n) < np.array([0.45, 0.15, 0.02])[segment], 1, 12)
    else:
        months = np.ones(n, dtype=int)
    plans = PLANS[spec.term]
    plan = rng.choice(len(plans), n, p=None)
    price = np.array([PRICE[p] for p in plans])[plan] * rng.lognormal(0, 0.1, n)
    segment_effect = np.array([s[3] for s in segments])[segment]
    base_eta = -2.6 if not spec.b2c else (-1.3 if spec.term == "monthly" else -1.6)

    term_start = pd.Series(created.normalize())
    rows: list[pd.DataFrame] = []
    renewals = np.zeros(n)
    last_rise = np.zeros(n)
    open_ = np.ones(n, dtype=bool)
    churn_at = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
    while open_.any():
        acc = np.flatnonzero(open_)
        s = pd.DatetimeIndex(term_start.iloc[acc])
        if spec.term == "weekly":
            e = s + WEEK
            years_in_term = np.full(acc.size, 7 / 365.25)
        else:
            e = s.copy()
            for length in np.unique(months[acc]):
                chosen = months[acc] == length
                e = e.where(~chosen, s + pd.DateOffset(months=int(length)))
            years_in_term = months[acc] / 12
        end_week = ((e - grid0) // WEEK).to_numpy().astype(int)
        level = _window_mean(engagement, acc, end_week, 4, 0)
        earlier = _window_mean(engagement, acc, end_week, 20, 8)
        hurt = _window_mean(pain, acc, end_week, 8, 0)
        wide = breadth[acc, np.clip(end_week - 1, 0, weeks - 1)]
        tenure_years = np.clip((e - created[acc]).days.to_numpy() / 365.25, 0, None)
        eta = (
            base_eta
            + segment_effect[acc]
            - 0.8 * level
            + 1.6 * np.maximum(earlier - level, 0.0)
            - 0.9 * hurt * (1.0 + _sigmoid(-2.0 * level))
            - 1.0 * wide
            - 0.35 * np.log1p(tenure_years)
            + 3.0 * last_rise[acc]
            + rng.normal(0.0, 0.5, acc.size)
        )
        p = 1.0 - np.exp(-np.exp(eta) * years_in_term)
        decided = e < end
        churned = decided & (rng.random(acc.size) < p)
        rows.append(
            pd.DataFrame(
                {
                    "account": acc, "start_date": s, "end_date": e, "seats": seats[acc],
                    "arr": np.round(price[acc] * seats[acc], 2), "plan": np.array(plans)[plan[acc]],
                    "p_churn": np.where(decided, p, np.nan), "churned": np.where(decided, churned, np.nan),
                }
            )
        )  # fmt: skip
        churn_at.iloc[acc[churned]] = e[churned]
        renewed = decided & ~churned
        if not spec.b2c:
            change = np.where(level > 0.4, rng.uniform(1.0, 1.3, acc.size), 1.0)
            change = np.where(level < -0.4, rng.uniform(0.7, 1.0, acc.size), change)
            change = change ** np.minimum(years_in_term, 1.0)  # monthly terms change seats in small steps
            seats[acc] = np.where(renewed, np.clip(np.round(seats[acc] * change), 1, 2000), seats[acc])
        rise = rng.choice([0.0, 0.05, 0.2], acc.size, p=[0.65, 0.27, 0.08]) * (years_in_term >= 1)
        price[acc] = np.where(renewed, price[acc] * (1 + rise), price[acc])
        last_rise[acc] = np.where(renewed, rise, last_rise[acc])
        late = rng.random(acc.size) < (0.0 if spec.term == "weekly" else 0.08)
        gap = pd.to_timedelta(np.where(late, rng.integers(1, 21, acc.size), 0), unit="D")
        term_start.iloc[acc] = e + gap
        renewals[acc] += renewed
        open_[acc] = renewed & (term_start.iloc[acc].to_numpy() < end.to_datetime64())

    terms = pd.concat(rows, ignore_index=True).sort_values(["account", "start_date"], kind="stable")
    terms = terms[terms["end_date"] > t0].reset_index(drop=True)  # terms overlapping the data period
    ids = np.array([f"{'C' if spec.b2c else 'B'}-{i:06d}" for i in rng.permutation(n)])
    terms["account_id"] = ids[terms["account"]]
    silent = churn_at.fillna(end).to_numpy()

    # ------------------------------------------------------------------------------ events
    users = np.maximum(1, np.round(seats * rng.uniform(0.8, 1.2, n))).astype(int)
    week_starts = pd.DatetimeIndex(grid0 + pd.to_timedelta(np.arange(weeks) * 7, unit="D"))
    active = (
        (np.arange(weeks)[None, :] >= landed_week[:, None])
        & (week_starts.to_numpy()[None, :] < silent[:, None])
        & (week_starts.to_numpy()[None, :] + WEEK.to_timedelta64() > t0.to_datetime64())
    )
    account_idx, week_idx = np.nonzero(active)
    e_cell = engagement[account_idx, week_idx]
    active_users = rng.binomial(users[account_idx], _sigmoid(0.5 + 1.2 * e_cell))
    sessions_per_user = (1.6 if spec.b2c else 0.5) * np.exp(0.7 * e_cell)
    sessions = rng.poisson(active_users * sessions_per_user)
    cell = np.repeat(np.arange(account_idx.size), sessions)
    acc_s = account_idx[cell]
    if spec.b2c:  # evenings and weekends
        day = rng.choice(7, cell.size, p=[0.11, 0.11, 0.11, 0.12, 0.15, 0.2, 0.2])
        hour = np.clip(rng.normal(20.0, 2.5, cell.size), 0, 23.99)
    else:
        day = rng.choice(7, cell.size, p=[0.19, 0.2, 0.2, 0.19, 0.17, 0.03, 0.02])
        hour = rng.normal(np.array([r[2] for r in REGIONS])[region[acc_s]], 2.0) % 24
    ts = week_starts[week_idx[cell]] + pd.to_timedelta(day * 86400 + hour * 3600, unit="s")
    keep = (ts >= t0) & (ts < pd.DatetimeIndex(silent[acc_s])) & (ts >= created[acc_s]) & (ts < end)
    cell, acc_s, ts = cell[keep], acc_s[keep], ts[keep]
    session_user = rng.integers(0, np.maximum(active_users[cell], 1))
    tables: dict[str, pd.DataFrame] = {}
    account_of = ids
    if "logins" in spec.tables:
        tables["logins"] = pd.DataFrame(
            {"account_id": account_of[acc_s], "ts": ts, "user_id": _user_ids(account_of[acc_s], session_user)}
        )
    if "usage_events" in spec.tables:
        per_session = 1 + rng.poisson((1.0 if spec.b2c else 1.5) * np.exp(0.3 * engagement[acc_s, week_idx[cell]]))
        event_session = np.repeat(np.arange(cell.size), per_session)
        acc_e = acc_s[event_session]
        offsets = pd.to_timedelta(rng.exponential(240.0, event_session.size), unit="s")
        ts_e = ts[event_session] + offsets
        repertoire = np.ceil(2 + 10 * breadth[acc_e, week_idx[cell][event_session]]).astype(int)
        rank = np.minimum(rng.zipf(1.6, event_session.size) - 1, repertoire - 1)
        preference = np.argsort(rng.random((n, len(CATALOGUE))), axis=1)
        feature = np.array(CATALOGUE)[preference[acc_e, rank]]
        ok = ts_e < pd.DatetimeIndex(np.minimum(silent[acc_e], end.to_datetime64()))
        tables["usage_events"] = pd.DataFrame(
            {
                "account_id": account_of[acc_e],
                "ts": ts_e,
                "feature": feature,
                "user_id": _user_ids(account_of[acc_e], session_user[event_session]),
                "quantity": np.round(rng.lognormal(0.5, 0.7, event_session.size), 1),
            }
        )[ok]
    if "support_tickets" in spec.tables:
        inc_acc, inc_week = np.nonzero(incidents * active)
        inc_count = incidents[inc_acc, inc_week] * active[inc_acc, inc_week]
        inc_acc, inc_week = np.repeat(inc_acc, inc_count), np.repeat(inc_week, inc_count)
        reported = rng.random(inc_acc.size) < 0.7
        inc_acc, inc_week = inc_acc[reported], inc_week[reported]
        new_acc, new_week = np.nonzero(active & ((np.arange(weeks)[None, :] - landed_week[:, None]) < 12))
        questions = rng.poisson(0.03 * np.sqrt(users[new_acc]))
        q_acc, q_week = np.repeat(new_acc, questions), np.repeat(new_week, questions)
        acc_t = np.concatenate([inc_acc, q_acc])
        week_t = np.concatenate([inc_week, q_week])
        is_incident = np.arange(acc_t.size) < inc_acc.size
        opened = week_starts[week_t] + pd.to_timedelta(rng.uniform(0, 7 * 86400, acc_t.size), unit="s")
        severity = rng.normal(0, 1, acc_t.size) + 1.2 * is_incident - 0.4 * pain[acc_t, week_t]
        hours = rng.lognormal(np.log(6) + 0.5 * severity, 1.0)
        closed = opened + pd.to_timedelta(hours * 3600, unit="s")
        kind = np.where(is_incident, np.where(severity > 1.6, 0, np.where(rng.random(acc_t.size) < 0.2, 3, 1)), 2)
        mood = 4.3 + 0.4 * pain[acc_t, week_t] - 0.25 * np.log1p(hours)
        csat = np.clip(np.round(mood + rng.normal(0, 0.8, acc_t.size)), 1, 5)
        frame = pd.DataFrame(
            {
                "account_id": account_of[acc_t],
                "ticket_id": [f"TCK{i:07d}" for i in rng.permutation(acc_t.size)],
                "opened_at": opened,
                "closed_at": closed.where(closed < end),
                "priority": np.array(["P4", "P3", "P2", "P1"])[np.digitize(severity, [-0.5, 0.8, 1.8])],
                "category": np.array(TICKET_KINDS)[kind],
                "csat": np.where((rng.random(acc_t.size) < 0.35) & (closed < end), csat, np.nan),
            }
        )
        alive = (frame["opened_at"] >= t0) & (frame["opened_at"] < pd.DatetimeIndex(silent[acc_t]))
        alive &= frame["opened_at"] >= created[acc_t]
        tables["support_tickets"] = frame[alive & (frame["opened_at"] < end)]

    # ------------------------------------------------------------------------------ write
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "_truth").mkdir(parents=True)
    accounts_frame = pd.DataFrame(
        {
            "account_id": ids,
            "created_at": created,
            "segment": np.array([s[0] for s in segments])[segment],
            "industry": np.array(INDUSTRIES)[rng.integers(0, len(INDUSTRIES), n)],
            "region": np.array([r[0] for r in REGIONS])[region],
            "csm": np.array([f"CSM {i % 9}" for i in range(n)])[rng.permutation(n)],
        }
    )
    accounts_frame = accounts_frame[accounts_frame["created_at"] < end]
    accounts_frame[list(spec.account_columns)].to_parquet(out_dir / "accounts.parquet", index=False)
    terms[list(spec.subscription_columns)].to_parquet(out_dir / "subscriptions.parquet", index=False)
    counts = {"accounts": len(accounts_frame), "subscriptions": len(terms)}
    for name, columns in spec.tables.items():
        frame = tables[name].sort_values(["account_id", columns[1]], kind="stable")
        frame[list(columns)].to_parquet(out_dir / f"{name}.parquet", index=False)
        counts[name] = len(frame)
    truth = terms[["account_id", "start_date", "end_date", "p_churn", "churned"]].copy()
    truth["churned"] = truth["churned"].astype("boolean")
    truth["censored"] = truth["end_date"] + pd.Timedelta(days=30) >= end
    truth.to_parquet(out_dir / "_truth" / "terms.parquet", index=False)
    return counts
