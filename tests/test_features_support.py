"""Support features by hand (as_of 2024-04-01, 10 seats): what is known when a ticket opens or closes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.feature_data import make_dataset, snapshot

AS_OF = "2024-04-01"
NaT = None
TICKETS = pd.DataFrame(
    [
        ("T1", "2024-03-31 10:00", NaT, "urgent", "Bug", True, np.nan),  # age 1, still open
        ("T2", "2024-03-20 09:00", "2024-03-21 09:00", "low", "how-to", False, 4.0),  # 24 h
        ("T3", "2024-03-02 00:00", "2024-04-02 00:00", "high", "bug", False, 1.0),  # age 30, closed after as_of
        ("T4", "2024-02-10 00:00", "2024-02-12 00:00", "normal", "billing", False, 2.0),  # age 51, 48 h
        ("T5", "2024-01-01 00:00", "2024-03-15 00:00", None, None, False, 5.0),  # age 91, closed in window
        ("T6", "2024-04-01 00:00", NaT, "urgent", "bug", True, np.nan),  # at as_of: not seen
    ],
    columns=["ticket_id", "opened_at", "closed_at", "priority", "category", "escalated", "csat"],
).assign(account_id="A")


def test_ticket_counts_and_open_tickets():
    row = snapshot(make_dataset(support_tickets=TICKETS), AS_OF)
    assert [row[f"tickets_{w}d"] for w in (7, 30, 90)] == [1, 3, 4]
    assert [row[f"tickets_per_seat_{w}d"] for w in (7, 30, 90)] == pytest.approx([0.1, 0.3, 0.4])
    assert row["open_tickets"] == 2  # T1 and T3 (closed only after as_of)
    assert row["days_since_last_ticket"] == 1
    assert row["tickets_trend_30d"] == pytest.approx((3 - 1) / 1)


def test_shares_and_means_over_90_days():
    row = snapshot(make_dataset(support_tickets=TICKETS), AS_OF)
    assert row["high_priority_share_90d"] == pytest.approx(2 / 4)
    assert row["escalations_90d"] == 1
    assert row["bug_share_90d"] == pytest.approx(2 / 4) and row["howto_share_90d"] == pytest.approx(1 / 4)
    # resolution and CSAT count when the ticket closes: T2, T4 and T5 (opened before the window), not T3
    assert row["resolution_hours_mean_90d"] == pytest.approx((24 + 48 + 74 * 24) / 3)
    assert row["csat_mean_90d"] == pytest.approx((4 + 2 + 5) / 3)


def test_a_helpdesks_own_priorities_count_as_the_urgent_or_high_ones_they_are():
    # T1-T4 are seen: P1 (urgent) and Critical (urgent) count; P4 (low) and Major (no known meaning) do not
    tickets = TICKETS.assign(priority=["P1", "P4", "Critical", "Major", None, "P2"])
    assert snapshot(make_dataset(support_tickets=tickets), AS_OF)["high_priority_share_90d"] == pytest.approx(2 / 4)


def test_no_tickets_means_zero_counts_missing_means_and_days_since_landing():
    row = snapshot(make_dataset(support_tickets=TICKETS.assign(account_id="B")), AS_OF)
    assert row["tickets_90d"] == 0 and row["open_tickets"] == 0 and row["escalations_90d"] == 0
    assert pd.isna(row["csat_mean_90d"]) and pd.isna(row["high_priority_share_90d"])
    assert row["days_since_last_ticket"] == 91


def test_without_close_dates_there_is_no_open_count_and_csat_counts_when_opened():
    row = snapshot(make_dataset(support_tickets=TICKETS.drop(columns="closed_at")), AS_OF)
    assert "open_tickets" not in row.index and "resolution_hours_mean_90d" not in row.index
    assert row["csat_mean_90d"] == pytest.approx((4 + 1 + 2) / 3)  # T2, T3, T4 opened within 90 days
    minimal = snapshot(make_dataset(support_tickets=TICKETS[["account_id", "ticket_id", "opened_at"]]), AS_OF)
    assert {"csat_mean_90d", "bug_share_90d", "escalations_90d", "high_priority_share_90d"}.isdisjoint(minimal.index)
    assert minimal["tickets_30d"] == 3
