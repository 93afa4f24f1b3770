"""Alerts on a crafted pair of runs: exactly the expected accounts and reasons, in ARR-at-risk order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.errors import ChurnError, ConfigError
from models.alerts import ALERT_COLUMNS, score_alerts
from models.scoring import risk_band
from pipeline.config import AlertSettings, RiskBands, load_settings
from pipeline.history import append_scores, latest_before, read_history
from pipeline.webhook import Delivery, UnrecordedDelivery, deliver, ledger_path, post_webhook
from tests.helpers import WebhookReceiver

SETTINGS = AlertSettings(score_drop=10, probability_level=0.5, renewal_days=90)
BANDS = RiskBands(high=0.5, medium=0.2)


def _thresholds(settings: AlertSettings = SETTINGS, bands: RiskBands = BANDS) -> dict[str, float]:
    """The alert thresholds of `scoring.alerts` and the high-risk level, as the scoring stage passes them."""
    return {
        "score_drop": settings.score_drop,
        "probability_level": settings.probability_level,
        "renewal_days": settings.renewal_days,
        "high_risk": bands.high,
    }


def _scores(as_of: str, rows: dict[str, tuple]) -> pd.DataFrame:
    """rows: account -> (health_score, health_band, churn_probability, days_to_renewal, arr)."""
    frame = pd.DataFrame.from_dict(
        rows,
        orient="index",
        columns=["health_score", "health_band", "churn_probability", "days_to_renewal", "arr"],
    )
    frame = frame.rename_axis("account_id").reset_index()
    frame["as_of"] = pd.Timestamp(as_of)
    frame["top_drivers"] = "drivers of " + frame["account_id"]
    return frame


PREVIOUS = _scores(
    "2024-05-01",
    {
        "A": (80, "green", 0.10, 130, 10_000),
        "B": (65, "yellow", 0.30, 200, 50_000),
        "C": (75, "green", 0.40, 300, 20_000),
        "D": (55, "red", 0.60, 60, 40_000),
        "E": (50, "red", 0.30, 230, 90_000),
        "G": (85, "green", 0.30, 40, 5_000),
        "H": (80, "green", 0.49, 250, 30_000),
    },
)
CURRENT = _scores(
    "2024-06-01",
    {
        "A": (65, "yellow", 0.15, 100, 10_000),  # band worsened and dropped 15 points
        "B": (62, "yellow", 0.35, 170, 50_000),  # small drop, same band: no alert
        "C": (72, "green", 0.55, 270, 20_000),  # probability crossed 50 %
        "D": (55, "red", 0.70, 30, 40_000),  # already above the level; renewing at risk
        "E": (50, "red", 0.30, 200, 90_000),  # red but renewal far away: no alert
        "F": (45, "red", 0.10, 60, 8_000),  # new account, red and renewing
        "G": (40, "red", 0.90, 10, 5_000),  # everything at once
        "H": (70, "green", 0.50, 220, 30_000),  # exactly 10 points (not more); reaches 50 %: crossed
    },
)


def test_crafted_history_gives_exactly_the_expected_alerts():
    alerts = score_alerts(CURRENT, PREVIOUS, **_thresholds())

    assert list(alerts.columns) == list(ALERT_COLUMNS)
    expected = {
        "D": "renews in 30 days with high churn risk and red health",
        "H": "churn probability rose above 50% (from 49% to 50%)",
        "C": "churn probability rose above 50% (from 40% to 55%)",
        "G": "health band worsened from green to red; health score dropped 45 points (from 85 to 40); "
        "health under the red line for the first time; "
        "churn probability rose above 50% (from 30% to 90%); renews in 10 days with high churn risk and red health",
        "A": "health band worsened from green to yellow; health score dropped 15 points (from 80 to 65)",
        "F": "health under the red line for the first time; renews in 60 days with red health",
    }
    assert alerts["account_id"].tolist() == list(expected)  # ARR at risk 28000, 15000, 11000, 4500, 1500, 800
    assert dict(zip(alerts["account_id"], alerts["reasons"], strict=True)) == expected
    np.testing.assert_allclose(alerts["arr_at_risk"], alerts["arr"] * alerts["churn_probability"])
    assert alerts["arr_at_risk"].is_monotonic_decreasing
    row = alerts.set_index("account_id").loc["G"]
    assert (row["health_band"], row["previous_health_band"], row["top_drivers"]) == ("red", "green", "drivers of G")
    assert pd.isna(alerts.set_index("account_id").loc["F", "previous_health_band"])
    assert (alerts["as_of"] == pd.Timestamp("2024-06-01")).all()
    assert (alerts["fallen_categories"] == "").all(), "these runs have no health_<category> columns"


def test_a_probability_is_said_below_the_level_it_had_not_reached():
    """0.4996 is under a 50% level: rounded, "rose above 50% (from 50% to 84%)" said it had already reached it.
    Probabilities are cut to the whole percent, as the bands read them; one under 1% is "under 1%"."""
    previous = _scores("2024-05-01", {"A": (80, "green", 0.4996, 300, 1_000), "B": (80, "green", 0.0099, 300, 1_000)})
    current = _scores("2024-06-01", {"A": (80, "green", 0.84, 270, 1_000), "B": (80, "green", 0.996, 270, 1_000)})
    reasons = score_alerts(current, previous, **_thresholds()).set_index("account_id")["reasons"]
    assert reasons["A"] == "churn probability rose above 50% (from 49% to 84%)"
    assert reasons["B"] == "churn probability rose above 50% (from under 1% to 99%)"


def test_thresholds_come_from_settings():
    strict = AlertSettings(score_drop=2, probability_level=0.3, renewal_days=5)
    alerts = score_alerts(CURRENT, PREVIOUS, **_thresholds(strict)).set_index("account_id")["reasons"]

    assert alerts["B"] == "health score dropped 3 points (from 65 to 62)"
    assert alerts["A"].endswith("dropped 15 points (from 80 to 65)")
    assert "D" not in alerts.index, "D renews in 30 days, outside a 5-day window, and was already above 30 %"
    assert "renews in" not in alerts["G"] and "rose above 30% (from 30% to 90%)" not in alerts["G"]


def test_a_drop_is_the_difference_of_the_scores_it_shows() -> None:
    """49.9 to 38.1 is a drop of 11.8: in whole points it would read "dropped 12 points (from 49 to 38)"; one
    decimal keeps the sentence's arithmetic. A drop whose whole points agree stays in whole points."""
    previous = _scores("2024-05-01", {"A": (49.9, "yellow", 0.2, 300, 1_000), "B": (80.2, "green", 0.2, 300, 1_000)})
    current = _scores("2024-06-01", {"A": (38.1, "yellow", 0.2, 300, 1_000), "B": (65.1, "green", 0.2, 300, 1_000)})
    alerts = score_alerts(current, previous, **_thresholds()).set_index("account_id")["reasons"]

    assert alerts["A"] == "health score dropped 11.8 points (from 49.9 to 38.1)"
    assert alerts["B"] == "health score dropped 15 points (from 80 to 65)"


def test_a_drop_says_the_scores_in_the_bands_they_are_in() -> None:
    """69.9 to 59.8 went from yellow to red, and read "dropped 10 points (from 70 to 60)": two numbers of the bands
    above. The scores are cut to the shown precision, as the alerts table and `churn explain` show them."""
    previous = _scores("2024-05-01", {"A": (69.9, "yellow", 0.2, 300, 1_000), "B": (75.3, "green", 0.2, 300, 1_000)})
    current = _scores("2024-06-01", {"A": (59.8, "red", 0.2, 300, 1_000), "B": (63.6, "yellow", 0.2, 300, 1_000)})
    alerts = score_alerts(current, previous, **_thresholds()).set_index("account_id")["reasons"]

    assert alerts["A"] == (
        "health band worsened from yellow to red; health score dropped 10 points (from 69 to 59); "
        "health under the red line for the first time"
    )
    assert alerts["B"].endswith("health score dropped 12 points (from 75 to 63)")


def test_alerts_without_an_arr_are_ordered_by_churn_probability_and_say_so() -> None:
    """An export without `arr` listed its alerts in account order under "top 10 by ARR at risk"."""
    from rich.console import Console

    from pipeline.console import print_alerts

    current = CURRENT.assign(arr=np.nan)
    alerts = score_alerts(current, PREVIOUS, **_thresholds())
    assert alerts["account_id"].tolist() == ["G", "D", "C", "H", "A", "F"]  # churn p 90, 70, 55, 50, 15, 10 %
    console = Console(record=True, width=300)
    print_alerts(alerts, console, limit=3)
    said = console.export_text()
    assert "Alerts (6; top 3 by churn probability)" in said and "ARR at risk" not in said

    partly = score_alerts(
        CURRENT.assign(arr=CURRENT["arr"].where(CURRENT["account_id"] != "H")), PREVIOUS, **_thresholds()
    )
    assert partly["account_id"].tolist() == ["D", "C", "G", "A", "F", "H"]  # H has no ARR: last
    console = Console(record=True, width=300)
    print_alerts(partly, console)
    assert "Alerts (6; top 6 by ARR at risk, then churn probability)" in console.export_text()


def test_without_a_previous_run_only_renewal_alerts_fire():
    for previous in (None, PREVIOUS.iloc[0:0]):
        alerts = score_alerts(CURRENT, previous, **_thresholds())
        assert alerts["account_id"].tolist() == ["D", "G", "F"]  # 28000, 4500, 800
        assert alerts["reasons"].str.startswith("renews in").all()


def test_risk_band_column_of_the_run_is_used_when_present():
    with_bands = CURRENT.assign(risk_band=["low", "low", "low", "low", "low", "low", "low", "low"])
    alerts = score_alerts(with_bands, PREVIOUS, **_thresholds()).set_index("account_id")["reasons"]
    assert alerts["D"] == "renews in 30 days with red health"
    assert alerts["G"].endswith("renews in 10 days with red health")


def _health(as_of: str, rows: dict[str, tuple]) -> pd.DataFrame:
    """rows: account -> (health_score, health_band, health_adoption, health_support)."""
    frame = pd.DataFrame.from_dict(
        rows, orient="index", columns=["health_score", "health_band", "health_adoption", "health_support"]
    )
    return frame.rename_axis("account_id").reset_index().assign(as_of=pd.Timestamp(as_of))


HEALTH_PREVIOUS = _health(
    "2024-03-01",
    {
        "worse": (80, "green", 80, 90),
        "dropped": (85, "green", 85, 85),
        "first_red": (65, "yellow", 65, 65),
        "red_again": (62, "yellow", 62, 62),
        "steady": (90, "green", 90, 90),
        "still_red": (40, "red", 40, 40),
    },
)
HEALTH_HISTORY = pd.concat(
    [
        _health("2024-01-01", {"red_again": (50, "red", 50, 50)}),
        _health("2024-02-01", {"red_again": (62, "yellow", 62, 62)}),
        HEALTH_PREVIOUS,
    ],
    ignore_index=True,
)
HEALTH_NOW = _health(
    "2024-04-01",
    {
        "worse": (65, "yellow", 85, 60),
        "dropped": (74, "green", 60, 88),
        "first_red": (58, "red", 58, 58),
        "red_again": (59, "red", 40, 70),
        "steady": (85, "green", 85, 85),
        "still_red": (35, "red", 35, 35),
        "newcomer": (40, "red", 40, 40),
    },
)


def test_first_time_red_needs_an_account_never_red_in_the_history():
    alerts = score_alerts(HEALTH_NOW, HEALTH_PREVIOUS, **_thresholds(), history=HEALTH_HISTORY)
    reasons = alerts.set_index("account_id")["reasons"]

    assert reasons.to_dict() == {
        "worse": "health band worsened from green to yellow; health score dropped 15 points (from 80 to 65)",
        "dropped": "health score dropped 11 points (from 85 to 74)",
        "first_red": "health band worsened from yellow to red; health under the red line for the first time",
        "red_again": "health band worsened from yellow to red",  # it was red in January
        "newcomer": "health under the red line for the first time",  # a new account that starts red
    }
    # without the history only the previous run is known, where red_again was yellow
    previous_only = score_alerts(HEALTH_NOW, HEALTH_PREVIOUS, **_thresholds()).set_index("account_id")["reasons"]
    assert previous_only["red_again"].endswith("health under the red line for the first time")
    assert "still_red" not in previous_only.index


def test_first_time_red_ignores_runs_of_the_current_date_and_later():
    rerun_and_later = pd.concat(
        [HEALTH_HISTORY, HEALTH_NOW, HEALTH_NOW.assign(as_of=pd.Timestamp("2024-05-01"))], ignore_index=True
    )
    alerts = score_alerts(HEALTH_NOW, HEALTH_PREVIOUS, **_thresholds(), history=rerun_and_later)
    first_red = alerts.loc[alerts["reasons"].str.contains("first time"), "account_id"].tolist()
    assert first_red == ["first_red", "newcomer"]
    # a history with nothing before the current run is a first run: no account is news yet
    later_green = HEALTH_NOW.assign(as_of=pd.Timestamp("2024-05-01"), health_band="green")
    assert score_alerts(HEALTH_NOW, None, **_thresholds(), history=later_green).empty


def test_an_account_back_after_a_gap_is_alerted_against_its_last_score(tmp_path) -> None:
    """A yellow account between two terms on the previous run's date (not scored then) and red now: its
    band worsened since it was last scored, but compared with the previous run alone it raised nothing."""
    history = tmp_path / "history"
    append_scores(history, _scores("2024-04-01", {"A": (80, "green", 0.1, 100, 1_000), "B": (68, "yellow", 0.1, 5, 1)}))
    append_scores(history, _scores("2024-05-01", {"A": (81, "green", 0.1, 70, 1_000)}))  # B between terms
    now = _scores("2024-06-01", {"A": (80, "green", 0.1, 40, 1_000), "B": (52, "red", 0.6, 360, 2_000)})
    stored = read_history(history)

    alerts = score_alerts(now, latest_before(stored, "2024-06-01"), **_thresholds(), history=stored)

    assert alerts.set_index("account_id")["reasons"].to_dict() == {
        "B": "health band worsened from yellow to red; health score dropped 16 points (from 68 to 52); "
        "health under the red line for the first time; churn probability rose above 50% (from 10% to 60%)"
    }
    assert alerts["previous_health_band"].tolist() == ["yellow"]


def test_fallen_categories_are_the_biggest_falls_worst_first():
    alerts = score_alerts(HEALTH_NOW, HEALTH_PREVIOUS, **_thresholds(), history=HEALTH_HISTORY)
    fallen = alerts.set_index("account_id")["fallen_categories"]

    assert fallen["worse"] == "support -30.0"  # adoption rose: not listed
    assert fallen["dropped"] == "adoption -25.0"
    assert fallen["red_again"] == "adoption -22.0"
    assert fallen["first_red"] == "adoption -7.0, support -7.0"
    assert fallen["newcomer"] == ""  # nothing to compare with
    worse_first = HEALTH_NOW.assign(health_support=HEALTH_NOW["health_support"] - 10)
    fallen = score_alerts(worse_first, HEALTH_PREVIOUS, **_thresholds(), n_categories=1)
    assert fallen.set_index("account_id").loc["first_red", "fallen_categories"] == "support -17.0"


def test_a_fall_that_rounds_to_nothing_is_not_a_fallen_category():
    """A category 0.01 points lower read "relationship -0.0" among the categories that fell most."""
    support_before = HEALTH_PREVIOUS.set_index("account_id")["health_support"]
    slightly = HEALTH_NOW.assign(health_support=HEALTH_NOW["account_id"].map(support_before - 0.04).fillna(40.0))
    alerts = score_alerts(slightly, HEALTH_PREVIOUS, **_thresholds(), history=HEALTH_HISTORY).set_index("account_id")
    assert alerts.loc["dropped", "fallen_categories"] == "adoption -25.0"
    assert alerts.loc["first_red", "fallen_categories"] == "adoption -7.0"
    assert "-0.0" not in "".join(alerts["fallen_categories"])


def test_trend_and_text_columns_are_not_taken_for_categories():
    decorated = HEALTH_NOW.assign(health_score_change_30d=-50.0, health_drivers="seats idle (engagement, -9 pts)")
    previous = HEALTH_PREVIOUS.assign(health_score_change_30d=0.0, health_drivers="-")
    alerts = score_alerts(decorated, previous, **_thresholds(), history=HEALTH_HISTORY).set_index("account_id")
    assert alerts.loc["worse", "fallen_categories"] == "support -30.0"


def test_risk_band_thresholds():
    probability = pd.Series([0.0, 0.19, 0.2, 0.49, 0.5, 1.0, np.nan], index=list("abcdefg"))
    bands = risk_band(probability, BANDS.high, BANDS.medium)
    assert bands.index.equals(probability.index)
    assert bands.iloc[:6].tolist() == ["low", "low", "medium", "medium", "high", "high"]
    assert pd.isna(bands["g"])
    assert risk_band(probability, high=0.9, medium=0.5).iloc[:6].tolist() == [*["low"] * 4, "medium", "high"]
    with pytest.raises(ConfigError, match=r"scoring.risk_bands: medium \(0.6\) must be below high \(0.5\)"):
        load_settings(None, {"scoring": {"risk_bands": {"high": 0.5, "medium": 0.6}}})


def test_webhook_receives_the_alerts_as_json(webhook: str, tmp_path: Path):
    alerts = score_alerts(CURRENT, PREVIOUS, **_thresholds())

    delivery = deliver(alerts, SETTINGS.model_copy(update={"webhook_url": webhook}), tmp_path)
    assert delivery == Delivery(sent=6, skipped=0, dates=("2024-06-01",))

    (received,) = WebhookReceiver.bodies
    assert received["content_type"] == "application/json"
    payload = received["payload"]
    assert payload["text"].startswith("6 churn alerts as of 2024-06-01; largest ARR at risk: D (renews in 30 days")
    assert [a["account_id"] for a in payload["alerts"]] == alerts["account_id"].tolist()
    first = payload["alerts"][0]
    assert first["arr_at_risk"] == pytest.approx(28_000) and first["as_of"].startswith("2024-06-01")
    assert payload["alerts"][-1]["previous_health_band"] is None  # F was not scored before


def test_an_alert_names_the_model_version_that_scored_it(webhook: str, tmp_path: Path):
    """The scores carry `model_version`; their alerts (the file and the webhook's payload a CSM's tools receive)
    did not, so an alert of a re-run with another champion could not say which model's probability it quotes."""
    alerts = score_alerts(CURRENT.assign(model_version="7"), PREVIOUS.assign(model_version="6"), **_thresholds())
    assert set(alerts["model_version"]) == {"7"}

    deliver(alerts, SETTINGS.model_copy(update={"webhook_url": webhook}), tmp_path)
    (received,) = WebhookReceiver.bodies
    assert {a["model_version"] for a in received["payload"]["alerts"]} == {"7"}


def test_webhook_is_off_by_default_and_silent_without_alerts(webhook: str, tmp_path: Path):
    alerts = score_alerts(CURRENT, PREVIOUS, **_thresholds())
    assert deliver(alerts, SETTINGS, tmp_path) is None
    assert deliver(alerts.iloc[0:0], SETTINGS.model_copy(update={"webhook_url": webhook}), tmp_path) is None
    assert WebhookReceiver.bodies == [] and list(tmp_path.iterdir()) == []


def _posted() -> list[list[str]]:
    return [[a["account_id"] for a in body["payload"]["alerts"]] for body in WebhookReceiver.bodies]


def test_an_alert_is_delivered_once_across_re_runs_and_failed_deliveries(webhook: str, tmp_path: Path):
    """A re-run of a date POSTed every alert again; a failed delivery was only made good by re-sending all."""
    alerts = score_alerts(CURRENT, PREVIOUS, **_thresholds())
    settings, ledger = SETTINGS.model_copy(update={"webhook_url": webhook, "webhook_retries": 0}), tmp_path / "led"
    everyone = alerts["account_id"].tolist()

    WebhookReceiver.status = 500  # the first delivery fails: nothing is recorded as delivered
    with pytest.raises(ChurnError, match=r"HTTP 500 .*\. A re-run of 2024-06-01 sends the 6 alerts not delivered"):
        deliver(alerts, settings, ledger)
    assert not ledger_path(ledger, "2024-06-01").exists()

    WebhookReceiver.status = 200
    assert deliver(alerts.iloc[:4], settings, ledger) == Delivery(4, 0, ("2024-06-01",))
    assert deliver(alerts, settings, ledger) == Delivery(2, 4, ("2024-06-01",))  # only the two not delivered
    assert deliver(alerts, settings, ledger) == Delivery(0, 6, ("2024-06-01",))  # nothing twice
    assert _posted() == [everyone, everyone[:4], everyone[4:]]
    recorded = json.loads(ledger_path(ledger, "2024-06-01").read_text())["delivered"]
    assert sorted(e["account_id"] for e in recorded) == sorted(everyone)

    changed = alerts.iloc[:1].assign(rules="band_worsened", alert_id="x")  # D: renewal before, now a band change
    assert deliver(changed, settings, ledger) == Delivery(1, 0, ("2024-06-01",))  # another rule: a new alert
    later = alerts.iloc[:1].assign(as_of=pd.Timestamp("2024-06-08"))
    assert deliver(later, settings, ledger) == Delivery(1, 0, ("2024-06-08",))  # the same words another day
    assert _posted()[3:] == [everyone[:1], everyone[:1]]


def test_an_alert_is_what_fired_not_its_words(webhook: str, tmp_path: Path):
    """A re-run of a date whose probabilities round otherwise (another model version, the Spark engine)
    re-sent every alert whose sentence quotes a number: the ledger knew alerts by their words."""
    settings, ledger = SETTINGS.model_copy(update={"webhook_url": webhook}), tmp_path / "led"
    alerts = score_alerts(CURRENT, PREVIOUS, **_thresholds())
    assert deliver(alerts, settings, ledger) == Delivery(6, 0, ("2024-06-01",))
    other_model = CURRENT.assign(churn_probability=CURRENT["churn_probability"] + 0.013)
    again = score_alerts(other_model, PREVIOUS, **_thresholds())
    by_account = again.set_index("account_id")
    assert by_account.at["C", "reasons"] == "churn probability rose above 50% (from 40% to 56%)"  # was 55%
    assert by_account.at["C", "rules"] == "probability_crossed"
    assert (by_account.loc[alerts["account_id"], "alert_id"].to_numpy() == alerts["alert_id"].to_numpy()).all()
    assert deliver(again, settings, ledger) == Delivery(0, 6, ("2024-06-01",))
    # B now crosses 50 % too: a rule never delivered for B, so a new alert; fewer rules than delivered is not
    crossing = score_alerts(other_model.assign(churn_probability=0.6), PREVIOUS, **_thresholds())
    assert deliver(crossing, settings, ledger) == Delivery(3, 5, ("2024-06-01",))  # A, B and E
    assert [sorted(a["account_id"] for a in body["payload"]["alerts"]) for body in WebhookReceiver.bodies[1:]] == [
        ["A", "B", "E"]
    ]
    recorded = json.loads(ledger_path(ledger, "2024-06-01").read_text())["delivered"]
    assert {e["account_id"]: e["rules"] for e in recorded[-3:]} == {
        "A": ["band_worsened", "probability_crossed", "score_drop"],
        "B": ["probability_crossed"],
        "E": ["probability_crossed"],
    }


def test_a_ledger_of_an_earlier_version_is_honoured(webhook: str, tmp_path: Path):
    """Entries of churn before rules were recorded hold the words only: they still count, by their rules."""
    settings = SETTINGS.model_copy(update={"webhook_url": webhook})
    old = {
        "C": "churn probability rose above 50% (from 40% to 54%)",  # reworded: another model's probability
        "G": "health band worsened from green to red; health score dropped 44 points (from 84 to 40); "
        "health under the red line for the first time; churn probability rose above 50% (from 30% to 91%); "
        "renews in 10 days with high churn risk and red health",
        "A": "health score dropped 15 points (from 80 to 65)",  # the band change was not among them
        "F": "health under the red line for the first time; renews in 60 days with red health",  # as worded now
    }
    entries = [{"account_id": a, "reasons": r, "delivered_at": "2026-11-01T00:00:00+00:00"} for a, r in old.items()]
    ledger_path(tmp_path, "2024-06-01").write_text(json.dumps({"as_of": "2024-06-01", "delivered": entries}))
    alerts = score_alerts(CURRENT, PREVIOUS, **_thresholds())
    assert deliver(alerts, settings, tmp_path) == Delivery(3, 3, ("2024-06-01",))
    assert sorted(_posted()[0]) == ["A", "D", "H"]


def test_a_resent_delivery_carries_the_same_ids_for_the_receiver_to_drop(webhook: str, tmp_path: Path):
    """A kill between the webhook's 2xx and the ledger's record sends the alerts again (at least once): the
    receiver got no id to tell the second request from new alerts."""
    settings = SETTINGS.model_copy(update={"webhook_url": webhook})
    alerts = score_alerts(CURRENT, PREVIOUS, **_thresholds())
    blocked = tmp_path / ".as_of=2024-06-01.json.tmp"
    blocked.mkdir()  # the record after the 2xx fails, as when the process dies there
    with pytest.raises(UnrecordedDelivery):
        deliver(alerts, settings, tmp_path)
    blocked.rmdir()
    other_model = CURRENT.assign(churn_probability=CURRENT["churn_probability"] + 0.013)
    reworded = score_alerts(other_model, PREVIOUS, **_thresholds())
    assert deliver(reworded, settings, tmp_path) == Delivery(6, 0, ("2024-06-01",))
    first, second = WebhookReceiver.bodies
    assert first["idempotency_key"] == second["idempotency_key"] and len(first["idempotency_key"]) == 32
    ids = [[a["alert_id"] for a in body["payload"]["alerts"]] for body in (first, second)]
    assert ids[0] == ids[1] == alerts["alert_id"].tolist() and len(set(ids[0])) == 6
    assert first["payload"]["alerts"][2]["reasons"] != second["payload"]["alerts"][2]["reasons"]  # C's words
    assert [a["rules"] for a in first["payload"]["alerts"]][:3] == [
        "renewal_at_risk",
        "probability_crossed",
        "probability_crossed",
    ]
    other_day = score_alerts(CURRENT.assign(as_of=pd.Timestamp("2024-06-08")), PREVIOUS, **_thresholds())
    assert deliver(other_day, settings, tmp_path) == Delivery(6, 0, ("2024-06-08",))
    assert not {a["alert_id"] for a in WebhookReceiver.bodies[2]["payload"]["alerts"]} & set(ids[0])
    assert WebhookReceiver.bodies[2]["idempotency_key"] != first["idempotency_key"]


def test_a_delivery_the_ledger_cannot_record_says_it_was_delivered(webhook: str, tmp_path: Path):
    alerts = score_alerts(CURRENT, PREVIOUS, **_thresholds())
    (tmp_path / ".as_of=2024-06-01.json.tmp").mkdir()  # the ledger's temporary file cannot be written
    unrecorded = r"6 alerts were delivered to the webhook, but the ledger \S+ could not record them"
    with pytest.raises(UnrecordedDelivery, match=unrecorded):
        deliver(alerts, SETTINGS.model_copy(update={"webhook_url": webhook}), tmp_path)
    assert len(WebhookReceiver.bodies) == 1 and not ledger_path(tmp_path, "2024-06-01").exists()


def test_an_unreadable_ledger_sends_nothing(webhook: str, tmp_path: Path):
    alerts = score_alerts(CURRENT, PREVIOUS, **_thresholds())
    for text in ('{"delivered": [', '{"delivered": [{"account_id": "D", "reasons": "", "rules": "first_red"}]}'):
        ledger_path(tmp_path, "2024-06-01").write_text(text)
        with pytest.raises(ChurnError, match=r"ledger of delivered alerts .*as_of=2024-06-01\.json cannot be read"):
            deliver(alerts, SETTINGS.model_copy(update={"webhook_url": webhook}), tmp_path)
    assert WebhookReceiver.bodies == []


def test_webhook_failures_are_reported_clearly(webhook: str):
    alerts = score_alerts(CURRENT, PREVIOUS, **_thresholds())
    WebhookReceiver.status = 500
    with pytest.raises(ChurnError, match="answered HTTP 500"):
        post_webhook(alerts, webhook)
    with pytest.raises(ChurnError, match=r"Could not post alerts to the webhook http://127\.0\.0\.1:9/"):
        post_webhook(alerts, "http://127.0.0.1:9/", timeout=2)
    with pytest.raises(ConfigError, match="must be an http"):
        post_webhook(alerts, "file:///etc/passwd")


def test_risk_bands_by_capacity_take_the_riskiest_accounts_or_share_of_arr() -> None:
    probability = pd.Series([0.9, 0.1, 0.5, 0.3, 0.25, 0.05])
    arr = pd.Series([100.0, 5000.0, 300.0, 600.0, np.nan, 4000.0])
    by_count = risk_band(probability, 0.5, 0.2, high_accounts=2, arr=arr)
    assert by_count.tolist() == ["high", "low", "high", "medium", "medium", "low"]
    # 10,000 ARR in all: the riskiest accounts until they hold 10% of it (the one that crosses it counts)
    by_arr = risk_band(probability, 0.5, 0.2, high_arr_share=0.1, arr=arr)
    assert by_arr.tolist() == ["high", "low", "high", "high", "medium", "low"]
    runs = pd.Series(["d1", "d1", "d1", "d2", "d2", "d2"])
    per_run = risk_band(probability, 0.5, 0.2, high_accounts=1, arr=arr, runs=runs)
    assert per_run.tolist() == ["high", "low", "medium", "high", "medium", "low"]
    with pytest.raises(ConfigError, match="not both"):
        load_settings(None, {"scoring": {"risk_bands": {"high_accounts": 5, "high_arr_share": 0.2}}})
