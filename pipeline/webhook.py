"""Delivering alerts: POST them as JSON to the webhook of `scoring.alerts.webhook_url`.

Alerts are computed by `models.alerts`; sending them is I/O, so it lives here at the edge. A
failed delivery never undoes a committed scoring run: the caller turns it into a warning.

Delivery is idempotent per alert: `<workdir>/alerts_delivered/as_of=DATE.json` lists every alert
(account, the rules that fired and their words) the webhook accepted with a 2xx, so a re-run of a
date -- a scheduler's retry, a run after a failed delivery, another model or engine whose numbers
round otherwise -- sends only alerts with a rule not delivered yet for that account and date, and a
CSM never gets the same alert twice. An alert is what fired, not its words: those change with a
number's rounding. A process killed between the webhook's answer and the ledger's record sends its
alerts again, with the same `alert_id`s and `Idempotency-Key`, so the receiver can drop them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from features.errors import ChurnError, ConfigError, counted
from features.table import ACCOUNT_ID, AS_OF
from models.alerts import CHURNED_RULE, rules_in_words, split_rules
from pipeline.commit import folder_lock, write_json
from pipeline.config import AlertSettings, redact_url

LEDGER_FOLDER = "alerts_delivered"


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

    The `text` field makes the payload readable as-is by Slack/Teams-style incoming webhooks. The
    `Idempotency-Key` header is a digest of the alerts' `alert_id`s: a request that sends the same
    alerts again (a retry, a re-run after a kill) carries the same key.
    Timeouts, connection errors and 408/429/5xx answers are retried `retries` times, waiting
    `backoff` seconds, then twice that...; redirects are not followed. Messages show the URL
    without its user, password or query string, where tokens live.
    """
    shown = redact_url(url)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"scoring.alerts.webhook_url must be an http(s) URL, got '{shown}'.")
    records = json.loads(alerts.to_json(orient="records", date_format="iso"))
    as_of = records[0].get(AS_OF, "")[:10] if records else ""
    summary = counted(len(records), "churn alert") + (f" as of {as_of}" if as_of else "")
    if gone := sum(CHURNED_RULE in split_rules(r.get("rules") or "") for r in records):  # --include-churned
        summary += f"; {counted(gone, 'churned account')} among them (terms all ended)"
    if at_risk := [r for r in records if r.get("arr_at_risk") is not None]:  # not a churned account's, lost
        summary += f"; largest ARR at risk: {at_risk[0][ACCOUNT_ID]} ({at_risk[0]['reasons']})"
    body = json.dumps({"text": summary, "alerts": records}).encode()
    target, headers = _without_userinfo(url)
    ids = "\n".join(sorted(str(r.get("alert_id")) for r in records))
    headers["Idempotency-Key"] = hashlib.sha256(ids.encode()).hexdigest()[:32]
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


@dataclass(frozen=True)
class Delivery:
    """What one delivery did: alerts posted now, and alerts an earlier run had delivered (not sent again)."""

    sent: int
    skipped: int
    dates: tuple[str, ...]


class UnrecordedDelivery(ChurnError):
    """The webhook accepted the alerts but the ledger could not record it: a re-run sends them again."""


def ledger_path(ledger_dir: Path, as_of: str) -> Path:
    """The ledger of the alerts of one scoring date that the webhook accepted."""
    return ledger_dir / f"as_of={as_of}.json"


def _read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text())["delivered"]
        if not all(isinstance(e, dict) and {ACCOUNT_ID, "reasons"} <= e.keys() for e in entries):
            raise ValueError("an entry lacks account_id or reasons")
        if not all(isinstance(e.get("rules", []), list) for e in entries):
            raise ValueError("an entry's rules are not a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ChurnError(
            f"The ledger of delivered alerts {path} cannot be read ({exc}); no alert was sent, so none is sent "
            "twice. Repair it, or move it aside to send every alert of that date again."
        ) from exc
    return entries


def _dates(alerts: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(alerts[AS_OF]).dt.strftime("%Y-%m-%d").fillna("undated")


def deliver(alerts: pd.DataFrame, settings: AlertSettings, ledger_dir: Path) -> Delivery | None:
    """Post the alerts no earlier run delivered, when `scoring.alerts.webhook_url` is set; None when off.

    An alert was delivered when every rule it fires was delivered for its account and date (by one alert
    or several), whatever the words; an entry of an earlier churn version without rules names those its
    words say (`rules_in_words`), and its exact words count as well.
    The ledger is read, the new alerts posted and, only after a 2xx answer, recorded (written whole
    under a lock, so two runs of one date never both send an alert). A failed POST records nothing:
    the next run of the date sends those alerts. A process killed between the answer and the record
    sends them again (at least once, never lost).
    """
    url = settings.webhook()
    if not url or alerts.empty:
        return None
    keys = list(
        zip(
            _dates(alerts),
            alerts[ACCOUNT_ID].astype(str),
            alerts["rules"].astype(str),
            alerts["reasons"].astype(str),
            alerts["alert_id"].astype(str),
            strict=True,
        )
    )
    dates = tuple(sorted({day for day, *_ in keys}))
    with folder_lock(ledger_dir):
        ledgers = {day: _read_ledger(ledger_path(ledger_dir, day)) for day in dates}
        delivered: dict[tuple[str, str], set[str]] = {}
        worded = set()  # entries of earlier churn versions: their exact words count too
        for day, entries in ledgers.items():
            for e in entries:
                if "rules" not in e:
                    worded.add((day, e[ACCOUNT_ID], e["reasons"]))
                rules = set(e["rules"]) if "rules" in e else rules_in_words(e["reasons"])
                delivered.setdefault((day, e[ACCOUNT_ID]), set()).update(rules)
        fresh = [
            not split_rules(rules) <= delivered.get((day, account), set()) and (day, account, words) not in worded
            for day, account, rules, words, _ in keys
        ]
        if any(fresh):
            try:  # returns on a 2xx answer only: anything else raises
                post_webhook(
                    alerts[fresh], url, timeout=settings.webhook_timeout_seconds, retries=settings.webhook_retries
                )
            except ChurnError as exc:
                raise ChurnError(
                    f"{exc} A re-run of {', '.join(dates)} sends the {counted(sum(fresh), 'alert')} not delivered yet."
                ) from exc
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            new = [key for key, is_new in zip(keys, fresh, strict=True) if is_new]
            for day, account, rules, reasons, alert in new:
                ledgers[day].append(
                    {
                        ACCOUNT_ID: account,
                        "rules": sorted(split_rules(rules)),
                        "reasons": reasons,
                        "alert_id": alert,
                        "delivered_at": stamp,
                    }
                )
            for day in sorted({day for day, *_ in new}):
                path = ledger_path(ledger_dir, day)
                try:
                    write_json(path, {"as_of": day, "delivered": ledgers[day]})
                except OSError as exc:
                    them = "it" if sum(fresh) == 1 else "them"
                    raise UnrecordedDelivery(
                        f"{counted(sum(fresh), 'alert')} {'was' if sum(fresh) == 1 else 'were'} delivered to the "
                        f"webhook, but the ledger {path} could not record {them} ({exc}): a re-run of {day} sends "
                        f"{them} again."
                    ) from exc
    return Delivery(sum(fresh), len(keys) - sum(fresh), dates)
