"""Who is scored (issue 14, item 5): trials and accounts whose terms have all ended are left out of
scores and alerts unless included, and the count left out is said. Real generated data and model."""

from __future__ import annotations

import logging
import shutil
from datetime import date

import mlflow
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from features.build import build_features
from features.errors import DataContractError, counted
from models.population import churned_accounts, trial_mask
from models.scores import arr_at_risk
from pipeline.commit import ScoreOutputs
from pipeline.config import Settings
from pipeline.console import print_alerts, print_score_run
from pipeline.history import read_history
from pipeline.loading import Dataset, load_dataset
from pipeline.stages import build_feature_table, run_explain, score_date, scored_population
from tests.helpers import WebhookReceiver, book_settings, tiny_tables

WHEN = pd.Timestamp("2025-05-01")


def test_a_trial_is_a_matching_plan_or_zero_arr() -> None:
    features = pd.DataFrame(
        {"plan": ["Free Trial", "pro", None, "FREE", "pro"], "arr": [100.0, 0.0, np.nan, 50.0, np.nan]}
    )
    assert trial_mask(features, ["*trial*", "free"]).tolist() == [True, True, False, True, False]
    assert trial_mask(features[["arr"]], ["*trial*"]).tolist() == [False, True, False, False, False]
    assert not trial_mask(features[["plan"]], []).any()


def test_an_account_paying_for_a_term_is_no_trial_when_a_trial_add_on_ends_last() -> None:
    """A trial of an add-on offered in the renewal talks ends after the paid contract: it defines the term end,
    so the account's plan is the trial's, and churn score left a paying account out of its scores and alerts in
    its renewal window. An account on the trial alone is still one."""
    from pipeline.config import load_settings
    from tests.feature_data import accounts_a_and_b, make_dataset

    terms = pd.DataFrame(
        {
            "account_id": ["A", "A", "B"],
            "start_date": ["2024-06-01", "2025-04-15", "2025-04-15"],
            "end_date": ["2025-06-01", "2025-06-15", "2025-06-15"],
            "plan": ["Core", "Premium Trial", "Premium Trial"],
            "arr": [12000.0, 0.0, 0.0],
        }
    )
    logins = pd.DataFrame({"account_id": ["A", "B"], "ts": ["2025-04-20", "2025-04-20"]})
    dataset = make_dataset(accounts_table=accounts_a_and_b(), subscriptions_table=terms, logins=logins)
    features, _ = scored_population(dataset, WHEN.date(), load_settings(), include_trials=True, include_churned=False)
    assert features.set_index("account_id")["plan"].to_dict() == {"A": "Premium Trial", "B": "Premium Trial"}
    assert features.set_index("account_id")["account_status"].to_dict() == {"A": "active", "B": "trial"}
    assert trial_mask(features, ["*trial*"]).tolist() == [True, True]  # by the plan alone, without the terms


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
    later = (dataset.subscriptions.groupby("account_id")["start_date"].min() >= WHEN).sum()
    assert (
        f"left out of scores and alerts: {len(starters)} trials (plan matching starter or ARR 0; --include-trials), "
        f"{len(churned)} accounts whose terms have all ended (--include-churned) and {counted(later, 'account')} whose "
        "first term starts on or after 2025-05-01"
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
    left = [n for n in run.notes if n.startswith("left out")]  # only those no flag scores
    starting = f"{counted(later, 'account')} whose first term starts on or after 2025-05-01"
    assert left == [f"left out of scores and alerts: {starting}"]


def test_explaining_a_trial_says_that_churn_score_leaves_it_out(book) -> None:
    """`churn explain` scores a trial among the trials (as --include-trials does) without a word, so an analyst
    looked for its row in the scores in vain."""
    _, data, dataset, _ = book
    settings, result = book_settings(book, "population_explain", scoring={"trial_plans": ["starter"]})
    snapshot = build_feature_table(dataset, settings, as_of=WHEN.date())
    starter = snapshot.loc[snapshot["plan"] == "starter", "account_id"].iloc[0]
    other = snapshot.loc[snapshot["plan"] != "starter", "account_id"].iloc[0]
    said = {}
    for account in (starter, other):
        console = Console(record=True, width=400)
        run_explain(account, data, WHEN.date(), result.model_uri, None, settings, console)
        said[account] = console.export_text()
    assert (
        f"note: churn score leaves {starter} out of its scores and alerts: a trial (plan matching starter or ARR 0); "
        "explained as --include-trials scores it"
    ) in said[starter]
    assert "a trial" not in said[other]


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


def test_a_book_of_trials_only_is_not_said_to_have_no_active_account(book) -> None:
    """Every active account a trial: the run said 'No account has a term active on ...', which was false."""
    _, _, dataset, _ = book
    settings, _ = book_settings(book, "population_trials", scoring={"trial_plans": ["*"]})
    with pytest.raises(DataContractError) as failure:
        scored_population(dataset, WHEN.date(), settings, False, False)
    message = str(failure.value)
    assert message.startswith("Every account with a term active on 2025-05-01 is a trial, so there is nothing to")
    assert "trials (plan matching * or ARR 0; --include-trials)" in message and "No account" not in message


def test_accounts_without_a_term_yet_or_at_all_are_counted_among_those_left_out(book, tmp_path) -> None:
    """An account whose only term starts on the date, or that has no term, was neither scored nor in the note:
    the scored and left-out counts did not add up to the book."""
    _, data, _, _ = book
    settings, _ = book_settings(book, "population_unstarted")
    copy = shutil.copytree(data, tmp_path / "data")
    accounts = pd.read_parquet(copy / "accounts.parquet")
    added = pd.DataFrame({"account_id": ["new", "none1", "none2"], "created_at": pd.Timestamp("2024-01-01")})
    pd.concat([accounts, added]).to_parquet(copy / "accounts.parquet")
    terms = pd.read_parquet(copy / "subscriptions.parquet")
    term = {"account_id": "new", "start_date": WHEN, "end_date": WHEN + pd.Timedelta(days=365), "arr": 100.0}
    pd.concat([terms, pd.DataFrame([term])]).to_parquet(copy / "subscriptions.parquet")

    later = (terms.groupby("account_id")["start_date"].min() >= WHEN).sum() + 1  # accounts landing later, and 'new'

    features, left = scored_population(load_dataset(copy), WHEN.date(), settings, False, False)
    assert left.endswith(
        f"accounts whose terms have all ended (--include-churned), {counted(later, 'account')} whose first term starts "
        "on or after 2025-05-01 and 2 accounts without a term in subscriptions"
    )
    assert not {"new", "none1", "none2"} & set(features["account_id"])


def test_ended_accounts_are_built_in_the_dates_pass_with_the_rows_two_builds_gave(book, caplog) -> None:
    """`--include-churned` builds the date and the ended accounts' last days in one feature build (the
    second build was the Spark scoring test's longest step); the rows, values and types are unchanged."""
    _, _, dataset, _ = book
    settings, _ = book_settings(book, "population_one_build")
    churned = churned_accounts(dataset.subscriptions, WHEN)
    last_days = sorted({d.date() for d in churned})
    assert len(last_days) > 5

    with caplog.at_level(logging.INFO, logger="churn.features"):
        features, _ = scored_population(dataset, WHEN.date(), settings, include_trials=True, include_churned=True)
    assert sum(r.getMessage().startswith("features: timeline") for r in caplog.records) == 1

    active = build_feature_table(dataset, settings, as_of=WHEN.date())
    ended = build_features(dataset, last_days, settings.features, settings.data.grace_days)
    ids = ended["account_id"]
    ended = ended[ids.isin(churned.index) & (ended["as_of"] == ids.map(churned))].assign(as_of=WHEN)
    expected = pd.concat([active, ended], ignore_index=True)
    assert len(ended) > 5
    # The same values, up to the order a running sum adds its intervals in (which the dates cut).
    pd.testing.assert_frame_equal(features.drop(columns="account_status"), expected, rtol=1e-12, atol=0)
    status = features["account_status"]
    assert set(status.iloc[: len(active)]) <= {"active", "trial"} and set(status.iloc[len(active) :]) <= {
        "churned",
        "trial",
    }


def test_a_churned_account_carries_the_days_since_its_term_ended_and_no_lifecycle_stage(book) -> None:
    """Scored on its last day (where `days_to_renewal` is 0) but dated the run's date, a churned account's scores
    read `days_to_renewal` 0 and `lifecycle_stage` renew: a renewal today of a customer gone for months, which
    a filter on the renew stage handed to the renewal calls. The model still reads the last day's features."""
    _, _, dataset, _ = book
    settings, result = book_settings(book, "population_churned_renewal")
    churned = churned_accounts(dataset.subscriptions, WHEN)
    earlier = (WHEN - pd.DateOffset(months=1)).date()
    for when in (earlier, WHEN.date()):
        run = score_date(dataset, when, settings, result.model_uri, history=True, include_churned=True)
    scores = run.scores.set_index("account_id")
    gone = scores[scores["account_status"] == "churned"]
    assert len(gone) > 10
    ended = (pd.to_datetime(gone["term_end"]) - WHEN).dt.days.astype(float)
    assert (ended < 0).all()
    pd.testing.assert_series_equal(gone["days_to_renewal"], ended, check_names=False)
    assert pd.to_datetime(gone["term_end"]).eq(churned[gone.index]).all()
    assert gone["lifecycle_stage"].isna().all()
    assert [c.split(",")[:2] for c in gone["context"]] == [
        ["churned", f" term ended {-d:.0f} days ago"] for d in gone["days_to_renewal"]
    ]
    active = scores[scores["account_status"] != "churned"]
    assert active["days_to_renewal"].ge(0).all() and active["lifecycle_stage"].notna().all()
    alerted = run.alerts[run.alerts["account_id"].isin(gone.index)]  # alerts compared with a month earlier
    assert not alerted["reasons"].str.contains("renews").any()
    history = read_history(settings.workdir_path / "history")
    kept = history[(history["as_of"] == WHEN) & (history["account_status"] == "churned")].set_index("account_id")
    pd.testing.assert_series_equal(kept["days_to_renewal"].sort_index(), ended.sort_index(), check_names=False)
    assert kept["lifecycle_stage"].isna().all()


def test_a_churned_account_is_alerted_once_as_churned_not_as_worse(book, webhook, tmp_path) -> None:
    """With --include-churned, an account scored on its last day against its last active score was alerted
    "health band worsened", "health score dropped"...: news no CSM can act on, as the customer has left. The run
    that first sees it churned says so, once, with no ARR at risk; the scores, the alerts file, the console and
    the webhook say the same."""
    _, _, dataset, _ = book
    settings, result = book_settings(book, "population_churned_alerts", scoring={"alerts": {"webhook_url": webhook}})
    earlier, later = (WHEN - pd.DateOffset(months=2)).date(), (WHEN + pd.DateOffset(months=1)).date()
    score_date(dataset, earlier, settings, result.model_uri, history=True, deliver_alerts=False)
    out = ScoreOutputs(tmp_path / "scores.parquet", "parquet")
    run = score_date(dataset, WHEN.date(), settings, result.model_uri, history=True, outputs=out, include_churned=True)

    before = read_history(settings.workdir_path / "history")
    before = set(before.loc[pd.to_datetime(before["as_of"]) < WHEN, "account_id"])
    status = run.scores.set_index("account_id")["account_status"]
    gone = set(status[status == "churned"].index)
    news = gone & before  # scored active two months ago, churned now
    assert len(news) > 3 and gone - before  # and some churned before the history starts
    alerts = pd.read_parquet(out.targets()["alerts"]).set_index("account_id")
    pd.testing.assert_frame_equal(alerts, run.alerts.set_index("account_id"), check_dtype=False)
    said = alerts.loc[alerts.index.isin(gone)]
    assert set(said.index) == news and (said["rules"] == "churned").all()
    ended = run.scores.set_index("account_id").loc[list(said.index), "days_to_renewal"]
    assert said["reasons"].tolist() == [counted_ago(-d) for d in ended]
    assert said["arr_at_risk"].isna().all() and (said["fallen_categories"] == "").all()
    assert said["arr"].notna().all()
    alive = alerts.loc[~alerts.index.isin(gone)]
    assert len(alive) and alive["arr_at_risk"].notna().all() and not alive["rules"].str.contains("churned").any()
    assert list(alerts.index[: len(alive)]) == list(alive.index)  # what can still be saved first
    book = run.scores[run.scores["account_status"] != "churned"]
    exposure = (book["arr"] * book["churn_probability"]).sum()
    assert arr_at_risk(run.scores) == (pytest.approx(exposure), 0)  # the book's: a churned account's ARR is lost

    console = Console(record=True, width=300)
    print_alerts(run.alerts[run.alerts["account_id"].isin(gone)], console)
    said = console.export_text()
    rows = [line for line in said.splitlines() if line.startswith("│ A")]
    assert len(rows) == len(news) and all("│ churned: its last term ended " in row for row in rows)
    assert "by churn probability)" in said and "ARR at risk" not in said  # lost, not at risk
    assert not any("worse" in row or "dropped" in row or "fell most" in row for row in rows)
    (posted,) = WebhookReceiver.bodies
    sent = {a["account_id"]: a for a in posted["payload"]["alerts"]}
    assert {a for a, alert in sent.items() if alert["rules"] == "churned"} == news
    assert posted["payload"]["text"].split("largest ARR at risk: ")[1].split(" ")[0] == alive.index[0]
    assert f"; {counted(len(news), 'churned account')} among them (terms all ended); " in posted["payload"]["text"]

    # the book's counts are of the accounts still under contract, in the console and in MLflow alike
    console = Console(record=True, width=1000)
    print_score_run(run, {}, console)
    line = console.export_text().splitlines()[0]
    bands = book["health_band"].value_counts()
    assert line.startswith(
        f"Scored {counted(len(book), 'account')} as of {WHEN.date()} with model version {run.model_version}: "
        f"health {bands.get('green', 0)} green, {bands.get('yellow', 0)} yellow, {bands.get('red', 0)} red; "
    )
    assert line.endswith(f". Also {counted(len(gone), 'churned account')} (terms all ended), in none of these counts.")
    (run_id,) = [n.split()[3] for n in run.notes if n.startswith("MLflow scoring run ")]
    logged = mlflow.MlflowClient(settings.tracking_uri()).get_run(run_id).data.metrics
    assert (logged["accounts"], logged["churned_accounts"]) == (len(book), len(gone))
    assert logged["share_red"] == pytest.approx(bands.get("red", 0) / len(book))
    assert logged["mean_churn_probability"] == pytest.approx(book["churn_probability"].mean())

    WebhookReceiver.bodies.clear()  # a month on, still churned: no news
    run = score_date(dataset, later, settings, result.model_uri, history=True, include_churned=True)
    still = set(run.scores.loc[run.scores["account_status"] == "churned", "account_id"]) & gone
    assert len(still) > 10 and not set(run.alerts["account_id"]) & still  # (a few came back: alerted as any account)


def counted_ago(days: float) -> str:
    return f"churned: its last term ended {counted(round(days), 'day')} ago"


def test_accounts_whose_terms_all_start_after_the_data_end_are_not_said_to_have_no_term() -> None:
    """Scoring with --data-end before some accounts' first terms left them out "without a term in subscriptions":
    their terms exist, excluded as future-dated (`churn validate` said so; the score note did not)."""
    tables = tiny_tables()
    tables["accounts"] = pd.concat(
        [tables["accounts"], pd.DataFrame({"account_id": ["D", "E"], "created_at": ["2023-09-01"] * 2})]
    )
    later = {"account_id": ["D"], "start_date": ["2024-03-01"], "end_date": ["2025-03-01"]}
    tables["subscriptions"] = pd.concat([tables["subscriptions"], pd.DataFrame(later)])
    dataset = Dataset.from_frames(tables, data_end="2024-01-15")
    _, left = scored_population(dataset, date(2023, 12, 1), Settings(), False, False)
    assert left.endswith(
        "1 account whose every term starts after the data end 2024-01-15 and 1 account without a term in subscriptions"
    )
