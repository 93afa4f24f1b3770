"""Event tables that start after the accounts landed (a late export): what is counted since landing.

Account A lands on 2022-01-01, two years before the tables' first rows (2024-01-01, account B's);
account C lands after them. At as_of 2024-04-01 the data cannot say when A first used the product nor
whether it was onboarded: those values are missing, with words that say so, while C's are counted from
its landing as before. A "days since" of an event the data never shows keeps the account's age (left
empty, it cost AUC on a late export: bench/RESULTS.md, wave 16).
"""

from __future__ import annotations

import pandas as pd
import pytest
from feature_data import accounts, make_dataset, snapshot, subscriptions

from features.registry import describe

AS_OF = "2024-04-01"
STARTS = "2024-01-01"  # the first row of every table (B's)
ACCOUNTS = pd.concat(
    [
        accounts().assign(created_at="2022-01-01"),
        accounts().assign(account_id="B"),
        accounts().assign(account_id="C", created_at="2024-02-01"),
    ],
    ignore_index=True,
)
TERMS = pd.concat(
    [
        subscriptions(("2022-01-01", "2025-01-01")),
        subscriptions(("2024-02-01", "2025-02-01"), account="C"),
    ],
    ignore_index=True,
)


def _events(**rows: list[tuple[str, str]]) -> dict[str, pd.DataFrame]:
    """Each table with B's row on STARTS plus the given (account, ts) rows."""
    tables = {}
    for name, extra in rows.items():
        frame = pd.DataFrame([("B", STARTS), *extra], columns=["account_id", "ts"])
        if name == "usage_events":
            frame["feature"] = "reports"
        tables[name] = frame
    return tables


DATA = _events(
    logins=[("C", "2024-03-01")],
    usage_events=[("A", "2024-02-10"), ("C", "2024-02-11 12:00")],
    trainings=[("A", "2024-03-20")],
)


def _row(account: str, **tables: pd.DataFrame) -> pd.Series:
    dataset = make_dataset(accounts_table=ACCOUNTS, subscriptions_table=TERMS, **(tables or DATA))
    return snapshot(dataset, AS_OF, account=account)


def test_what_happened_before_the_data_starts_is_missing_for_an_account_landed_before_it() -> None:
    a = _row("A")
    assert pd.isna(a["days_to_first_value"])  # not 770 days "after landing": the data starts 730 days in
    assert pd.isna(a["onboarding_sessions"])  # its onboarding predates the trainings data
    assert a["days_since_last_use"] == 51 and a["days_since_last_training"] == 12  # seen: counted as always
    assert a["days_since_last_login"] == a["tenure_days"] == 821


def test_an_account_landed_after_the_data_starts_is_counted_from_its_landing() -> None:
    c = _row("C")
    assert c["days_to_first_value"] == pytest.approx(10.5)
    assert c["onboarding_sessions"] == 0  # the trainings data covers its onboarding: none
    assert c["days_since_last_training"] == 60  # never trained since it landed: its age
    assert c["days_since_last_login"] == 31


def test_an_account_landed_on_the_first_day_of_the_data_is_covered() -> None:
    tables = _events(usage_events=[("C", "2024-02-11")], trainings=[("C", "2024-02-05")])
    for frame in tables.values():
        frame.loc[0, "ts"] = "2024-02-01"  # the tables start the day C lands
    c = _row("C", **tables)
    assert c["days_to_first_value"] == 10 and c["onboarding_sessions"] == 1


def test_a_table_with_no_row_before_as_of_is_taken_at_its_word_whatever_comes_later() -> None:
    """As its windows are (no use in 30 days): an empty table is warned about when the data is read."""
    late = _events(usage_events=[("A", "2024-05-01")], trainings=[("A", "2024-05-01")])
    for frame in late.values():
        frame.loc[0, "ts"] = AS_OF  # B's rows at as_of: not before it
    a = _row("A", **late)
    assert a["days_to_first_value"] == a["tenure_days"] == 821 and a["onboarding_sessions"] == 0
    assert a["events_per_seat_30d"] == 0


@pytest.mark.parametrize(
    ("feature", "words"),
    [
        ("days_to_first_value", "first product use not known: the account landed before the product usage data starts"),
        ("onboarding_sessions", "onboarding not in the data: the account landed before the trainings data starts"),
    ],
)
def test_the_words_say_the_data_starts_after_the_account_landed(feature: str, words: str) -> None:
    assert describe(feature, float("nan"), {"tenure_days": 821.0}) == words
    # where the data covers the account's life, the words stay those of an event never seen since landing
    never = describe("days_to_first_value", 60.0, {"tenure_days": 60.0})
    assert never == "no product use recorded yet, 60 days after landing"
