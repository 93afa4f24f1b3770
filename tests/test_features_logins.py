"""Login features computed by hand on a few logins around the window edges (as_of 2024-04-01, 10 seats)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.feature_data import make_dataset, snapshot

AS_OF = "2024-04-01"
LOGINS = pd.DataFrame(
    [
        ("A", "2024-03-31 23:59", "u1"),  # age 1
        ("A", "2024-03-25 10:00", "u1"),  # age 7: inside the 7-day window
        ("A", "2024-03-24 23:59:59", "u2"),  # age 8: just outside it
        ("A", "2024-04-01 00:00", "u2"),  # at as_of: never seen
        ("A", "2024-03-02 00:00", "u3"),  # exactly 30 days before: inside the 30-day window
        ("A", "2024-03-01 23:59", "u3"),  # just outside it
        ("A", "2024-02-01 08:00", "u1"),  # age 60
        ("A", "2024-01-05 08:00", "u4"),  # age 87
    ],
    columns=["account_id", "ts", "user_id"],
)


def test_window_counts_users_days_and_edges():
    row = snapshot(make_dataset(logins=LOGINS), AS_OF)
    assert row["logins_per_seat_7d"] == pytest.approx(0.2)
    assert row["logins_per_seat_30d"] == pytest.approx(0.4)
    assert row["logins_per_seat_90d"] == pytest.approx(0.7)
    assert (row["active_users_7d"], row["active_users_30d"], row["active_users_90d"]) == (1, 3, 4)
    assert row["user_utilisation_30d"] == pytest.approx(0.3)
    assert (row["active_days_7d"], row["active_days_30d"], row["active_days_90d"]) == (2, 4, 7)
    assert row["days_since_last_login"] == 1


def test_gaps_and_trends():
    row = snapshot(make_dataset(logins=LOGINS), AS_OF)
    # login days 01-05, 02-01, 03-01, 03-02, 03-24, 03-25, 03-31: gaps 27, 29, 1, 22, 1, 6
    assert row["login_gap_mean_90d"] == pytest.approx((87 - 1) / 6)
    assert row["login_gap_max_90d"] == 29
    assert row["logins_trend_30d"] == pytest.approx((4 - 2) / 2)
    assert row["logins_trend_vs_90d"] == pytest.approx((4 / 30 - 7 / 90) / (7 / 90))


def test_gap_to_a_login_before_the_window_is_not_a_gap_inside_it():
    logins = pd.DataFrame({"account_id": ["A"] * 3, "ts": ["2023-12-01", "2024-03-20", "2024-03-30"], "user_id": "u1"})
    row = snapshot(make_dataset(logins=logins), AS_OF)
    assert row["login_gap_max_90d"] == 10 and row["login_gap_mean_90d"] == 10


def test_no_login_yet_reads_as_zero_counts_and_days_since_landing():
    logins = pd.DataFrame({"account_id": ["A"], "ts": ["2024-04-01 00:00"], "user_id": ["u1"]})
    row = snapshot(make_dataset(logins=logins), AS_OF)
    assert row["logins_per_seat_30d"] == 0 and row["active_users_90d"] == 0 and row["active_days_7d"] == 0
    assert row["days_since_last_login"] == 91  # landed 2024-01-01
    assert pd.isna(row["login_gap_mean_90d"]) and pd.isna(row["login_gap_max_90d"])
    assert row["logins_trend_30d"] == 0 and row["logins_trend_vs_90d"] == 0


def test_trend_without_baseline_is_missing():
    logins = pd.DataFrame({"account_id": ["A"], "ts": ["2024-03-20"], "user_id": ["u1"]})
    assert pd.isna(snapshot(make_dataset(logins=logins), AS_OF)["logins_trend_30d"])


def test_without_user_ids_there_are_no_user_features():
    row = snapshot(make_dataset(logins=LOGINS.drop(columns="user_id")), AS_OF)
    assert not any(name.startswith(("active_users", "user_utilisation")) for name in row.index)
    assert row["logins_per_seat_30d"] == pytest.approx(0.4)


def test_configured_windows_name_the_columns():
    row = snapshot(make_dataset(logins=LOGINS), AS_OF, windows=[14])
    assert row["logins_per_seat_14d"] == pytest.approx(0.3)  # 03-31, 03-25, 03-24
    assert "logins_per_seat_7d" not in row.index and "logins_trend_30d" in row.index


def test_active_users_are_not_known_when_no_login_of_the_window_names_its_user():
    """Logins without a `user_id` (an SSO export that leaves it empty) say nothing of how many users were
    active: active users and utilisation are missing for a window whose logins name no user, not 0 (which
    read as '0% of seats active' and cost engagement points); a window without logins is still 0."""
    logins = LOGINS.assign(user_id=LOGINS["user_id"].where(LOGINS["ts"] < "2024-03-01"))  # only 60+ days old named
    row = snapshot(make_dataset(logins=logins), AS_OF)
    assert pd.isna(row["active_users_7d"]) and pd.isna(row["active_users_30d"])
    assert pd.isna(row["user_utilisation_7d"]) and pd.isna(row["user_utilisation_30d"])
    assert row["active_users_90d"] == 2 and row["user_utilisation_90d"] == pytest.approx(0.2)  # u1, u4 named
    assert row["logins_per_seat_30d"] == pytest.approx(0.4)
    quiet = snapshot(make_dataset(logins=logins.assign(account_id="B")), AS_OF)  # A has no login at all
    assert quiet["active_users_7d"] == 0 and quiet["user_utilisation_30d"] == 0
