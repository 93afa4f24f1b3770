"""Health over time: score changes against earlier scoring runs, and the alerts a CSM acts on.

The score history holds one row per (account_id, as_of) scoring run with `health_score`,
`health_band` and the `health_<category>` columns. A change "over W days" compares the current
score with the run nearest to as_of - W days (the older one on a tie), accepted only within W/2
days of that date: monthly runs then give a 30-day change from the run one month back even in
31-day months, and an account scored only last week gets no 90-day change.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.table import ACCOUNT_ID, AS_OF
from models.healthscore import BAND_ORDER, CHANGE_PREFIX, HEALTH_BAND, HEALTH_SCORE, category_columns
from pipeline.errors import DataContractError


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataContractError(
            f"{what} lacks column(s) {', '.join(missing)} (has: {', '.join(map(str, frame.columns[:12]))})."
        )


def _dated(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy with the merge keys in one dtype (merge_asof needs identical key types), sorted by date."""
    out = frame.copy()
    out[ACCOUNT_ID] = out[ACCOUNT_ID].astype(str)
    out[AS_OF] = pd.to_datetime(out[AS_OF]).astype("datetime64[us]")
    return out.sort_values(AS_OF, kind="stable")


def health_trend(history: pd.DataFrame, current: pd.DataFrame, windows: Sequence[int] = (30, 90)) -> pd.DataFrame:
    """Current scores with their change since the previous run and over each window of days.

    Returns one row per `current` row (same order): account_id, as_of, health_score, the previous
    run's as_of/score/band, `health_change` (vs the previous run) and `health_change_{W}d` (vs the
    run nearest to as_of - W days, within W/2 days); NaN where the history has no such run. History rows dated
    on or after the current as_of (a re-run of the same date) are ignored.
    """
    _require(history, (ACCOUNT_ID, AS_OF, HEALTH_SCORE), "Score history")
    _require(current, (ACCOUNT_ID, AS_OF, HEALTH_SCORE), "Current scores")
    now = _dated(current.reset_index(drop=True)).reset_index(names="_row")
    past = _dated(history)
    band_cols = [HEALTH_BAND] if HEALTH_BAND in past.columns else []
    previous = past[[ACCOUNT_ID, AS_OF, HEALTH_SCORE, *band_cols]].rename(
        columns={AS_OF: "previous_as_of", HEALTH_SCORE: "previous_score", HEALTH_BAND: "previous_band"}
    )
    keep = [c for c in (ACCOUNT_ID, AS_OF, HEALTH_SCORE, HEALTH_BAND) if c in now.columns]
    out = pd.merge_asof(
        now[["_row", *keep]],
        previous,
        left_on=AS_OF,
        right_on="previous_as_of",
        by=ACCOUNT_ID,
        direction="backward",
        allow_exact_matches=False,
    )
    out[CHANGE_PREFIX] = out[HEALTH_SCORE] - out["previous_score"]
    runs = past[[ACCOUNT_ID, AS_OF, HEALTH_SCORE]].rename(columns={AS_OF: "_ref_as_of", HEALTH_SCORE: "_ref"})
    for days in windows:
        target = now[["_row", ACCOUNT_ID]].assign(_target=now[AS_OF] - pd.Timedelta(days=days))
        reference = pd.merge_asof(
            target.sort_values("_target", kind="stable"),
            runs,
            left_on="_target",
            right_on="_ref_as_of",
            by=ACCOUNT_ID,
            direction="nearest",
            tolerance=pd.Timedelta(days=days / 2),
        ).set_index("_row")
        reference_score = reference["_ref"].reindex(out["_row"]).to_numpy()
        out[f"{CHANGE_PREFIX}_{days}d"] = out[HEALTH_SCORE].to_numpy() - reference_score
    return out.sort_values("_row").drop(columns="_row").reset_index(drop=True)


def health_alerts(
    previous: pd.DataFrame, current: pd.DataFrame, score_drop: float = 10.0, n_categories: int = 3
) -> pd.DataFrame:
    """Accounts whose health needs a CSM's attention since the previous run.

    `previous` is the score history (or just the previous run): per account its latest row before
    the current as_of is the comparison, and all its rows tell whether it was ever red. Alerts:
    `band_worsened` (green -> yellow -> red), `score_dropped` (more than `score_drop` points),
    `first_red` (red now, never red before; also for an account's first run). Each alert row names
    the `n_categories` categories that fell most. One row per alerted account, biggest drops first.
    """
    _require(previous, (ACCOUNT_ID, HEALTH_SCORE, HEALTH_BAND), "Previous scores")
    _require(current, (ACCOUNT_ID, HEALTH_SCORE, HEALTH_BAND), "Current scores")
    if current[ACCOUNT_ID].duplicated().any():
        dupes = current.loc[current[ACCOUNT_ID].duplicated(), ACCOUNT_ID].head(3).tolist()
        raise DataContractError(f"Current scores hold several rows per account (e.g. {dupes}); pass one run.")
    now = current.reset_index(drop=True).copy()
    now[ACCOUNT_ID] = now[ACCOUNT_ID].astype(str)
    past = previous.copy()
    past[ACCOUNT_ID] = past[ACCOUNT_ID].astype(str)
    if AS_OF in past.columns and AS_OF in now.columns:
        past[AS_OF] = pd.to_datetime(past[AS_OF])
        run_date = now.set_index(ACCOUNT_ID)[AS_OF].pipe(pd.to_datetime)
        past = past[past[AS_OF] < past[ACCOUNT_ID].map(run_date)]
        past = past.sort_values(AS_OF, kind="stable")
    elif past[ACCOUNT_ID].duplicated().any():
        raise DataContractError("Previous scores hold several rows per account but no as_of column to order them.")
    ever_red = set(past.loc[past[HEALTH_BAND] == "red", ACCOUNT_ID])
    last = past.drop_duplicates(ACCOUNT_ID, keep="last").set_index(ACCOUNT_ID)

    before = last.reindex(now[ACCOUNT_ID])
    prev_score = before[HEALTH_SCORE].to_numpy(dtype=float)
    prev_band = before[HEALTH_BAND].to_numpy(dtype=object)
    change = now[HEALTH_SCORE].to_numpy(dtype=float) - prev_score
    rank_now = now[HEALTH_BAND].map(BAND_ORDER).to_numpy(dtype=float)
    rank_before = pd.Series(prev_band).map(BAND_ORDER).to_numpy(dtype=float)
    band_worsened = rank_now > rank_before  # False where either is missing (NaN compares False)
    score_dropped = -change > score_drop
    first_red = (now[HEALTH_BAND] == "red").to_numpy() & ~now[ACCOUNT_ID].isin(ever_red).to_numpy()

    categories = [c for c in category_columns(now) if c in before.columns]
    deltas = now[categories].to_numpy(dtype=float) - before[categories].to_numpy(dtype=float)
    alerts = pd.DataFrame(
        {
            ACCOUNT_ID: now[ACCOUNT_ID],
            **({AS_OF: now[AS_OF]} if AS_OF in now.columns else {}),
            HEALTH_SCORE: now[HEALTH_SCORE].to_numpy(dtype=float),
            "previous_score": prev_score,
            "score_change": change,
            HEALTH_BAND: now[HEALTH_BAND].to_numpy(dtype=object),
            "previous_band": prev_band,
            "band_worsened": band_worsened,
            "score_dropped": score_dropped,
            "first_red": first_red,
            "fallen_categories": [
                _fallen(row, [c.removeprefix("health_") for c in categories], n_categories) for row in deltas
            ],
        }
    )
    alerts["reasons"] = [_reasons(row, score_drop) for row in alerts.itertuples(index=False)]
    alerted = alerts[alerts["band_worsened"] | alerts["score_dropped"] | alerts["first_red"]]
    return alerted.sort_values("score_change", na_position="last", kind="stable").reset_index(drop=True)


def _fallen(deltas: np.ndarray, names: list[str], n: int) -> str:
    """'support -25.0, engagement -12.5': the categories with the largest falls, worst first."""
    order = [i for i in np.argsort(deltas, kind="stable") if deltas[i] < 0][:n]
    return ", ".join(f"{names[i]} {deltas[i]:+.1f}" for i in order)


def _reasons(row: tuple, score_drop: float) -> str:
    reasons = []
    if row.band_worsened:
        reasons.append(f"band worsened {row.previous_band} -> {row.health_band}")
    if row.score_dropped:
        reasons.append(f"score dropped {-row.score_change:.1f} points (more than {score_drop:g})")
    if row.first_red:
        reasons.append("under the red line for the first time")
    return "; ".join(reasons)
