"""Who is scored (issue 14, item 5): trials and accounts whose terms have all ended are left out of
scores and alerts unless included, and the count left out is said. Real generated data and model."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from features.errors import DataContractError
from models.population import churned_accounts, trial_mask
from pipeline.stages import build_feature_table, score_date
from tests.conftest import book_settings

WHEN = pd.Timestamp("2025-05-01")


def test_a_trial_is_a_matching_plan_or_zero_arr() -> None:
    features = pd.DataFrame(
        {"plan": ["Free Trial", "pro", None, "FREE", "pro"], "arr": [100.0, 0.0, np.nan, 50.0, np.nan]}
    )
    assert trial_mask(features, ["*trial*", "free"]).tolist() == [True, True, False, True, False]
    assert trial_mask(features[["arr"]], ["*trial*"]).tolist() == [False, True, False, False, False]
    assert not trial_mask(features[["plan"]], []).any()


def test_churned_means_every_term_seen_before_the_date_has_ended() -> None:
    terms = pd.DataFrame(
        {
            "account_id": ["gone", "gone", "running", "ends_today", "comes_back"],
            "start_date": pd.to_datetime(["2024-01-01", "2024-06-01", "2025-01-01", "2024-05-01", "2024-01-01"]),
            "end_date": pd.to_datetime(["2024-06-01", "2025-01-01", "2026-01-01", "2025-05-01", "2025-02-01"]),
        }
    )
    terms.loc[len(terms)] = ["comes_back", pd.Timestamp("2025-06-01"), pd.Timestamp("2026-06-01")]  # after the date
    churned = churned_accounts(terms, WHEN)
    assert churned.to_dict() == {"comes_back": pd.Timestamp("2025-02-01"), "gone": pd.Timestamp("2025-01-01")}


def test_trials_and_churned_accounts_are_left_out_and_counted_unless_included(book) -> None:
    _, _, dataset, _ = book
    settings, result = book_settings(book, "population", scoring={"trial_plans": ["starter"]})
    churned = churned_accounts(dataset.subscriptions, WHEN)
    snapshot = build_feature_table(dataset, settings, as_of=WHEN.date())
    starters = set(snapshot.loc[snapshot["plan"] == "starter", "account_id"])
    assert len(churned) > 10 and len(starters) > 5

    run = score_date(dataset, WHEN.date(), settings, result.model_uri, history=True)
    scored = set(run.scores["account_id"])
    assert scored == set(snapshot["account_id"]) - starters
    assert not scored & set(churned.index) and not set(run.alerts["account_id"]) - scored
    assert (run.scores["account_status"] == "active").all()
    assert (
        f"left out of scores and alerts: {len(starters)} trial(s) (plan matching starter or ARR 0; --include-trials) "
        f"and {len(churned)} account(s) whose terms have all ended (--include-churned)"
    ) in run.notes

    run = score_date(
        dataset, WHEN.date(), settings, result.model_uri, history=False, include_trials=True, include_churned=True
    )
    status = run.scores.set_index("account_id")["account_status"]
    assert set(status[status == "trial"].index) >= starters
    assert set(status[status == "churned"].index) == set(churned.index) - set(status[status == "trial"].index)
    assert (run.scores["as_of"] == WHEN).all() and run.scores["account_id"].is_unique
    gone = run.scores[run.scores["account_status"] == "churned"]
    assert gone["health_score"].notna().all() and gone["churn_probability"].between(0, 1).all()
    assert not any(n.startswith("left out") for n in run.notes)


def test_a_date_after_every_term_fails_saying_when_the_terms_and_the_data_end(book) -> None:
    _, _, dataset, _ = book
    settings, result = book_settings(book, "population_after")
    last_end = pd.Timestamp(dataset.subscriptions["end_date"].max()).date()

    with pytest.raises(DataContractError) as failure:
        score_date(dataset, date(2031, 1, 1), settings, result.model_uri, history=False)
    message = str(failure.value)
    assert "No account has a term active on 2031-01-01" in message
    assert f"the latest term in subscriptions ends on {last_end}" in message
    assert f"the data ends on {dataset.data_end.date()}" in message
    assert "left out:" in message and "whose terms have all ended (--include-churned)" in message
