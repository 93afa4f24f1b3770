"""What the drivers, the context and the alerts say at the edges (wave 17): a tenure of two years, a renewal
today, a term that ended, an account that churned, a count of nothing."""

from __future__ import annotations

import io
import re
import tokenize

import pandas as pd

from features.registry import describe, template_fields
from models.alerts import score_alerts
from models.explain import context_words, renewal_words
from tests.feature_data import make_dataset, snapshot


def test_tenure_words_change_unit_where_the_number_said_reaches_it() -> None:
    """726 days read "customer for 24 months" while 731 read "2.0 years": the unit followed the unrounded
    months, the number the rounded ones."""
    frame = pd.DataFrame({"tenure_days": [726.0, 731.0, 700.0, 30.0, 31.0, 1.0, 0.0]})
    assert context_words(frame).tolist() == [
        "customer for 2.0 years",
        "customer for 2.0 years",
        "customer for 23 months",
        "customer for 30 days",
        "customer for 1 month",
        "customer for 1 day",
        "customer for 0 days",
    ]


def test_a_renewal_today_is_said_today_and_an_ended_term_alike_everywhere() -> None:
    """A renewal date of today read "renewal in 0 days", "first renewal, 0 days away", "renews in 0 days"."""
    frame = pd.DataFrame({"renewals_count": [0.0, 2.0, 1.0], "days_to_renewal": [0.0, -3.0, 5.0]})
    assert context_words(frame).tolist() == [
        "first renewal, today",
        "third renewal, term ended 3 days ago",
        "second renewal, 5 days away",
    ]
    assert [renewal_words(d) for d in (0.0, -3.0, -1.0, 5.0)] == [
        "renewal today",
        "term ended 3 days ago",
        "term ended 1 day ago",
        "renewal in 5 days",
    ]


def _scores(days: list[float], status: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(len(days))],
            "as_of": pd.Timestamp("2025-12-01"),
            "term_end": [pd.Timestamp("2025-12-01"), pd.Timestamp("2025-03-01"), pd.Timestamp("2025-12-11")],
            "churn_probability": 0.9,
            "health_score": 30.0,
            "health_band": "red",
            "risk_band": "high",
            "days_to_renewal": days,
            "renewals_count": 0.0,
            "arr": 1000.0,
            "top_drivers": "",
            "account_status": status,
        }
    )


def test_a_churned_account_is_said_to_have_churned_not_to_renew_today() -> None:
    """With --include-churned an account whose terms have all ended is scored on its last day (days to renewal
    0), dated the run's date: its context read "first renewal, 0 days away" and its alert "renews in 0 days with
    high churn risk", of a customer gone for 9 months."""
    scores = _scores([0.0, 0.0, 10.0], ["active", "churned", "active"])
    assert context_words(scores).tolist() == [
        "first renewal, today",
        "churned, term ended 275 days ago",
        "first renewal, 10 days away",
    ]
    alerts = score_alerts(scores, None, score_drop=10, probability_level=0.5, renewal_days=30, high_risk=0.5)
    reasons = dict(zip(alerts["account_id"], alerts["reasons"], strict=True))
    assert reasons == {
        "A0": "renews today with high churn risk and red health",
        "A2": "renews in 10 days with high churn risk and red health",
    }


def test_a_count_of_nothing_is_said_as_none() -> None:
    """A zero read "0.0 uses of reports per seat in the last 30 days", "0 distinct features used", "0 tickets
    open": none per seat is none at all."""
    seated = {"seats": 10.0, "tenure_days": 400.0}
    said = {
        "usage_reports_per_seat_30d": "no uses of reports in the last 30 days",
        "feature_breadth_30d": "no product feature used in the last 30 days",
        "logins_per_seat_30d": "no logins in the last 30 days",
        "open_tickets": "no tickets open",
        "quantity_per_seat_30d": "no units of usage in the last 30 days",
    }
    assert {name: describe(name, 0.0, seated) for name in said} == said
    assert describe("open_tickets", 2.0) == "2 tickets open"
    assert describe("days_to_renewal", 0.0) == "0 days to renewal"  # a span of time, not a count of things


def test_a_zero_the_words_would_misstate_has_words_of_its_own() -> None:
    """`days_overdue` is 0 when no invoice is overdue: it read "an invoice is 0 days overdue"; no renewal yet
    read "renewed 0 times so far", in the drivers and in the context of an evergreen term."""
    assert describe("days_overdue", 0.0) == "no invoice overdue"
    assert describe("days_overdue", 12.0) == "an invoice is 12 days overdue"
    assert describe("renewals_count", 0.0) == "not renewed yet"
    # "no invoices paid late or not at all" read as if no invoice had been paid
    assert describe("late_payments_365d", 0.0) == "no late or missed payment (invoices due in the last 365 days)"
    frame = pd.DataFrame({"renewals_count": [0.0, 2.0], "days_to_renewal": [355048.0, float("nan")]})
    assert context_words(frame).tolist() == [
        "not renewed yet, no renewal date within 10 years",
        "renewed 2 times so far",
    ]


def test_a_zero_of_a_trailing_window_has_words_of_its_own_in_every_window() -> None:
    """No login day read "logins on 0 of the last 30 days", no feature used "no distinct features used in the last
    30 days": per-window features say a zero in words of their own (`Declarations.windowed(none=...)`), in the
    windows a model was trained with too."""
    assert describe("active_days_30d", 0.0) == "no logins in the last 30 days"
    assert describe("active_days_14d", 0.0) == "no logins in the last 14 days"
    assert describe("active_days_30d", 1.0) == "logins on 1 of the last 30 days"
    assert describe("feature_breadth_60d", 0.0) == "no product feature used in the last 60 days"
    assert describe("feature_breadth_60d", 3.0) == "3 distinct features used in the last 60 days"
    partial = {"tenure_days": 400.0, "logins_data_days": 10.0}
    assert describe("active_days_30d", 0.0, partial) == (
        "no logins in the last 30 days, only 10 of these 30 days in the logins data"
    )


def test_a_count_rounded_to_zero_is_said_under_its_bound_not_as_zero() -> None:
    """0.04 uses per seat read "0.0 uses of reports per seat in the last 30 days", which says none."""
    seated = {"seats": 10.0}
    assert describe("usage_reports_per_seat_30d", 0.04, seated) == (
        "under 0.1 uses of reports per seat in the last 30 days"
    )
    assert describe("tickets_per_seat_30d", 0.004, seated) == "under 0.01 tickets per seat in the last 30 days"
    assert describe("usage_reports_per_seat_30d", 0.06, seated) == "0.1 uses of reports per seat in the last 30 days"


def test_words_that_start_with_a_companion_count_of_zero_say_none_too() -> None:
    """The trend of an account without a seat count read "0 logins in 30 days, -100% on the previous 30"."""
    assert describe("logins_trend_30d", -1.0, {"logins_per_seat_30d": 0.0}) == (
        "no logins in 30 days, -100% on the previous 30"
    )
    assert describe("usage_trend_30d", -0.5, {"events_per_seat_30d": 0.04, "seats": 3.0}) == (
        "under 0.1 events per seat in 30 days, -50% on the previous 30"
    )


def test_a_score_drop_of_one_point_is_said_in_the_singular() -> None:
    """A scorecard's `score_drop: 0` alerted "health score dropped 1 points"."""
    now = _scores([200.0, 200.0, 200.0], ["active"] * 3).assign(health_score=[59.0, 50.0, 30.0], health_band="yellow")
    before = now.assign(health_score=[60.0, 52.0, 30.0])
    alerts = score_alerts(now, before, score_drop=0, probability_level=1.0, renewal_days=30, high_risk=1.0)
    assert alerts.set_index("account_id")["reasons"].to_dict() == {
        "A0": "health score dropped 1 point (from 60 to 59)",
        "A1": "health score dropped 2 points (from 52 to 50)",
    }


def test_a_share_rounded_to_none_or_to_all_is_said_under_or_over_its_bound() -> None:
    """1 invoice in 250 paid late read "0% of invoices paid late", which says none; 249 workflow runs in 250
    completed read "100%", which says all."""
    assert describe("late_payment_share_365d", 0.004) == "under 1% of invoices paid late (365 days)"
    assert describe("workflow_completion_rate_90d", 0.996) == "over 99% of workflow runs completed in order (90 days)"
    assert describe("late_payment_share_365d", 0.0) == "0% of invoices paid late (365 days)"
    assert describe("workflow_completion_rate_90d", 1.0) == "100% of workflow runs completed in order (90 days)"
    assert describe("user_utilisation_30d", 1.004, {"seats": 250.0}) == "100% of seats active in the last 30 days"


def test_a_seat_change_of_zero_does_not_say_a_renewal_happened() -> None:
    """The seat change was 0 for an account in its first term too: it read "seats changed +0% at the last renewal"
    of accounts that never renewed, among their drivers and the points their health score lost. It is missing
    there now (`tests/test_features_account.py`), so a change of 0 is a renewal at the same seats."""
    assert describe("seat_change_last_renewal", 0.0) == "seats unchanged at the last renewal"
    assert describe("seat_change_last_renewal", None, {"renewals_count": 0.0}) == (
        "no renewals so far, no seat change known"
    )
    assert describe("seat_change_last_renewal", 0.1) == "seats changed +10% at the last renewal"


def test_a_change_of_zero_on_a_count_of_zero_says_nothing_in_either_period() -> None:
    """No logins in either month is a change of 0: it read "no logins in 30 days, +0% on the previous 30"."""
    assert describe("logins_trend_30d", 0.0, {"logins_per_seat_30d": 0.0, "seats": 5.0}) == (
        "no logins in 30 days, none in the 30 before"
    )
    assert describe("tickets_trend_30d", 0.0, {"tickets_30d": 0.0}) == "no tickets in 30 days, none in the 30 before"
    assert describe("usage_trend_30d", 0.0, {"events_per_seat_30d": 0.0, "seats": 5.0}) == (
        "no events in 30 days, none in the 30 before"
    )
    # on a window the logins data holds part of (it starts 12 days before as_of, after the account landed)
    partial = {"logins_per_seat_30d": 0.0, "tenure_days": 800.0, "logins_data_days": 12.0}
    assert describe("logins_trend_30d", 0.0, partial) == (
        "no logins in 30 days, none in the 30 before, only 12 of these 60 days in the logins data"
    )
    assert describe("logins_trend_30d", 0.0, {"logins_per_seat_30d": 2.0, "seats": 5.0}) == (
        "2.0 logins per seat in 30 days, +0% on the previous 30"
    )
    # the 30-day rate against the 90-day one: "no logins in the last 90 days; login rate +0% vs the 90-day average"
    assert describe("logins_trend_vs_90d", 0.0, {"logins_per_seat_30d": 0.0, "seats": 5.0}) == (
        "no logins in 30 days, none in the 60 before"
    )
    assert describe("logins_trend_vs_90d", -0.4, {"logins_per_seat_30d": 1.2, "seats": 5.0}) == (
        "1.2 logins per seat in 30 days, -40% on the 90-day average"
    )
    assert describe("logins_trend_vs_90d", 0.5, {"logins_per_seat_30d": 3.0}) == (
        "3 logins in 30 days, +50% on the 90-day average"
    )


def test_a_trend_whose_count_is_not_built_says_its_change_as_a_change() -> None:
    """With `features.windows: [14, 60]` the trend of the last 30 days is built but not the 30-day count its
    words start with: they read "...(relative change): 0.2" for a rise of 20 %."""
    dataset = make_dataset(logins=pd.DataFrame({"account_id": "A", "ts": ["2024-03-10", "2024-03-20", "2024-04-05"]}))
    row = snapshot(dataset, "2024-04-13", windows=[14, 60])
    assert "logins_per_seat_30d" not in row and row["logins_trend_30d"] == 1.0  # 2 logins in 30 days, 1 before
    assert describe("logins_trend_30d", row["logins_trend_30d"], row.to_dict()) == (
        "Logins in the last 30 days vs the 30 before (relative change): +100%"
    )


def test_a_count_or_a_list_in_a_message_says_its_own_number() -> None:
    """Messages said "1 invalid setting(s)", "column(s) ['Churned'] not found", "lacks 1 feature(s)": a count of
    one is singular, a list of one names one column, with no "(s)" left for the reader to resolve."""
    from pathlib import Path

    import pytest

    from features.errors import ChurnError, counted, named
    from models.drift import check_required_features
    from pipeline.config import load_settings
    from pipeline.prepared_table import prepare_table

    assert [counted(n, "row") for n in (0, 1, 2, 1200)] == ["0 rows", "1 row", "2 rows", "1,200 rows"]
    assert counted(1, "value is missing", "values are missing") == "1 value is missing"
    assert [named("column", names) for names in (["id"], ["id", "Churn"], ["a", "b", "c"])] == [
        "column 'id'",
        "columns 'id' and 'Churn'",
        "columns 'a', 'b' and 'c'",
    ]
    frame = pd.DataFrame({"id": ["1", "2"], "tenure": [1, 2]})
    for label, said in (("Churn", "column 'Churn' not found"), ("", "columns 'Churn' and 'When' not found")):
        with pytest.raises(ChurnError, match=said):
            prepare_table(frame, "id", label or "Churn", None if label else "When")
    with pytest.raises(ChurnError, match=r"options: 1 invalid setting:\n"):
        load_settings(None, {"data": {"grace_days": -1}}, source="options")
    with pytest.raises(ChurnError, match=r"lacks 1 feature the model needs: b\. It has 1 column \(a\)"):
        check_required_features(pd.DataFrame({"a": [1]}), ["a", "b"], "the table")
    root = Path(__file__).parents[1]
    texts = (  # the text of every string of the product's code (f-strings in parts)
        (path, token)
        for folder in ("features", "models", "pipeline")
        for path in sorted((root / folder).rglob("*.py"))
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        if token.type in (tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING))
    )
    left = [
        f"{path.relative_to(root)}:{token.start[0]}: {token.string}"
        for path, token in texts
        if re.search(r"[a-z]\(s\)", token.string.replace("http(s)", ""))
    ]
    assert left == []


def test_a_number_inside_the_words_never_rounds_to_a_zero_it_is_not() -> None:
    """ "tickets took 0 hours to resolve on average" of 0.3 hours, "invoiced amount +0% on the previous year" of a
    0.3% fall, an alert "from 0% to 84%" of a 0.3% churn probability: each read as none, or no change, where there
    was some. Every template's inner number rounding to zero is checked, and a true zero still says zero."""
    from features.registry import _NUMBER_FIELD, all_specs

    assert describe("resolution_hours_mean_90d", 0.3) == "tickets took under 1 hour to resolve on average (90 days)"
    assert describe("resolution_hours_mean_90d", 0.0) == "tickets took 0 hours to resolve on average (90 days)"
    assert describe("invoiced_amount_change_365d", -0.003) == "invoiced amount down under 1% on the previous year"
    assert describe("invoiced_amount_change_365d", 0.003) == "invoiced amount up under 1% on the previous year"
    assert describe("invoiced_amount_change_365d", 0.0) == "invoiced amount +0% on the previous year"
    assert describe("logins_trend_30d", 0.002, {"logins_per_seat_30d": 2.0, "seats": 3.0}) == (
        "2.0 logins per seat in 30 days, up under 1% on the previous 30"
    )
    assert describe("nps_mean_180d", 0.04) == "NPS responses average under 0.1 (180 days)"
    for found in all_specs().values():
        for template in found.templates():
            for field in _NUMBER_FIELD.finditer(template):
                if field.start() == 0 or (field.group(2) == "+" and not field.group(3).endswith("%")):
                    continue  # the first number is `_under`'s; a signed level (sentiment, NPS) says its sign
                context = {name: 2.0 for name in template_fields(found.name)} | {"seats": 3.0}
                tiny = context | {field.group(1): 0.0004, "value": 0.0004 if field.group(1) == "value" else 2.0}
                words = describe(found.name, tiny["value"], tiny)
                assert not re.search(r"(?<![\d.])[+-]?0(\.0+)?%?(?![\d.])", words), (found.name, words)

    previous = pd.DataFrame({"account_id": ["A"], "churn_probability": [0.003], "health_score": [80.0]})
    current = previous.assign(churn_probability=0.84, as_of=pd.Timestamp("2025-01-01"))
    alerts = score_alerts(current, previous, score_drop=10, probability_level=0.5, renewal_days=90, high_risk=0.5)
    assert alerts["reasons"].tolist() == ["churn probability rose above 50% (from under 1% to 84%)"]


def test_a_signed_number_that_rounds_to_zero_is_said_without_a_sign() -> None:
    """ "+0.00" and "-0.00" (a category's ML contribution, an AUC change, a share gap) claim a direction the number
    shown does not have: they read as the precision's zero, and every other value keeps its sign."""
    from features.errors import signed

    assert [signed(v, ".2f") for v in (0.004, -0.004, -0.0, 0.0, 0.006, -0.25)] == [
        "0.00", "0.00", "0.00", "0.00", "+0.01", "-0.25"
    ]  # fmt: skip
    assert [signed(v, ".1%") for v in (-0.0004, 0.0006, 0.123)] == ["0.0%", "+0.1%", "+12.3%"]
    assert signed(float("nan"), ".3f") == "+nan" and signed(-1e-9, ".4f") == "0.0000"


def test_a_count_of_one_in_an_error_is_said_in_the_singular() -> None:
    """ "feature table.as_of: 1 missing dates", "none of its 1 rows has", "1 cuts, 1 points": counts in messages of
    `models/` and `pipeline/` written without `counted` read as slips for one."""
    import pytest
    from pydantic import ValidationError

    from features.errors import DataContractError
    from models.comparison import REQUIRED_COLUMNS, labelled_rows
    from models.scorecard import ThresholdMetric
    from models.split import out_of_time_split

    with pytest.raises(ValidationError, match=r"\): 1 cut, 1 point"):
        ThresholdMetric(scheme="thresholds", cuts=[10], points=[5])
    with pytest.raises(DataContractError, match="none of its 1 row has a label"):
        labelled_rows(pd.DataFrame({column: [None] for column in REQUIRED_COLUMNS}))
    table = pd.DataFrame(
        {"account_id": ["A", "B"], "as_of": [None, "2024-01-01"], "term_end": "2024-06-01", "label": [0, 1]}
    )
    with pytest.raises(DataContractError, match=r"feature table\.as_of: 1 missing date \(rows \[0\]\)"):
        out_of_time_split(table, validation_share=0.2, grace_days=30)
