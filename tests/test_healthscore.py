"""Rule-based health scoring against hand-computed expectations, plus its invariants and backtest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from features.errors import ConfigError, DataContractError
from features.registry import describe
from models.health_backtest import backtest_health
from models.healthscore import (
    assign_scorecards,
    explain_health,
    points_for,
    score_health,
)
from models.scorecard import parse_scorecard
from pipeline.config import DEFAULTS_DIR, load_scorecard

NAN = np.nan
IDENTITY = {"scheme": "linear", "bad": 0, "good": 100}  # points == value, to make sums readable


def card(categories: dict, **top: object) -> dict:
    return {"default": {"categories": categories}, **top}


def rule(raw: dict):
    """The validated metric rule of a one-metric scorecard."""
    return parse_scorecard(card({"c": {"metrics": {"m": raw}}})).default.categories["c"].metrics["m"]


def points(raw: dict, values: list[float], table: pd.DataFrame | None = None, population: str | None = None):
    table = table if table is not None else pd.DataFrame(index=range(len(values)))
    return points_for(rule(raw), np.asarray(values, dtype=float), table, population)


# --- schemes -------------------------------------------------------------------------------------


def test_linear_scheme_in_both_directions_clips_to_0_100() -> None:
    values = [-5, 0, 2.5, 10, 20, NAN]
    np.testing.assert_allclose(points({"scheme": "linear", "bad": 0, "good": 10}, values), [0, 0, 25, 100, 100, NAN])
    np.testing.assert_allclose(points({"scheme": "linear", "bad": 10, "good": 0}, values), [100, 100, 75, 0, 0, NAN])
    np.testing.assert_allclose(points({"scheme": "linear", "bad": 2.5, "good": 4.5}, [3.0]), [25.0])


def test_thresholds_scheme_cut_offs_belong_to_the_range_above() -> None:
    raw = {"scheme": "thresholds", "cuts": [1, 3], "points": [0, 50, 100]}
    np.testing.assert_allclose(points(raw, [-1, 0.999, 1, 2.99, 3, 50, NAN]), [0, 0, 50, 50, 100, 100, NAN])
    lower_is_better = {"scheme": "thresholds", "cuts": [3, 8, 15], "points": [100, 70, 40, 0]}
    np.testing.assert_allclose(points(lower_is_better, [0, 3, 7, 8, 15, 400]), [100, 70, 70, 40, 0, 0])


def test_boolean_scheme_treats_non_zero_as_true() -> None:
    np.testing.assert_allclose(points({"scheme": "boolean"}, [0, 1, 2.5, NAN]), [0, 100, 100, NAN])
    np.testing.assert_allclose(points({"scheme": "boolean", "healthy": False}, [0, 1, NAN]), [100, 0, NAN])


def test_percentile_scheme_uses_mid_ranks_and_ignores_missing_values() -> None:
    np.testing.assert_allclose(points({"scheme": "percentile"}, [10, 20, 20, 40]), [12.5, 50, 50, 87.5])
    lower = {"scheme": "percentile", "healthier": "lower"}
    np.testing.assert_allclose(points(lower, [10, 20, 20, 40]), [87.5, 50, 50, 12.5])
    np.testing.assert_allclose(points({"scheme": "percentile"}, [10, NAN, 30]), [25, NAN, 75])
    np.testing.assert_allclose(points({"scheme": "percentile"}, [7.0]), [50.0])


def test_percentile_ranks_within_each_scoring_date_and_segment() -> None:
    table = pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2024-01-01"] * 4 + ["2024-02-01"] * 2),
            "segment": ["smb", "smb", "ent", "ent", "smb", "smb"],
        }
    )
    values = [1, 2, 100, 300, 5, 6]
    np.testing.assert_allclose(
        points({"scheme": "percentile"}, values, table, "as_of"), [12.5, 37.5, 62.5, 87.5, 25, 75]
    )
    within = {"scheme": "percentile", "within": "segment"}
    np.testing.assert_allclose(points(within, values, table, "as_of"), [25, 75, 25, 75, 25, 75])
    np.testing.assert_allclose(points(within, values, table, None), [12.5, 37.5, 25, 75, 62.5, 87.5])


def test_percentile_population_falls_back_to_whole_table_without_the_column() -> None:
    config = parse_scorecard(card({"c": {"metrics": {"m": {"scheme": "percentile"}}}}))
    assert config.population_by == "as_of"
    scores = score_health(pd.DataFrame({"m": [3.0, 1.0, 2.0, 4.0]}), config).frame
    np.testing.assert_allclose(scores["health_score"], [62.5, 12.5, 37.5, 87.5])


# --- weights, missing data, coverage -------------------------------------------------------------

TWO_CATEGORIES = card(
    {
        "a": {"weight": 3, "metrics": {"m1": IDENTITY, "m2": {**IDENTITY, "weight": 3}}},
        "b": {"weight": 1, "metrics": {"m3": IDENTITY}},
    }
)


def test_weighted_means_and_renormalisation_under_missing_data() -> None:
    table = pd.DataFrame(
        {
            "m1": [20, 20, NAN, NAN],
            "m2": [60, NAN, NAN, NAN],
            "m3": [100, 100, 40, NAN],
        },
        index=["full", "no_m2", "only_b", "empty"],
    )
    health = score_health(table, parse_scorecard(TWO_CATEGORIES))
    frame = health.frame
    assert list(frame.columns) == [
        "health_score",
        "health_band",
        "health_a",
        "health_b",
        "health_coverage",
        "health_scorecard",
    ]
    assert list(frame.index) == list(table.index)
    # full: a = (20 + 3*60)/4 = 50, b = 100, score = (3*50 + 100)/4 = 62.5
    # no_m2: a = 20 (m2's weight goes to m1), score = (3*20 + 100)/4 = 40
    # only_b: category a skipped, score = b = 40; empty: no score at all
    np.testing.assert_allclose(frame["health_a"], [50, 20, NAN, NAN])
    np.testing.assert_allclose(frame["health_b"], [100, 100, 40, NAN])
    np.testing.assert_allclose(frame["health_score"], [62.5, 40, 40, NAN])
    # coverage: share of configured weight with data; a = 3/4 of it, m1 is 1/4 of a
    np.testing.assert_allclose(frame["health_coverage"], [1.0, 0.75 * 0.25 + 0.25, 0.25, 0.0])
    assert frame["health_band"].tolist()[:3] == ["yellow", "red", "red"]
    assert pd.isna(frame["health_band"].iloc[3])
    assert frame["health_scorecard"].tolist() == ["default"] * 4
    # what each metric carried and cost: no_m2 -> m1 carries 3/4, m3 1/4; lost = 0.75 * 80 = 60
    np.testing.assert_allclose(health.weights.loc["no_m2"], [0.75, 0.0, 0.25])
    np.testing.assert_allclose(health.lost_points().loc["no_m2"], [60, 0, 0])
    np.testing.assert_allclose(health.weights.loc["full"], [0.1875, 0.5625, 0.25])
    np.testing.assert_allclose(health.points.loc["only_b"], [NAN, NAN, 40])


def test_per_metric_default_replaces_missing_value_instead_of_skipping() -> None:
    raw = card(
        {
            "a": {"weight": 3, "metrics": {"m1": IDENTITY, "m2": {**IDENTITY, "weight": 3, "default": 100}}},
            "b": {"weight": 1, "metrics": {"m3": IDENTITY}},
        }
    )
    frame = score_health(pd.DataFrame({"m1": [20.0], "m2": [NAN], "m3": [100.0]}), parse_scorecard(raw)).frame
    # a = (20 + 3*100)/4 = 80, score = (3*80 + 100)/4 = 85, nothing missing
    assert frame["health_a"].iloc[0] == pytest.approx(80)
    assert frame["health_score"].iloc[0] == pytest.approx(85)
    assert frame["health_coverage"].iloc[0] == pytest.approx(1.0)


def test_zero_weight_category_is_reported_but_does_not_count() -> None:
    raw = card({"a": {"weight": 1, "metrics": {"m1": IDENTITY}}, "b": {"weight": 0, "metrics": {"m2": IDENTITY}}})
    frame = score_health(pd.DataFrame({"m1": [80.0, NAN], "m2": [10.0, 10.0]}), parse_scorecard(raw)).frame
    np.testing.assert_allclose(frame["health_b"], [10, 10])
    np.testing.assert_allclose(frame["health_score"], [80, NAN])
    np.testing.assert_allclose(frame["health_coverage"], [1.0, 0.0])


def test_boolean_and_nullable_columns_are_read_as_numbers() -> None:
    raw = card({"c": {"metrics": {"flag": {"scheme": "boolean"}, "count": IDENTITY}}})
    table = pd.DataFrame(
        {
            "flag": pd.array([True, False, None], dtype="boolean"),
            "count": pd.array([50, 50, None], dtype="Int64"),
        }
    )
    frame = score_health(table, parse_scorecard(raw)).frame
    np.testing.assert_allclose(frame["health_score"], [75, 25, NAN])


def test_non_numeric_metric_column_is_a_data_error() -> None:
    # a prepared table's own column (the registry's columns of words are refused when the scorecard loads)
    config = parse_scorecard(card({"c": {"metrics": {"tier": {"scheme": "boolean"}}}}))
    table = pd.DataFrame({"tier": pd.Categorical(["gold", "silver", "gold"])})
    with pytest.raises(DataContractError, match=r"Health metric 'tier': column is not numeric .*'gold', 'silver'"):
        score_health(table, config)


def test_scoring_a_table_without_a_configured_column_names_it() -> None:
    config = parse_scorecard(card({"c": {"metrics": {"csat_mean_90d": IDENTITY}}}))
    with pytest.raises(ConfigError, match=r"'csat_mean_90d' \(metric in default.c\); did you mean 'csat_mean_30d'"):
        score_health(pd.DataFrame({"csat_mean_30d": [4.0]}), config)


# --- bands ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (100, "green"),
        (70, "green"),
        (69.9999999999, "green"),  # a float sum that lands on the boundary counts as the boundary
        (69.999, "yellow"),
        (60, "yellow"),
        (59.999, "red"),
        (0, "red"),
    ],
)
def test_default_bands_at_their_edges(value: float, band: str) -> None:
    config = parse_scorecard(card({"c": {"metrics": {"m": IDENTITY}}}))
    assert score_health(pd.DataFrame({"m": [value]}), config).frame["health_band"].iloc[0] == band


def test_configured_bands_and_boundary_reached_through_weighted_sums() -> None:
    raw = card(
        {"c": {"metrics": {"m1": {**IDENTITY, "weight": 0.1}, "m2": {**IDENTITY, "weight": 0.2}}}},
        bands={"green": 80, "yellow": 50},
    )
    table = pd.DataFrame({"m1": [80.0, 49.0, 50.0], "m2": [80.0, 50.5, 50.0]})
    frame = score_health(table, parse_scorecard(raw)).frame
    np.testing.assert_allclose(frame["health_score"], [80, 50, 50])
    assert frame["health_band"].tolist() == ["green", "yellow", "yellow"]


# --- segment scorecards --------------------------------------------------------------------------

SEGMENTED = card(
    {
        "adoption": {"weight": 1, "metrics": {"m1": IDENTITY}},
        "support": {"weight": 1, "metrics": {"m2": IDENTITY}},
    },
    segments={
        "onboarding": {
            "when": "tenure_days < 120",
            "categories": {
                "adoption": {"weight": 3, "metrics": {"m1": {"scheme": "thresholds", "cuts": [50], "points": [0, 100]}}}
            },
        },
        "regulated": {
            "when": "regulated == 1",
            "categories": {"compliance": {"weight": 2, "metrics": {"compliance_use": {"scheme": "boolean"}}}},
        },
        "big_smb": {"when": ["segment in [smb, mid]", "seats >= 100"], "categories": {"support": {"weight": 0}}},
    },
)


def test_first_matching_segment_wins_and_missing_attributes_never_match() -> None:
    table = pd.DataFrame(
        {
            "tenure_days": [50, 119.9, 120, 500, NAN, NAN, 900, 900],
            "regulated": [1, 0, 1, 0, NAN, 1, 0, 0],
            "segment": ["smb", "smb", "smb", "smb", None, "ent", "mid", "ent"],
            "seats": [10, 10, 10, 10, 500, 10, 150, 150],
        }
    )
    chosen = assign_scorecards(table, parse_scorecard(SEGMENTED))
    assert chosen.tolist() == [
        "onboarding",
        "onboarding",
        "regulated",
        "default",
        "default",
        "regulated",
        "big_smb",
        "default",
    ]
    as_bool = table.assign(regulated=table["regulated"].map({1.0: True, 0.0: False}).astype("boolean"))
    assert assign_scorecards(as_bool, parse_scorecard(SEGMENTED)).tolist() == chosen.tolist()


def test_not_equal_rule_does_not_match_missing_values() -> None:
    raw = card({"c": {"metrics": {"m": IDENTITY}}}, segments={"other": {"when": "region != emea", "categories": {}}})
    table = pd.DataFrame({"region": ["emea", "amer", None]})
    assert assign_scorecards(table, parse_scorecard(raw)).tolist() == ["default", "other", "default"]


def test_each_row_is_scored_with_its_own_scorecard() -> None:
    table = pd.DataFrame(
        {
            "m1": [40.0, 40.0, 40.0],
            "m2": [100.0, 100.0, 100.0],
            "compliance_use": [0.0, 0.0, 1.0],
            "tenure_days": [30, 400, 400],
            "regulated": [0, 0, 1],
            "segment": ["ent", "ent", "ent"],
            "seats": [10, 10, 10],
        }
    )
    health = score_health(table, parse_scorecard(SEGMENTED))
    frame = health.frame
    assert frame["health_scorecard"].tolist() == ["onboarding", "default", "regulated"]
    # onboarding: m1 = 40 < 50 -> 0 points, adoption weight 3: (3*0 + 100)/4 = 25
    # default: (40 + 100)/2 = 70; regulated: (40 + 100 + 2*100)/4 = 85
    np.testing.assert_allclose(frame["health_score"], [25, 70, 85])
    np.testing.assert_allclose(frame["health_adoption"], [0, 40, 40])
    np.testing.assert_allclose(frame["health_compliance"], [NAN, NAN, 100])
    assert list(health.points.columns) == ["m1", "m2", "compliance_use"]
    np.testing.assert_allclose(health.points["m1"], [0, 40, 40])
    np.testing.assert_allclose(health.points["compliance_use"], [NAN, NAN, 100])
    assert frame["health_band"].tolist() == ["red", "green", "green"]


def test_rules_with_numbers_read_a_text_column_of_numbers_as_numbers() -> None:
    """An accounts column of the team's own read from CSV is text: `employees > 100` failed, and `tier == 1`
    compared '1' with 1 and matched no account."""
    segments = {
        "big": {"when": "employees > 100", "categories": {}},
        "one": {"when": "tier in [1, 2]", "categories": {}},
    }
    raw = card({"c": {"metrics": {"m": IDENTITY}}}, segments=segments)
    table = pd.DataFrame({"m": [1.0] * 4, "employees": ["500", "20", None, "20"], "tier": ["3", "1", "1", None]})
    assert assign_scorecards(table, parse_scorecard(raw)).tolist() == ["big", "one", "one", "default"]


def test_rule_on_a_column_of_the_wrong_type_is_a_config_error() -> None:
    raw = card({"c": {"metrics": {"m": IDENTITY}}}, segments={"s": {"when": "tier < 5", "categories": {}}})
    table = pd.DataFrame({"m": [1.0], "tier": ["gold"]})  # a prepared table's own column
    with pytest.raises(ConfigError, match=r"Segment 's' rule 'tier < 5': cannot compare column 'tier'"):
        score_health(table, parse_scorecard(raw))


# --- the shipped scorecard -----------------------------------------------------------------------


def feature_table(config_path: Path, n: int, seed: int = 0) -> pd.DataFrame:
    """Random values in realistic ranges for every column the scorecard uses, some missing."""
    rng = np.random.default_rng(seed)
    config = load_scorecard(config_path)
    table = pd.DataFrame({m: rng.uniform(0, 1, n) * rng.choice([1, 5, 30], n) for m in config.metrics()})
    table["csat_mean_90d"] = rng.uniform(1, 5, n)
    for column in ("csat_mean_90d", "workflow_completion_rate_90d", "logins_per_seat_30d", "days_to_first_value"):
        table.loc[rng.random(n) < 0.15, column] = NAN
    table["tenure_days"] = rng.integers(0, 1500, n).astype(float)
    table["regulated"] = (rng.random(n) < 0.3).astype(float)
    table["segment"] = pd.Categorical(rng.choice(["smb", "mid", "enterprise"], n))
    table["as_of"] = pd.Timestamp("2024-06-01")
    return table


def test_default_scorecard_scores_a_large_book_with_every_segment_rule() -> None:
    """Speed belongs in bench/ (a timed assertion fails on a loaded machine); this checks the result."""
    config = load_scorecard(DEFAULTS_DIR / "healthscore.yaml")
    table = feature_table(DEFAULTS_DIR / "healthscore.yaml", 50_000)
    frame = score_health(table, config).frame
    assert len(frame) == 50_000
    assert set(frame["health_scorecard"]) == {"default", "onboarding", "regulated"}
    assert frame["health_score"].between(0, 100).all()
    assert set(frame["health_band"]) == {"green", "yellow", "red"}
    assert [c for c in frame.columns if c.startswith("health_")][2:7] == [
        "health_adoption",
        "health_engagement",
        "health_support",
        "health_training",
        "health_account",
    ]


def test_changing_one_weight_in_the_yaml_changes_every_affected_score_and_nothing_else(tmp_path: Path) -> None:
    source = DEFAULTS_DIR / "healthscore.yaml"
    table = feature_table(source, 3000, seed=1)
    before = score_health(table, load_scorecard(source))
    raw = yaml.safe_load(source.read_text())
    engagement = raw["default"]["categories"]["engagement"]["metrics"]
    assert engagement["logins_per_seat_30d"]["weight"] == 2
    engagement["logins_per_seat_30d"]["weight"] = 5
    changed_file = tmp_path / "healthscore.yaml"
    changed_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    after = score_health(table, load_scorecard(changed_file))

    pd.testing.assert_frame_equal(before.points, after.points)
    for column in ("health_adoption", "health_support", "health_training", "health_account", "health_scorecard"):
        pd.testing.assert_series_equal(before.frame[column], after.frame[column])
    # engagement moves exactly where the metric has data and its points differ from the category's
    # score (a weighted mean only moves when the re-weighted term differs from it) -- in every
    # scorecard, since the segments inherit the weight
    logins = before.points["logins_per_seat_30d"]
    old, new = before.frame["health_engagement"], after.frame["health_engagement"]
    expected = logins.notna() & ~np.isclose(logins, old, rtol=0, atol=1e-9)
    moved = ~np.isclose(old, new, rtol=0, atol=1e-9, equal_nan=True)
    assert (moved == expected.to_numpy()).all()
    assert expected.mean() > 0.6
    assert set(before.frame.loc[expected, "health_scorecard"]) == {"default", "onboarding", "regulated"}
    # moves towards the re-weighted metric's points
    assert (np.sign(new - old)[expected] == np.sign(logins - old)[expected]).all()
    score_moved = ~np.isclose(
        before.frame["health_score"], after.frame["health_score"], rtol=0, atol=1e-9, equal_nan=True
    )
    assert (score_moved == moved).all()


# --- invariants ----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.floats(0, 5), min_size=4, max_size=4).filter(lambda w: w[0] + w[1] > 0 and w[2] + w[3] > 0),
    cat_weights=st.tuples(st.floats(0.1, 10), st.floats(0.1, 10)),
    values=st.lists(
        st.lists(st.one_of(st.none(), st.floats(-50, 150)), min_size=4, max_size=4), min_size=1, max_size=6
    ),
)
def test_score_is_the_weighted_sum_of_points_and_lost_points_add_up(weights, cat_weights, values) -> None:
    raw = card(
        {
            "a": {
                "weight": cat_weights[0],
                "metrics": {"m0": {**IDENTITY, "weight": weights[0]}, "m1": {**IDENTITY, "weight": weights[1]}},
            },
            "b": {
                "weight": cat_weights[1],
                "metrics": {
                    "m2": {**IDENTITY, "weight": weights[2]},
                    "m3": {"scheme": "percentile", "weight": weights[3]},
                },
            },
        }
    )
    table = pd.DataFrame(values, columns=["m0", "m1", "m2", "m3"], dtype=float)
    health = score_health(table, parse_scorecard(raw))
    score = health.frame["health_score"]
    scored = score.notna()
    assert score[scored].between(0, 100).all()
    assert health.frame["health_coverage"].between(0, 1 + 1e-12).all()
    np.testing.assert_allclose((health.weights * health.points.fillna(0)).sum(axis=1)[scored], score[scored], atol=1e-9)
    np.testing.assert_allclose(health.lost_points().sum(axis=1)[scored], 100 - score[scored], atol=1e-9)
    np.testing.assert_allclose(health.weights.sum(axis=1)[scored], 1.0, atol=1e-12)
    assert (health.weights.sum(axis=1)[~scored] == 0).all()


# --- explanations --------------------------------------------------------------------------------


def test_explanations_name_the_metrics_that_cost_the_most_points() -> None:
    raw = card(
        {
            "engagement": {"weight": 2, "metrics": {"user_utilisation_30d": {"scheme": "linear", "bad": 0, "good": 1}}},
            "support": {
                "weight": 2,
                "metrics": {
                    "csat_mean_90d": {"scheme": "linear", "bad": 1, "good": 5},
                    "nps_custom": IDENTITY,
                },
            },
        }
    )
    table = pd.DataFrame(
        {
            "user_utilisation_30d": [0.2, 1.0, NAN],
            "csat_mean_90d": [4.0, 5.0, NAN],
            "nps_custom": [10.0, 100.0, NAN],
            "seats": [40.0, 10.0, 5.0],
        },
        index=["acme", "globex", "initech"],
    )
    config = parse_scorecard(raw)
    health = score_health(table, config)
    texts = explain_health(table, health, config, n=2)
    assert list(texts.index) == ["acme", "globex", "initech"]
    # acme lost: utilisation 0.5 * 80 = 40, nps 0.25 * 90 = 22.5, csat 0.25 * 25 = 6.25 -> top two
    row = table.loc["acme"].to_dict()
    assert texts["acme"] == (
        f"{describe('user_utilisation_30d', 0.2, row)} (engagement, -40.0 pts); "
        f"{describe('nps_custom', 10.0, row)} (support, -22.5 pts)"
    )
    assert texts["globex"] == "no health points lost"
    assert texts["initech"] == "no data for any health metric"
    assert explain_health(table, health, config, n=3)["acme"].count("pts") == 3


# --- backtest ------------------------------------------------------------------------------------


def test_backtest_reports_auc_and_churn_rate_per_band() -> None:
    config = parse_scorecard(card({"c": {"metrics": {"m": IDENTITY}}}))
    table = pd.DataFrame(
        {
            "as_of": pd.to_datetime(
                ["2023-01-01", "2024-01-01", "2024-01-01", "2024-01-01", "2024-01-01", "2024-02-01"]
            ),
            "m": [10, 90, 80, 65, 50, 40],
            "label": pd.array([0, 0, 1, 1, 0, pd.NA], dtype="Int64"),
        }
    )
    report = backtest_health(table, config, start="2024-01-01")
    # rows 90/0, 80/1, 65/1, 50/0: risk = 10, 20, 35, 50; churners' risks {20, 35} beat 10 but not 50
    assert report["auc"] == pytest.approx(0.5)
    assert (report["rows"], report["churners"], report["churn_rate"]) == (4, 2, 0.5)
    assert report["bands"] == {
        "green": {"count": 2, "churners": 1, "churn_rate": 0.5},
        "yellow": {"count": 1, "churners": 1, "churn_rate": 1.0},
        "red": {"count": 1, "churners": 0, "churn_rate": 0.0},
    }
    assert report["bands_ordered"] is False
    assert report["scorecards"] == {"default": 4}
    everything = backtest_health(table, config)
    # the 2023 renewer at 10 points (risk 90) outranks both churners: 2 winning pairs of 6
    assert everything["rows"] == 5
    assert everything["auc"] == pytest.approx(2 / 6)


def test_backtest_needs_labels() -> None:
    config = parse_scorecard(card({"c": {"metrics": {"m": IDENTITY}}}))
    with pytest.raises(DataContractError, match="needs a 'label' column"):
        backtest_health(pd.DataFrame({"m": [1.0]}), config)
    unlabelled = pd.DataFrame({"m": [1.0], "label": pd.array([pd.NA], dtype="Int64")})
    with pytest.raises(DataContractError, match="no labelled rows"):
        backtest_health(unlabelled, config)


def test_explanations_render_templates_with_the_companion_columns_they_cite() -> None:
    raw = card({"engagement": {"metrics": {"logins_trend_30d": {"scheme": "linear", "bad": -0.5, "good": 0}}}})
    table = pd.DataFrame({"logins_trend_30d": [-0.25], "logins_per_seat_30d": [3.5], "arr": [12000.0]})
    config = parse_scorecard(raw)
    text = explain_health(table, score_health(table, config), config)[0]
    assert text == f"{describe('logins_trend_30d', -0.25, table.iloc[0].to_dict())} (engagement, -50.0 pts)"


def test_the_rule_view_names_a_usage_metric_by_its_product_feature() -> None:
    """A scorecard metric on a product feature whose name is not ASCII (its column hashed) read "uses of
    1b6b1a6f89"; with the model's names it reads as the drivers do."""
    column = "usage_1b6b1a6f89_per_seat_30d"
    raw = card({"adoption": {"metrics": {column: {"scheme": "linear", "bad": 0, "good": 2}}}})
    table = pd.DataFrame({column: [0.5], "seats": [4.0]})
    config = parse_scorecard(raw)
    text = explain_health(table, score_health(table, config), config, labels={column: "usage_検索_per_seat_30d"})[0]
    assert text == "0.5 uses of 検索 per seat in the last 30 days (adoption, -75.0 pts)"


def test_a_per_seat_metric_of_an_account_without_a_seat_count_is_no_data_beside_accounts_with_one() -> None:
    """An account without seats is counted whole: its `user_utilisation_30d` is its active users (4.0), which a
    share's scale (bad 0.1, good 0.8) reads as 400 % of its seats, full points: beside seated accounts such
    accounts scored 93 on engagement against 53. Its per-seat metrics are no data; others still count."""
    config = parse_scorecard(
        card({"engagement": {"metrics": {
            "user_utilisation_30d": {"scheme": "linear", "bad": 0.1, "good": 0.8, "weight": 3},
            "active_days_30d": {**IDENTITY, "weight": 1},
        }}})
    )  # fmt: skip
    table = pd.DataFrame({"user_utilisation_30d": [0.45, 4.0], "active_days_30d": [20.0, 20.0], "seats": [10.0, NAN]})
    scored = score_health(table, config)
    np.testing.assert_allclose(scored.points["user_utilisation_30d"], [50.0, NAN])
    np.testing.assert_allclose(scored.frame["health_score"], [(3 * 50 + 20) / 4, 20.0])
    # a book without any seat count is on one scale, whole accounts: its values are read as they are
    alone = score_health(table.drop(columns="seats"), config)
    np.testing.assert_allclose(alone.points["user_utilisation_30d"], [50.0, 100.0])
