"""Suggested scorecard weights: fitted on early rows, better on later rows, valid YAML."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import ChurnError
from models.health_backtest import backtest_health
from models.scorecard import parse_scorecard
from models.weights import SuggestionLimits, _round_to_total, _within, nonnegative_logistic, suggest_weights
from pipeline.config import load_scorecard

# Equal weights everywhere: the data, not the file, must say where churn comes from.
SCORECARD = parse_scorecard(
    {
        "name": "toy",
        "description": "toy scorecard for weight fitting",
        "default": {
            "categories": {
                "adoption": {
                    "weight": 25,
                    "metrics": {
                        "workflow_rate": {"scheme": "linear", "bad": 0.0, "good": 1.0, "weight": 1},
                        "breadth": {"scheme": "thresholds", "cuts": [2, 4], "points": [0, 50, 100], "weight": 1},
                    },
                },
                "support": {"weight": 25, "metrics": {"csat": {"scheme": "linear", "bad": 1, "good": 5}}},
                "training": {"weight": 25, "metrics": {"trained_share": {"scheme": "linear", "bad": 0, "good": 1}}},
                "account": {"weight": 25, "metrics": {"tenure_days": {"scheme": "percentile", "healthier": "higher"}}},
            }
        },
        "segments": {
            "enterprise": {
                "when": "seats >= 500",
                "categories": {"support": {"weight": 50}, "training": None},
            }
        },
    }
)


def _history(n_accounts: int = 500, months: int = 12, seed: int = 0) -> pd.DataFrame:
    """Monthly snapshots; churn depends on workflow completion only (the adoption category)."""
    rng = np.random.default_rng(seed)
    frames = []
    for month in range(months):
        as_of = pd.Timestamp("2023-01-01") + pd.DateOffset(months=month)
        workflow = rng.uniform(0, 1, n_accounts)
        churn_logit = -1.0 - 4.0 * (workflow - 0.5)
        frames.append(
            pd.DataFrame(
                {
                    "account_id": [f"A{i:04d}" for i in range(n_accounts)],
                    "as_of": as_of,
                    "label": (rng.uniform(size=n_accounts) < 1 / (1 + np.exp(-churn_logit))).astype(int),
                    "term_end": as_of + pd.Timedelta(days=20),
                    "workflow_rate": workflow,
                    "breadth": rng.integers(0, 6, n_accounts).astype(float),
                    "csat": rng.uniform(1, 5, n_accounts),
                    "trained_share": rng.uniform(0, 1, n_accounts),
                    "tenure_days": rng.uniform(0, 1000, n_accounts),
                    "seats": np.where(np.arange(n_accounts) < 5, 800.0, 20.0),
                }
            )
        )
    history = pd.concat(frames, ignore_index=True)
    history.loc[history.sample(frac=0.05, random_state=1).index, "csat"] = np.nan  # missing metric values
    return history


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return _history()


UNBOUNDED = SuggestionLimits(category_floor=0, max_change=100, metric_floor=0)


@pytest.fixture(scope="module")
def suggestion(history):
    """The fit itself, free to move as far as the data says (the limits are tested apart)."""
    return suggest_weights(history, SCORECARD, validation_share=0.3, grace_days=30, limits=UNBOUNDED)


@pytest.fixture(scope="module")
def bounded(history):
    """What `churn compare` suggests by default: within the configured limits."""
    return suggest_weights(history, SCORECARD, validation_share=0.3, grace_days=30)


def test_weight_goes_to_the_category_that_drives_churn(suggestion):
    default = suggestion.category_weights.query("scorecard == 'default'").set_index("category")
    assert default["suggested"].sum() == 100
    assert default.loc["adoption", "suggested"] >= 70
    assert default["suggested"].idxmax() == "adoption"
    assert all(default["fitted"])
    metrics = suggestion.metric_weights.query("scorecard == 'default' and category == 'adoption'").set_index("metric")
    assert metrics.loc["workflow_rate", "suggested"] > 3 * metrics.loc["breadth", "suggested"]
    assert metrics["suggested"].sum() == pytest.approx(metrics["current"].sum()), "metric scale of the file is kept"


def test_suggested_weights_improve_auc_on_later_rows(suggestion, history):
    assert suggestion.evaluation_period[0] > suggestion.fit_period[1]
    assert suggestion.suggested_auc > suggestion.current_auc + 0.05
    later = history[history["as_of"] >= suggestion.evaluation_period[0]]
    assert suggestion.current_auc == pytest.approx(backtest_health(later, SCORECARD)["auc"])
    assert suggestion.suggested_auc == pytest.approx(backtest_health(later, suggestion.config())["auc"])
    assert suggestion.evaluation_rows == len(later)


def test_small_segment_keeps_its_weights_and_says_so(suggestion):
    segment = suggestion.category_weights.query("scorecard == 'enterprise'").set_index("category")
    assert segment["suggested"].to_dict() == segment["current"].to_dict()
    assert not segment["fitted"].any()
    assert any("segment 'enterprise'" in note and "kept" in note for note in suggestion.notes)
    card = suggestion.config().segments["enterprise"]
    assert card.categories["support"].weight == 50 and "training" not in card.categories


def test_yaml_round_trips_through_load_scorecard(suggestion, tmp_path):
    path = tmp_path / "suggested_healthscore.yaml"
    path.write_text(suggestion.yaml_text())
    text = path.read_text()
    assert text.startswith("# Suggested health-score weights")
    loaded = load_scorecard(path, available=_history(5, 1).columns)
    assert loaded.model_dump() == suggestion.config().model_dump()
    assert (
        loaded.default.categories["adoption"].weight
        == suggestion.category_weights.set_index(["scorecard", "category"]).loc[("default", "adoption"), "suggested"]
    )
    assert loaded.segments["enterprise"].when[0].column == "seats"
    assert [p for p in tmp_path.iterdir()] == [path], "atomic write leaves no temporary files"


def _without_weights(value):
    if isinstance(value, dict):
        return {k: _without_weights(v) for k, v in value.items() if k not in ("weight", "bands")}
    return value


def test_only_weights_change_and_the_diff_shows_them(suggestion):
    current, suggested = SCORECARD.model_dump(), suggestion.config().model_dump()
    assert current != suggested
    assert _without_weights(current) == _without_weights(suggested), "schemes, cuts and rules are untouched"
    diff = suggestion.yaml_diff()
    assert "-      weight: 25" in diff and "+      weight: " in diff
    assert "workflow_rate: {scheme: linear, bad: 0, good: 1, weight: " in diff


def test_current_layout_reproduces_the_current_scorecard(suggestion):
    assert parse_scorecard(suggestion.current).model_dump() == SCORECARD.model_dump()


def test_evaluation_frame_must_be_later(history):
    early = history[history["as_of"] < "2023-07-01"]
    late = history[history["as_of"] >= "2023-07-01"]
    result = suggest_weights(early, SCORECARD, evaluation_frame=late)
    assert result.fit_rows == len(early) and result.evaluation_rows == len(late)
    with pytest.raises(ChurnError, match="evaluation period must come after"):
        suggest_weights(late, SCORECARD, evaluation_frame=early)


def test_protective_looking_category_gets_zero_weight_not_a_negative_one():
    history = _history(300, 8, seed=2)
    rng = np.random.default_rng(5)
    history["label"] = (rng.uniform(size=len(history)) < 1 / (1 + np.exp(-(2 - 4 * history["csat"] / 5)))).astype(int)
    history.loc[history["label"] == 1, "workflow_rate"] = 0.95  # churners look *healthier* on adoption
    result = suggest_weights(history, SCORECARD, validation_share=0.3, grace_days=30, limits=UNBOUNDED)
    default = result.config().default.categories
    assert default["adoption"].weight == 0
    assert default["support"].weight == max(c.weight for c in default.values())
    assert sum(c.weight for c in default.values()) == 100


def test_nonnegative_logistic_and_rounding():
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (4000, 3))
    y = (rng.uniform(size=4000) < 1 / (1 + np.exp(-(3 * X[:, 0] - 2 * X[:, 1] - 1)))).astype(float)
    coef = nonnegative_logistic(X, y)
    assert coef[0] == pytest.approx(3, abs=0.4)
    assert coef[1] == 0.0, "a protective variable is clipped at zero, not sign-flipped"
    assert coef[2] < 0.3
    rounded = _round_to_total({"a": 33.4, "b": 33.3, "c": 33.3}, 100, 1)
    assert sum(rounded.values()) == 100 and rounded == {"a": 34, "b": 33, "c": 33}


def test_within_moves_every_weight_alike_until_a_bound_stops_it() -> None:
    moved = _within({"a": 60, "b": 30, "c": 10}, {"a": 0, "b": 0, "c": 8}, {"a": 50, "b": 100, "c": 100}, 100)
    assert moved["a"] == pytest.approx(50) and sum(moved.values()) == pytest.approx(100)
    assert moved["b"] - 30 == pytest.approx(moved["c"] - 10)  # the 10 points taken from a are shared evenly


def test_suggested_weights_respect_the_floor_and_the_largest_move(bounded, suggestion) -> None:
    limits = SuggestionLimits()
    default = bounded.category_weights.query("scorecard == 'default'").set_index("category")
    assert default["suggested"].sum() == 100
    assert ((default["suggested"] - default["current"]).abs() <= limits.max_change + 1).all()  # +1: whole points
    assert (default["suggested"] >= limits.category_floor).all()
    assert default["suggested"].idxmax() == "adoption" and default.loc["adoption", "suggested"] > 25
    free = suggestion.metric_weights.query("scorecard == 'default'").set_index(["category", "metric"])
    metrics = bounded.metric_weights.query("scorecard == 'default'").set_index(["category", "metric"])
    assert (free["suggested"] < limits.metric_floor * free["current"]).any(), "unbounded, a metric falls far"
    assert (metrics["suggested"] >= limits.metric_floor * metrics["current"] - 0.1).all()  # 0.1: rounding step


def test_each_change_comes_with_its_own_backtest_gain_and_a_reviewed_diff(bounded, history) -> None:
    changes = bounded.changes
    assert len(changes) >= 3 and changes["auc_gain"].notna().all()
    assert changes["auc_gain"].is_monotonic_decreasing
    adoption = changes[changes["change"].str.startswith("adoption weight 25 -> ")].iloc[0]
    later = history[history["as_of"] >= bounded.evaluation_period[0]]
    alone = SCORECARD.model_dump()
    alone["segments"]["enterprise"]["inherit"] = False  # its categories as resolved, not merged again
    weight = float(adoption["change"].rsplit(" ", 1)[1])
    for category in alone["default"]["categories"].values():  # adoption has its share of 100, the rest share the rest
        category["weight"] *= (100 - weight) / 75
    alone["default"]["categories"]["adoption"]["weight"] = weight
    auc = backtest_health(later, parse_scorecard(alone))["auc"]
    assert adoption["auc_gain"] == pytest.approx(auc - bounded.current_auc) and adoption["auc_gain"] > 0
    text = bounded.review_text()
    assert f"#   {adoption['auc_gain']:+.4f}  {adoption['change']}" in text
    assert "--- current\n+++ suggested\n" in text and "-      weight: 25\n" in text


def test_suggested_bands_put_the_target_share_in_red_and_show_churn_per_band(bounded, history) -> None:
    bands = bounded.bands.set_index("band")
    card = bounded.config()
    assert (card.bands.yellow, card.bands.green) == (
        bands.at["yellow", "suggested_from"],
        bands.at["green", "suggested_from"],
    )
    fit = history[history["as_of"] <= bounded.fit_period[1]]
    from models.healthscore import score_health

    red = (score_health(fit, card).frame["health_band"] == "red").mean()
    assert red == pytest.approx(0.15, abs=0.03)
    assert bands.at["red", "suggested_share"] == pytest.approx(0.15, abs=0.05)
    assert bands.at["red", "suggested_churn_rate"] > bands.at["green", "suggested_churn_rate"]
    assert bands.at["red", "current_churn_rate"] > 0 and "current_share" in bands.columns
