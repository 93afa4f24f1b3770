"""Actionable drivers (issue 14, item 3): a CSM is pointed at behaviour it can change; the context
(term, tenure, renewals so far, days to renewal, segment) is stated beside it. Real generated data,
a real LightGBM model."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from features.registry import all_specs, describe, is_actionable, singular_counts
from models.explain import context_words, renewal_words
from pipeline.stages import score_date
from tests.helpers import book_settings

CONTEXT = ("tenure_days", "segment", "plan", "term_length_days", "days_to_renewal", "renewals_count", "arr")


def test_the_registry_marks_context_and_actionable_features() -> None:
    assert not any(is_actionable(name) for name in CONTEXT)
    for name in ("logins_per_seat_30d", "tickets_per_seat_90d", "trained_users_share", "csm_sentiment"):
        assert is_actionable(name), name
    assert is_actionable("a_column_of_a_prepared_table")


def test_context_is_said_in_words() -> None:
    frame = pd.DataFrame(
        {"renewals_count": [0, 3], "days_to_renewal": [10, 200], "term_length_days": [365, 7],
         "tenure_days": [340, 1000], "segment": ["smb", None]}
    )  # fmt: skip
    assert context_words(frame).tolist() == [
        "first renewal, 10 days away, 12-month term, customer for 11 months, smb segment",
        "fourth renewal, 200 days away, 7-day term, customer for 2.7 years",
    ]


def test_an_evergreen_term_is_said_to_have_no_renewal_date_not_a_count_of_days() -> None:
    """A term ending 2999-01-01 (SPEC-valid, an evergreen contract) read "fourth renewal, 355048 days away,
    11686-month term"; renewals over a year away read "3000 days away"."""
    frame = pd.DataFrame(
        {"renewals_count": [3, np.nan, 0], "days_to_renewal": [355048, 355048, 1100],
         "term_length_days": [355715, 355715, 1826], "tenure_days": [3224, 40, 726]}
    )  # fmt: skip
    assert context_words(frame).tolist() == [
        "renewed 3 times so far, no renewal date within 10 years, open-ended term, customer for 8.8 years",
        "no renewal date within 10 years, open-ended term, customer for 1 month",
        "first renewal, 3.0 years away, 60-month term, customer for 2.0 years",
    ]
    said = {np.nan: "renewal date unknown", 1: "renewal in 1 day", 400: "renewal in 13 months"}
    said |= {-1: "term ended 1 day ago"}
    assert {days: renewal_words(days) for days in said} == said
    assert renewal_words(355048.0) == "no renewal date within 10 years"


def test_the_renewals_of_weekly_terms_are_counted_in_proper_ordinals() -> None:
    """Weekly terms renew dozens of times: the context said "82th renewal", "21th", "23th"."""
    counts = [5, 10, 20, 21, 22, 81, 110, 111, 112, 120]
    frame = pd.DataFrame({"renewals_count": counts, "days_to_renewal": [3] * len(counts)})
    assert [words.split(" renewal")[0] for words in context_words(frame)] == [
        "6th", "11th", "21st", "22nd", "23rd", "82nd", "111th", "112th", "113th", "121st"
    ]  # fmt: skip


def test_counts_of_one_are_said_in_the_singular() -> None:
    """The templates say "{value:.0f} days": a count of one read "1 days ago", "1 tickets open", "renewed 1 times",
    and the context and alerts "1 days away", "renews in 1 days"."""
    said = {
        ("days_since_last_login", 1.0): "last login 1 day ago",
        ("days_since_last_login", 21.0): "last login 21 days ago",
        ("renewals_count", 1.0): "renewed 1 time so far",
        ("open_tickets", 1.0): "1 ticket open",
        ("escalations_90d", 1.0): "1 escalated ticket (90 days)",
        ("days_overdue", 1.0): "an invoice is 1 day overdue",
    }
    assert {key: describe(*key) for key in said} == said
    frame = pd.DataFrame({"renewals_count": [0, 2], "days_to_renewal": [1, -1]})
    assert context_words(frame).tolist() == ["first renewal, 1 day away", "third renewal, term ended 1 day ago"]


def test_a_tiny_negative_change_reads_as_a_fall_under_one_percent_not_minus_zero() -> None:
    said = {
        ("invoiced_amount_change_365d", -0.001): "invoiced amount down under 1% on the previous year",
        ("invoiced_amount_change_365d", -0.2): "invoiced amount -20% on the previous year",
        ("days_since_last_login", -0.2): "last login 0 days ago",
    }
    assert {key: describe(*key) for key in said} == said


def _pattern(template: str) -> re.Pattern[str]:
    """A rendered template as a regex: every {field} is any text."""
    parts = re.split(r"\{[^}]*\}", template)
    return re.compile(".*".join(re.escape(p) for p in parts))


def test_top_drivers_hold_no_context_feature_on_generated_data(book) -> None:
    _, _, dataset, _ = book
    settings, result = book_settings(book, "actionable")
    scores = score_date(dataset, pd.Timestamp("2025-05-01").date(), settings, result.model_uri, history=False).scores
    templates = [s.template for s in all_specs().values() if not s.actionable]
    # ...and each as it reads with a count of one ("renewed 1 time so far")
    templates += [singular_counts(re.sub(r"\{value[^}]*\}", "1", t)) for t in templates]
    context_templates = [_pattern(t) for t in templates]
    drivers = [d for text in scores["top_drivers"] for d in text.split("; ") if d]
    assert len(drivers) > len(scores)  # several drivers per account on average
    leaked = [d for d in drivers if any(p.fullmatch(d) for p in context_templates)]
    assert leaked == []
    assert scores["context"].str.contains(r"renewal, (?:\d+ days?|\d+ months|\d+\.\d years) away").all()
    ml = scores[[c for c in scores.columns if c.startswith("ml_")]].sum(axis=1)
    assert ((scores["actionable_log_odds"] + scores["context_log_odds"]) - ml).abs().max() < 1e-6
