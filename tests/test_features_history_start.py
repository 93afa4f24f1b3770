"""Event tables that start after the accounts landed (a late export): what is counted since landing.

Account A lands on 2022-01-01, two years before the tables' first rows (2024-01-01, account B's);
account C lands after them. At as_of 2024-04-01 the data cannot say when A first used the product nor
whether it was onboarded: those values are missing, with words that say so, while C's are counted from
its landing as before. A "days since" of an event the data never shows counts from the table's first row
where that is after the landing (A: no login in the 91 days of logins, not in its 821 days; left empty, it
cost AUC on a late export: bench/RESULTS.md, wave 16), with words that say the data starts then.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from features.registry import TENURE_DAYS, all_specs, data_days_column, describe, lookup, template_fields
from models.explain import _render
from tests.feature_data import accounts, make_dataset, snapshot, subscriptions

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
    assert a["tenure_days"] == 821
    assert a["days_since_last_login"] == a["logins_data_days"] == 91  # none since the logins start, not 821 days


def test_each_table_carries_its_own_days_of_data_beside_the_features() -> None:
    tables = {**DATA, "logins": DATA["logins"].assign(ts=["2024-03-01", "2024-03-01"])}  # logins start later
    a = _row("A", **tables)
    assert a["logins_data_days"] == a["days_since_last_login"] == 31
    assert a["usage_events_data_days"] == a["trainings_data_days"] == 91


def test_an_account_landed_after_the_data_starts_is_counted_from_its_landing() -> None:
    c = _row("C")
    assert c["days_to_first_value"] == pytest.approx(10.5)
    assert c["onboarding_sessions"] == 0  # the trainings data covers its onboarding: none
    assert c["days_since_last_training"] == 60  # never trained since it landed: its age
    assert c["trainings_data_days"] == 91  # the trainings data covers its whole life
    assert c["days_since_last_login"] == 31


def test_an_account_landed_on_the_first_day_of_the_data_is_covered() -> None:
    tables = _events(usage_events=[("C", "2024-02-11")], trainings=[("C", "2024-02-05")])
    for frame in tables.values():
        frame.loc[0, "ts"] = "2024-02-01"  # the tables start the day C lands
    c = _row("C", **tables)
    assert c["days_to_first_value"] == 10 and c["onboarding_sessions"] == 1


def test_a_table_with_no_row_before_as_of_is_taken_at_its_word_whatever_comes_later() -> None:
    """As its windows are (no use in 30 days): an empty table is warned about when the data is read."""
    late = _events(usage_events=[("A", "2024-05-01")], trainings=[("A", "2024-05-01")], logins=[])
    for frame in late.values():
        frame.loc[0, "ts"] = AS_OF  # B's rows at as_of: not before it
    a = _row("A", **late)
    assert a["days_to_first_value"] == a["tenure_days"] == 821 and a["onboarding_sessions"] == 0
    assert a["events_per_seat_30d"] == 0
    assert a["days_since_last_login"] == 821 and pd.isna(a["logins_data_days"])


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


def test_the_words_of_a_days_since_say_where_the_count_starts() -> None:
    """From the table's first row when it starts after the landing, else from the landing; an event seen is
    said as always."""
    late = {"tenure_days": 821.0, "logins_data_days": 91.0}
    assert describe("days_since_last_login", 91.0, late) == "no login since the logins data starts, 91 days ago"
    assert describe("days_since_last_login", 30.0, late) == "last login 30 days ago"
    covered = {"tenure_days": 60.0, "trainings_data_days": 91.0}
    assert (
        describe("days_since_last_training", 60.0, covered)
        == "no training recorded after the day it landed, 60 days ago"
    )
    # a table without a row before as_of, or a feature table without the column (written before it existed)
    for row in ({"tenure_days": 821.0, "logins_data_days": float("nan")}, {"tenure_days": 821.0}):
        assert (
            describe("days_since_last_login", 821.0, row) == "no login recorded after the day it landed, 821 days ago"
        )


def test_the_drivers_of_a_feature_table_say_where_the_count_starts() -> None:
    """The drivers render from the feature table's rows (`models.explain`): A and C as built above."""
    table = pd.DataFrame([_row("A"), _row("C")])
    words = _render("days_since_last_login", table, np.arange(2))
    assert words == ["no login since the logins data starts, 91 days ago", "last login 31 days ago"]
    words = _render("days_since_last_training", table, np.arange(2))
    assert words == ["last training 12 days ago", "no training recorded after the day it landed, 60 days ago"]


def test_a_window_the_table_starts_inside_says_how_much_of_it_the_data_holds() -> None:
    late = {"tenure_days": 821.0, "invoices_data_days": 60.0}
    assert describe("late_payments_90d", 2.0, late) == (
        "2 invoices paid late or not at all (due in the last 90 days), only 60 of these 90 days in the invoices data"
    )
    # a window longer than the 90 days the snapshots' start guarantees is missing there (`whole`): not known
    assert describe("late_payment_share_365d", float("nan"), late) == (
        "Share of invoices due in 365 days that were not paid by their due date: not known, only 60 of these 365 "
        "days in the invoices data"
    )
    assert describe("late_payment_share_365d", float("nan"), {**late, "invoices_data_days": 400.0}) == (
        "no invoice due in the last 365 days"
    )
    # the per-feature usage columns too (they had no window, so no such words)
    usage = {"tenure_days": 821.0, "usage_events_data_days": 12.0, "seats": 5.0}
    assert describe("usage_reports_per_seat_30d", 0.0, usage) == (
        "no uses of reports in the last 30 days, only 12 of these 30 days in the usage events data"
    )
    # the data holds the whole window, or the account landed after the table starts: the words as always
    for row in ({**late, "invoices_data_days": 90.0}, {"tenure_days": 50.0, "invoices_data_days": 60.0}, {}):
        assert describe("late_payments_90d", 2.0, row) == "2 invoices paid late or not at all (due in the last 90 days)"


def test_a_window_longer_than_90_days_is_missing_where_the_table_starts_inside_it() -> None:
    """Invoices from 2024-01-01 hold 91 of the 365 days before as_of: A's year of invoices is not known (it
    landed in 2022); C landed after they start, so its year is whole since its landing."""
    invoices = pd.DataFrame({
        "account_id": ["B", "A", "C"], "issued_at": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-02-15"]),
        "due_at": pd.to_datetime(["2024-01-15", "2024-02-15", "2024-03-01"]), "amount": 100.0,
        "paid_at": pd.to_datetime([None, "2024-03-01", "2024-03-20"]), "status": "paid", "discount": 0.0,
    })  # fmt: skip
    a, c = _row("A", **DATA, invoices=invoices), _row("C", **DATA, invoices=invoices)
    assert a["invoices_data_days"] == 91 and a["late_payments_90d"] == 1
    assert pd.isna(a["late_payments_365d"]) and pd.isna(a["late_payment_share_365d"])
    assert pd.isna(a["invoiced_amount_change_365d"]) and pd.isna(a["overdue_amount_share"])
    assert c["late_payments_365d"] == 1 and c["late_payment_share_365d"] == 1.0


def test_the_drivers_of_a_window_the_table_starts_inside_say_so() -> None:
    """Logins starting 31 days before as_of hold 31 of the 90 days of A's and C's windows (both landed before);
    starting 91 days before, they hold the whole window."""
    tables = {**DATA, "logins": pd.DataFrame({"account_id": ["B", "C"], "ts": ["2024-03-01", "2024-03-01"]})}
    table = pd.DataFrame([_row("A", **tables), _row("C", **tables), _row("A"), _row("C")])
    assert _render("active_days_90d", table, np.arange(4)) == [
        "no logins in the last 90 days, only 31 of these 90 days in the logins data",
        "logins on 1 of the last 90 days, only 31 of these 90 days in the logins data",
        "no logins in the last 90 days",
        "logins on 1 of the last 90 days",
    ]


def test_a_configured_window_longer_than_90_days_is_missing_where_the_table_starts_inside_it() -> None:
    """`features.windows: [30, 180]`: the tables start 91 days before as_of, inside A's 180 days (it landed in
    2022), so A's 180-day counts are not known, as the fixed year of invoices is; its 30-day ones are counted,
    and C (landed after the tables start) has its 180 days since its landing."""
    tables = {
        **DATA,
        "support_tickets": DATA["trainings"].rename(columns={"ts": "opened_at"}).assign(ticket_id=["1", "2"]),
    }
    dataset = make_dataset(accounts_table=ACCOUNTS, subscriptions_table=TERMS, **tables)
    a, c = (snapshot(dataset, AS_OF, account=x, windows=[30, 180]) for x in ("A", "C"))
    long = ["logins_per_seat_180d", "active_days_180d", "events_per_seat_180d", "feature_breadth_180d"]
    long += ["trainings_180d", "tickets_180d", "tickets_per_seat_180d"]
    assert all(pd.isna(a[name]) for name in long), a[long]
    assert a["events_per_seat_30d"] == 0 and a["trainings_30d"] == 1 and a["tickets_30d"] == 1
    assert c["active_days_180d"] == 1 and c["feature_breadth_180d"] == 1 and c["trainings_180d"] == 0
    assert describe("events_per_seat_180d", a["events_per_seat_180d"], a.to_dict()) == (
        "Product events per seat in the last 180 days: not known, only 91 of these 180 days in the usage events data"
    )


def test_every_template_of_every_feature_renders_the_edges_in_plain_words() -> None:
    """Every registered feature (and a configured 180-day window, a per-feature usage column) over values of
    zero, rounded to zero or to all, a few, missing, and a "days since" that reaches the table's start or the
    landing, on a row whose table holds the whole window, part of it (starting 20 days before as_of, after the
    landing) or has no seat count: no field left unformatted, no "nan", no "1 days", no count or share said as
    none that is not, and a window the data holds part of always says so."""
    names = [n for n, found in all_specs().items() if found.kind == "numeric"]
    names += ["logins_per_seat_180d", "usage_reports_per_seat_30d"]
    for name in names:
        found = lookup(name)
        companions = dict.fromkeys(template_fields(name), 2.0)
        held = data_days_column(found.source)
        rows = {
            "whole": companions | {"seats": 10.0, TENURE_DAYS: 800.0, held: 800.0},
            "partial": companions | {"seats": 10.0, TENURE_DAYS: 800.0, held: 20.0},
            "unseated": {**companions, "seats": float("nan"), TENURE_DAYS: 800.0, held: 800.0},
        }
        for kind, row in rows.items():
            for value in (0.0, 0.004, 0.996, 3.0, float("nan"), 20.0, 800.0):
                text = describe(name, value, row)
                said = (name, kind, value, text)
                assert text and not re.search(r"[{}]|\bnan\b|(?<!\.)\b1 days\b|-0\b", text), said
                assert text != f"{found.description}: {value:.3g}", said  # not the fallback
                if value != 0:
                    assert not re.match(r"0% |0\.0+ ", text), said
                if kind == "partial" and found.window is not None and found.window > 20:
                    assert text.endswith(
                        f", only 20 of these {found.window} days in the {found.source.replace('_', ' ')} data"
                    ), said
