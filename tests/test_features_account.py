"""Account and contract features on hand-built terms."""

from __future__ import annotations

import pandas as pd
import pytest

from features.registry import describe
from tests.feature_data import accounts, make_dataset, snapshot

TERMS = pd.DataFrame(
    [
        ("A", "2022-01-01", "2023-01-01", 10.0, 1000.0, "starter"),
        ("A", "2023-01-10", "2024-01-10", 15.0, 2000.0, "professional"),  # renewal 9 days late, +50 % seats
        ("A", "2023-06-01", "2024-01-10", 5.0, 300.0, "addon"),  # co-terminous add-on: not a renewal
    ],
    columns=["account_id", "start_date", "end_date", "seats", "arr", "plan"],
)
ACCOUNT = accounts(created_at="2021-12-15", regulated=True, industry="finance", region="emea")


def dataset(terms: pd.DataFrame = TERMS, account: pd.DataFrame = ACCOUNT):
    return make_dataset(accounts_table=account, subscriptions_table=terms)


def test_contract_features_of_a_renewed_account_with_an_add_on():
    row = snapshot(dataset(), "2023-07-01")
    assert row["tenure_days"] == (pd.Timestamp("2023-07-01") - pd.Timestamp("2021-12-15")).days
    assert (row["segment"], row["industry"], row["region"], row["regulated"]) == ("mid", "finance", "emea", 1.0)
    assert row["plan"] == "professional"  # the main term, not the co-terminous add-on
    assert row["arr"] == 2300 and row["seats"] == 15
    assert row["term_length_days"] == 365
    assert row["days_to_renewal"] == (pd.Timestamp("2024-01-10") - pd.Timestamp("2023-07-01")).days
    assert row["renewals_count"] == 1
    assert row["seat_change_last_renewal"] == pytest.approx(0.5)
    assert row["is_new_customer"] == 0


def test_terms_starting_after_as_of_are_invisible():
    row = snapshot(dataset(), "2022-12-01")
    assert row["renewals_count"] == 0 and pd.isna(row["seat_change_last_renewal"])
    assert row["plan"] == "starter" and row["seats"] == 10 and row["arr"] == 1000
    assert row["days_to_renewal"] == 31


def test_a_first_term_has_no_seat_change_and_a_flat_renewal_has_one_of_zero():
    """An account that has not renewed had a seat change of 0, as if it had renewed flat: the default scorecard
    gave every first-term account 60 of 100 points for a renewal it never had. No renewal is no seat change
    (missing: the scorecard weighs the renewals it has instead); a renewal at the same seats is a change of 0."""
    flat = TERMS.iloc[:2].assign(seats=10.0)
    first_term, renewed_flat = snapshot(dataset(flat), "2022-06-01"), snapshot(dataset(flat), "2023-07-01")
    assert first_term["renewals_count"] == 0 and pd.isna(first_term["seat_change_last_renewal"])
    assert renewed_flat["renewals_count"] == 1 and renewed_flat["seat_change_last_renewal"] == 0
    said = describe("seat_change_last_renewal", first_term["seat_change_last_renewal"], first_term.to_dict())
    assert said == "no renewals so far, no seat change known"
    assert describe("seat_change_last_renewal", 0.0, renewed_flat.to_dict()) == "seats unchanged at the last renewal"
    unseated = renewed_flat.to_dict() | {"renewals_count": 2.0}  # renewals of terms without a seat count
    assert describe("seat_change_last_renewal", float("nan"), unseated) == "2 renewals so far, no seat change known"


def test_new_customer_flag_follows_the_configured_period():
    row = snapshot(make_dataset(), "2024-04-01")  # landed 2024-01-01: 91 days
    assert row["tenure_days"] == 91 and row["is_new_customer"] == 1
    assert snapshot(make_dataset(), "2024-04-01", new_customer_days=60)["is_new_customer"] == 0


def test_tenure_counts_from_the_first_term_when_created_at_is_later():
    row = snapshot(make_dataset(accounts_table=accounts(created_at="2024-03-01")), "2024-04-01")
    assert row["tenure_days"] == 91


def test_categorical_features_are_categories_and_absent_columns_are_absent():
    terms = TERMS.drop(columns=["seats", "plan"])
    table_row = snapshot(dataset(terms, accounts()), "2023-07-01")
    assert "seats" not in table_row.index and "seat_change_last_renewal" not in table_row.index
    assert "plan" not in table_row.index and "industry" not in table_row.index
    assert table_row["arr"] == 2300


def test_a_term_given_twice_is_one_term():
    """A subscriptions row written twice by an export (every column equal) is one term: it was counted twice,
    doubling the account's ARR and its renewals so far."""
    twice = pd.concat([TERMS, TERMS.iloc[[1]]], ignore_index=True)
    row, once = snapshot(dataset(twice), "2023-07-01"), snapshot(dataset(), "2023-07-01")
    assert row["arr"] == once["arr"] == 2300 and row["renewals_count"] == once["renewals_count"] == 1
    pd.testing.assert_series_equal(row, once)
