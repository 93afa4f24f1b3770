"""Time in the simulation: integer days since 1970-01-01 and a weekly grid for the latent state.

Days are plain int64 so that whole-population arithmetic stays vectorised; they become naive-UTC
timestamps only when tables are written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.errors import ConfigError
from pipeline.synthetic.knobs import SIGNAL_WEEKS, TREND_WEEKS, WEEK

US_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class Timeline:
    """The observed period [start_day, end_day) and the weekly grid that covers it.

    The period is a whole number of calendar months (years x 12, rounded), so three years from
    2023-01-01 end at 2026-01-01.

    The grid begins `SIGNAL_WEEKS + TREND_WEEKS` weeks before the data so that renewals early in
    the data are still decided on half a year of (unobserved) history.
    """

    start_day: int
    end_day: int  # exclusive: no event on or after this day
    grid0: int

    @classmethod
    def build(cls, start: str, years: float) -> Timeline:
        try:
            start_day = int(np.datetime64(start, "D").astype(np.int64))
        except ValueError as exc:
            raise ConfigError(
                f"generate: start '{start}' is not an ISO date (examples: '2023-01-01', '2024-06-15')."
            ) from exc
        if not 0.25 <= years <= 30:
            raise ConfigError(f"generate: years must be between 0.25 and 30 (got {years}); e.g. 3.")
        end_day = int(add_months(np.array([start_day]), np.array([round(years * 12)]))[0])
        return cls(start_day, end_day, start_day - (SIGNAL_WEEKS + TREND_WEEKS) * WEEK)

    @property
    def n_weeks(self) -> int:
        return -(-(self.end_day - self.grid0) // WEEK)

    def week_of(self, days: np.ndarray) -> np.ndarray:
        return (np.asarray(days) - self.grid0) // WEEK

    def week_start(self, weeks: np.ndarray) -> np.ndarray:
        return self.grid0 + np.asarray(weeks) * WEEK


def add_months(days: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Calendar-month arithmetic on day numbers (Jan 31 + 1 month = Feb 28/29), as contracts do."""
    dates = np.asarray(days).astype("datetime64[D]")
    month = dates.astype("datetime64[M]")
    day_of_month = (dates - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.asarray(months).astype("timedelta64[M]")
    month_length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    return target.astype("datetime64[D]").astype(np.int64) + np.minimum(day_of_month, month_length - 1)


def day_to_iso(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def days_to_us(days: np.ndarray) -> np.ndarray:
    """Day numbers to microsecond timestamps (int64), the unit written to parquet."""
    return np.asarray(days, dtype=np.int64) * US_PER_DAY
