"""Feature values are reproducible bit for bit: the same data gives the same feature table whatever the
order of its rows and however many threads DuckDB adds them up with (sums of fractional numbers are exact,
`features.sql.timeline.exact`; sums of doubles differed in their last bits from run to run)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import build_features, snapshot_dates
from features.errors import DataContractError
from features.settings import FeatureSettings
from pipeline.loading import Dataset

START = pd.Timestamp("2024-01-01")


def _tables(seed: int = 7) -> dict[str, pd.DataFrame]:
    """Two accounts over a year with every summed number fractional: quantities, amounts, discounts, ARR of
    overlapping terms, ticket hours and CSAT, survey scores, touchpoint sentiment."""
    rng = np.random.default_rng(seed)
    ids = ["A", "B"]

    def times(n: int, days: int = 365) -> pd.Series:
        return pd.Series(START + pd.to_timedelta(rng.integers(0, days * 86_400, n), "s"))

    def fractions(n: int, scale: float) -> np.ndarray:
        return rng.lognormal(0.0, 1.0, n) * scale

    n = 20_000
    terms = pd.DataFrame(
        {
            "account_id": ["A", "A", "A", "B"],
            "start_date": [START - pd.Timedelta(days=30)] * 4,
            "end_date": [START + pd.Timedelta(days=400)] * 4,
            "arr": [1000.1, 2000.2, 3000.3, 1234.567],
            "seats": [3.0, 3.0, 3.0, 7.0],
        }
    )
    issued = times(400)
    return {
        "accounts": pd.DataFrame({"account_id": ids, "created_at": [START - pd.Timedelta(days=30)] * 2}),
        "subscriptions": terms,
        "usage_events": pd.DataFrame(
            {
                "account_id": rng.choice(ids, n),
                "ts": times(n),
                "feature": rng.choice(["a", "b"], n),
                "quantity": fractions(n, 1.0),
            }
        ),
        "support_tickets": pd.DataFrame(
            {
                "account_id": rng.choice(ids, 2_000),
                "ticket_id": [f"T{i}" for i in range(2_000)],
                "opened_at": (opened := times(2_000)),
                "closed_at": opened + pd.to_timedelta(fractions(2_000, 1e4), "s"),
                "csat": rng.choice([1.5, 2.7, 4.1, 4.9], 2_000),
            }
        ),
        "invoices": pd.DataFrame(
            {
                "account_id": rng.choice(ids, 400),
                "issued_at": issued,
                "due_at": issued + pd.Timedelta(days=30),
                "amount": fractions(400, 100.0),
                "discount": fractions(400, 3.0),
            }
        ),
        "touchpoints": pd.DataFrame(
            {
                "account_id": rng.choice(ids, 2_000),
                "ts": times(2_000),
                "kind": "email",
                "sentiment": rng.uniform(-1.0, 1.0, 2_000),
            }
        ),
        "surveys": pd.DataFrame(
            {"account_id": rng.choice(ids, 2_000), "ts": times(2_000), "score": rng.uniform(0.0, 10.0, 2_000)}
        ),
    }


def _features(tables: dict[str, pd.DataFrame], threads: int) -> pd.DataFrame:
    dataset = Dataset.from_frames(tables, data_end="2025-01-01", now=pd.Timestamp("2025-01-01"))
    dataset.con.execute(f"SET threads = {threads}")
    return build_features(dataset, snapshot_dates(dataset, "monthly"), FeatureSettings(), grace_days=30)


def test_feature_values_do_not_depend_on_row_order_or_threads():
    tables = _tables()
    first = _features(tables, threads=4)
    summed = ["quantity_per_seat_30d", "arr", "resolution_hours_mean_90d", "csat_mean_90d", "nps_mean_180d"]
    assert first[summed].notna().any().all()  # the sums under test are there
    for threads in (1, 4):
        reordered = {name: table.iloc[::-1].reset_index(drop=True) for name, table in tables.items()}
        again = _features(reordered, threads)
        different = [c for c in first.columns if not first[c].equals(again[c])]
        assert different == [], f"{threads} threads, rows reversed: {different}"
    assert _features(tables, threads=4).equals(first)


def test_numbers_too_large_to_sum_exactly_are_refused():
    tables = _tables()
    tables["usage_events"].loc[[5, 9], "quantity"] = [6e18, 7e18]  # 1.3e19: a sum of bytes, not of GB
    with pytest.raises(DataContractError, match=r"usage_events\.quantity: the values add up to 1e\+19 or more") as e:
        Dataset.from_frames(tables, data_end="2025-01-01", now=pd.Timestamp("2025-01-01"))
    # the rows to look at, largest first, as every other problem names its rows
    assert "(largest: rows 10, 6, " in str(e.value) and "'7e+18', '6e+18', " in str(e.value), str(e.value)


def test_whole_numbers_are_summed_as_doubles_with_the_same_values():
    """Whole numbers add up exactly as doubles too (below 2^53), so validation lets them skip the decimals (the
    usual case, quantities counted in units: a cheaper build); the values are the decimals' bit for bit."""
    tables = _tables()
    tables["usage_events"]["quantity"] = np.floor(tables["usage_events"]["quantity"] * 10)
    tables["touchpoints"]["sentiment"] = np.sign(tables["touchpoints"]["sentiment"])
    dataset = Dataset.from_frames(tables, data_end="2025-01-01", now=pd.Timestamp("2025-01-01"))
    exact = dataset.report.exact_sums
    assert exact["usage_events"] == exact["touchpoints"] == frozenset()
    assert exact["invoices"] == {"amount", "discount"} and exact["support_tickets"] == {"csat"}
    dates = snapshot_dates(dataset, "monthly")
    as_doubles = build_features(dataset, dates, FeatureSettings(), grace_days=30)
    dataset.report.exact_sums = None  # every sum as decimals
    assert build_features(dataset, dates, FeatureSettings(), grace_days=30).equals(as_doubles)
    tables["usage_events"].loc[0, "quantity"] = 2.0**53  # whole, but sums beyond 2^53 are not exact as doubles
    large = Dataset.from_frames(tables, data_end="2025-01-01", now=pd.Timestamp("2025-01-01"))
    assert large.report.exact_sums["usage_events"] == {"quantity"}
