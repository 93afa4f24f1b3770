"""What `churn` prints: warnings said once per `churn run`, every time elsewhere; notes and warnings one line each."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from pipeline.console import print_notes, print_score_run, print_warnings, warnings_once

ADAPTATIONS = ["health scorecard 'laer': category 'support' dropped", "health scorecard 'laer': metric 'x' dropped"]


def _lines(console: Console) -> list[str]:
    return console.export_text().splitlines()


def test_inside_one_run_each_warning_line_is_printed_once_and_new_ones_still_are() -> None:
    console = Console(record=True, width=200)
    with warnings_once(console):
        print_warnings(ADAPTATIONS, console)  # train
        print_warnings([*ADAPTATIONS, "the alerts were not delivered: timeout"], console)  # score
        print_warnings(ADAPTATIONS, console)  # compare

    assert _lines(console) == [f"warning: {line}" for line in [*ADAPTATIONS, "the alerts were not delivered: timeout"]]


def test_outside_a_run_every_call_prints_its_warnings() -> None:
    console = Console(record=True, width=200)
    with warnings_once(Console()):  # another console's run does not silence this one
        print_warnings(ADAPTATIONS, console)
    print_warnings(ADAPTATIONS, console)

    assert _lines(console) == [f"warning: {line}" for line in ADAPTATIONS * 2]


def test_a_note_longer_than_the_terminal_stays_one_line() -> None:
    """The model note names a data path and a model URI: wrapped at 80 columns, a path was split in two."""
    note = "model churn-risk v1 (models:/churn-risk@champion), trained on /" + "/".join(["a-long-folder"] * 12)
    console = Console(record=True, width=80)
    print_notes([note], console)

    assert _lines(console) == [f"note: {note}"]


@pytest.mark.parametrize(
    ("arr", "said"),
    [
        ([np.nan, np.nan], "ARR at risk unknown (no account has an ARR)."),
        ([1000.0, np.nan], "ARR at risk 250 (1 account without an ARR left out)."),
        ([1000.0, 3000.0], "ARR at risk 1,750."),
    ],
)
def test_the_arr_at_risk_of_a_book_without_arr_is_unknown_not_zero(arr: list[float], said: str) -> None:
    """An export without `arr` printed "ARR at risk 0", as if nothing were at risk."""
    scores = pd.DataFrame(
        {
            "as_of": pd.Timestamp("2025-01-01"),
            "arr": arr,
            "churn_probability": [0.25, 0.5],
            "health_band": ["green", "red"],
            "risk_band": ["low", "medium"],
        }
    )
    run = SimpleNamespace(scores=scores, model_version="3", drifted=[], notes=[], warnings=[], alerts=pd.DataFrame())
    console = Console(record=True, width=300)
    print_score_run(run, {}, console)

    assert _lines(console)[0].endswith(said)


def test_explain_says_how_much_of_the_risk_is_actionable_and_how_much_context() -> None:
    """An account's table showed `account +2.516` beside drivers worth a few tenths: the drivers' line read as the
    reason for the risk, though most of it was the term and tenure no CSM can change."""
    from pipeline.console import print_explanation

    scores = pd.Series(
        {"health_adoption": 33.0, "ml_adoption": 0.4, "health_account": 65.0, "ml_account": 2.5,
         "health_score": 58.0, "health_band": "red", "churn_probability": 0.27, "risk_band": "medium",
         "health_drivers": "1 distinct feature used (adoption, -5.1 pts)", "top_drivers": "50% of invoices paid late",
         "context": "second renewal, 313 days away", "actionable_log_odds": 0.43, "context_log_odds": 2.516,
         "override_ids": "", "lifecycle_stage": "adopt", "days_to_renewal": 313.0}
    )  # fmt: skip
    console = Console(record=True, width=200)
    print_explanation("A1", date(2025, 12, 1), scores, ["adoption", "account"], console)
    text = console.export_text()
    assert "ML view, raising risk: 50% of invoices paid late (actionable features in all: +0.43 log-odds)" in text
    assert "Context: second renewal, 313 days away (context in all: +2.52 log-odds)" in text


def test_explain_says_a_category_the_accounts_scorecard_leaves_out_is_not_in_it() -> None:
    """A new account's `account` row read "no data": the onboarding scorecard does not score that category."""
    from pipeline.console import print_explanation

    scores = pd.Series(
        {"health_adoption": 65.0, "ml_adoption": 0.7, "health_account": np.nan, "ml_account": 1.1,
         "health_engagement": np.nan, "ml_engagement": 0.1, "health_score": 73.0, "health_band": "green",
         "health_scorecard": "onboarding", "churn_probability": 0.22, "risk_band": "medium", "health_drivers": "",
         "top_drivers": "", "context": "", "override_ids": "", "lifecycle_stage": "land", "days_to_renewal": 291.0}
    )  # fmt: skip
    console = Console(record=True, width=200)
    print_explanation("A1", date(2025, 12, 1), scores, ["adoption", "engagement", "account"], console, ["account"])
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in _lines(console) if line.count("│") == 4}
    assert rows["account"] == "not in onboarding" and rows["engagement"] == "no data" and rows["adoption"] == "65"


def test_explain_says_none_where_nothing_raises_the_risk_or_costs_points() -> None:
    """An account no actionable feature pushes towards churn printed "ML view, raising risk: " and nothing."""
    from pipeline.console import print_explanation

    scores = pd.Series(
        {"health_adoption": 100.0, "ml_adoption": -0.4, "health_score": 100.0, "health_band": "green",
         "churn_probability": 0.01, "risk_band": "low", "health_drivers": "", "top_drivers": "", "context": "",
         "actionable_log_odds": -0.4, "context_log_odds": -0.1, "override_ids": "", "lifecycle_stage": "renew",
         "days_to_renewal": 30.0}
    )  # fmt: skip
    console = Console(record=True, width=200)
    print_explanation("A1", date(2025, 12, 1), scores, ["adoption"], console)
    text = console.export_text()
    assert "Rule view, points lost: none\n" in text
    assert "ML view, raising risk: none (actionable features in all: -0.40 log-odds)" in text
    assert "Context: none (context in all: -0.10 log-odds)" in text  # a prepared table's model has no context


def test_explain_says_an_evergreen_term_has_no_renewal_date() -> None:
    """A term ending 2999-01-01 printed "Lifecycle stage: expand; renewal in 355048 days."."""
    from pipeline.console import print_explanation

    scores = pd.Series(
        {"health_adoption": 40.0, "ml_adoption": 0.4, "health_score": 40.0, "health_band": "red",
         "churn_probability": 0.3, "risk_band": "medium", "health_drivers": "", "top_drivers": "", "context": "",
         "actionable_log_odds": 0.4, "context_log_odds": -0.1, "override_ids": "", "lifecycle_stage": "expand",
         "days_to_renewal": 355048.0}
    )  # fmt: skip
    console = Console(record=True, width=200)
    print_explanation("A1", date(2025, 12, 1), scores, ["adoption"], console)
    assert "Lifecycle stage: expand; no renewal date within 10 years." in console.export_text()


def test_the_drift_warning_is_one_warning_line_naming_product_features_and_how_many_more() -> None:
    """The drift warning kept a format of its own: wrapped at the terminal's width (one warning, several lines),
    "feature(s)", a usage column by its hash, and 8 of 9 drifted features listed without a word of the ninth."""
    from pipeline.score import ScoreRun

    drifted = [f"feature_{n}" for n in range(8)] + ["usage_1b6b1a6f89_per_seat_30d"]
    scores = pd.DataFrame(
        {"as_of": pd.Timestamp("2025-01-01"), "arr": [1.0], "churn_probability": [0.5], "health_band": ["red"],
         "risk_band": ["medium"]}
    )  # fmt: skip
    drift = pd.DataFrame(
        {"feature": [*drifted, "steady"], "psi": 1.0, "noise_level": 0.1, "drifted": [True] * 9 + [False]}
    )
    run = ScoreRun(
        scores, pd.DataFrame(), drift, "3", named={"usage_1b6b1a6f89_per_seat_30d": "usage_検索_per_seat_30d"}
    )
    console = Console(record=True, width=80)
    with warnings_once(console):
        print_score_run(run, {}, console)
        said = console.export_text(clear=False).splitlines()
        print_warnings([line.removeprefix("warning: ") for line in said if "drifted" in line], console)  # said once
    said = _lines(console)
    assert said[0].startswith("Scored 1 account as of 2025-01-01")
    lines = [line for line in said if "drifted" in line]
    assert lines == [
        "warning: 9 features drifted from the training data (PSI past the threshold and past what sampling noise "
        "gives 1 account): feature_0, feature_1, feature_2, feature_3, feature_4, feature_5, feature_6, feature_7 "
        "and 1 more"
    ]
    run.drift = drift.assign(drifted=[False] * 8 + [True, False])
    console = Console(record=True, width=300)
    print_score_run(run, {}, console)
    said = console.export_text()
    assert "warning: 1 feature drifted from the training data" in said
    assert "): usage_検索_per_seat_30d\n" in said


def test_the_drifting_churn_probability_is_said_as_the_score_not_as_one_more_feature() -> None:
    """Drift monitors the score too: it read "7 features drifted ...: ..., churn_probability"."""
    from pipeline.console import drift_warning

    assert drift_warning(["days_since_last_login", "churn_probability"], 205) == (
        "1 feature and the churn probabilities drifted from the training data (PSI past the threshold and past "
        "what sampling noise gives 205 accounts): days_since_last_login"
    )
    assert drift_warning(["churn_probability"], 1) == (
        "the churn probabilities drifted from the training data (PSI past the threshold and past what sampling "
        "noise gives 1 account)"
    )


def _overridden(**changes: object) -> pd.Series:
    return pd.Series(
        {"health_adoption": 90.0, "ml_adoption": 0.4, "health_score": 72.0, "health_band": "green",
         "churn_probability": 0.3, "risk_band": "medium", "health_drivers": "", "top_drivers": "", "context": "",
         "actionable_log_odds": 0.4, "context_log_odds": -0.1, "lifecycle_stage": "adopt", "days_to_renewal": 90.0,
         "override_ids": "7", "rule_health_score": 58.0, **changes}
    )  # fmt: skip


RECORDS = pd.DataFrame(
    {
        "override_id": [3, 7, 9],
        "kind": ["account", "category", "sentiment"],
        "category": [None, "adoption", None],
        "rating": ["40", "90", "red"],
        "author": ["jo", "li", ""],
        "valid_until": pd.to_datetime(["2026-02-01", "2026-01-01", "2026-03-01"]),
        "reason": ["lost the champion", "new team logs in through SSO", "tense QBR"],
    }
)


def test_explain_says_each_override_in_force_with_who_until_when_and_why() -> None:
    """The line of an account under one override read "CSM overrides in force (rule score 58): adoption: new team
    logs in through SSO (by adoption: li; until adoption: 2026-01-01)": a plural, and each field prefixed again."""
    from pipeline.console import print_explanation

    said = []
    for scores in (_overridden(), _overridden(override_ids="3,9"), _overridden(override_ids="9", health_score=58.0)):
        console = Console(record=True, width=300)
        print_explanation("A1", date(2025, 12, 1), scores, ["adoption"], console, overrides=RECORDS)
        said += [line for line in _lines(console) if "CSM override" in line]
    assert said == [
        "1 CSM override in force: adoption set to 90 by li until 2026-01-01 (reason: new team logs in through SSO); "
        "the rules alone score the account 58.",
        "2 CSM overrides in force: health score set to 40 by jo until 2026-02-01 (reason: lost the champion); "
        "sentiment set to red until 2026-03-01 (reason: tense QBR); the rules alone score the account 58.",
        "1 CSM override in force: sentiment set to red until 2026-03-01 (reason: tense QBR).",
    ]


def test_explain_prints_a_contribution_that_rounds_to_zero_without_a_sign() -> None:
    """A category whose ML contribution was -0.0004 read "-0.000", a context of +0.001 "+0.00 log-odds": a sign
    says which way the risk moves, where the number shown says it does not."""
    from pipeline.console import print_explanation

    scores = _overridden(ml_adoption=-0.0004, context_log_odds=0.001, actionable_log_odds=-0.004, override_ids="")
    console = Console(record=True, width=200)
    print_explanation("A1", date(2025, 12, 1), scores, ["adoption"], console)
    text = console.export_text()
    rows = {line.split("│")[1].strip(): line.split("│")[3].strip() for line in text.splitlines() if "│" in line}
    assert rows["adoption"] == "0.000"
    assert "(actionable features in all: 0.00 log-odds)" in text and "(context in all: 0.00 log-odds)" in text


def test_the_calibration_table_says_its_churned_rows_as_rows_not_as_churners() -> None:
    """A band of 198 accounts read '503 churners' (its churned snapshot rows): churned rows are said as such."""
    from models.comparison import calibration_by_band
    from pipeline.console import calibration_table

    accounts = pd.Series(["A", "A", "A", "B", "C", "C"])  # the high band: five rows of three accounts, four churned
    calibration = calibration_by_band(
        np.array([1, 1, 1, 1, 0, 0]), np.array([0.9, 0.8, 0.7, 0.6, 0.6, 0.1]),
        pd.Series(["high", "high", "high", "high", "high", "low"]), accounts,
    )  # fmt: skip
    console = Console(record=True, width=200)
    console.print(calibration_table(calibration))
    lines = _lines(console)
    header = next(line for line in lines if "mean predicted" in line)
    assert "churned rows" in header and "churners" not in header
    high = next(line for line in lines if "high" in line)
    assert [cell.strip() for cell in high.split("│")[1:5]] == ["high", "5", "3", "4"], high


def test_a_health_score_is_said_in_the_band_it_is_in() -> None:
    """A score of 59.8 is red (yellow from 60): the alerts table read "60 red" and `churn explain` "60 (red)", a
    number in one band said with another's name. Scores are cut to the whole point, not rounded, as the bands are
    lower bounds."""
    from pipeline.console import print_alerts, print_explanation

    alerts = pd.DataFrame(
        {
            "account_id": ["A1", "A2"],
            "arr_at_risk": [1000.0, 500.0],
            "churn_probability": [0.3, 0.2],
            "health_score": [59.797909, 69.9999999],
            "health_band": ["red", "green"],
            "reasons": ["health band worsened from yellow to red", "renews in 5 days with red health"],
            "fallen_categories": ["", ""],
            "top_drivers": ["", ""],
        }
    )
    console = Console(record=True, width=200)
    print_alerts(alerts, console)
    shown = {line.split("│")[1].strip(): line.split("│")[4].strip() for line in _lines(console) if "│ A" in line}
    assert shown == {"A1": "59 red", "A2": "70 green"}  # 69.9999999 is green: bands compare 6 decimals

    console = Console(record=True, width=200)
    print_explanation("A1", date(2025, 12, 1), _overridden(health_score=59.797909, health_band="red"), [], console)
    assert "59 (red)" in console.export_text()


def test_a_churn_probability_is_said_in_the_risk_band_it_is_in() -> None:
    """A probability of 0.4996 is medium when high starts at 0.5: the alerts table read "50%" and `churn explain`
    "50% churn (medium risk)", a number in one band said with another's name. Probabilities are cut to the
    whole percent, as health scores are to the whole point."""
    from pipeline.console import print_alerts, print_explanation

    alerts = pd.DataFrame(
        {
            "account_id": ["A1"],
            "arr_at_risk": [1000.0],
            "churn_probability": [0.4996],
            "health_score": [55.0],
            "health_band": ["red"],
            "reasons": ["health band worsened from yellow to red"],
            "fallen_categories": [""],
            "top_drivers": [""],
        }
    )
    console = Console(record=True, width=200)
    print_alerts(alerts, console)
    (row,) = [line.split("│") for line in _lines(console) if "│ A1" in line]
    assert row[3].strip() == "49%"

    console = Console(record=True, width=200)
    print_explanation("A1", date(2025, 12, 1), _overridden(churn_probability=0.4996, risk_band="medium"), [], console)
    assert "49% churn (medium risk)" in console.export_text()
