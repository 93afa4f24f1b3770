"""The product's clock: the contract's timestamps are naive UTC, so "today" is the UTC date.

The machine's local date is a day off for part of every day west or east of UTC: a default scoring date
one day ahead of the UTC clock that excludes future rows, or one day behind it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def utc_today() -> date:
    """Today's date in UTC (the default `--as-of` and the day overrides are checked against)."""
    return datetime.now(UTC).date()
