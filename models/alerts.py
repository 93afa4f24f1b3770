"""Alerts for customer-success managers: what got worse since the last scoring run.

An account is alerted when, compared with the previous run, its health band worsened, its health
score dropped by more than `score_drop` points, or its churn probability rose across
`probability_level`; when it is under the red line for the first time in the score history; or
when it renews within `renewal_days` while at risk (high churn risk or a red health band). Alerts
are sorted by ARR at risk (ARR x churn probability) so the largest exposure comes first, and carry
the model's top drivers and the health categories that fell most, so the CSM knows where to start.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pandas as pd

from features.table import ACCOUNT_ID, AS_OF
from models.healthscore import BAND_ORDER, HEALTH_BAND, category_columns
from pipeline.config import AlertSettings, RiskBands, redact_url
from pipeline.errors import ChurnError, ConfigError

ALERT_COLUMNS: tuple[str, ...] = (
    ACCOUNT_ID,
    AS_OF,
    "reasons",
    "arr",
    "churn_probability",
    "health_score",
    "health_band",
    "previous_health_band",
    "top_drivers",
    "fallen_categories",
    "arr_at_risk",
)
REASON_SEPARATOR = "; "


def risk_band(probability: pd.Series, bands: RiskBands) -> pd.Series:
    """high (>= bands.high), medium (>= bands.medium) or low; missing probabilities stay missing.

    `RiskBands` refuses medium >= high when the configuration loads.
    """
    values = pd.to_numeric(probability, errors="coerce").astype(float)
    bands_text = np.select([values >= bands.high, values >= bands.medium], ["high", "medium"], default="low")
    return pd.Series(bands_text, index=probability.index, dtype=str, name="risk_band").where(values.notna())


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype=str)
    return frame[column].astype(str).where(frame[column].notna())


def _percent(value: float) -> str:
    return f"{value:.0%}"


def score_alerts(
    current: pd.DataFrame,
    previous: pd.DataFrame | None,
    settings: AlertSettings,
    risk_bands: RiskBands,
    *,
    history: pd.DataFrame | None = None,
    n_categories: int = 3,
) -> pd.DataFrame:
    """Alerted accounts of the current run with their reasons in plain words, largest ARR at risk first.

    `current` is a scores table (account_id, as_of, churn_probability, health_score, health_band,
    health_<category>, days_to_renewal, arr, top_drivers, risk_band; missing columns disable the
    rules that need them); `previous` is the previous run of the history (or None/empty: only the
    renewal rule can fire). `history` holds the earlier runs that tell whether an account was ever
    red (rows dated on or after the current as_of are ignored); without it the previous run is all
    that is known. `fallen_categories` names the `n_categories` health categories that fell most
    since the previous run, worst first ("support -30.0, adoption -12.0"). Columns: ALERT_COLUMNS.
    """
    if ACCOUNT_ID not in current.columns:
        raise ChurnError(f"Alerts need the '{ACCOUNT_ID}' column in the scores; it has {list(current.columns)[:10]}.")
    now = current.reset_index(drop=True)
    before = _previous_by_account(previous, now[ACCOUNT_ID])

    probability, health = _numeric(now, "churn_probability"), _numeric(now, "health_score")
    band, before_band = _text(now, HEALTH_BAND), _text(before, HEALTH_BAND)
    before_probability, before_health = _numeric(before, "churn_probability"), _numeric(before, "health_score")
    at_risk_band = _text(now, "risk_band") if "risk_band" in now.columns else risk_band(probability, risk_bands)
    days_to_renewal = _numeric(now, "days_to_renewal")

    band_worsened = (band.map(BAND_ORDER) > before_band.map(BAND_ORDER)).fillna(False).astype(bool)
    drop = before_health - health
    score_dropped = drop > settings.score_drop
    first_red = _first_red(now, band, previous if history is None else history)
    level = settings.probability_level
    crossed = (before_probability < level) & (probability >= level)
    at_risk = at_risk_band.eq("high").fillna(False) | band.eq("red").fillna(False)
    renewing_at_risk = (days_to_renewal <= settings.renewal_days) & at_risk

    reasons: list[list[str]] = [[] for _ in range(len(now))]
    for i in np.flatnonzero(band_worsened):
        reasons[i].append(f"health band worsened from {before_band[i]} to {band[i]}")
    for i in np.flatnonzero(score_dropped):
        reasons[i].append(f"health score dropped {drop[i]:.0f} points (from {before_health[i]:.0f} to {health[i]:.0f})")
    for i in np.flatnonzero(first_red):
        reasons[i].append("health under the red line for the first time")
    for i in np.flatnonzero(crossed):
        reasons[i].append(
            f"churn probability rose above {_percent(level)} "
            f"(from {_percent(before_probability[i])} to {_percent(probability[i])})"
        )
    for i in np.flatnonzero(renewing_at_risk):
        why = " and ".join(
            text
            for text, hit in (("high churn risk", at_risk_band[i] == "high"), ("red health", band[i] == "red"))
            if hit
        )
        reasons[i].append(f"renews in {days_to_renewal[i]:.0f} days with {why}")

    arr = _numeric(now, "arr")
    alerts = pd.DataFrame(
        {
            ACCOUNT_ID: now[ACCOUNT_ID],
            AS_OF: now[AS_OF] if AS_OF in now.columns else pd.NaT,
            "reasons": pd.Series([REASON_SEPARATOR.join(r) for r in reasons], dtype=str),
            "arr": arr,
            "churn_probability": probability,
            "health_score": health,
            "health_band": band,
            "previous_health_band": before_band,
            "top_drivers": _text(now, "top_drivers").fillna(""),
            "fallen_categories": _fallen_categories(now, before, n_categories),
            "arr_at_risk": arr * probability,
        }
    )
    alerts = alerts[[bool(r) for r in reasons]]
    return alerts.sort_values("arr_at_risk", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def _previous_by_account(previous: pd.DataFrame | None, accounts: pd.Series) -> pd.DataFrame:
    """The previous run's rows in the order of `accounts` (all-missing for accounts it did not score)."""
    if previous is None or previous.empty:
        return pd.DataFrame(index=accounts.index)
    latest = previous.drop_duplicates(ACCOUNT_ID, keep="last").set_index(ACCOUNT_ID)
    return latest.reindex(accounts.to_numpy()).set_index(accounts.index)


def _first_red(now: pd.DataFrame, band: pd.Series, history: pd.DataFrame | None) -> pd.Series:
    """Red now and never red in the earlier runs, a new account included; never on the very first run.

    The first run has nothing to compare with, so every red account would look new: that is noise,
    not news. A history without bands (runs of tables without a scorecard) cannot tell either.
    """
    none = pd.Series(False, index=now.index)
    if history is None or history.empty or HEALTH_BAND not in history.columns:
        return none
    earlier = history
    if AS_OF in history.columns and AS_OF in now.columns:
        run_date = pd.Series(pd.to_datetime(now[AS_OF]).to_numpy(), index=now[ACCOUNT_ID].astype(str))
        run_date = run_date[~run_date.index.duplicated(keep="last")]
        accounts = history[ACCOUNT_ID].astype(str)
        earlier = history[pd.to_datetime(history[AS_OF]) < accounts.map(run_date)]
        if earlier.empty:
            return none
    ever_red = set(earlier.loc[earlier[HEALTH_BAND] == "red", ACCOUNT_ID].astype(str))
    return band.eq("red").fillna(False).astype(bool) & ~now[ACCOUNT_ID].astype(str).isin(ever_red)


def _fallen_categories(now: pd.DataFrame, before: pd.DataFrame, n: int) -> pd.Series:
    """Per account, the `n` health categories with the largest falls since the previous run, worst first."""
    categories = [c for c in category_columns(now) if c in before.columns]
    if not categories:
        return pd.Series("", index=now.index, dtype=str)
    change = now[categories].astype(float).to_numpy() - before[categories].apply(
        pd.to_numeric, errors="coerce"
    ).to_numpy(dtype=float)
    names = [c.removeprefix("health_") for c in categories]
    texts = []
    for row in change:
        worst = [i for i in np.argsort(row, kind="stable") if row[i] < 0][:n]
        texts.append(", ".join(f"{names[i]} {row[i]:+.1f}" for i in worst))
    return pd.Series(texts, index=now.index, dtype=str)


def _without_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """The URL without `user:password@`, which becomes HTTP Basic authentication instead."""
    parts = urllib.parse.urlsplit(url)
    headers = {"Content-Type": "application/json"}
    if parts.username is None and parts.password is None:
        return url, headers
    credentials = f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}"
    headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), headers


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is misconfigured; following it could send the alerts anywhere."""

    def redirect_request(self, *args, **kwargs) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)
RETRY_STATUSES = (408, 425, 429, 500, 502, 503, 504)


def post_webhook(alerts: pd.DataFrame, url: str, timeout: float = 10.0, retries: int = 0, backoff: float = 1.0) -> int:
    """POST the alerts as JSON (`{"text": summary, "alerts": [records]}`) and return the HTTP status.

    The `text` field makes the payload readable as-is by Slack/Teams-style incoming webhooks.
    Timeouts, connection errors and 408/429/5xx answers are retried `retries` times, waiting
    `backoff` seconds, then twice that...; redirects are not followed. Messages show the URL
    without its user, password or query string, where tokens live.
    """
    shown = redact_url(url)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"scoring.alerts.webhook_url must be an http(s) URL, got '{shown}'.")
    records = json.loads(alerts.to_json(orient="records", date_format="iso"))
    as_of = records[0].get(AS_OF, "")[:10] if records else ""
    summary = f"{len(records)} churn alert(s)" + (f" as of {as_of}" if as_of else "")
    if records:
        summary += f"; largest ARR at risk: {records[0][ACCOUNT_ID]} ({records[0]['reasons']})"
    body = json.dumps({"text": summary, "alerts": records}).encode()
    target, headers = _without_userinfo(url)
    request = urllib.request.Request(target, data=body, headers=headers, method="POST")
    attempts = retries + 1
    for attempt in range(attempts):
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            problem = f"answered HTTP {exc.code} ({exc.reason})"
            if exc.code not in RETRY_STATUSES:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            problem = f"could not be reached ({reason})"
        if attempt + 1 < attempts:
            time.sleep(backoff * 2**attempt)
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if problem.startswith("answered"):
        raise ChurnError(f"The alert webhook {shown} {problem}{tries}.")
    raise ChurnError(f"Could not post alerts to the webhook {shown}{tries}: it {problem}.")


def notify(alerts: pd.DataFrame, settings: AlertSettings) -> bool:
    """Post the alerts when `scoring.alerts.webhook_url` is set and there is something to say."""
    url = settings.webhook()
    if not url or alerts.empty:
        return False
    post_webhook(alerts, url, timeout=settings.webhook_timeout_seconds, retries=settings.webhook_retries)
    return True
