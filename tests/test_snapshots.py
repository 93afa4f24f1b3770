"""Snapshots, labels and snapshot dates (SPEC "Churn and renewal", "Snapshots and labels")."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from features.build import build_features, snapshot_dates
from features.errors import ConfigError
from features.settings import FeatureSettings
from features.snapshots import normalise_as_of
from tests.feature_data import make_dataset, subscriptions


def labels(terms: list[tuple[str, str]], as_of: list[str], data_end: str = "2030-01-01", grace: int = 30):
    """{as_of: (label, term_end)} for account A, absent dates = no snapshot."""
    dataset = make_dataset(data_end=data_end, subscriptions_table=subscriptions(*terms))
    table = build_features(dataset, as_of, FeatureSettings(), grace_days=grace)
    return {
        row.as_of.date().isoformat(): (None if pd.isna(row.label) else int(row.label), row.term_end.date().isoformat())
        for row in table.itertuples()
    }


def test_renewal_starting_at_term_end_is_label_0():
    got = labels([("2023-01-01", "2024-01-01"), ("2024-01-01", "2025-01-01")], ["2023-06-01"])
    assert got == {"2023-06-01": (0, "2024-01-01")}


def test_no_later_term_is_churn_and_churned_accounts_stop_producing_snapshots():
    got = labels([("2023-01-01", "2024-01-01")], ["2023-06-01", "2024-01-01", "2024-01-02", "2024-06-01"])
    assert got == {"2023-06-01": (1, "2024-01-01"), "2024-01-01": (1, "2024-01-01")}


@pytest.mark.parametrize(
    ("next_start", "label"), [("2024-01-20", 0), ("2024-01-31", 0), ("2024-02-01", 1), ("2024-03-01", 1)]
)
def test_renewal_gap_counts_only_within_grace_days(next_start, label):
    got = labels([("2023-01-01", "2024-01-01"), (next_start, "2025-01-01")], ["2023-06-01"])
    assert got["2023-06-01"] == (label, "2024-01-01")


def test_gap_between_terms_has_no_snapshots_and_the_account_comes_back():
    got = labels(
        [("2023-01-01", "2024-01-01"), ("2024-03-01", "2025-01-01")], ["2024-02-01", "2024-03-01", "2024-04-01"]
    )
    # 2024-03-01: the new term starts on as_of itself, so it is not active yet
    assert got == {"2024-04-01": (1, "2025-01-01")}


def test_grace_days_setting_moves_the_boundary():
    terms = [("2023-01-01", "2024-01-01"), ("2024-02-10", "2025-01-01")]
    assert labels(terms, ["2023-06-01"], grace=30)["2023-06-01"][0] == 1
    assert labels(terms, ["2023-06-01"], grace=45)["2023-06-01"][0] == 0


def test_renewal_must_end_after_the_current_term():
    # a co-terminous add-on starting within grace is not a renewal
    got = labels([("2023-01-01", "2024-01-01"), ("2023-12-15", "2024-01-01")], ["2023-06-01"])
    assert got["2023-06-01"] == (1, "2024-01-01")


def test_censored_when_grace_period_runs_past_data_end():
    terms = [("2023-01-01", "2024-01-01")]
    assert labels(terms, ["2023-06-01"], data_end="2024-01-30")["2023-06-01"] == (None, "2024-01-01")
    assert labels(terms, ["2023-06-01"], data_end="2024-01-31")["2023-06-01"] == (1, "2024-01-01")


def test_multi_year_term_labels_at_its_end():
    got = labels([("2022-01-01", "2025-01-01"), ("2025-01-01", "2026-01-01")], ["2022-06-01", "2024-12-01"])
    assert got == {"2022-06-01": (0, "2025-01-01"), "2024-12-01": (0, "2025-01-01")}


def test_monthly_terms_renew_until_the_last_one():
    months = pd.date_range("2024-01-01", "2024-07-01", freq="MS").strftime("%Y-%m-%d").tolist()
    terms = list(itertools.pairwise(months))
    got = labels(terms, ["2024-03-15", "2024-06-15", "2024-07-15"])
    assert got == {"2024-03-15": (0, "2024-04-01"), "2024-06-15": (1, "2024-07-01")}


def test_overlapping_add_on_term_sets_term_end_to_the_latest_end():
    got = labels([("2023-01-01", "2024-01-01"), ("2023-06-01", "2024-06-01")], ["2023-07-01", "2024-03-01"])
    assert got == {"2023-07-01": (1, "2024-06-01"), "2024-03-01": (1, "2024-06-01")}


def test_active_on_the_end_date_itself():
    got = labels([("2023-01-01", "2024-01-01")], ["2023-01-01", "2024-01-01"])
    assert list(got) == ["2024-01-01"]


def dataset_for_dates():
    logins = pd.DataFrame({"account_id": ["A", "A"], "ts": ["2023-01-01 10:00", "2023-12-30"]})
    return make_dataset(
        data_end="2023-12-31", subscriptions_table=subscriptions(("2023-01-15", "2024-01-15")), logins=logins
    )


def test_default_dates_start_after_a_full_window_of_history_and_end_at_data_end():
    dataset = dataset_for_dates()
    monthly = snapshot_dates(dataset, "monthly")
    assert monthly[0] == pd.Timestamp("2023-05-01") and monthly[-1] == pd.Timestamp("2023-12-01")
    assert len(monthly) == 8
    weekly = snapshot_dates(dataset, "weekly")
    assert weekly[0] == pd.Timestamp("2023-04-03") and weekly[0].dayofweek == 0
    assert all(b - a == pd.Timedelta(days=7) for a, b in itertools.pairwise(weekly))
    assert weekly[-1] == pd.Timestamp("2023-12-25")


def test_explicit_start_and_end_step_from_start():
    dates = snapshot_dates(
        dataset_for_dates(), "monthly", start=pd.Timestamp("2023-01-31"), end=pd.Timestamp("2023-05-01")
    )
    assert [d.date().isoformat() for d in dates] == ["2023-01-31", "2023-02-28", "2023-03-31", "2023-04-30"]
    assert snapshot_dates(dataset_for_dates(), "monthly", start=pd.Timestamp("2024-01-01")) == []


def test_unknown_cadence_is_a_config_error():
    with pytest.raises(ConfigError, match=r"daily.*monthly, weekly"):
        snapshot_dates(dataset_for_dates(), "daily")


def test_as_of_dates_must_be_midnights():
    with pytest.raises(ConfigError, match=r"midnights.*2024-03-01T12:00:00.*'2024-03-01'"):
        normalise_as_of(["2024-03-01 12:00"])
    with pytest.raises(ConfigError, match="not a date"):
        normalise_as_of(["yesterday"])
    with pytest.raises(ConfigError, match="No as_of dates"):
        normalise_as_of([])
    assert normalise_as_of(["2024-03-01", pd.Timestamp("2024-02-01"), "2024-03-01"]) == [
        pd.Timestamp("2024-02-01"),
        pd.Timestamp("2024-03-01"),
    ]
    assert normalise_as_of([pd.Timestamp("2024-03-01 01:00", tz="Europe/Paris")]) == [pd.Timestamp("2024-03-01")]
