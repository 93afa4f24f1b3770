"""The scorecard YAML: the shipped defaults are valid, inheritance works, every mistake is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from features.errors import ConfigError
from features.registry import lookup
from models.scorecard import (
    BooleanMetric,
    LinearMetric,
    PercentileMetric,
    ThresholdMetric,
    parse_scorecard,
)
from pipeline.config import DEFAULTS_DIR, load_scorecard

WINDOWS = (7, 30, 90)
# The feature names of the features issue (common contract), used to check the shipped configs.
FEATURE_NAMES = {
    *[
        "tenure_days",
        "segment",
        "industry",
        "region",
        "plan",
        "regulated",
        "arr",
        "seats",
        "term_length_days",
        "days_to_renewal",
        "renewals_count",
        "seat_change_last_renewal",
        "is_new_customer",
    ],
    *(f"{name}_{w}d" for w in WINDOWS for name in ("logins_per_seat", "active_users", "user_utilisation")),
    *(f"active_days_{w}d" for w in WINDOWS),
    *["days_since_last_login", "login_gap_mean_90d", "login_gap_max_90d", "logins_trend_30d", "logins_trend_vs_90d"],
    *(f"{name}_{w}d" for w in WINDOWS for name in ("events_per_seat", "quantity_per_seat", "feature_breadth")),
    "usage_compliance_audit_per_seat_30d",
    *[
        "workflow_completion_rate_90d",
        "workflow_skip_rate_90d",
        "days_to_first_value",
        "days_since_last_use",
        "usage_trend_30d",
    ],
    *(f"{name}_{w}d" for w in WINDOWS for name in ("tickets", "tickets_per_seat")),
    *[
        "open_tickets",
        "high_priority_share_90d",
        "escalations_90d",
        "resolution_hours_mean_90d",
        "csat_mean_90d",
        "bug_share_90d",
        "howto_share_90d",
        "days_since_last_ticket",
        "tickets_trend_30d",
    ],
    *(f"trainings_{w}d" for w in WINDOWS),
    *[
        "training_completions_90d",
        "trained_users_share",
        "certifications_total",
        "onboarding_sessions",
        "days_since_last_training",
    ],
    *[
        "days_overdue",
        "overdue_invoices",
        "overdue_amount_share",
        "late_payments_90d",
        "late_payments_365d",
        "late_payment_share_365d",
        "failed_payments_90d",
        "failed_payments_365d",
        "last_invoice_discount",
        "invoiced_amount_change_365d",
    ],
    *[
        "touchpoints_90d",
        "days_since_last_qbr",
        "days_since_last_executive_meeting",
        "days_since_last_touchpoint",
        "touchpoint_sentiment_90d",
        "touchpoint_sentiment_trend_90d",
        "negative_touchpoints_90d",
    ],
    *[
        "nps_latest",
        "nps_mean_180d",
        "account_nps_180d",
        "nps_detractor_share_180d",
        "survey_csat_latest",
        "survey_csat_mean_180d",
        "survey_responses_180d",
        "days_since_last_survey",
    ],
}
TABLE_COLUMNS = FEATURE_NAMES | {"account_id", "as_of", "label", "term_end"}

DEFAULT_FILE = DEFAULTS_DIR / "healthscore.yaml"
OUTCOMES_FILE = DEFAULTS_DIR / "healthscore-outcomes.yaml"


def minimal(**metric: object) -> dict:
    """A one-category, one-metric scorecard whose metric has the given fields."""
    return {"default": {"categories": {"engagement": {"metrics": {"logins_per_seat_30d": metric}}}}}


def error_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_scorecard(raw, source="test.yaml")
    return str(caught.value)


def test_default_scorecard_is_laer_with_onboarding_and_regulated_segments() -> None:
    config = load_scorecard(DEFAULT_FILE, available=TABLE_COLUMNS)
    assert config.categories() == [
        "adoption", "engagement", "support", "training", "account", "financial", "relationship", "voice"
    ]  # fmt: skip
    assert [name for name, _, _ in config.scorecards()] == ["onboarding", "regulated", "default"]
    assert str(config.segments["onboarding"].when[0]) == "tenure_days < 120"
    assert (config.bands.green, config.bands.yellow) == (70, 60)
    # regulated accounts add the compliance metric; nobody else is scored on it
    regulated = config.segments["regulated"].categories["adoption"].metrics
    assert isinstance(regulated["usage_compliance_audit_per_seat_30d"], BooleanMetric)
    assert "usage_compliance_audit_per_seat_30d" not in config.default.categories["adoption"].metrics
    # onboarding weighs setup and login rhythm more and drops renewal history
    onboarding = config.segments["onboarding"].categories
    assert onboarding["training"].weight > config.default.categories["training"].weight
    assert "login_gap_mean_90d" in onboarding["engagement"].metrics
    assert "account" not in onboarding  # no renewal history yet
    assert set(config.metrics()) <= FEATURE_NAMES


def test_outcomes_scorecard_is_a_different_category_scheme_by_configuration_only() -> None:
    outcomes = load_scorecard(OUTCOMES_FILE, available=TABLE_COLUMNS)
    default = load_scorecard(DEFAULT_FILE)
    assert outcomes.categories() == ["transformation", "experience", "engagement"]
    assert set(outcomes.metrics()) <= FEATURE_NAMES
    shared = set(outcomes.metrics()) & set(default.metrics())
    assert len(shared) >= 10
    # the same feature is measured the same way in both views; only the grouping and weights differ
    rules = {
        view: {m: r for c in config.default.categories.values() for m, r in c.metrics.items()}
        for view, config in (("outcomes", outcomes), ("default", default))
    }
    for metric in shared:
        assert rules["outcomes"][metric].model_dump(exclude={"weight"}) == rules["default"][metric].model_dump(
            exclude={"weight"}
        ), metric


def test_segment_inherits_default_and_overrides_only_what_it_names() -> None:
    raw = {
        "default": {
            "categories": {
                "engagement": {
                    "weight": 2,
                    "metrics": {
                        "logins_per_seat_30d": {"scheme": "linear", "bad": 0, "good": 10, "weight": 2},
                        "days_since_last_login": {"scheme": "linear", "bad": 30, "good": 0},
                    },
                },
                "support": {"metrics": {"csat_mean_90d": {"scheme": "linear", "bad": 1, "good": 5}}},
            }
        },
        "segments": {
            "reweighted": {
                "when": "tenure_days < 120",
                "categories": {
                    "engagement": {
                        "metrics": {
                            "logins_per_seat_30d": {"weight": 5},  # no scheme: change the inherited one
                            "days_since_last_login": {"scheme": "thresholds", "cuts": [7], "points": [100, 0]},
                            "login_gap_mean_90d": {"scheme": "percentile", "healthier": "lower"},
                        }
                    },
                    "support": None,  # removed
                    "training": {"metrics": {"trained_users_share": {"scheme": "boolean"}}},
                },
            },
            "standalone": {
                "when": ["regulated == 1", "segment in [smb, mid]"],
                "inherit": False,
                "categories": {"support": {"metrics": {"csat_mean_90d": {"scheme": "linear", "bad": 2, "good": 4}}}},
            },
        },
    }
    config = parse_scorecard(raw)
    seg = config.segments["reweighted"].categories
    assert list(seg) == ["engagement", "training"]
    assert seg["engagement"].weight == 2
    logins = seg["engagement"].metrics["logins_per_seat_30d"]
    assert isinstance(logins, LinearMetric) and (logins.weight, logins.bad, logins.good) == (5, 0, 10)
    assert isinstance(seg["engagement"].metrics["days_since_last_login"], ThresholdMetric)
    assert isinstance(seg["engagement"].metrics["login_gap_mean_90d"], PercentileMetric)
    assert list(config.segments["standalone"].categories) == ["support"]
    assert [str(c) for c in config.segments["standalone"].when] == ["regulated == 1", "segment in ['smb', 'mid']"]
    # the default is untouched by its segments
    assert config.default.categories["engagement"].metrics["logins_per_seat_30d"].weight == 2
    assert config.categories() == ["engagement", "support", "training"]
    assert config.metrics()[:3] == ["logins_per_seat_30d", "days_since_last_login", "csat_mean_90d"]
    assert set(config.required_columns()) == {
        "logins_per_seat_30d",
        "days_since_last_login",
        "csat_mean_90d",
        "login_gap_mean_90d",
        "trained_users_share",
        "tenure_days",
        "regulated",
        "segment",
    }


def test_a_category_taken_out_of_the_default_leaves_the_segments_that_tune_it_their_own() -> None:
    """Deleting `training` from the shipped scorecard's default stopped it with "segments.onboarding.categories.
    training.metrics.days_since_last_training: Input should be a valid dictionary": the onboarding segment's
    `null`, which removes an inherited metric, had nothing to remove. It removes nothing, as for a category the
    default has; the segment keeps its own metrics. A segment that only reweighs such a category (`support:
    {weight: 15}`) has no metrics left to score: the message says why and what to write."""
    raw = yaml.safe_load(DEFAULT_FILE.read_text())
    del raw["default"]["categories"]["training"]
    config = parse_scorecard(raw)
    assert "training" not in config.default.categories
    assert list(config.segments["onboarding"].categories["training"].metrics) == ["onboarding_sessions"]

    raw = yaml.safe_load(DEFAULT_FILE.read_text())
    del raw["default"]["categories"]["support"]
    message = error_of(raw)
    assert "segment 'onboarding': category 'support' is not in the default scorecard" in message
    assert "give it its own metrics, or remove it from the segment (support: null)" in message


def test_unknown_feature_is_named_with_where_it_is_used_and_a_suggestion(tmp_path: Path) -> None:
    raw = minimal(scheme="percentile", within="segmnt")
    raw["segments"] = {"young": {"when": "tenure_dys < 120", "categories": {}}}
    raw["default"]["categories"]["engagement"]["metrics"]["loginz_per_seat_30d"] = {"scheme": "boolean"}
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as caught:
        load_scorecard(path, available=TABLE_COLUMNS)
    message = str(caught.value)
    assert "uses 3 unknown features or columns:" in message
    assert "'loginz_per_seat_30d' (metric in default.engagement); did you mean 'logins_per_seat_30d'?" in message
    assert (
        "'segmnt' (percentile 'within' of default.engagement.logins_per_seat_30d); did you mean 'segment'?" in message
    )
    assert "'tenure_dys' (rule of segment 'young' (tenure_dys < 120)); did you mean 'tenure_days'?" in message
    # the same file without the column check loads fine (prepared tables have arbitrary columns)
    assert load_scorecard(path).metrics() == ["logins_per_seat_30d", "loginz_per_seat_30d"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            minimal(scheme="linar", bad=0, good=1),
            "default.categories.engagement.metrics.logins_per_seat_30d: unknown scheme 'linar'; "
            "use one of linear, thresholds, percentile, boolean",
        ),
        (
            minimal(bad=0, good=1),
            "default.categories.engagement.metrics.logins_per_seat_30d: missing 'scheme' "
            "(one of linear, thresholds, percentile, boolean)",
        ),
        (
            minimal(scheme="linear", bad=0, good=1, weight=-2),
            "logins_per_seat_30d.weight: weight must not be negative (got -2); use 0 to switch a metric off",
        ),
        (
            minimal(scheme="linear", bad=3, good=3),
            "logins_per_seat_30d: linear scheme needs bad != good (both are 3)",
        ),
        (
            minimal(scheme="linear", bad=0),
            "logins_per_seat_30d.good: missing required key 'good'",
        ),
        (
            minimal(scheme="linear", bad=0, good=1, target=3),
            "logins_per_seat_30d.target: unknown key 'target'",
        ),
        (
            minimal(scheme="thresholds", cuts=[5, 2], points=[0, 50, 100]),
            "thresholds 'cuts' must be strictly increasing, got [5.0, 2.0] (5 then 2)",
        ),
        (
            minimal(scheme="thresholds", cuts=[2, 2], points=[0, 50, 100]),
            "thresholds 'cuts' must be strictly increasing, got [2.0, 2.0] (2 then 2)",
        ),
        (
            minimal(scheme="thresholds", cuts=[1, 5], points=[0, 100]),
            "thresholds need one more 'points' than 'cuts' (the range below the first cut-off and above "
            "each one): 2 cuts, 2 points",
        ),
        (
            minimal(scheme="thresholds", cuts=[1], points=[0, 120]),
            "thresholds 'points' must lie in 0..100, got [120.0]",
        ),
        (
            minimal(scheme="thresholds", cuts=[], points=[0]),
            "thresholds scheme needs at least one cut-off in 'cuts'",
        ),
        (
            minimal(scheme="percentile", healthier="up"),
            "logins_per_seat_30d.healthier: Input should be 'higher' or 'lower'",
        ),
        (
            minimal(scheme="boolean", weight=0),
            "default.categories.engagement: all metric weights are zero (logins_per_seat_30d); "
            "at least one must be > 0",
        ),
        (
            {"default": {"categories": {"engagement": {"metrics": {}}}}},
            "default.categories.engagement: a category needs at least one metric",
        ),
        (
            {"default": {"categories": {"a": {"weight": 0, "metrics": {"x": {"scheme": "boolean"}}}}}},
            "default: all category weights are zero (a); at least one must be > 0",
        ),
        (
            {"default": {"categories": {"a": {"weight": -1, "metrics": {"x": {"scheme": "boolean"}}}}}},
            "default.categories.a.weight: weight must not be negative (got -1); use 0 to switch a category off",
        ),
        (
            {
                "default": {
                    "categories": {
                        "a": {"metrics": {"x": {"scheme": "boolean"}}},
                        "b": {"metrics": {"x": {"scheme": "boolean"}}},
                    }
                }
            },
            "default: metric 'x' appears in categories 'a' and 'b'; a metric scores in one category only",
        ),
        (
            {**minimal(scheme="boolean"), "bands": {"green": 60, "yellow": 70}},
            "bands: yellow (70) must be below green (60): the bands would overlap",
        ),
        (
            {**minimal(scheme="boolean"), "bands": {"green": 70, "yellow": 70}},
            "bands: yellow (70) must be below green (70): the bands would overlap",
        ),
        (
            {**minimal(scheme="boolean"), "bands": {"green": 120, "yellow": 60}},
            "bands: band 'green' lower bound must lie in (0, 100], got 120",
        ),
        (  # shares for points: every score above 0.7 of 100 was green, without a word
            {**minimal(scheme="boolean"), "bands": {"green": 0.7, "yellow": 0.6}},
            "bands: bands are points of the 0-100 health score, not shares: green 0.7 would make almost every "
            "account green; write e.g. {green: 70, yellow: 60}",
        ),
        (
            {**minimal(scheme="boolean"), "bands": {"green": 70, "yellow": 60, "red": 0}},
            "bands.red: unknown key 'red'",
        ),
        (
            {**minimal(scheme="boolean"), "segments": {"default": {"when": "x < 1", "categories": {}}}},
            "segment name 'default' is reserved for the default scorecard",
        ),
        (
            {**minimal(scheme="boolean"), "segments": {"young": {"categories": {}}}},
            "segments.young.when: missing required key 'when'",
        ),
        (
            {**minimal(scheme="boolean"), "segments": {"young": {"when": "tenure_days << 120"}}},
            "segments.young.when.0: condition 'tenure_days << 120': '<' needs a number, got '< 120'",
        ),
        (
            {**minimal(scheme="boolean"), "segments": {"young": {"when": "tenure_days 120"}}},
            "segments.young.when.0: cannot read condition 'tenure_days 120': expected '<column> <op> <value>'",
        ),
        (
            {**minimal(scheme="boolean"), "segments": {"smb": {"when": "segment in smb"}}},
            "segments.smb.when.0: condition 'segment in smb': 'in' needs a list, e.g. [smb, mid]",
        ),
        (
            {**minimal(scheme="boolean"), "segments": {"young": {"when": []}}},
            "segments.young.when: 'when' needs at least one condition",
        ),
        (
            {"bands": {"green": 70, "yellow": 60}},
            "default: missing required key 'default'",
        ),
        (  # health_score: the scores table had two such columns and `churn score` an internal error
            {"default": {"categories": {"score": {"metrics": {"x": {"scheme": "boolean"}}}}}},
            "default: category 'score' would make the column health_score, which the scores table has already; "
            "rename the category",
        ),
        (
            {"default": {"categories": {"reason": {"metrics": {"x": {"scheme": "boolean"}}}}}},
            "default: category 'reason' would make the column override_reason,",
        ),
        (
            {"default": {"categories": {"score_change_30d": {"metrics": {"x": {"scheme": "boolean"}}}}}},
            "would make the column health_score_change_30d (a score trend column: health_score_change_<days>d)",
        ),
        (
            {"default": {"categories": {" adoption": {"metrics": {"x": {"scheme": "boolean"}}}}}},
            "default: category ' adoption' has spaces around it or control characters",
        ),
        (  # its override_ended rule was read back from the alerts table and the webhook ledger as two rules
            {"default": {"categories": {"support; success": {"metrics": {"x": {"scheme": "boolean"}}}}}},
            "default: category 'support; success' contains '; ', which separates the alert rules "
            "('override_ended:support; success') in the alerts table and the webhook ledger, so one rule would "
            "read as two; write it as 'support & success'",
        ),
        (
            {
                "default": {"categories": {"support": {"metrics": {"x": {"scheme": "boolean"}}}}},
                "segments": {
                    "big": {"when": "seats > 100", "categories": {"a; b": {"metrics": {"y": {"scheme": "boolean"}}}}}
                },
            },
            "segments: segment 'big': category 'a; b' contains '; '",
        ),
        (
            {
                "default": {"categories": {"support": {"metrics": {"x": {"scheme": "boolean"}}}}},
                "segments": {
                    "big": {"when": "seats > 100", "categories": {"Support": {"metrics": {"y": {"scheme": "boolean"}}}}}
                },
            },
            "segments: segment 'big': categories 'support' and 'Support' differ only in case (or Unicode form), so "
            "their columns 'health_support' and 'health_Support' are one column to SQL engines; use one name",
        ),
        (  # found by `churn score` after the features were built, as a data error naming no file
            {"default": {"categories": {"account": {"metrics": {"plan": {"scheme": "boolean"}}}}}},
            "default.categories.account: plan: a column of words, not a number a metric can score; pick its "
            "accounts with a segment rule instead (when: plan == <value>)",
        ),
        (
            {**minimal(scheme="boolean"), "segments": {"big": {"when": "segment >= 3"}}},
            "segments.big.when.0: condition 'segment >= 3': 'segment' holds words, not numbers; compare it with ==",
        ),
        (
            {**minimal(scheme="boolean"), "bands": "green"},
            "bands: must be a mapping of keys to values (indented `key: value` lines), not text",
        ),
    ],
)
def test_configuration_errors_name_the_key_and_the_problem(raw: dict, expected: str) -> None:
    message = error_of(raw)
    assert message.startswith("Health scorecard test.yaml: ")
    assert expected in message


def test_a_segment_problem_found_across_the_file_is_said_from_the_segment() -> None:
    """Problems a check of the whole file finds (a segment named 'default', a segment category the default lacks)
    were said after "(top level):", a place no one wrote; they name their segment themselves."""
    reserved = error_of({**minimal(scheme="boolean"), "segments": {"default": {"when": "x < 1", "categories": {}}}})
    assert reserved.splitlines()[1:] == ["  segment name 'default' is reserved for the default scorecard"]
    own = {"when": "tenure_days < 120", "categories": {"voice": {"weight": 5}}}
    unknown = error_of({**minimal(scheme="boolean"), "segments": {"young": own}})
    assert unknown.splitlines()[1].startswith("  segment 'young': category 'voice' is not in the default scorecard")
    assert "top level" not in reserved + unknown


def test_all_problems_are_reported_at_once() -> None:
    raw = {
        "bands": {"green": 50, "yellow": 60},
        "default": {
            "categories": {
                "a": {
                    "metrics": {
                        "x": {"scheme": "linear", "bad": 1, "good": 1},
                        "y": {"scheme": "percentil"},
                    }
                }
            }
        },
    }
    message = error_of(raw)
    assert "3 problems:" in message
    assert "default.categories.a.metrics.x: linear scheme needs bad != good" in message
    assert "default.categories.a.metrics.y: unknown scheme 'percentil'" in message
    assert "bands: yellow (60) must be below green (50)" in message


def test_category_names_with_spaces_accents_or_capitals_make_their_own_columns() -> None:
    from models.healthscore import score_health

    raw = {
        "default": {
            "categories": {
                "Product Adoption": {"metrics": {"m1": {"scheme": "linear", "bad": 0, "good": 10}}},
                "santé": {"metrics": {"m2": {"scheme": "linear", "bad": 0, "good": 10}}},
                "SUPPORT": {"metrics": {"m3": {"scheme": "linear", "bad": 0, "good": 10}}},
            }
        }
    }
    frame = score_health(pd.DataFrame({"m1": [5.0], "m2": [10.0], "m3": [0.0]}), parse_scorecard(raw)).frame
    assert frame[["health_Product Adoption", "health_santé", "health_SUPPORT"]].iloc[0].tolist() == [50, 100, 0]


def test_the_ml_view_spells_a_category_as_the_scorecard_does() -> None:
    from models.categories import ml_categories

    # `Account` holds no registry account feature: tenure_days fell to the registry's `account`, and the
    # scores had both ml_Account and ml_account (one column to DuckDB and Spark)
    raw = {"default": {"categories": {"Account": {"metrics": {"days_overdue": {"scheme": "boolean"}}}}}}
    categories = ml_categories(["days_overdue", "tenure_days", "tickets_90d"], parse_scorecard(raw))
    assert categories == {"days_overdue": "Account", "tenure_days": "Account", "tickets_90d": "other"}


def test_sections_left_empty_keep_their_defaults() -> None:
    # `segments:` or `bands:` with every entry commented out is null in YAML; it was refused
    config = parse_scorecard({**minimal(scheme="boolean"), "segments": None, "bands": None})
    assert config.segments == {}
    assert (config.bands.green, config.bands.yellow) == (70, 60)


def test_file_level_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml does not exist"):
        load_scorecard(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("default: {categories: [")
    with pytest.raises(ConfigError, match=r"broken\.yaml is not valid YAML"):
        load_scorecard(broken)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(minimal(scheme="linear", bad=0, good=0)))
    with pytest.raises(ConfigError, match=r"Health scorecard .*wrong\.yaml: 1 problem"):
        load_scorecard(wrong)


# --- adapting to the data's columns (issue 10, item 4) ---------------------------------------------

ADAPTING = {
    "default": {
        "categories": {
            "engagement": {
                "weight": 2,
                "metrics": {
                    "logins_per_seat_30d": {"scheme": "linear", "bad": 0, "good": 10},
                    "user_utilisation_30d": {"scheme": "linear", "bad": 0, "good": 1, "weight": 3},
                },
            },
            "support": {"weight": 1, "metrics": {"csat_mean_90d": {"scheme": "linear", "bad": 1, "good": 5}}},
            "adoption": {
                "weight": 1,
                "metrics": {"events_per_seat_30d": {"scheme": "percentile", "within": "segment"}},
            },
        }
    },
    "segments": {"regulated": {"when": "regulated == 1", "categories": {"support": {"weight": 5}}}},
}
LOGINS_WITHOUT_USERS = {"tenure_days", "logins_per_seat_30d", "active_days_30d", "events_per_seat_30d", "as_of"}


def test_a_scorecard_whose_columns_all_exist_is_left_as_it_is() -> None:
    config = parse_scorecard(ADAPTING)
    adapted = config.adapt_to(TABLE_COLUMNS)
    assert adapted.config is config and adapted.notes == ()


def test_a_data_folder_scorecard_may_only_name_columns_a_feature_table_holds() -> None:
    config = parse_scorecard({**ADAPTING, "population_by": "asof"})
    with pytest.raises(ConfigError) as err:
        config.check_feature_names(["as_of"], source="card.yaml")
    assert str(err.value).startswith(
        "Health scorecard card.yaml uses 1 unknown feature or column:\n  'asof' (population_by); did you mean 'as_of'?"
    )
    parse_scorecard(ADAPTING).check_feature_names(["as_of"])  # the shipped spelling passes


def test_a_metric_of_a_window_not_configured_is_dropped_for_its_window() -> None:
    # features.windows [14, 60]: the note blamed logins.user_id, which the data has (user_utilisation_14d needs it)
    columns = {*TABLE_COLUMNS, "user_utilisation_14d", "active_users_14d"} - {"user_utilisation_30d"}
    notes = parse_scorecard(ADAPTING).adapt_to(columns).notes
    assert notes == (
        "health scorecard 'health' adapted to this data: a dropped metric's weight goes to the other metrics of its "
        "category",
        "health scorecard 'health': engagement metric 'user_utilisation_30d' dropped (not built from this data (see "
        "features.windows, top_features and tracked_features))",
    )


def test_absent_sources_drop_metrics_categories_and_segments_with_one_note_each() -> None:
    adapted = parse_scorecard(ADAPTING).adapt_to(LOGINS_WITHOUT_USERS)
    card = adapted.config
    assert list(card.default.categories) == ["engagement", "adoption"]
    assert list(card.default.categories["engagement"].metrics) == ["logins_per_seat_30d"]
    assert card.default.categories["adoption"].metrics["events_per_seat_30d"].within is None
    assert list(card.segments) == []
    assert adapted.notes == (
        "health scorecard 'health' adapted to this data: a dropped metric's weight goes to the other metrics of its "
        "category; a dropped category's weight goes to the categories left (engagement, adoption)",
        "health scorecard 'health': metric 'events_per_seat_30d' ranks within the whole population: its percentile "
        "group 'segment' is absent (accounts.segment is not in the data)",
        "health scorecard 'health': segment scorecard 'regulated' skipped: its rule 'regulated == 1' cannot be "
        "evaluated (accounts.regulated is not in the data)",
        "health scorecard 'health': engagement metric 'user_utilisation_30d' dropped (logins.user_id is not in the "
        "data)",
        "health scorecard 'health': category 'support' dropped (no support_tickets table in the data)",
    )


def test_usage_only_data_gets_one_short_line_per_adaptation_and_the_weights_said_once() -> None:
    """On usage-only data the shipped scorecard printed six "category dropped" lines, each listing every metric
    of its category and ending with the same "category weights renormalised over adoption, account"."""
    usage_only = {"tenure_days", "renewals_count", "days_to_renewal", "as_of", "segment", "feature_breadth_30d",
                  "events_per_seat_30d", "days_since_last_use", "usage_trend_30d", "days_to_first_value"}  # fmt: skip
    notes = load_scorecard(DEFAULT_FILE).adapt_to(usage_only).notes
    head, *changes = notes
    assert head == (
        "health scorecard 'laer' adapted to this data: a dropped metric's weight goes to the other metrics of its "
        "category; a dropped category's weight goes to the categories left (adoption, account)"
    )
    assert "health scorecard 'laer': category 'engagement' dropped (no logins table in the data)" in changes
    workflow = "(usage_events.workflow_id and usage_events.step are not in the data)"
    assert f"health scorecard 'laer': adoption metric 'workflow_completion_rate_90d' dropped {workflow}" in changes
    assert sum("category '" in n for n in changes) == 6 and max(map(len, changes)) <= 150  # each was up to 300
    assert not [n for n in changes if "renormalised" in n or "goes to" in n or "logins_per_seat_30d" in n]


def test_adapted_scores_redistribute_weights_as_if_the_metrics_had_no_data() -> None:
    """Dropping a metric or category gives exactly the score of the full card on rows lacking them."""
    from models.healthscore import score_health

    table = pd.DataFrame({"logins_per_seat_30d": [2.0, 8.0, 5.0], "events_per_seat_30d": [1.0, 9.0, 4.0]})
    adapted = parse_scorecard(ADAPTING).adapt_to([*table.columns, "tenure_days"]).config
    missing = table.assign(user_utilisation_30d=np.nan, csat_mean_90d=np.nan, segment="all", regulated=0.0)
    expected = score_health(missing, parse_scorecard(ADAPTING)).frame
    got = score_health(table, adapted).frame
    np.testing.assert_allclose(got["health_score"], expected["health_score"])
    # engagement (weight 2) and adoption (weight 1) share the score: 2/3 and 1/3
    points = np.array([20.0, 80.0, 50.0]) * 2 / 3 + np.array([100 / 6, 500 / 6, 50.0]) / 3
    np.testing.assert_allclose(got["health_score"], points)


def test_a_misspelt_metric_is_still_an_error_even_where_its_source_is_absent() -> None:
    raw = {"default": {"categories": {"engagement": {"metrics": {"loginz_per_seat_30d": {"scheme": "boolean"}}}}}}
    with pytest.raises(ConfigError, match=r"'loginz_per_seat_30d' \(metric in default.engagement\); did you mean "
                       r"'logins_per_seat_30d'\?"):  # fmt: skip
        parse_scorecard(raw).adapt_to({"tenure_days", "events_per_seat_30d"})


def test_a_scorecard_with_nothing_computable_says_why() -> None:
    raw = {"default": {"categories": {"support": {"metrics": {"csat_mean_90d": {"scheme": "linear", "bad": 1,
                                                                                 "good": 5}}}}}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"none of its metrics can be computed from this data \(csat_mean_90d: no "
                       r"support_tickets table in the data\)"):  # fmt: skip
        parse_scorecard(raw).adapt_to({"tenure_days", "logins_per_seat_30d"})


def test_the_shipped_scorecards_adapt_to_usage_only_data() -> None:
    usage_only = {c for c in TABLE_COLUMNS if lookup(c) is None or lookup(c).source in ("accounts", "usage_events")}
    for path in (DEFAULT_FILE, OUTCOMES_FILE):
        adapted = load_scorecard(path).adapt_to(usage_only)
        assert adapted.notes and adapted.config.metrics()
        assert set(adapted.config.metrics()) <= usage_only


def test_a_segment_rule_may_name_an_accounts_column_a_metric_may_not() -> None:
    """A rule on csm or a team's own tier was refused up front as an unknown feature; it picks its accounts'
    scorecard now (the data's accounts are checked when read). A metric on one stays refused, saying why."""
    rules = {**ADAPTING, "segments": {"digital": {"when": "csm == 'Digital CS'"}, "top": {"when": "tier == platinum"}}}
    config = parse_scorecard(rules)
    config.check_feature_names(["as_of"])
    assert config.rule_attributes(["as_of"]) == ["csm", "tier"]
    with pytest.raises(ConfigError) as err:
        config.check_account_columns(["account_id", "created_at", "csm", "teir"], ["as_of"], source="card.yaml")
    assert "'tier' (rule of segment 'top' (tier == 'platinum')); did you mean 'teir'?" in str(err.value)
    config.check_account_columns(["account_id", "created_at", "tier"], ["as_of"])  # no csm: skipped, not refused
    adapted = config.adapt_to({*TABLE_COLUMNS, "tier"})
    assert (
        "segment scorecard 'digital' skipped: its rule 'csm == 'Digital CS'' cannot be evaluated (accounts has no "
        "column 'csm')" in adapted.notes[0]
    )
    assert list(adapted.config.segments) == ["top"]
    with pytest.raises(ConfigError, match=r"(?s)'tier' \(rule of segment 'top'.*a feature table \(--features FILE\)"):
        config.adapt_to(TABLE_COLUMNS)  # `churn train --features FILE`: no accounts to read tier from
    scored = {
        **ADAPTING,
        "segments": {},
        "default": {"categories": {"people": {"metrics": {"csm": {"scheme": "boolean"}}}}},
    }
    with pytest.raises(ConfigError) as err:
        parse_scorecard(scored).check_feature_names(["as_of"])
    assert "'csm' (metric in default.people)" in str(err.value)
    assert "can only pick a scorecard, in a segment rule (when: csm == <value>)" in str(err.value)
