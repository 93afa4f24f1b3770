"""Exact TreeSHAP explanations: agreement with shap, additivity, category sums, drivers in words."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import shap

from features.build import build_features
from features.errors import ChurnError, DataContractError
from features.families.base import window_family
from features.registry import all_specs, category_map, data_days_column, describe, template_fields
from features.settings import FeatureSettings
from models.explain import _largest_columns, explain, top_drivers
from models.waterfall import waterfall_figure
from pipeline.loading import Dataset
from tests.feature_data import random_tables

NUMERIC = [
    "logins_per_seat_30d",
    "days_since_last_login",
    "tickets_90d",
    "user_utilisation_30d",
    "tenure_days",
    "csat_mean_90d",
]
FEATURES = [*NUMERIC, "plan"]


def _accounts(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "logins_per_seat_30d": rng.gamma(2.0, 3.0, n),
            "days_since_last_login": rng.integers(0, 60, n).astype(float),
            "tickets_90d": rng.poisson(2, n).astype(float),
            "user_utilisation_30d": rng.uniform(0, 1.2, n),
            "tenure_days": rng.integers(10, 1500, n).astype(float),
            "csat_mean_90d": rng.uniform(1, 5, n),
            "plan": pd.Categorical(rng.choice(["basic", "pro", "enterprise"], n)),
        }
    )
    frame.loc[frame.index % 9 == 0, "csat_mean_90d"] = np.nan
    return frame


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return _accounts(3000, seed=1)


@pytest.fixture(scope="module")
def booster(data: pd.DataFrame) -> lgb.Booster:
    rng = np.random.default_rng(2)
    logit = (
        -0.25 * data["logins_per_seat_30d"]
        + 0.05 * data["days_since_last_login"]
        + 0.4 * data["tickets_90d"]
        - 1.5 * data["user_utilisation_30d"]
        + 0.8 * (data["plan"] == "basic")
        - 0.3 * data["csat_mean_90d"].fillna(3)
    )
    label = (rng.uniform(size=len(data)) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"objective": "binary", "num_leaves": 15, "max_depth": 4, "verbose": -1, "min_data_per_group": 20}
    return lgb.train(params, lgb.Dataset(data, label), num_boost_round=60)


@pytest.fixture(scope="module")
def categories() -> dict[str, str]:
    return category_map(FEATURES)


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier with TreeExplainer:UserWarning")
def test_contributions_equal_shap_tree_explainer(booster, data, categories):
    rows = data.iloc[:500]
    result = explain(booster, rows, categories)
    explainer = shap.TreeExplainer(booster)
    expected = np.asarray(explainer.shap_values(rows))

    assert list(result.contributions.columns) == FEATURES
    np.testing.assert_allclose(result.contributions.to_numpy(), expected, atol=1e-6, rtol=0)
    assert result.base_value == pytest.approx(float(np.ravel(explainer.expected_value)[0]), abs=1e-6)
    assert result.contributions["plan"].abs().max() > 0.05, "the categorical feature must take part"


def test_contributions_plus_base_add_up_to_raw_score_in_every_chunk(booster, data, categories):
    result = explain(booster, data, categories, chunk_rows=700)
    raw = booster.predict(data, raw_score=True)

    np.testing.assert_allclose(result.raw_score.to_numpy(), raw, atol=1e-12)
    np.testing.assert_allclose(result.contributions.sum(axis=1) + result.base_value, raw, atol=1e-9)
    single_chunk = explain(booster, data, categories, chunk_rows=len(data))
    pd.testing.assert_frame_equal(result.contributions, single_chunk.contributions)


def test_category_sums_equal_the_sum_of_their_features(booster, data, categories):
    result = explain(booster, data, categories)

    expected_columns = [f"ml_{c}" for c in dict.fromkeys(categories[f] for f in FEATURES)]
    assert list(result.by_category.columns) == expected_columns
    for category in set(categories.values()):
        members = [f for f in FEATURES if categories[f] == category]
        np.testing.assert_allclose(
            result.by_category[f"ml_{category}"], result.contributions[members].sum(axis=1), atol=1e-12
        )
    np.testing.assert_allclose(result.by_category.sum(axis=1), result.contributions.sum(axis=1), atol=1e-9)
    assert result.by_category.index.equals(data.index)


def test_column_order_text_categories_and_extra_columns_are_handled_like_training(booster, data, categories):
    canonical = explain(booster, data.iloc[:300], categories)
    shuffled = data.iloc[:300][FEATURES[::-1]].assign(plan=lambda f: f["plan"].astype(str), note="x")
    # A level order different from training must still map each level to its training code.
    reordered = data.iloc[:300].assign(
        plan=lambda f: pd.Categorical(f["plan"].astype(str), categories=["pro", "enterprise", "basic"])
    )

    for variant in (shuffled, reordered):
        pd.testing.assert_frame_equal(explain(booster, variant, categories).contributions, canonical.contributions)


def test_missing_feature_fails_naming_it(booster, data, categories):
    with pytest.raises(DataContractError, match="tickets_90d") as error:
        explain(booster, data.drop(columns=["tickets_90d"]), categories)
    assert "The table to explain lacks 1 feature " in str(error.value)


def test_categorical_feature_given_as_numbers_fails_clearly(booster, data, categories):
    coded = data.assign(plan=data["plan"].cat.codes.astype(float))
    with pytest.raises(ChurnError, match="1 categorical feature"):
        explain(booster, coded, categories)


def test_feature_without_category_fails(booster, data, categories):
    with pytest.raises(ChurnError, match="no health category: plan"):
        explain(booster, data, {k: v for k, v in categories.items() if k != "plan"})


class _BoosterWithSkewedRawScore(lgb.Booster):
    """A real booster whose raw-score path disagrees with its SHAP path on one row.

    LightGBM's TreeSHAP is additive by construction, so this stands in for a library defect or a
    mismatched build, the failure the additivity check exists to catch.
    """

    def predict(self, data, *args, **kwargs):
        out = super().predict(data, *args, **kwargs)
        if kwargs.get("raw_score"):
            out = out.copy()
            out[len(out) // 2] += 0.01
        return out


def test_contributions_that_do_not_add_up_fail_clearly(booster, data, categories):
    skewed = _BoosterWithSkewedRawScore(model_str=booster.model_to_string())

    with pytest.raises(ChurnError, match=r"do not add up to the model's raw score for 1 row \(e.g. index 100;"):
        explain(skewed, data.iloc[:200], categories)


def test_models_lightgbm_cannot_explain_fail_clearly(data, categories):
    numeric = data[NUMERIC].fillna(0)
    params = {"objective": "binary", "linear_tree": True, "num_leaves": 4, "verbose": -1}
    linear = lgb.train(params, lgb.Dataset(numeric, (numeric["tickets_90d"] > 2).astype(int)), num_boost_round=3)

    with pytest.raises(ChurnError, match=r"cannot explain this model.*linear trees"):
        explain(linear, numeric, categories)


def test_progress_reports_each_chunk(booster, data, categories):
    calls: list[tuple[str, int, int]] = []
    explain(booster, data.iloc[:1000], categories, chunk_rows=400, progress=lambda *a: calls.append(a))
    assert calls == [("explain", 400, 1000), ("explain", 800, 1000), ("explain", 1000, 1000)]


def test_top_drivers_are_the_largest_positive_contributions_in_words(booster, data, categories):
    rows = data.iloc[:400]
    result = explain(booster, rows, categories)
    drivers = top_drivers(result.contributions, rows, n=3)

    for index in rows.index:
        contributions = result.contributions.loc[index].sort_values(ascending=False, kind="stable")
        raising = contributions[contributions > 0].index[:3]
        row = rows.loc[index].to_dict()
        expected = "; ".join(describe(name, row[name], row) for name in raising)
        assert drivers.loc[index] == expected
    assert (drivers.str.count("; ") == 2).mean() > 0.5, "most rows have three risk-raising features"
    registered = [name for name in FEATURES if name in all_specs()]
    assert len(registered) >= 4
    assert not drivers.str.contains(r"\b(?:" + "|".join(registered) + r") = ").any(), "registry templates, not names"


def test_top_drivers_skip_features_that_lower_the_risk():
    X = pd.DataFrame({"tickets_90d": [4.0, 1.0], "tenure_days": [30.0, 900.0], "unregistered": [1.5, 2.0]})
    contributions = pd.DataFrame(
        {"tickets_90d": [0.7, -0.2], "tenure_days": [-0.1, -0.3], "unregistered": [0.2, -0.05]}
    )

    drivers = top_drivers(contributions, X, n=3)

    expected_first = "; ".join(
        describe(name, X.loc[0, name], X.loc[0].to_dict()) for name in ("tickets_90d", "unregistered")
    )
    assert drivers.tolist() == [expected_first, ""]
    assert "unregistered = 1.5" in drivers[0]
    assert top_drivers(contributions, X, n=1).tolist() == [describe("tickets_90d", 4.0, X.loc[0].to_dict()), ""]


def test_two_drivers_in_the_same_words_are_said_once():
    """Both login-gap features of an account with fewer than 2 login days read "logins on fewer than 2 days in
    the last 90 days": an account whose risk they both raised had that sentence twice in its top drivers."""
    X = pd.DataFrame({"login_gap_mean_90d": [np.nan], "login_gap_max_90d": [np.nan], "tickets_90d": [4.0]})
    contributions = pd.DataFrame({"login_gap_mean_90d": [0.6], "login_gap_max_90d": [0.5], "tickets_90d": [0.2]})
    once = describe("login_gap_mean_90d", np.nan, X.loc[0].to_dict())
    assert once == describe("login_gap_max_90d", np.nan, X.loc[0].to_dict())
    tickets = describe("tickets_90d", 4.0, X.loc[0].to_dict())
    assert top_drivers(contributions, X, n=3).tolist() == [f"{once}; {tickets}"]


def test_a_driver_said_once_leaves_its_place_to_the_next_ranked_one():
    """The login gaps said once left an account with 2 drivers of `top_drivers: 3` though a third feature in
    words of its own raised its risk too; the next-ranked distinct ones refill, as often as repeats recur."""
    X = pd.DataFrame(
        {
            "login_gap_mean_90d": [np.nan, np.nan, 3.0],
            "login_gap_max_90d": [np.nan, np.nan, 9.0],
            "tickets_90d": [4.0, 4.0, 4.0],
            "days_since_last_login": [12.0, 12.0, 12.0],
            "escalations_90d": [2.0, 2.0, 2.0],
        }
    )
    contributions = pd.DataFrame(
        {
            "login_gap_mean_90d": [0.6, 0.6, 0.6],
            "login_gap_max_90d": [0.5, 0.5, 0.5],
            "tickets_90d": [0.4, 0.4, 0.4],
            "days_since_last_login": [0.3, -0.1, 0.3],  # row 1: nothing else raises its risk but escalations
            "escalations_90d": [0.2, 0.2, 0.2],
        }
    )
    row = X.loc[0].to_dict()
    gaps, tickets = describe("login_gap_mean_90d", np.nan, row), describe("tickets_90d", 4.0, row)
    last_login, escalations = describe("days_since_last_login", 12.0, row), describe("escalations_90d", 2.0, row)
    mean_gap, max_gap = describe("login_gap_mean_90d", 3.0, X.loc[2].to_dict()), describe("login_gap_max_90d", 9.0)

    assert top_drivers(contributions, X, n=3).tolist() == [
        f"{gaps}; {tickets}; {last_login}",  # the repeat's place goes to the fourth-ranked feature
        f"{gaps}; {tickets}; {escalations}",  # ...and past one that lowers the risk to the fifth
        f"{mean_gap}; {max_gap}; {tickets}",  # distinct words: the top 3, as ever
    ]
    assert top_drivers(contributions, X, n=5).tolist()[0] == f"{gaps}; {tickets}; {last_login}; {escalations}"
    # many rows in one call, each refilled as far as it needs
    many = top_drivers(pd.concat([contributions] * 50, ignore_index=True), pd.concat([X] * 50, ignore_index=True))
    assert many.tolist() == top_drivers(contributions, X).tolist() * 50


def test_the_windows_of_one_metric_are_one_fact_said_once_and_the_next_drivers_refill():
    """An account without product use raised its risk through all three windows of one metric, and its top
    drivers said "no product events in the last 7 days; ... 30 days; ... 90 days": one fact three times, and
    nothing else. The metric is said once (none over the longest window where several are zero; otherwise
    the window that raises the risk most) and the next-ranked facts take the freed places."""
    windows = ["events_per_seat_7d", "events_per_seat_30d", "events_per_seat_90d"]
    X = pd.DataFrame(
        {
            **dict(zip(windows, [[0.0, 0.1], [0.0, 0.5], [0.0, 2.0]], strict=True)),
            "tickets_90d": [4.0, 4.0],
            "days_since_last_login": [12.0, 12.0],
            "seats": [10.0, 10.0],
        }
    )
    contributions = pd.DataFrame(
        {
            **dict(zip(windows, [[0.5, 0.5], [0.4, 0.4], [0.3, 0.3]], strict=True)),
            "tickets_90d": [0.2, 0.2],
            "days_since_last_login": [0.1, 0.1],
            "seats": [-0.1, -0.1],
        }
    )
    said = [{name: describe(name, X.loc[row, name], X.loc[row].to_dict()) for name in X.columns} for row in (0, 1)]
    assert said[0]["events_per_seat_7d"] == "no product events in the last 7 days"

    assert top_drivers(contributions, X, n=3).tolist() == [
        f"{said[0]['events_per_seat_90d']}; {said[0]['tickets_90d']}; {said[0]['days_since_last_login']}",
        f"{said[1]['events_per_seat_7d']}; {said[1]['tickets_90d']}; {said[1]['days_since_last_login']}",
    ]
    assert top_drivers(contributions, X, n=1).tolist() == [
        said[0]["events_per_seat_90d"],
        said[1]["events_per_seat_7d"],
    ]


def test_a_per_seat_driver_of_an_account_without_a_seat_count_says_the_account_s_own_count():
    """Per-seat features divide by 1 where the seats are unknown: "12.0 logins per seat" and "1200% of seats
    active" were said of accounts whose data has no seat count (no `subscriptions.seats`, or none for them)."""
    X = pd.DataFrame({"logins_per_seat_30d": [12.0, 12.0, 1.0], "user_utilisation_30d": [12.0, 0.4, 1.0],
                      "seats": [np.nan, 30.0, 0.0]})  # fmt: skip
    contributions = pd.DataFrame({"logins_per_seat_30d": [0.5, 0.5, 0.5], "user_utilisation_30d": [0.4, 0.4, 0.4],
                                  "seats": [0.0, 0.0, 0.0]})  # fmt: skip
    drivers = top_drivers(contributions, X, n=2).tolist()
    assert drivers[0] == "12 logins in the last 30 days; 12 active users in the last 30 days (no seat count)"
    assert drivers[1] == "12.0 logins per seat in the last 30 days; 40% of seats active in the last 30 days"
    assert drivers[2] == "1 login in the last 30 days; 1 active user in the last 30 days (no seat count)"
    no_seats = top_drivers(contributions.drop(columns="seats"), X.drop(columns="seats"), n=1).tolist()
    assert no_seats == ["12 logins in the last 30 days"] * 2 + ["1 login in the last 30 days"]
    assert describe("events_per_seat_7d", 3.0, {}) == "3 product events in the last 7 days"
    assert (
        describe("usage_reports_per_seat_30d", 2.0, {"seats": 4}) == "2.0 uses of reports per seat in the last 30 days"
    )
    assert describe("logins_per_seat_30d", 2.0) == "2.0 logins per seat in the last 30 days"  # no row: as declared


def test_largest_columns_are_a_stable_descending_sort_in_every_chunk():
    rng = np.random.default_rng(5)
    values = rng.integers(-3, 4, size=(257, 9)).astype(float)  # many ties: column order must break them
    for k in (1, 3, 9):
        expected = np.argsort(-values, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(_largest_columns(values, k, chunk_rows=50), expected)
    assert values.min() == -3.0, "the input is left as it was"


def test_top_drivers_equal_describe_row_by_row_with_companions_gaps_and_repeats():
    rng = np.random.default_rng(6)
    n = 600
    X = pd.DataFrame(
        {
            "logins_trend_30d": rng.choice([-0.6, -0.25, 0.1, np.nan], n),  # its template cites logins_per_seat_30d
            "logins_per_seat_30d": rng.choice([3.0, 0.5, np.nan], n),
            "tickets_90d": rng.poisson(2, n).astype(float),
            "unregistered": rng.uniform(0, 2, n),
            "plan": pd.Categorical(rng.choice(["basic", "pro"], n)),
            "days_since_last_login": rng.choice([3.0, 40.0, 100.0], n),  # its age when it never logged in
            "tenure_days": rng.choice([40.0, 100.0, 500.0], n),
        }
    )
    contributions = pd.DataFrame(rng.normal(0, 1, (n, X.shape[1])), columns=X.columns)
    contributions.iloc[::7, 1] = contributions.iloc[::7, 2]  # exact ties between two features

    drivers = top_drivers(contributions, X, n=3)

    for index in range(n):
        ranked = contributions.loc[index].sort_values(ascending=False, kind="stable")
        row = X.loc[index].to_dict()
        expected = "; ".join(describe(name, row[name], row) for name in ranked[ranked > 0].index[:3])
        assert drivers[index] == expected, index
    assert drivers.str.contains("logins per seat in 30 days, none in the 30 before").any()
    assert drivers.str.contains("no login recorded after the day it landed, 100 days ago").any()
    assert drivers.str.contains("last login 40 days ago").any()
    assert not drivers.str.contains("no data").any()


def test_a_missing_value_or_an_event_that_never_happened_is_said_as_what_it_means():
    """A missing value read "Mean days between login days over 90 days: no data", and a "days since" value of an
    account that never logged in (its age) read "last login 40 days ago". An account new to the book with no
    logins, tickets, trainings, surveys, invoices or touchpoints, every one of its features a driver: each says
    what the account lacks."""
    tables = random_tables(4)
    landed = pd.Timestamp("2024-11-21")
    tables["accounts"] = pd.concat(
        [tables["accounts"], pd.DataFrame({"account_id": ["NEW"], "created_at": [landed], "segment": ["smb"],
                                           "regulated": [False]})], ignore_index=True,
    )  # fmt: skip
    term = {"account_id": "NEW", "start_date": landed, "end_date": landed + pd.Timedelta(days=365), "seats": 5.0}
    tables["subscriptions"] = pd.concat([tables["subscriptions"], pd.DataFrame([term | {"plan": "pro"}])])
    # DAY1 logged in on the day it landed, never since: its days since the last login are its age too (the
    # login's day is the landing day), so its words must hold for both ("since it landed" did not)
    tables["accounts"] = pd.concat([tables["accounts"], tables["accounts"].iloc[[-1]].assign(account_id="DAY1")])
    tables["subscriptions"] = pd.concat([tables["subscriptions"], pd.DataFrame([term | {"account_id": "DAY1"}])])
    login = {"account_id": "DAY1", "ts": landed + pd.Timedelta(hours=10), "user_id": "u1"}
    tables["logins"] = pd.concat([tables["logins"], pd.DataFrame([login])], ignore_index=True)
    dataset = Dataset.from_frames(tables, data_end="2025-06-01", now=pd.Timestamp("2025-06-01"))
    table = build_features(dataset, ["2025-01-01"], FeatureSettings(), grace_days=30)
    day1 = table[table["account_id"] == "DAY1"].reset_index(drop=True)
    assert describe("days_since_last_login", day1.loc[0, "days_since_last_login"], day1.loc[0].to_dict()) == (
        "no login recorded after the day it landed, 41 days ago"
    )
    row = table[table["account_id"] == "NEW"].reset_index(drop=True)
    actionable = [c for c in row.columns if (found := all_specs().get(c)) is not None and found.actionable]
    contributions = pd.DataFrame(1.0, index=row.index, columns=actionable)

    drivers = top_drivers(contributions, row, n=len(actionable)).iloc[0].split("; ")

    said = {describe(name, row.loc[0, name], row.loc[0].to_dict()) for name in actionable}
    # every feature in words, each fact once: the same words, and the windows of one metric (by its longest: none)
    facts = {family[0] if (family := window_family(name)) else describe(name, row.loc[0, name], row.loc[0].to_dict())
             for name in actionable}  # fmt: skip
    assert len(drivers) == len(facts) and set(drivers) <= said
    assert "no logins in the last 90 days" in drivers and "no logins in the last 30 days" not in drivers
    assert not [d for d in drivers if "no data" in d or "not recorded" in d]
    for words in (
        "no login recorded after the day it landed, 41 days ago", "logins on fewer than 2 days in the last 90 days",
        "no ticket recorded after the day it landed, 41 days ago", "no ticket rated in the last 90 days",
        "no training recorded after the day it landed, 41 days ago",
        "no product use recorded yet, 41 days after landing",
        "no NPS response recorded yet", "no QBR recorded yet", "no workflow run started in the last 90 days",
    ):  # fmt: skip
        assert words in drivers, (words, drivers)
    assert not [d for d in drivers if d.startswith("last login") or d.startswith("last ticket")]
    # a context feature, in the rule view's words (health_drivers) when a scorecard scores it
    seat_change = row.loc[0, "seat_change_last_renewal"]
    assert describe("seat_change_last_renewal", seat_change, row.loc[0].to_dict()) == (
        "no renewals so far, no seat change known"
    )


def test_the_waterfall_plot_keeps_its_feature_labels_inside_the_figure():
    """shap drew the "value = feature (category)" labels left of the figure's edge, so `churn explain --plot`
    saved a PNG whose labels were cut off and unreadable; a missing value read "nan = feature"."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    names = [f"logins_per_seat_30d_variant_{i}" for i in range(20)]
    figure = waterfall_figure(
        pd.Series(np.linspace(-0.3, 0.3, 20), index=names),
        pd.Series(np.arange(20.0), index=names).mask(lambda v: v == 19),  # the largest contribution
        -2.0,
        dict.fromkeys(names, "engagement"),
        "Account A1",
    )
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    labels = [t for ax in figure.axes for t in ax.get_yticklabels() if "variant" in t.get_text()]
    assert labels and not [t for t in labels if "nan" in t.get_text()]
    assert any(t.get_text().startswith("missing = logins_per_seat_30d_variant_19 ") for t in labels)
    assert min(t.get_window_extent(canvas.get_renderer()).x0 for t in labels) >= 0


def test_the_waterfall_writes_each_value_inside_its_bar_only_where_it_fits():
    """shap chose to write a value inside its bar before tight_layout narrowed the axes for the feature labels,
    so "+0.08" ran out of its bar white on white and read "+0." (`churn explain --plot` on any account)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_rgba
    from matplotlib.patches import FancyArrow

    values = [0.93, -0.72, 0.59, 0.58, 0.34, -0.26, 0.25, 0.21, 0.2, 0.11, 0.11, 0.1, 0.05, 0.05]
    names = [f"days_since_last_executive_meeting_{i}" for i in range(len(values))]
    figure = waterfall_figure(
        pd.Series(values, index=names), pd.Series(range(len(values)), index=names, dtype=float), -3.6,
        dict.fromkeys(names, "relationship"), "Account A1",
    )  # fmt: skip
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = figure.axes[0]
    bars = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, FancyArrow)]
    inside = [t for t in ax.texts if to_rgba(t.get_color()) == to_rgba("white")]
    assert len(bars) == 13 and inside, "values written inside their bars"
    for text in inside:
        box = text.get_window_extent(renderer)
        bar = next(b for b in bars if b.y0 <= (box.y0 + box.y1) / 2 <= b.y1)
        assert bar.x0 <= box.x0 and box.x1 <= bar.x1, text.get_text()


def test_the_waterfall_names_product_features_as_the_drivers_do_where_its_font_can_draw_them():
    """A usage column of a product feature whose name is not ASCII was labelled by its hash; labelled by the name,
    a name the font has no glyphs for drew as boxes: such a name keeps its column."""
    names = ["usage_7d1a9e1c2b_per_seat_30d", "usage_0a1b2c3d4e_per_seat_30d", "logins_per_seat_30d"]
    labels = {names[0]: "usage_Отчёты_per_seat_30d", names[1]: "usage_\u0378_per_seat_30d"}  # U+0378: unassigned
    figure = waterfall_figure(
        pd.Series([0.3, 0.2, 0.1], index=names), pd.Series([1.0, 2.0, 3.0], index=names), -2.0,
        dict.fromkeys(names, "adoption"), "Account A1", labels=labels,
    )  # fmt: skip
    said = [t.get_text() for ax in figure.axes for t in ax.get_yticklabels()]
    assert "1 = usage_Отчёты_per_seat_30d (adoption)" in said, said
    assert "2 = usage_0a1b2c3d4e_per_seat_30d (adoption)" in said, said


def test_drivers_rendered_once_per_value_say_what_each_row_says_alone() -> None:
    """`top_drivers` renders equal values once, leaving the account's age and its table's days of data out of a
    value's key where its words do not say them; that choice is `features.registry.days_matter`, the rule
    `describe` follows, so each row reads as `describe` says it alone: at, under and over the age and the days of
    data, missing either, for every feature whose words read them."""
    rng = np.random.default_rng(3)
    reading = [s for s in all_specs().values() if s.never or s.since_start or s.window]
    assert len(reading) > 10
    rows = 400
    for found in reading:
        age = rng.choice([np.nan, 0.0, 20.0, 90.0, 400.0, 800.0], rows)
        held = rng.choice([np.nan, 0.0, 20.0, 90.0, 200.0, 400.0], rows)
        near = np.where(rng.random(rows) < 0.5, age, held)
        value = np.where(rng.random(rows) < 0.6, near, rng.choice([0.0, 5.0, 30.0, 365.0], rows))
        X = pd.DataFrame({found.name: value, "tenure_days": age, data_days_column(found.source): held})
        X = X.assign(**{f: 2.0 for f in template_fields(found.name) if f not in X.columns})
        contributions = pd.DataFrame({found.name: np.ones(rows)})
        expected = [describe(found.name, row[found.name], row) for row in X.to_dict("records")]
        assert top_drivers(contributions, X, n=1).tolist() == expected, found.name
