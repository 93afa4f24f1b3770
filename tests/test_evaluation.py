"""Evaluation metrics against hand-computed values and scikit-learn; plots as real PNG files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from features.errors import ChurnError
from models.evaluation import (
    evaluate,
    evaluation_figures,
    expected_calibration_error,
    plot_shap_by_category,
    score_metrics,
    top_share_weights,
)
from pipeline.io import save_figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_ece_is_small_for_calibrated_and_large_for_halved_probabilities():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 50_000)
    y = (rng.random(50_000) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, p / 2) == pytest.approx(0.25, abs=0.01)


def test_ece_by_hand_on_two_bins():
    y = np.array([1, 0, 0, 0, 1, 1])
    p = np.array([0.15, 0.15, 0.15, 0.15, 0.85, 0.85])
    # bin 1: observed 1/4 vs 0.15; bin 8: observed 2/2 vs 0.85; weights 4/6 and 2/6
    assert expected_calibration_error(y, p) == pytest.approx(4 / 6 * 0.10 + 2 / 6 * 0.15)


def test_top_share_takes_the_highest_scores_and_splits_boundary_ties_evenly():
    np.testing.assert_array_equal(top_share_weights(np.array([0.1, 0.9, 0.5, 0.7, 0.3]), 0.4), [0, 1, 0, 1, 0])
    weights = top_share_weights(np.array([5.0, 3, 3, 3, 1]), 0.4)  # 2 slots: the 5 and 1/3 of each 3
    np.testing.assert_allclose(weights, [1, 1 / 3, 1 / 3, 1 / 3, 0])
    assert top_share_weights(np.full(10, 0.2), 0.1).sum() == pytest.approx(1.0)


def test_lift_capture_and_arr_capture_by_hand():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    score = np.arange(10, 0, -1, dtype=float)  # row 0 riskiest
    arr = np.array([100, 300, 0, 0, 0, 0, 0, 0, 0, 600], dtype=float)
    metrics = score_metrics(y, score, arr=arr)
    # top 10% = row 0: 1 of 3 churners, precision 1 vs base rate 0.3
    assert metrics["capture_top10"] == pytest.approx(1 / 3)
    assert metrics["lift_top10"] == pytest.approx(1 / 0.3)
    assert metrics["arr_capture_top10"] == pytest.approx(0.1)
    # top 20% = rows 0-1: 2 of 3 churners, 400 of 1000 churned ARR
    assert metrics["capture_top20"] == pytest.approx(2 / 3)
    assert metrics["lift_top20"] == pytest.approx(1.0 / 0.3)
    assert metrics["arr_capture_top20"] == pytest.approx(0.4)


def test_ranking_uses_the_score_and_probability_metrics_the_probabilities():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    score = y + rng.normal(0, 1, 500)
    proba = np.clip(0.5 + 0.1 * score, 0.01, 0.99)
    metrics = score_metrics(y, score, probabilities=proba)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, score))
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(y, score))
    assert metrics["brier"] == pytest.approx(brier_score_loss(y, proba))
    assert np.isfinite(metrics["log_loss"]) and "brier" not in score_metrics(y, score)


def test_evaluate_reports_every_score_overall_and_per_segment():
    rng = np.random.default_rng(2)
    n = 900
    segments = pd.Series(rng.choice(["smb", "mid", "enterprise"], n))
    y = rng.integers(0, 2, n)
    model = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    rule = 100 * rng.uniform(size=n)
    result = evaluate(
        y, {"model": model, "rule": rule}, probabilities={"model": model}, segments=segments, arr=pd.Series(np.ones(n))
    )
    assert set(zip(result["score"], result["segment"], strict=True)) == {
        (s, g) for s in ("model", "rule") for g in ("all", "enterprise", "mid", "smb")
    }
    per_segment = result[(result["score"] == "model") & (result["segment"] != "all")]
    assert per_segment["rows"].sum() == n
    smb = (segments == "smb").to_numpy()
    row = result[(result["score"] == "model") & (result["segment"] == "smb")].iloc[0]
    assert row["roc_auc"] == pytest.approx(roc_auc_score(y[smb], model[smb]))
    assert result.loc[result["score"] == "rule", "brier"].isna().all()
    assert result.loc[result["score"] == "model", "brier"].notna().all()


def test_missing_scores_and_misaligned_inputs_are_refused():
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ChurnError, match="'rule' has 1 missing value; "):
        evaluate(y, {"rule": np.array([1.0, np.nan, 2.0, 3.0])})
    with pytest.raises(ChurnError, match="'model' has 3 values for 4 labelled rows"):
        evaluate(y, {"model": np.array([0.1, 0.2, 0.3])})
    with pytest.raises(ChurnError, match=r"probabilities given for \['other'\]"):
        evaluate(y, {"model": np.array([0.1, 0.2, 0.3, 0.4])}, probabilities={"other": np.ones(4) / 2})


def test_plots_are_written_as_png_files(tmp_path):
    rng = np.random.default_rng(3)
    n = 400
    y = rng.integers(0, 2, n)
    model = np.clip(0.4 * y + rng.uniform(0, 0.6, n), 0.001, 0.999)
    contributions = pd.DataFrame(rng.normal(size=(n, 4)), columns=["logins_30d", "tickets_90d", "seats", "plan"])
    categories = {"logins_30d": "engagement", "tickets_90d": "support", "seats": "account", "plan": "account"}
    importance = pd.Series([5.0, 3.0, 1.0, 0.5], index=contributions.columns, name="gain")
    figures = evaluation_figures(
        y,
        {"model": model, "rule": 100 * rng.uniform(size=n)},
        probabilities={"model": model},
        importance=importance,
        contributions=contributions,
        categories=categories,
    )
    written = save_figures(figures, tmp_path)
    assert sorted(p.name for p in written) == [
        "calibration.png",
        "gains_lift.png",
        "importance_gain.png",
        "precision_recall.png",
        "roc.png",
        "shap_by_category.png",
    ]
    for path in written:
        content = path.read_bytes()
        assert content.startswith(PNG_MAGIC) and len(content) > 10_000


def test_shap_summary_groups_contributions_by_health_category():
    contributions = pd.DataFrame({"a": [1.0, -1.0], "b": [2.0, 0.0], "c": [-0.5, 0.5]})
    figure = plot_shap_by_category(contributions, {"a": "support", "b": "support", "c": "training"})
    strips = figure.axes[0]
    assert [t.get_text() for t in strips.get_yticklabels()] == ["training", "support"]
    # the support strip holds per-row sums a + b = [3, -1]
    support_points = strips.collections[1].get_offsets()[:, 0]
    np.testing.assert_allclose(sorted(support_points), [-1.0, 3.0])
