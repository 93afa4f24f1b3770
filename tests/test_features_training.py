"""Training features by hand (landed 2024-01-01 10:00, as_of 2024-04-01, 10 seats, onboarding 60 days)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.feature_data import accounts, make_dataset, snapshot

AS_OF = "2024-04-01"
TRAININGS = pd.DataFrame(
    [
        ("2023-12-31 12:00", "u1", "webinar", True),  # before landing, age 92
        ("2024-01-01 08:00", "u1", "webinar", True),  # landing day (before the landing hour): onboarding
        ("2024-02-29 12:00", "u2", "course", False),  # day 59 of onboarding, not completed
        ("2024-03-01 12:00", "u2", "certification", True),  # day 60: after onboarding
        ("2024-03-30 12:00", "u3", "Certification", True),  # age 2
        ("2024-04-01 00:00", "u4", "certification", True),  # at as_of: not seen
    ],
    columns=["ts", "user_id", "kind", "completed"],
).assign(account_id="A")
LANDED_AT_TEN = accounts(created_at="2024-01-01 10:00")


def test_training_features():
    row = snapshot(make_dataset(accounts_table=LANDED_AT_TEN, trainings=TRAININGS), AS_OF)
    assert [row[f"trainings_{w}d"] for w in (7, 30, 90)] == [1, 1, 3]  # 90 days back is 01-02
    assert row["training_completions_90d"] == 2
    assert row["trained_users_share"] == pytest.approx(0.3)  # u1, u2, u3 completed something
    assert row["certifications_total"] == 2
    assert row["onboarding_sessions"] == 2
    assert row["days_since_last_training"] == 2


def test_onboarding_counts_only_sessions_before_as_of():
    row = snapshot(make_dataset(accounts_table=LANDED_AT_TEN, trainings=TRAININGS), "2024-02-01")
    assert row["onboarding_sessions"] == 1
    assert snapshot(make_dataset(trainings=TRAININGS), AS_OF, onboarding_days=30)["onboarding_sessions"] == 1


def test_account_without_trainings_and_missing_optional_columns():
    row = snapshot(make_dataset(trainings=TRAININGS.assign(account_id="B")), AS_OF)
    assert row["trainings_90d"] == 0 and row["trained_users_share"] == 0 and row["certifications_total"] == 0
    assert row["days_since_last_training"] == 91
    bare = snapshot(make_dataset(trainings=TRAININGS[["account_id", "ts"]]), AS_OF)
    assert {"training_completions_90d", "trained_users_share", "certifications_total"}.isdisjoint(bare.index)
    assert bare["trainings_90d"] == 3


def test_trained_share_is_not_known_when_no_completed_training_names_its_user():
    """A trainings export whose `user_id` is empty (a webinar tool that records no attendees) says nothing
    about how many seats trained: the share is missing, not 0% (which cost every account health points)."""
    anonymous = TRAININGS.assign(user_id=None)
    row = snapshot(make_dataset(accounts_table=LANDED_AT_TEN, trainings=anonymous), AS_OF)
    assert pd.isna(row["trained_users_share"])
    assert row["trainings_90d"] == 3  # the sessions themselves still count
    partly = TRAININGS.assign(user_id=TRAININGS["user_id"].where(TRAININGS["user_id"] != "u1"))
    row = snapshot(make_dataset(accounts_table=LANDED_AT_TEN, trainings=partly), AS_OF)
    assert row["trained_users_share"] == pytest.approx(0.2)  # u2, u3: the users it does name
