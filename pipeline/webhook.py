"""Delivering alerts: POST them as JSON to the webhook of `scoring.alerts.webhook_url`.

Alerts are computed by `models.alerts`; sending them is I/O, so it lives here at the edge. A
failed delivery never undoes a committed scoring run: the caller turns it into a warning.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pandas as pd

from features.errors import ChurnError, ConfigError
from features.table import ACCOUNT_ID, AS_OF
from pipeline.config import AlertSettings, redact_url


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
