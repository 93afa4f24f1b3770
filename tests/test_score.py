"""Batch scoring end to end on generated data: schema, additivity, idempotent history, fresh-process loading."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from features.errors import ChurnError
from features.table import ACCOUNT_ID
from models.categories import ml_categories
from pipeline.config import DEFAULTS_DIR, load_scorecard
from pipeline.history import read_history
from pipeline.loading import load_dataset
from pipeline.score import score_table
from pipeline.stages import build_feature_table, health_config, run_explain, score_date
from pipeline.tracking import load_model
from tests.helpers import book_settings, config_file, run_churn, run_cli

SCORE_DATE = date(2025, 7, 1)


@pytest.fixture(scope="module")
def trained(book):
    """The session's generated book and its registered model (conftest), scored into a working folder
    (history, overrides) of this module's own."""
    root, data, dataset, _ = book
    settings, result = book_settings(book, "score")
    return root, data, settings, dataset, result


def test_scores_have_the_spec_columns_and_types(trained) -> None:
    _, _, settings, dataset, result = trained
    run = score_date(dataset, SCORE_DATE, settings, result.model_uri, history=False)
    scores = run.scores
    categories = health_config(settings).categories()
    required = [
        "account_id", "as_of", "churn_probability", "risk_band", "health_score", "health_band",
        *(f"health_{c}" for c in categories), *(f"ml_{c}" for c in categories),
        "top_drivers", "lifecycle_stage", "term_end", "days_to_renewal", "arr", "model_version",
    ]  # fmt: skip
    assert [c for c in required if c not in scores.columns] == []
    assert scores[ACCOUNT_ID].is_unique and len(scores) > 50
    assert scores["churn_probability"].between(0, 1).all()
    assert scores["health_score"].dropna().between(0, 100).all()
    assert set(scores["health_band"].dropna()) <= {"green", "yellow", "red"}
    assert set(scores["risk_band"]) <= {"low", "medium", "high"}
    assert set(scores["lifecycle_stage"]) <= {"land", "adopt", "expand", "renew"}
    assert (scores["model_version"] == result.model_version).all()
    assert (scores["as_of"] == pd.Timestamp(SCORE_DATE)).all()
    # Drivers name what raises risk; an account where no feature does gets none.
    assert scores["top_drivers"].str.len().gt(0).mean() > 0.9
    # Every scored account has a term active on the date: the term ends after it.
    assert (scores["term_end"] >= pd.Timestamp(SCORE_DATE)).all()


def test_category_contributions_add_up_to_the_model_score(trained) -> None:
    _, _, settings, dataset, result = trained
    features = build_feature_table(dataset, settings, as_of=SCORE_DATE)
    model = load_model(result.model_uri, settings)
    scores = score_table(features, model, health_config(settings), settings)
    ml = scores[[c for c in scores.columns if c.startswith("ml_") and c != "churn_log_odds"]]
    raw = model.predict_raw(features)
    base = model.contributions(features.head(1))["bias"].iloc[0]
    np.testing.assert_allclose(ml.sum(axis=1) + base, raw, atol=1e-6)
    np.testing.assert_allclose(scores["churn_probability"], model.predict_proba(features)[:, 1], atol=1e-12)


def test_rescoring_the_same_date_replaces_its_history_partition(trained) -> None:
    _, _, settings, dataset, result = trained
    first = score_date(dataset, SCORE_DATE, settings, result.model_uri, history=True)
    again = score_date(dataset, SCORE_DATE, settings, result.model_uri, history=True)
    history = read_history(settings.workdir_path / "history")
    on_date = history[history["as_of"] == pd.Timestamp(SCORE_DATE)]
    assert len(on_date) == len(first.scores) == len(again.scores)
    pd.testing.assert_series_equal(
        first.scores["churn_probability"], again.scores["churn_probability"], check_names=False
    )


def test_a_later_run_gets_trends_and_alerts_against_the_earlier_one(book) -> None:
    """The first run of a workdir has the later runs' columns, its trends empty: a scores file read daily by
    another tool (a BI extract, a warehouse load) once gained four columns on its second day."""
    settings, result = book_settings(book, "score-trends")
    dataset = book[2]
    first = score_date(dataset, SCORE_DATE, settings, result.model_uri, history=True)
    later = score_date(dataset, date(2025, 8, 1), settings, result.model_uri, history=True)
    assert list(first.scores.columns) == list(later.scores.columns)
    trend_columns = [c for c in first.scores.columns if "_change_" in c]
    assert sorted(trend_columns) == sorted(
        f"{m}_change_{d}d" for m in ("health_score", "churn_probability") for d in (30, 90)
    )
    assert first.scores[trend_columns].isna().all().all()
    assert later.scores["health_score_change_30d"].notna().mean() > 0.8
    assert not later.alerts.empty
    assert later.alerts["arr_at_risk"].is_monotonic_decreasing
    assert later.alerts["reasons"].str.len().gt(0).all()


def test_scoring_a_date_the_model_trained_on_finds_no_drift(book) -> None:
    """A book a month before the data end, a snapshot date of the training rows, read as drifted (8 to 11
    features in acceptance runs) from differences between training dates the model learned through."""
    settings, result = book_settings(book, "drift-in-training")
    run = score_date(book[2], date(2025, 6, 1), settings, result.model_uri, history=False)
    assert run.drifted == [], run.drift.sort_values("psi").tail()
    spread = run.drift.set_index("feature")["date_spread"]
    assert spread.gt(0).all() and spread["term_length_days"] > 0.25


def test_a_run_kept_out_of_the_history_still_compares_with_it(book, tmp_path: Path) -> None:
    """`--no-history` used to skip reading the history too: no trends, and alerts from the renewal rule
    only, with a note that there was no earlier run. It only keeps the run out of the history now."""
    settings, result = book_settings(book, "no-history")
    dataset = book[2]
    score_date(dataset, SCORE_DATE, settings, result.model_uri, history=True)
    stored = read_history(settings.workdir_path / "history")
    later = date(2025, 8, 1)
    trial = score_date(dataset, later, settings, result.model_uri, history=False)
    pd.testing.assert_frame_equal(read_history(settings.workdir_path / "history"), stored)
    assert any("this run is not added: --no-history" in n for n in trial.notes), trial.notes
    real = score_date(dataset, later, settings, result.model_uri, history=True)
    assert trial.scores["health_score_change_30d"].notna().mean() > 0.8
    pd.testing.assert_frame_equal(trial.alerts, real.alerts)
    assert trial.alerts["reasons"].str.contains("dropped|worsened").any()


def test_a_table_scored_with_a_model_of_event_data_is_told_which_model(trained, tmp_path: Path, capsys) -> None:
    """`churn score --table` with the default champion (trained on event data) said only "scoring input:
    101 model feature(s) missing": not which model, nor how to name the table's own."""
    settings = trained[2]
    pd.DataFrame({"cust": ["a", "b"], "tenure": [3, 40]}).to_csv(tmp_path / "book.csv", index=False)
    out = tmp_path / "scores.parquet"
    args = ["score", "--table", str(tmp_path / "book.csv"), "--id", "cust", "--out", str(out)]
    args += ["--config", str(config_file(settings, tmp_path / "c.yaml"))]
    code, text = run_cli([*args, "--model-uri", f"models:/{settings.model.name}@champion"], capsys)
    assert code == 1 and f"features of model models:/{settings.model.name}@champion (version " in text, text
    assert "are not columns of the table" in text and "--model-uri models:/NAME@champion" in text
    # by default a table is scored with the model of its own name, which no prepared table has trained here
    code, text = run_cli(args, capsys)
    assert code == 1 and f"No model is registered as models:/{settings.model.name}-table@champion" in text, text
    assert "`churn train --table`" in text
    assert not out.exists()


def test_a_date_long_after_the_data_end_is_scored_with_a_warning(trained) -> None:
    """`churn score` dates default to today: on a stale export every account looked idle and was alerted,
    with no word that the data had stopped weeks before the date."""
    _, _, settings, dataset, result = trained
    end = dataset.data_end.normalize()
    fresh = score_date(dataset, (end + pd.Timedelta(days=8)).date(), settings, result.model_uri, history=False)
    assert not [w for w in fresh.warnings if "after the end of the data" in w]  # a weekly export: no warning
    late = (end + pd.Timedelta(days=40)).date()
    stale = score_date(dataset, late, settings, result.model_uri, history=False)
    expected = (
        f"the scoring date {late} is 39 days after the end of the data ({end.date()}): the features see no "
        f"activity in those days"
    )
    assert [w for w in stale.warnings if w.startswith(expected)], stale.warnings
    assert f"score as of {(end + pd.Timedelta(days=1)).date()}" in stale.warnings[0]


def test_a_date_before_the_data_has_run_in_is_scored_with_a_warning(trained) -> None:
    """A date before the first event (or in its first 90 days: no training snapshot is) scored every account
    as idle, a book of red, risky accounts, with no word that the export starts after the date."""
    _, _, settings, dataset, result = trained
    first = dataset.first_event.normalize()
    before = (first - pd.Timedelta(days=30)).date()
    early = score_date(dataset, before, settings, result.model_uri, history=False)
    assert len(early.scores) > 0 and (early.scores["health_band"] == "red").mean() > 0.5
    expected = (
        f"the scoring date {before} is on or before the first event of the data ({first.date()}): the feature "
        "windows see no activity"
    )
    assert [w for w in early.warnings if w.startswith(expected)], early.warnings
    assert f"score as of {(first + pd.Timedelta(days=90)).date()} or later" in early.warnings[0]
    ramp = (first + pd.Timedelta(days=20)).date()
    ramping = score_date(dataset, ramp, settings, result.model_uri, history=False)
    assert [w for w in ramping.warnings if w.startswith(f"the scoring date {ramp} is 20 days after the first event")]
    settled = score_date(dataset, (first + pd.Timedelta(days=90)).date(), settings, result.model_uri, history=False)
    assert not [w for w in settled.warnings if "first event" in w], settled.warnings


def test_a_date_before_every_term_names_the_first_term_start(trained) -> None:
    """Nothing is active before the first term: the error said when the latest term ends (years later)."""
    _, _, settings, dataset, result = trained
    first_start = pd.Timestamp(dataset.subscriptions["start_date"].min()).date()
    expected = "No account has a term active on 2000-01-01, so there is nothing to score: the first term in "
    with pytest.raises(ChurnError, match=f"{expected}subscriptions starts on {first_start} and the data ends on"):
        score_date(dataset, date(2000, 1, 1), settings, result.model_uri, history=False)
    with pytest.raises(ChurnError, match="the latest term in subscriptions ends on"):
        score_date(dataset, date(2099, 1, 1), settings, result.model_uri, history=False)


def test_a_missing_model_feature_fails_clearly(trained) -> None:
    _, _, settings, dataset, result = trained
    features = build_feature_table(dataset, settings, as_of=SCORE_DATE).drop(columns=["logins_per_seat_30d"])
    model = load_model(result.model_uri, settings)
    with pytest.raises(ChurnError, match="logins_per_seat_30d"):
        score_table(features, model, health_config(settings), settings)


def test_champion_scores_in_a_fresh_process_from_the_registry_only(trained, tmp_path: Path) -> None:
    _, data, settings, _, result = trained
    config = config_file(settings, tmp_path / "c.yaml")
    out = tmp_path / "scores.csv"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "--no-progress", "score", "--data", str(data), "--as-of", "2025-07-01",
         "--out", str(out), "--format", "csv", "--config", str(config), "--no-history"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    scores = pd.read_csv(out)
    assert len(scores) > 50 and scores["model_version"].astype(str).eq(result.model_version).all()
    assert (tmp_path / "scores_alerts.csv").exists()
    # plain CSV columns: the scores table's own names, keys and the ML view first
    assert list(scores.columns[:4]) == ["account_id", "as_of", "churn_probability", "risk_band"]
    assert all(str(c).isidentifier() for c in scores.columns)


def test_scoring_with_the_outcomes_scorecard_sums_contributions_by_its_categories(trained, tmp_path: Path) -> None:
    """A model trained beside the LAER scorecard, scored with the outcomes one: its ML columns are
    transformation / experience / engagement, with real contributions, adding up to the log-odds."""
    _, data, settings, _, result = trained
    config = config_file(settings, tmp_path / "outcomes.yaml", "healthscore: healthscore-outcomes.yaml\n")
    out = tmp_path / "scores.parquet"
    code = run_churn(["score", "--data", str(data), "--as-of", "2025-07-01", "--out", str(out),
                      "--config", str(config), "--no-history"])  # fmt: skip
    assert code == 0
    scores = pd.read_parquet(out)
    outcomes = ["ml_transformation", "ml_experience", "ml_engagement"]
    ml = [c for c in scores.columns if c.startswith("ml_")]
    assert ml[:3] == outcomes and not {"ml_adoption", "ml_support", "ml_account"} & set(ml)
    model = load_model(result.model_uri, settings)
    categories = ml_categories(model.feature_names_in_, load_scorecard(DEFAULTS_DIR / "healthscore-outcomes.yaml"))
    importance = model.feature_importance("gain")
    used = {categories[name] for name in importance[importance > 0].index}
    assert len(used) >= 2 and used <= {"transformation", "experience", "engagement"}
    for column in outcomes:  # a category holds contributions exactly when the trees use one of its features
        assert (scores[column].abs().max() > 0) == (column.removeprefix("ml_") in used), column
    features = build_feature_table(load_dataset(data), settings, as_of=SCORE_DATE)
    base = model.contributions(features.head(1))["bias"].iloc[0]
    np.testing.assert_allclose(scores[ml].sum(axis=1) + base, scores["churn_log_odds"], atol=1e-6)


def test_a_scheme_that_leaves_features_out_gets_one_ml_other_column(trained, tmp_path: Path, capsys) -> None:
    """A scorecard of two categories got `ml_adoption`, `ml_training`, `ml_account`... beside its own
    `ml_engagement` and `ml_support`: columns of categories its health score does not have. The features it
    does not place now count in one `ml_other`; the columns still add up to the model's score, and `churn
    explain` lists `other` beside the scheme's categories."""
    _, data, settings, _, result = trained
    partial = tmp_path / "partial.yaml"
    partial.write_text(
        "default:\n  categories:\n"
        "    engagement: {weight: 60, metrics: {logins_per_seat_30d: {scheme: linear, bad: 0, good: 3}}}\n"
        "    support: {weight: 40, metrics: {tickets_per_seat_90d: {scheme: linear, bad: 0.4, good: 0}}}\n"
    )
    config = config_file(settings, tmp_path / "c.yaml", f"healthscore: {partial}\n")
    out = tmp_path / "scores.parquet"
    code = run_churn(["score", "--data", str(data), "--as-of", "2025-07-01", "--out", str(out),
                      "--config", str(config), "--no-history"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    scores = pd.read_parquet(out)
    ml = [c for c in scores.columns if c.startswith("ml_")]
    assert ml == ["ml_engagement", "ml_support", "ml_other"]
    assert scores["ml_other"].abs().max() > 0, "the features of the other registry categories are used"
    model = load_model(result.model_uri, settings)
    features = build_feature_table(load_dataset(data), settings, as_of=SCORE_DATE)
    base = model.contributions(features.head(1))["bias"].iloc[0]
    np.testing.assert_allclose(scores[ml].sum(axis=1) + base, scores["churn_log_odds"], atol=1e-6)

    console = Console(record=True, width=160)
    account = scores["account_id"].iloc[0]
    run_explain(account, data, SCORE_DATE, result.model_uri, None, settings.model_copy(update={"healthscore":
                str(partial)}), console)  # fmt: skip
    lines = [line for line in console.export_text().splitlines() if line.strip().startswith("│ other")]
    assert len(lines) == 1 and " - " in lines[0], console.export_text()


def test_explain_gives_the_account_the_scores_of_the_scoring_run_of_its_date(trained) -> None:
    """`churn explain` scored the account alone: a percentile metric (the default scorecard ranks
    events_per_seat_30d within the segment) ranked it among itself, so its health score and categories were
    not those `churn score` gave it on that date (e.g. adoption 65 in explain, 60.4 in the scores)."""
    _, data, settings, dataset, result = trained
    scores = score_date(dataset, SCORE_DATE, settings, result.model_uri, history=False).scores.set_index("account_id")
    card = health_config(settings).default
    assert any(rule.scheme == "percentile" for c in card.categories.values() for rule in c.metrics.values())
    compared = ["health_score", "health_band", "churn_probability", "risk_band", "health_adoption"]
    for account in scores.index[:4]:
        row = run_explain(account, data, SCORE_DATE, result.model_uri, None, settings, Console(record=True))
        explained = row.set_index("account_id").loc[account, compared]
        pd.testing.assert_series_equal(explained, scores.loc[account, compared], check_dtype=False, obj=account)


def test_explain_shows_both_views_by_category_and_saves_a_waterfall(trained, tmp_path: Path) -> None:
    """The account id is trimmed as the data's ids are (a pasted id with a no-break or ideographic space
    finds its account); an id that is not in the data is named as such, not as one without an active term, with
    the data's spelling when only its case differs; an account with no term on the date is told the dates its
    terms cover (an ended account is explained as of one of them); an id of spaces only is refused as empty."""
    _, data, settings, dataset, result = trained
    account = score_date(dataset, SCORE_DATE, settings, result.model_uri, history=False).scores["account_id"].iloc[0]
    console = Console(record=True, width=160)
    plot = tmp_path / "waterfall.png"
    row = run_explain(f"\u00a0{account}\u3000", data, SCORE_DATE, result.model_uri, plot, settings, console)
    text = console.export_text()
    for category in health_config(settings).categories():
        assert category in text
    assert "Rule view, points lost:" in text and "ML view, raising risk:" in text
    said = " ".join(text.split())  # the explanation lines wrap at the console's width
    assert "(actionable features in all: " in said and "(context in all: " in said, text
    # a new account's onboarding scorecard leaves `account` out: not "no data"
    scored = score_date(dataset, SCORE_DATE, settings, result.model_uri, history=False).scores
    new = scored.loc[scored["health_scorecard"] == "onboarding", "account_id"]
    console = Console(record=True, width=160)
    run_explain(new.iloc[0], data, SCORE_DATE, result.model_uri, None, settings, console)
    account_row = next(line for line in console.export_text().splitlines() if "│ account " in line)
    assert "not in onboarding" in account_row, account_row
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"
    assert row["account_id"].iloc[0] == account
    assert "after the end of the data" not in text
    late = (dataset.data_end.normalize() + pd.Timedelta(days=30)).date()  # `--as-of` defaults to today
    scores = score_date(dataset, SCORE_DATE, settings, result.model_uri, history=False).scores
    renewing_later = scores.loc[scores["term_end"] > pd.Timestamp(late), "account_id"].iloc[0]
    run_explain(renewing_later, data, late, result.model_uri, None, settings, console)
    assert f"warning: the scoring date {late} is 29 days after the end of the data" in console.export_text()
    with pytest.raises(ChurnError, match="Account 'no-such-account' is not in accounts; nothing to explain"):
        run_explain("no-such-account", data, SCORE_DATE, result.model_uri, None, settings, console)
    with pytest.raises(
        ChurnError, match=rf"Account '{account.swapcase()}' is not in accounts \(did you mean '{account}'\?\)"
    ):
        run_explain(account.swapcase(), data, SCORE_DATE, result.model_uri, None, settings, console)
    with pytest.raises(ChurnError, match="The account id to explain is empty; pass one of the ids in accounts"):
        run_explain("\u00a0 ", data, SCORE_DATE, result.model_uri, None, settings, console)
    terms = dataset.subscriptions[dataset.subscriptions["account_id"] == account]
    span = f"{terms['start_date'].min().date()} to {terms['end_date'].max().date()}"
    with pytest.raises(
        ChurnError,
        match=f"Account '{account}' has no term active on 2000-01-01; .*its terms run from {span}: pass an --as-of",
    ):
        run_explain(account, data, date(2000, 1, 1), result.model_uri, None, settings, console)


def test_a_segment_rule_that_nearly_names_a_value_of_the_data_is_warned_about(trained, tmp_path: Path) -> None:
    """`segment == Enterprise` where the data says `enterprise` matches no account, and those accounts
    silently got the default scorecard; the run now says so. A rule spelt as the data spells it, or a
    word simply absent from this book, is not warned about."""
    _, _, settings, dataset, result = trained
    card = (DEFAULTS_DIR / "healthscore.yaml").read_text()
    segment = "  big_{0}:\n    when: segment == {1}\n    categories:\n      support: {{weight: 40}}\n"
    scorecard = tmp_path / "segments.yaml"
    scorecard.write_text(
        card.replace("segments:\n", "segments:\n" + "".join(segment.format(*p) for p in (
            ("typo", "Enterprise"), ("right", "enterprise"), ("absent", "government"),
        )), 1)
    )  # fmt: skip
    mine = settings.model_copy(update={"healthscore": str(scorecard)})
    run = score_date(dataset, SCORE_DATE, mine, result.model_uri, history=False)
    enterprise = int(
        (dataset.accounts.set_index("account_id").loc[run.scores["account_id"], "segment"] == "enterprise").sum()
    )
    near = [w for w in run.warnings if w.startswith("scorecard segment")]
    assert len(near) == 1, run.warnings
    assert near[0].startswith(
        "scorecard segment 'big_typo' (when: segment == 'Enterprise'): no scored account has segment 'Enterprise', "
    )
    assert near[0].endswith(f"{enterprise:,} have 'enterprise' (values are compared exactly, case included)")
    assert (run.scores["health_scorecard"] == "big_typo").sum() == 0
    assert (run.scores["health_scorecard"] == "big_right").sum() > 0
