"""The settings that decide a feature's value (`features.new_customer_days`, `features.onboarding_days`,
`data.grace_days`: `FeatureSet.values`) travel with the model: scoring builds its features with the
values it learnt them with, whatever the configuration says later, and says when the two differ. So do
the trailing windows its features are for (`features.windows`, read from the names: `FeatureSet.windows`)."""

from __future__ import annotations

from datetime import date

import pandas as pd
from rich.console import Console

from features.feature_set import FeatureSet
from features.settings import FeatureSettings
from pipeline.commit import ScoreOutputs
from pipeline.config import load_settings
from pipeline.stages import build_feature_table, run_explain, run_score, score_date, train_on_table
from pipeline.tracking import load_model
from tests.helpers import book_settings

SCORE_DATE = date(2025, 7, 1)
CHANGED = {"features": {"new_customer_days": 400, "onboarding_days": 10}, "data": {"grace_days": 3}}
NOTE = "features.new_customer_days: the model was trained with 120, the configuration says 400; scoring uses 120"


def _probabilities(run) -> pd.Series:
    return run.scores.set_index("account_id")["churn_probability"].sort_index()


def test_a_changed_configuration_scores_with_the_values_the_model_learnt(book) -> None:
    settings, result = book_settings(book, "values-kept")
    changed, _ = book_settings(book, "values-changed", **CHANGED)
    dataset = book[2]
    model = load_model(result.model_uri, settings)
    assert model.feature_set_.values == {
        "features.new_customer_days": 120,
        "features.onboarding_days": 60,
        "data.grace_days": 30,
    }
    kept = score_date(dataset, SCORE_DATE, settings, result.model_uri, history=False)
    moved = score_date(dataset, SCORE_DATE, changed, result.model_uri, history=False)
    pd.testing.assert_series_equal(_probabilities(moved), _probabilities(kept))
    assert not any("the model was trained with" in w for w in kept.warnings), kept.warnings
    assert any(NOTE in w for w in moved.warnings), moved.warnings
    assert any("data.grace_days: the model was trained with 30, the configuration says 3" in w for w in moved.warnings)
    console = Console(record=True, width=400)
    account = kept.scores["account_id"].iloc[0]
    run_explain(account, book[1], SCORE_DATE, result.model_uri, None, changed, console)
    assert NOTE in console.export_text()


def test_a_model_that_recorded_no_values_uses_the_configured_ones_and_says_so_off_the_default() -> None:
    legacy = FeatureSet.from_dict({"names": ["is_new_customer", "tenure_days"]})  # saved before values were
    assert legacy.values == {}
    defaults = {"features.new_customer_days": 120, "features.onboarding_days": 60, "data.grace_days": 30}
    configured = {**defaults, "features.new_customer_days": 90, "data.grace_days": 7}
    notes = legacy.value_notes(configured, defaults)
    # grace_days decides no feature of this set: no note for it
    assert len(notes) == 1 and notes[0].startswith("features.new_customer_days: the model does not record"), notes
    assert "uses the configuration's 90 (default 120)" in notes[0]
    assert legacy.value_notes(defaults, defaults) == ()
    settings, grace = legacy.built_with(FeatureSettings(new_customer_days=90), 7)
    assert (settings.new_customer_days, grace) == (90, 7)
    recorded = FeatureSet.of(legacy.names, values=defaults)  # only what its features depend on is kept
    assert FeatureSet.from_dict(recorded.to_dict()) == recorded
    assert recorded.values == {"features.new_customer_days": 120}
    assert recorded.built_with(FeatureSettings(new_customer_days=90), 7)[0].new_customer_days == 120


WINDOWS_NOTE = "features.windows: the model's features need the windows [7, 30, 90], the configuration says [14, 60]"


def test_a_challenger_s_windows_in_the_configuration_leave_the_champion_scoring_as_it_learnt(book) -> None:
    settings, result = book_settings(book, "windows-kept")
    changed, _ = book_settings(book, "windows-changed", features={"windows": [14, 60]})
    dataset = book[2]
    model = load_model(result.model_uri, settings)
    kept = score_date(dataset, SCORE_DATE, settings, result.model_uri, history=False)
    moved = score_date(dataset, SCORE_DATE, changed, result.model_uri, history=False)
    assert model.feature_set_.windows == (7, 30, 90)
    pd.testing.assert_series_equal(_probabilities(moved), _probabilities(kept))
    assert not any("features.windows" in w for w in kept.warnings), kept.warnings
    assert any(WINDOWS_NOTE in w for w in moved.warnings), moved.warnings
    console = Console(record=True, width=400)
    run_explain(kept.scores["account_id"].iloc[0], book[1], SCORE_DATE, result.model_uri, None, changed, console)
    assert WINDOWS_NOTE in console.export_text()
    # a window the configuration has not, but only some of its windows: no note
    assert FeatureSet.of(["logins_per_seat_30d", "tenure_days"]).window_note([7, 30, 90]) is None


def test_a_date_past_the_model_s_shortest_window_after_the_data_is_warned_of_whatever_the_configured_ones(book):
    changed, result = book_settings(book, "windows-late", features={"windows": [30, 60]})
    dataset = book[2]
    late = (dataset.data_end.normalize() + pd.Timedelta(days=20)).date()  # the model's 7-day windows see nothing
    run = score_date(dataset, late, changed, result.model_uri, history=False)
    assert [w for w in run.warnings if w.startswith(f"the scoring date {late} is 19 days after the end")], run.warnings


def test_a_model_with_a_window_longer_than_the_configured_ones_reads_the_days_it_needs(book, tmp_path) -> None:
    """`churn score` reads the big tables from the model's longest window on, not the configured one's:
    a 150-day feature read from 90 days back would count 90 days of logins."""
    _, data, dataset, _ = book
    trained = load_settings(
        None,
        {
            "workdir": str(tmp_path / "long"),
            "features": {"windows": [30, 150]},
            "model": {"tune_trials": 0, "n_estimators": 50},
        },
    )
    result = train_on_table(
        build_feature_table(dataset, trained, feature_set=None), trained, None, True, Console(quiet=True)
    )
    whole = score_date(dataset, SCORE_DATE, trained, result.model_uri, history=False)
    # the default windows [7, 30, 90], in a workdir that has not kept the model's feature set (training did)
    store = {"uri": trained.tracking_uri()}
    configured = load_settings(None, {"workdir": str(tmp_path / "scoring"), "tracking": store})
    for run in ("first", "kept feature set"):  # the model's first run in the workdir, then with its kept set
        scored = run_score(
            data,
            SCORE_DATE,
            ScoreOutputs(tmp_path / f"{run}.parquet", "parquet"),
            result.model_uri,
            configured,
            False,
            Console(quiet=True),
        )
        pd.testing.assert_series_equal(_probabilities(scored), _probabilities(whole), rtol=1e-9)
    assert load_model(result.model_uri, trained).feature_set_.windows == (30, 150)
