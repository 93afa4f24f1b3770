"""Cut a generated history at a date, as if the data ended there, and read the truth behind it.

The quality benchmark measures the model the way a user meets it: everything strictly before
CUT is the data (`churn train` and `churn score --as-of CUT` see only that), and the outcome of
each account's term running at CUT comes from the full generation's `_truth/terms.parquet`
(one row per subscription row: `account_id, start_date, end_date, p_churn, churned`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import TABLES

TRUTH = Path("_truth") / "terms.parquet"
# a contract's end date is known when it is signed, an invoice's due date when it is issued
KNOWN_AT_SIGNING = {("subscriptions", "end_date"), ("invoices", "due_at")}
KNOWN_WHEN_CLOSED = {"support_tickets": ("closed_at", ("csat",))}  # a ticket is rated when it is closed
OPEN_UNTIL = {"invoices": ("paid_at", "status", "paid", "open")}  # paid after CUT: still open at CUT


def read_table(data_dir: Path, name: str) -> pd.DataFrame | None:
    """A contract table as NAME.parquet, NAME.csv or a folder NAME/ of parquet parts; None when absent."""
    for path in (data_dir / f"{name}.parquet", data_dir / name):
        if path.exists():
            return pd.read_parquet(path)
    csv = data_dir / f"{name}.csv"
    return pd.read_csv(csv) if csv.exists() else None


def data_end(data_dir: Path) -> pd.Timestamp:
    """The day after the latest event timestamp: where the generation stopped."""
    latest = pd.Timestamp.min
    for name, contract in TABLES.items():
        if not contract.is_event:
            continue
        frame = read_table(data_dir, name)
        if frame is not None and len(frame):
            latest = max(latest, pd.to_datetime(frame[contract.time_column]).max())
    return latest.normalize() + pd.Timedelta(days=1)


def truncate(full_dir: Path, out_dir: Path, cut: pd.Timestamp) -> dict[str, int]:
    """Write the tables of `full_dir` with only what was known strictly before `cut`; rows per table.

    Rows whose time column is at or after CUT are dropped; later values of other timestamps
    (a ticket closed after CUT) become unknown, with what depends on them (its CSAT; an invoice
    paid after CUT is still open); contract end dates and invoice due dates stay, as they are
    known at signing. The truth folder is not copied.
    """
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    rows: dict[str, int] = {}
    for name, contract in TABLES.items():
        frame = read_table(full_dir, name)
        if frame is None:
            continue
        frame = frame[pd.to_datetime(frame[contract.time_column]) < cut].copy()
        for column in contract.columns:
            if column.type != "timestamp" or column.name == contract.time_column or column.name not in frame:
                continue
            if (name, column.name) in KNOWN_AT_SIGNING:
                continue
            later = pd.to_datetime(frame[column.name]) >= cut
            frame.loc[later, column.name] = pd.NaT
            closed_at, dependants = KNOWN_WHEN_CLOSED.get(name, (None, ()))
            if column.name == closed_at:
                for dependant in (d for d in dependants if d in frame):
                    frame.loc[later, dependant] = np.nan
            settled_at, status, settled, pending = OPEN_UNTIL.get(name, (None, None, None, None))
            if column.name == settled_at and status in frame:
                frame.loc[later & (frame[status] == settled), status] = pending
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
        rows[name] = len(frame)
    return rows


def outcomes_at(full_dir: Path, cut: pd.Timestamp) -> pd.DataFrame:
    """Per account with a term running at CUT (start < CUT <= end): the term end E that the
    pipeline predicts (latest end among running terms), its true churn probability and outcome.

    `churned` is NaN when the term was still undecided when the generation stopped.
    """
    truth = pd.read_parquet(full_dir / TRUTH)
    truth = truth.assign(
        account_id=truth["account_id"].astype(str),
        start_date=pd.to_datetime(truth["start_date"]),
        end_date=pd.to_datetime(truth["end_date"]),
    )
    running = truth[(truth["start_date"] < cut) & (cut <= truth["end_date"])]
    ends = running.groupby("account_id")["end_date"].max().rename("term_end")
    at_end = running.merge(ends, left_on=["account_id", "end_date"], right_on=["account_id", "term_end"])
    churned = at_end["churned"].astype("float")
    return (
        at_end.assign(churned=churned)
        .groupby("account_id")
        .agg(term_end=("term_end", "first"), p_churn=("p_churn", "max"), churned=("churned", "max"))
        .reset_index()
    )


HEALTH = Path("_truth") / "health"
WORLD = Path("_truth") / "world.json"
# The windows of our generator's renewal decision (pipeline/synthetic/knobs.py): name -> (latent, weeks, slope key)
SIGNAL_WINDOWS = {
    "health": ("health", 13, "churn_health"),
    "friction": ("friction", 13, "churn_friction"),
    "enablement": ("enablement", 26, "churn_enablement"),
}
TREND_WEEKS = 13


def at_cut_probability(full_dir: Path, outcomes: pd.DataFrame, cut: pd.Timestamp) -> pd.Series | None:
    """The true churn probability of each outcome's term as if its renewal were decided at CUT.

    The oracle (`p_churn`) uses the latent state over the weeks before the term end, up to a
    year after CUT, which no model scoring at CUT can see. This swaps those windows for the
    windows ending at CUT in the generator's own logit (same slopes, intercepts, segment and
    first-renewal terms; `_truth/health` holds the weekly latents): what a model that knew the
    latent state at CUT exactly, and the true formula, would predict. Seat contraction is known
    at CUT already; a champion latent is not in the truth files, so in the champion-loss world
    its term still looks ahead. None for histories without the latents (foreign simulators).
    """
    if not (full_dir / HEALTH).exists() or not (full_dir / WORLD).exists():
        return None
    import json

    from scipy.special import expit, logit

    world = json.loads((full_dir / WORLD).read_text())
    latents = pd.read_parquet(full_dir / HEALTH)
    latents["week_start"] = pd.to_datetime(latents["week_start"])
    grid0 = latents["week_start"].min()
    week = ((latents["week_start"] - grid0).dt.days // 7).to_numpy()
    accounts = pd.Index(sorted(latents["account_id"].astype(str).unique()))
    row = accounts.get_indexer(latents["account_id"].astype(str))
    weeks = int(week.max()) + 1
    sums, counts = {}, {}
    for name in {latent for latent, _, _ in SIGNAL_WINDOWS.values()}:
        grid = np.zeros((len(accounts), weeks))
        grid[row, week] = latents[name].to_numpy()
        known = np.zeros((len(accounts), weeks))
        known[row, week] = 1.0
        zero = np.zeros((len(accounts), 1))
        sums[name], counts[name] = np.hstack([zero, grid.cumsum(axis=1)]), np.hstack([zero, known.cumsum(axis=1)])

    rows = accounts.get_indexer(outcomes["account_id"].astype(str))

    def mean(name: str, end: np.ndarray, length: int) -> np.ndarray:
        hi, lo = np.clip(end, 0, weeks), np.clip(end - length, 0, weeks)
        n = counts[name][rows, hi] - counts[name][rows, lo]
        total = sums[name][rows, hi] - sums[name][rows, lo]
        return np.divide(total, n, out=np.zeros(len(rows)), where=n > 0)

    def logit_part(end: np.ndarray) -> np.ndarray:
        part = np.zeros(len(rows))
        for latent, length, slope in SIGNAL_WINDOWS.values():
            part += world[slope] * mean(latent, end, length)
        recent, earlier = mean("health", end, TREND_WEEKS), mean("health", end - TREND_WEEKS, TREND_WEEKS)
        return part + world["churn_trend"] * (recent - earlier)

    end_week = ((pd.to_datetime(outcomes["term_end"]) - grid0).dt.days // 7).to_numpy()
    cut_week = np.full(len(rows), (cut - grid0).days // 7)
    p = np.clip(outcomes["p_churn"].to_numpy(dtype=float), 1e-12, 1 - 1e-12)
    at_cut = expit(logit(p) - logit_part(end_week) + logit_part(cut_week))
    if world.get("no_signal") is not None:
        at_cut = outcomes["p_churn"].to_numpy(dtype=float)
    at_cut = np.where(rows >= 0, at_cut, np.nan)  # an account with no latent weeks (never active)
    return pd.Series(at_cut, index=outcomes.index, name="p_churn_at_cut")


def drop_events_before(data_dir: Path, start: pd.Timestamp) -> dict[str, int]:
    """Drop the event rows of `data_dir` dated before `start`, in place; accounts and subscriptions stay whole.

    An export that begins after the accounts landed (a team sends its last two years of logins, or began
    tracking product use in 2023): the model must read "no login since the data starts" there, not "no login
    since the account landed". Rows dropped per event table."""
    dropped: dict[str, int] = {}
    for name, contract in TABLES.items():
        frame = read_table(data_dir, name)
        if frame is None or not contract.is_event:
            continue
        kept = frame[pd.to_datetime(frame[contract.time_column]) >= start]
        for other in (data_dir / name, data_dir / f"{name}.csv"):  # a folder or CSV becomes NAME.parquet
            if other.is_dir():
                shutil.rmtree(other)
            elif other.exists():
                other.unlink()
        kept.to_parquet(data_dir / f"{name}.parquet", index=False)
        dropped[name] = len(frame) - len(kept)
    return dropped
