"""Health trend over the score history and the alerts raised for a CSM, on hand-built runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.health_trend import health_alerts, health_trend
from pipeline.errors import DataContractError

NAN = np.nan


def runs(rows: list[tuple]) -> pd.DataFrame:
    """(account_id, as_of, score, band, adoption, support) rows as a score history."""
    frame = pd.DataFrame(
        rows, columns=["account_id", "as_of", "health_score", "health_band", "health_adoption", "health_support"]
    )
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    return frame


HISTORY = runs(
    [
        ("a", "2024-01-01", 80, "green", 80, 80),
        ("a", "2024-02-01", 75, "green", 75, 75),
        ("a", "2024-03-01", 70, "green", 70, 70),
        ("b", "2024-03-25", 60, "yellow", 60, 60),
        ("d", "2024-03-01", 80, "green", 80, 80),
        ("d", "2024-04-01", 99, "green", 99, 99),  # a re-run of the current date: not history
    ]
)
CURRENT = runs(
    [
        ("d", "2024-04-01", 70, "green", 70, 70),
        ("a", "2024-04-01", 50, "red", 50, 50),
        ("b", "2024-04-01", 65, "yellow", 65, 65),
        ("c", "2024-04-01", 40, "red", 40, 40),
    ]
)


def test_trend_compares_with_previous_run_and_runs_about_30_and_90_days_back() -> None:
    trend = health_trend(HISTORY, CURRENT)
    assert trend["account_id"].tolist() == ["d", "a", "b", "c"]  # same order as the current run
    np.testing.assert_allclose(trend["health_score"], [70, 50, 65, 40])
    # previous run: d's same-date re-run is ignored, c has none
    np.testing.assert_allclose(trend["previous_score"], [80, 70, 60, NAN])
    assert trend["previous_band"].tolist()[:3] == ["green", "green", "yellow"]
    assert trend["previous_as_of"].tolist()[:3] == [pd.Timestamp(d) for d in ("2024-03-01", "2024-03-01", "2024-03-25")]
    np.testing.assert_allclose(trend["health_change"], [-10, -20, 5, NAN])
    # 30 days back from Apr 1 is Mar 2: the Mar 1 run (1 day off) counts, b's Mar 25 run (23 days) does not
    np.testing.assert_allclose(trend["health_change_30d"], [-10, -20, NAN, NAN])
    # 90 days back is Jan 2: a's Jan 1 run; nobody else was scored then
    np.testing.assert_allclose(trend["health_change_90d"], [NAN, -30, NAN, NAN])


def test_trend_windows_are_configurable_and_ties_take_the_older_run() -> None:
    history = runs([("a", "2024-03-04", 60, "yellow", 0, 0), ("a", "2024-03-18", 90, "green", 0, 0)])
    current = runs([("a", "2024-04-01", 70, "green", 0, 0)])
    trend = health_trend(history, current, windows=(21, 7))
    # 21 days back is Mar 11, 7 days from both runs: the older one (Mar 4) is the reference
    assert trend["health_change_21d"].iloc[0] == pytest.approx(10)
    # 7 days back is Mar 25: Mar 18 is 7 days off, beyond the 3.5-day tolerance
    assert np.isnan(trend["health_change_7d"].iloc[0])


def test_trend_requires_ids_dates_and_scores() -> None:
    with pytest.raises(DataContractError, match=r"Score history lacks column\(s\) health_score"):
        health_trend(HISTORY.drop(columns="health_score"), CURRENT)
    with pytest.raises(DataContractError, match=r"Current scores lacks column\(s\) as_of"):
        health_trend(HISTORY, CURRENT.drop(columns="as_of"))


PREVIOUS = runs(
    [
        ("worse", "2024-03-01", 80, "green", 80, 90),
        ("dropped", "2024-03-01", 85, "green", 85, 85),
        ("first_red", "2024-03-01", 65, "yellow", 65, 65),
        ("red_again", "2024-01-01", 50, "red", 50, 50),
        ("red_again", "2024-02-01", 62, "yellow", 62, 62),
        ("steady", "2024-03-01", 90, "green", 90, 90),
        ("exactly_ten", "2024-03-01", 80, "green", 80, 80),
        ("still_red", "2024-03-01", 40, "red", 40, 40),
    ]
)
NOW = runs(
    [
        ("worse", "2024-04-01", 65, "yellow", 85, 60),
        ("dropped", "2024-04-01", 74, "green", 60, 88),
        ("first_red", "2024-04-01", 58, "red", 58, 58),
        ("red_again", "2024-04-01", 59, "red", 40, 70),
        ("steady", "2024-04-01", 85, "green", 85, 85),
        ("exactly_ten", "2024-04-01", 70, "green", 70, 70),
        ("still_red", "2024-04-01", 35, "red", 35, 35),
        ("newcomer", "2024-04-01", 40, "red", 40, 40),
    ]
)


def test_alerts_for_worse_band_big_drop_and_first_time_red() -> None:
    alerts = health_alerts(PREVIOUS, NOW).set_index("account_id")
    assert set(alerts.index) == {"worse", "dropped", "first_red", "red_again", "newcomer"}
    flags = alerts[["band_worsened", "score_dropped", "first_red"]]
    assert flags.loc["worse"].tolist() == [True, True, False]
    assert flags.loc["dropped"].tolist() == [False, True, False]
    assert flags.loc["first_red"].tolist() == [True, False, True]
    assert flags.loc["red_again"].tolist() == [True, False, False]  # was red in January
    assert flags.loc["newcomer"].tolist() == [False, False, True]
    assert alerts.loc["worse", "reasons"] == "band worsened green -> yellow; score dropped 15.0 points (more than 10)"
    assert alerts.loc["first_red", "reasons"] == "band worsened yellow -> red; under the red line for the first time"
    assert alerts.loc["newcomer", "reasons"] == "under the red line for the first time"
    # the categories that fell most, worst first; rises are not listed
    assert alerts.loc["worse", "fallen_categories"] == "support -30.0"
    assert alerts.loc["dropped", "fallen_categories"] == "adoption -25.0"
    assert alerts.loc["red_again", "fallen_categories"] == "adoption -22.0"
    assert alerts.loc["first_red", "fallen_categories"] == "adoption -7.0, support -7.0"
    assert alerts.loc["newcomer", "fallen_categories"] == ""
    assert alerts.loc["worse", ["previous_score", "score_change", "previous_band"]].tolist() == [80, -15, "green"]
    # biggest drops first, accounts without a previous run last
    assert alerts.index.tolist() == ["worse", "dropped", "first_red", "red_again", "newcomer"]


def test_score_drop_threshold_is_configurable_and_strict() -> None:
    loose = health_alerts(PREVIOUS, NOW, score_drop=20.0).set_index("account_id")
    assert not loose["score_dropped"].any()
    strict = health_alerts(PREVIOUS, NOW, score_drop=4.0).set_index("account_id")
    assert {"steady", "exactly_ten", "still_red"} <= set(strict.index)
    assert strict.loc["steady", "reasons"] == "score dropped 5.0 points (more than 4)"
    assert "exactly_ten" not in health_alerts(PREVIOUS, NOW, score_drop=10.0)["account_id"].tolist()


def test_alerts_compare_with_the_latest_earlier_run_of_the_history() -> None:
    history = pd.concat([PREVIOUS, NOW.assign(as_of=pd.Timestamp("2024-05-01"))])  # later runs are ignored
    alerts = health_alerts(history, NOW)
    assert set(alerts["account_id"]) == {"worse", "dropped", "first_red", "red_again", "newcomer"}
    # a single previous run without dates works too
    latest = PREVIOUS.sort_values("as_of").drop_duplicates("account_id", keep="last").drop(columns="as_of")
    undated = health_alerts(latest, NOW.drop(columns="as_of")).set_index("account_id")
    # without the January run, red_again is red for the first time as far as this run knows
    assert undated.loc["red_again", "first_red"]


def test_alerts_reject_ambiguous_input() -> None:
    with pytest.raises(DataContractError, match="several rows per account"):
        health_alerts(PREVIOUS, pd.concat([NOW, NOW]))
    with pytest.raises(DataContractError, match="no as_of column to order them"):
        health_alerts(PREVIOUS.drop(columns="as_of"), NOW)
    with pytest.raises(DataContractError, match=r"Previous scores lacks column\(s\) health_band"):
        health_alerts(PREVIOUS.drop(columns="health_band"), NOW)


def test_trend_and_explanation_columns_are_not_mistaken_for_categories() -> None:
    decorated = NOW.assign(health_change=-1.0, health_change_30d=-50.0, health_explanation="x")
    previous = PREVIOUS.assign(health_change=0.0, health_change_30d=0.0, health_explanation="y")
    alerts = health_alerts(previous, decorated).set_index("account_id")
    assert alerts.loc["worse", "fallen_categories"] == "support -30.0"
