"""Rule vs ML comparison on hand-made backtest frames whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.errors import DataContractError
from models.comparison import (
    agreement,
    auc_lower_bound,
    band_calibration,
    category_alignment,
    category_weight_shares,
    churn_rate_by_band,
    cluster_bootstrap_indices,
    compare_scores,
    is_monotone,
    risk_deciles,
)
from models.scorecard import parse_scorecard

SCORECARD = parse_scorecard(
    {
        "name": "two",
        "default": {
            "categories": {
                "adoption": {"weight": 60, "metrics": {"a": {"scheme": "linear", "bad": 0, "good": 1}}},
                "support": {"weight": 40, "metrics": {"s": {"scheme": "linear", "bad": 0, "good": 1}}},
            }
        },
        "segments": {
            "onboarding": {"when": "tenure_days < 120", "categories": {"adoption": {"weight": 20}}},
        },
    }
)


def _frame(health_band, risk_band, label, probability, health_score, account_id=None) -> pd.DataFrame:
    n = len(label)
    return pd.DataFrame(
        {
            "account_id": account_id or [f"A{i}" for i in range(n)],
            "as_of": pd.Timestamp("2024-01-01"),
            "label": label,
            "arr": 1000.0,
            "segment": "smb",
            "health_score": health_score,
            "health_band": health_band,
            "churn_probability": probability,
            "risk_band": risk_band,
        }
    )


@pytest.fixture(scope="module")
def ranked() -> pd.DataFrame:
    """100 accounts x 2 snapshots; 10 churning accounts. ML ranks every churner on top; the rule is noise."""
    rng = np.random.default_rng(3)
    n = 100
    churn = np.zeros(n, dtype=int)
    churn[:10] = 1
    probability = np.where(churn == 1, rng.uniform(0.6, 0.9, n), rng.uniform(0.01, 0.5, n))
    health = rng.uniform(30, 95, n)
    rows = pd.DataFrame(
        {
            "account_id": [f"A{i:03d}" for i in range(n)],
            "label": churn,
            "churn_probability": probability,
            "health_score": health,
            "arr": np.where(np.arange(n) == 0, 50_000.0, 1_000.0),
        }
    )
    frame = pd.concat([rows.assign(as_of=pd.Timestamp("2024-01-01")), rows.assign(as_of=pd.Timestamp("2024-02-01"))])
    frame["health_band"] = np.select([frame.health_score >= 70, frame.health_score >= 60], ["green", "yellow"], "red")
    frame["risk_band"] = np.select(
        [frame.churn_probability >= 0.5, frame.churn_probability >= 0.2], ["high", "medium"], "low"
    )
    frame["segment"] = "smb"
    return frame.reset_index(drop=True)


def test_cluster_bootstrap_draws_whole_accounts():
    groups = pd.Series(["a", "a", "a", "b", "c", "c", "d"])
    sizes = groups.value_counts()
    for sample in cluster_bootstrap_indices(groups, n_boot=50, seed=1):
        counts = groups.iloc[sample].value_counts()
        assert all(counts[g] % sizes[g] == 0 for g in counts.index), "an account came with only part of its rows"
        assert sum(counts[g] // sizes[g] for g in counts.index) == groups.nunique(), "one draw per account"


def test_auc_lower_bound_is_the_percentile_of_the_resampled_rows_aucs():
    """The weighted Mann-Whitney shortcut gives what scoring each resample's repeated rows gives, ties (rounded
    scores) and resamples with one class (left out) included."""
    rng = np.random.default_rng(3)
    groups = pd.Series(rng.integers(0, 40, 300)).astype(str)
    labels = (rng.random(300) < 0.15).astype(int)
    scores = np.round(labels * 0.4 + rng.random(300), 1)
    draws = [
        roc_auc_score(labels[idx], scores[idx])
        for idx in cluster_bootstrap_indices(groups, n_boot=300, seed=5)
        if 0 < labels[idx].sum() < len(idx)
    ]
    for level in (0.95, 0.8):
        expected = np.percentile(draws, (1 - level) * 100)
        assert auc_lower_bound(labels, scores, groups, level=level, n_boot=300, seed=5) == pytest.approx(expected)
    assert auc_lower_bound(labels, np.zeros(300), groups) == 0.5


def test_perfect_ml_and_known_lift(ranked):
    result = compare_scores(ranked, n_boot=100, seed=0)
    ml, rule = result["scores"]["ml"], result["scores"]["rule"]
    assert result["rows"] == 200 and result["accounts"] == 100 and result["churners"] == 20
    assert ml["roc_auc"]["value"] == 1.0 and ml["roc_auc"]["low"] == pytest.approx(1.0)
    # top 10% of rows = exactly the 20 churning rows: all churners caught, 10x the base rate
    assert ml["capture_top10"]["value"] == pytest.approx(1.0)
    assert ml["lift_top10"]["value"] == pytest.approx(10.0)
    assert ml["capture_top20"]["value"] == pytest.approx(1.0)
    assert ml["lift_top20"]["value"] == pytest.approx(5.0)
    assert ml["arr_capture_top10"]["value"] == pytest.approx(1.0)
    assert rule["roc_auc"]["value"] < 0.8
    diff = result["scores"]["ml_minus_rule"]["roc_auc"]
    assert diff["value"] == pytest.approx(ml["roc_auc"]["value"] - rule["roc_auc"]["value"])
    assert diff["low"] > 0, "a perfect score must beat noise in every resample"


def test_intervals_contain_point_estimates_and_shrink_with_data(ranked):
    result = compare_scores(ranked, n_boot=200, seed=7)
    for name, metrics in result["scores"].items():
        for metric, v in metrics.items():
            if np.isnan(v["value"]):
                continue
            assert v["low"] <= v["value"] <= v["high"], (name, metric, v)
    bigger = pd.concat([ranked.assign(account_id=ranked.account_id + f"_{k}") for k in range(4)], ignore_index=True)
    wide = result["scores"]["rule"]["roc_auc"]
    narrow = compare_scores(bigger, n_boot=200, seed=7)["scores"]["rule"]["roc_auc"]
    assert narrow["high"] - narrow["low"] < wide["high"] - wide["low"]


def test_bootstrap_is_seeded(ranked):
    assert compare_scores(ranked, n_boot=30, seed=5) == compare_scores(ranked, n_boot=30, seed=5)


def test_missing_columns_are_named():
    with pytest.raises(DataContractError, match="churn_probability"):
        compare_scores(pd.DataFrame({"account_id": ["a"], "as_of": [0], "label": [1]}))


def test_band_calibration_counts_and_rates():
    frame = _frame(
        health_band=["green", "green", "green", "green", "yellow", "yellow", "red", "red"],
        risk_band=["low", "low", "low", "medium", "medium", "high", "high", "high"],
        label=[0, 0, 0, 1, 0, 1, 1, 1],
        probability=[0.05, 0.1, 0.1, 0.3, 0.3, 0.6, 0.7, 0.9],
        health_score=[90, 85, 80, 75, 65, 62, 40, 30],
    )
    table = band_calibration(frame)
    rule_bands = table[(table.score == "rule") & (table.grouping == "band")].set_index("group")
    assert rule_bands.loc[["green", "yellow", "red"], "rows"].tolist() == [4, 2, 2]
    assert rule_bands.loc[["green", "yellow", "red"], "churn_rate"].tolist() == [0.25, 0.5, 1.0]
    assert rule_bands.loc["green", "mean_risk"] == pytest.approx(100 - 82.5)
    ml_bands = table[(table.score == "ml") & (table.grouping == "band")].set_index("group")
    assert ml_bands.loc[["low", "medium", "high"], "churners"].tolist() == [0, 1, 3]
    assert ml_bands.loc["high", "mean_risk"] == pytest.approx((0.6 + 0.7 + 0.9) / 3)
    assert churn_rate_by_band(table) == {"green": 0.25, "yellow": 0.5, "red": 1.0}
    assert is_monotone(churn_rate_by_band(table))
    assert not is_monotone({"green": 0.3, "yellow": 0.1, "red": 0.5})
    deciles = table[(table.score == "ml") & (table.grouping == "decile")]
    assert deciles["rows"].sum() == 8 and deciles["churners"].sum() == 4


def test_deciles_are_equal_sized_and_ordered():
    risk = pd.Series(np.r_[np.zeros(50), np.linspace(1, 2, 50)])
    deciles = risk_deciles(risk)
    assert deciles.value_counts().tolist() == [10] * 10
    assert deciles.iloc[-1] == 10 and deciles.iloc[0] == 1


def test_agreement_matrix_correlation_and_disagreements():
    frame = _frame(
        account_id=["g1", "g1", "g2", "g3", "r1", "r2", "r2", "ok1", "ok2", "ok3"],
        health_band=["green", "green", "green", "green", "red", "red", "red", "green", "yellow", "red"],
        risk_band=["high", "high", "high", "low", "low", "low", "low", "low", "medium", "high"],
        label=[1, 1, 0, 0, 0, 1, 1, 0, 0, 1],
        probability=[0.7, 0.9, 0.6, 0.1, 0.15, 0.05, 0.12, 0.1, 0.3, 0.8],
        health_score=[75, 72, 90, 88, 50, 40, 45, 80, 65, 30],
    )
    frame["health_adoption"] = np.arange(10) * 10.0
    frame["ml_adoption"] = np.arange(10) * -0.1
    frame["ml_support"] = 0.2
    result = agreement(frame, n=10)

    counts = result.pivot("rows")
    assert counts.loc["green", "high"] == 3 and counts.loc["green", "low"] == 2
    assert counts.loc["red", "low"] == 3 and counts.loc["red", "high"] == 1
    assert counts.loc["yellow", "medium"] == 1 and counts.to_numpy().sum() == 10
    assert result.pivot("churn_rate").loc["green", "high"] == pytest.approx(2 / 3)
    assert np.isnan(result.pivot("churn_rate").loc["yellow", "low"])
    assert result.agreeing_share == pytest.approx(4 / 10)  # green-low x2, yellow-medium, red-high
    assert result.spearman == pytest.approx((100 - frame.health_score).corr(frame.churn_probability, method="spearman"))

    found = result.disagreements
    green = found[found.kind == "green_but_high_ml_risk"]
    red = found[found.kind == "red_but_low_ml_risk"]
    # one row per account, its most extreme snapshot; riskiest first / safest first
    assert green["account_id"].tolist() == ["g1", "g2"]
    assert green["churn_probability"].tolist() == [0.9, 0.6]
    assert red["account_id"].tolist() == ["r2", "r1"]
    assert red["churn_probability"].tolist() == [0.05, 0.15]
    columns = list(found.columns)
    assert columns.index("ml_adoption") == columns.index("health_adoption") + 1, "categories side by side"
    assert "ml_support" in columns


def test_disagreements_cap_per_kind():
    n = 30
    frame = _frame(
        health_band=["green"] * n,
        risk_band=["high"] * n,
        label=[1] * n,
        probability=np.linspace(0.5, 0.99, n),
        health_score=[80.0] * n,
    )
    found = agreement(frame, n=5).disagreements
    assert len(found) == 5
    assert found["churn_probability"].is_monotonic_decreasing and found["churn_probability"].iloc[0] == 0.99


def test_category_alignment_signs_and_shares():
    rng = np.random.default_rng(0)
    n = 400
    adoption = rng.uniform(0, 100, n)
    support = rng.uniform(0, 100, n)
    frame = _frame(
        health_band=["green"] * n,
        risk_band=["low"] * n,
        label=rng.integers(0, 2, n),
        probability=rng.uniform(0, 1, n),
        health_score=0.6 * adoption + 0.4 * support,
    )
    frame["health_adoption"] = adoption
    frame["health_support"] = support
    frame["ml_adoption"] = 0.6 - 0.012 * adoption  # healthier -> lower risk: aligned, |mean| = 0.3
    frame["ml_support"] = 0.1 * np.sign(support - 50)  # rule and model disagree on direction, |.| = 0.1
    frame.loc[frame.index[:50], "ml_support"] *= -1
    frame["ml_account"] = 0.0
    frame["health_scorecard"] = "default"
    table = category_alignment(frame, SCORECARD).set_index("category")

    assert table.loc["adoption", "correlation"] == pytest.approx(-1.0)
    assert table.loc["support", "correlation"] > 0
    assert table.loc["adoption", "ml_attribution_share"] == pytest.approx(0.75, abs=0.02)
    assert table.loc["support", "ml_attribution_share"] == pytest.approx(0.25, abs=0.02)
    assert table.loc["adoption", "scorecard_weight_share"] == pytest.approx(0.6)
    assert table.loc["support", "share_gap"] == pytest.approx(table.loc["support", "ml_attribution_share"] - 0.4)
    assert np.isnan(table.loc["account", "scorecard_weight_share"]), "ML-only category has no scorecard weight"
    assert table.loc["account", "rows"] == 0


def test_weight_shares_follow_the_scorecards_rows_used():
    used = pd.Series(["default", "onboarding", "onboarding", "default"])
    shares = category_weight_shares(SCORECARD, used)
    assert shares["adoption"] == pytest.approx(0.5 * 0.6 + 0.5 * 20 / 60)
    assert sum(shares.values()) == pytest.approx(1.0)
    with pytest.raises(DataContractError, match="regulated"):
        category_weight_shares(SCORECARD, pd.Series(["regulated"]))


def test_the_console_names_an_empty_band_and_counts_a_small_one():
    """`churn compare` printed "Churn rate by ML risk band: low 4.6%, medium 32.3%": an empty "high" band was
    left out without a word, and "60.0%" on 5 rows read like a rate."""
    from pipeline.compare import band_rates

    calibration = pd.DataFrame(
        {
            "score": ["ml"] * 3 + ["rule"],
            "grouping": ["band"] * 4,
            "group": ["low", "medium", "high", "green"],
            "rows": [900, 5, 0, 40],
            "churners": [45, 3, 0, 2],
            "churn_rate": [0.05, 0.6, np.nan, 0.05],
        }
    )
    assert band_rates(calibration, "ml") == "low 5.0%, medium 60.0% (3 of 5), high no rows"
    assert band_rates(calibration, "rule") == "green 5.0%"


def test_attribution_words_name_what_the_trees_use_most_important_first():
    """An actionable feature is named by its source (a prepared table's column by its own name), a context one by
    itself; a feature the trees never split on adds no attribution and is not named."""
    from models.comparison import attribution_words

    importance = pd.Series(
        {"logins_per_seat_30d": 2.0, "Monthly Charges": 9.0, "days_overdue": 0.0, "tenure_days": 3.0,
         "days_since_last_login": 5.0, "days_to_renewal": 4.0, "segment": 0.0}
    )  # fmt: skip
    assert attribution_words(importance) == (("Monthly Charges", "logins"), ("days to renewal", "tenure"))


def test_a_small_high_band_is_reported_with_its_accounts_and_the_range_outcome_noise_alone_gives_it():
    """`make run` printed "high 38.2%" for a band predicted at ~0.64: 33 snapshot rows of 13 accounts, whose
    observed rate a perfectly calibrated model puts anywhere from ~0.35 to ~0.9. Each band now says its accounts
    and that range, with an account's snapshots sharing its one renewal (not 33 independent outcomes)."""
    from models.comparison import band_rates, calibration_by_band, outcome_noise

    accounts = pd.Series([f"A{i:02d}" for i in range(13) for _ in range(3)])  # 13 accounts x 3 snapshots
    term_end = pd.Series(["2025-09-30"] * len(accounts))
    p = np.full(len(accounts), 0.65)
    clustered = outcome_noise(p, (accounts + "|" + term_end).to_numpy())
    independent = outcome_noise(p, np.arange(len(p)))
    assert clustered[0] < 0.45 and clustered[1] > 0.85  # 13 renewals: wide
    assert clustered[1] - clustered[0] > 1.5 * (independent[1] - independent[0])  # 39 would be far narrower
    labels = np.array([1, 1, 1] * 5 + [0, 0, 0] * 8)  # 5 of 13 churned: 0.385 observed
    table = calibration_by_band(labels, p, pd.Series(["high"] * len(p)), accounts, term_end).set_index("band")
    high = table.loc["high"]
    assert (high["rows"], high["accounts"], high["churners"]) == (39, 13, 15)
    assert (high["noise_low"], high["noise_high"]) == pytest.approx(clustered)
    assert high["noise_low"] <= high["observed"] <= high["noise_high"]  # inside the noise: no evidence of bias
    assert table.loc["low", "accounts"] == 0 and pd.isna(table.loc["low", "noise_low"])
    frame = _frame(
        health_band=["green"] * 39, risk_band=["high"] * 39, label=labels.tolist(), probability=p.tolist(),
        health_score=[80] * 39,
    )  # fmt: skip
    frame["account_id"], frame["term_end"] = accounts.to_numpy(), pd.to_datetime(term_end).to_numpy()
    said = band_rates(band_calibration(frame), "ml")
    assert said.startswith("low no rows, medium no rows, high 38.5% (predicted 65.0%, noise alone ")
    assert said.endswith(" on 13 accounts)")
