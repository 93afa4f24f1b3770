"""The quality benchmark's paired comparisons (bench/quality.py): is a gap to a baseline real or noise?"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench
from bench import quality


@pytest.fixture(scope="module")
def book() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """400 rows of 200 accounts (two rows each), 60 churners, and a risk that ranks them fairly well."""
    rng = np.random.default_rng(3)
    accounts = np.repeat(np.arange(200), 2)
    y = np.zeros(400, dtype=int)
    y[rng.choice(400, 60, replace=False)] = 1
    return y, y + rng.normal(0, 0.8, 400), accounts


def test_paired_gaps_see_a_real_gap_and_no_gap_between_equal_scores(book):
    y, good, accounts = book
    noise = np.random.default_rng(4).normal(size=len(y))
    scores = {"model": good, "logistic": good.copy(), "hgb_defaults": noise, "lightgbm_defaults": good * 0.5 + 0.1}
    gaps = quality.paired_gaps(y, scores, accounts, n_boot=200, seed=0)
    # the same ranking (scaled or not) is no gap at all, in every resample
    assert gaps["logistic"] == (0.0, 0.0, 0.0) and gaps["lightgbm_defaults"] == (0.0, 0.0, 0.0)
    gap, low, high = gaps["hgb_defaults"]
    assert gap == pytest.approx(quality._auc(y, good) - quality._auc(y, noise))
    assert 0 < low < gap < high  # a model that ranks and a random score: the interval excludes 0


def test_replicates_reseed_event_datasets_into_their_own_folders_and_refuse_tables():
    available = quality.datasets()
    spec = available["foreign_usage_monthly"]
    copies = quality.replicates([spec], [7, 8])
    assert list(copies) == ["foreign_usage_monthly-seed7", "foreign_usage_monthly-seed8"]
    assert [c.seed for c in copies.values()] == [7, 8] and copies["foreign_usage_monthly-seed7"].make is spec.make
    folders = {c.history_dir(100, 1.0) for c in copies.values()} | {spec.history_dir(100, 1.0)}
    assert len(folders) == 3  # no replicate reuses another's cached history
    with pytest.raises(ValueError, match="telecom_churn"):
        quality.replicates([available["telecom_churn"]], [1])


def test_the_replicate_table_averages_the_gaps_over_seeds_with_a_t_interval():
    def result(seed: int, gap: float) -> quality.Result:
        row = quality.Result(f"foreign_b2b-seed{seed}", "event history", "", rows=500, churners=50)
        row.metrics = {"model": {"roc_auc": 0.75}}
        row.gaps = {b: (gap, gap - 0.03, gap + 0.03) for b in quality.BASELINES}
        return row

    info = {"commit": "abc", "date": "today", "cpu": "cpu", "cores": 2, "load_before": (1.0,), "load_after": (1.0,),
            "minutes": 3.0, "bootstrap": 100}  # fmt: skip
    text = quality.replicate_markdown([result(1, -0.02), result(2, 0.0), result(3, 0.02)], info, "replicates")
    # mean 0, sd 0.02 over 3 seeds: half-width t(0.975, 2) * 0.02 / sqrt(3) = 0.050
    assert "| foreign_b2b | mean of 3 | 1,500 (150) | 0.750 | **+0.000** [-0.050, +0.050]" in text
    assert "| foreign_b2b | 2 | 500 (50) | 0.750 | +0.000 [-0.030, +0.030]" in text


def test_the_seeds_book_trains_on_what_was_known_at_cut_and_scores_the_next_year():
    from bench import paired_seeds

    as_of = pd.to_datetime(["2023-06-01", "2023-12-01", "2023-10-01", "2024-03-01", "2024-12-01", "2025-01-01"])
    table = pd.DataFrame(
        {
            "account_id": ["A", "A", "B", "B", "C", "C"],
            "as_of": as_of,
            "label": [0.0, 1.0, 0.0, 1.0, 0.0, np.nan],
            # A's December term ended before CUT but its outcome came within the grace period after it
            "term_end": pd.to_datetime(
                ["2023-07-01", "2023-12-15", "2023-11-20", "2024-04-01", "2024-12-31", "2025-02-01"]
            ),
        }
    )
    training, book = paired_seeds.book_and_training(table, pd.Timestamp("2024-01-01"), grace_days=30)
    assert training["label"].tolist()[:1] == [0.0] and training["label"].isna().tolist() == [False, True, False]
    assert book["account_id"].tolist() == ["B", "C"]  # Mar and Dec 2024, labelled; 2025 is beyond the year


def test_a_seeds_variant_sets_a_model_constant_for_its_training_only_and_refuses_unknown_names():
    from bench import paired_seeds
    from models import risk_model

    before = risk_model.PATIENCE_RATE
    with paired_seeds.model_constants({"PATIENCE_RATE": 0}):
        assert risk_model.PATIENCE_RATE == 0
        assert risk_model.ChurnRiskModel(learning_rate=0.01, early_stopping_rounds=50).patience() == 50
    assert before == risk_model.PATIENCE_RATE
    with pytest.raises(SystemExit, match="NO_SUCH_CONSTANT"), paired_seeds.model_constants({"NO_SUCH_CONSTANT": 1}):
        pass


def test_each_band_says_how_far_outcome_noise_alone_moves_its_observed_rate():
    """A calibrated model's medium band of 123 accounts near 0.3 strays from its mean by up to ~0.08 (95 %):
    the band check's 0.05 then fails about one such band in five by luck (wave 8, ours_support_pain)."""
    rng = np.random.default_rng(5)
    truth = np.r_[np.full(877, 0.07), np.full(123, 0.3)]
    p = truth.copy()
    strays = []
    for _ in range(400):  # outcomes drawn from the very probabilities the model predicts
        y = (rng.random(len(truth)) < truth).astype(int)
        strays.append(quality.band_table(y, p)[1]["observed"] - 0.3)
    medium = quality.band_table(y, p, truth)[1]
    assert medium["band"] == "medium" and medium["accounts"] == 123 and medium["true_mean"] == pytest.approx(0.3)
    assert medium["noise_95"] == pytest.approx(1.96 * np.sqrt(0.3 * 0.7 / 123))
    assert np.mean(np.abs(strays) <= medium["noise_95"]) == pytest.approx(0.95, abs=0.03)
    assert 0.10 < np.mean(np.abs(strays) > quality.BAND_GAP) < 0.30
    # without the truth the model's own probabilities set the noise (prepared tables)
    assert quality.band_table(y, p)[1]["noise_95"] == pytest.approx(medium["noise_95"])
    assert quality.band_line(medium) == f"medium 123: 0.300 -> {medium['observed']:.3f} (true 0.300, noise ±0.081)"


def _horizon_world(accounts: int, seed: int) -> pd.DataFrame:
    """Monthly-like rows whose churn is much likelier far from renewal than near it, at the same `usage`:
    the booster never sees the days to renewal, so its log-odds mean different things in the two groups."""
    rng = np.random.default_rng(seed)
    rows = accounts * 4
    usage = rng.normal(size=rows)
    days = rng.integers(0, 365, rows)
    truth = 1 / (1 + np.exp(-(-1.5 - usage + np.where(days > 90, 2.0, 0.0))))
    return pd.DataFrame(
        {
            "account_id": np.repeat([f"A{seed}-{i}" for i in range(accounts)], 4),
            "usage": usage,
            "days_to_renewal": days,
            "label": (rng.random(rows) < truth).astype(int),
            "truth": truth,
        }
    )


def test_horizon_calibrators_fix_a_horizon_dependent_miscalibration_that_the_pooled_calibrator_cannot():
    from bench import paired_seeds
    from models.risk_model import ChurnRiskModel

    labelled, book = _horizon_world(500, seed=1), _horizon_world(500, seed=2)
    train, valid = labelled.index[:1600], labelled.index[1600:]
    model = ChurnRiskModel(num_threads=1, n_estimators=200).fit(
        labelled[["usage"]], labelled["label"], train_index=train, valid_index=valid, groups=labelled["account_id"]
    )
    days = book["days_to_renewal"].to_numpy()
    far = days > paired_seeds.NEAR_RENEWAL_DAYS
    truth = book["truth"].to_numpy()
    pooled = model.predict_proba(book[["usage"]])[:, 1]
    # one map for both horizons: too low far from renewal, too high near it
    assert pooled[far].mean() < truth[far].mean() - 0.07 and pooled[~far].mean() > truth[~far].mean() + 0.2
    candidates = paired_seeds.horizon_calibrators(model, labelled, book)
    assert set(candidates) == {"horizon_isotonic", "horizon_platt", "horizon_offset"}
    for name, p in candidates.items():
        for group in (far, ~far):
            assert abs(p[group].mean() - truth[group].mean()) < 0.04, name
    measured = paired_seeds.calibration(book["label"].to_numpy(), pooled, truth, days)
    assert measured["far_minus_true"] == pytest.approx(pooled[far].mean() - truth[far].mean())
    assert measured["near_minus_true"] == pytest.approx(pooled[~far].mean() - truth[~far].mean())
    assert measured["abs_mean_gap"] == pytest.approx(abs(pooled.mean() - book["label"].mean()))


def test_baselines_leave_out_a_feature_no_training_row_has():
    """A third-simulator world writes only NPS surveys, so its CSAT features are empty: scikit-learn 1.9's
    HistGradientBoosting raised on that column and the benchmark row was lost."""
    rng = np.random.default_rng(0)
    usage = rng.normal(size=400)
    train = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(400)],
            "usage": usage,
            "survey_csat_latest": np.full(400, np.nan),
            "label": (usage + rng.normal(size=400) < -0.8).astype(float),
        }
    )
    probabilities = quality.baseline_probabilities(train, train.drop(columns="label"), seed=0)
    assert set(probabilities) == set(quality.BASELINES)
    for p in probabilities.values():
        assert quality._auc(train["label"].to_numpy(), p) > 0.7


def test_term_calibrator_and_the_term_breakdown_see_a_term_length_miscalibration():
    """Annual terms churn far more than monthly ones at the same `usage`, and the booster never sees the term
    length: the pooled map over-predicts monthly rows and under-predicts annual ones; `by_group` over `term_group`
    shows it, and term_isotonic (one map per term-length group) removes it."""
    from bench import paired_seeds
    from models.risk_model import ChurnRiskModel

    def world(seed: int) -> pd.DataFrame:
        frame = _horizon_world(500, seed)
        rng = np.random.default_rng(seed + 10)
        annual = rng.random(len(frame)) < 0.5
        truth = 1 / (1 + np.exp(-(-3.0 - frame["usage"] + np.where(annual, 2.5, 0.0))))
        return frame.assign(
            term_length_days=np.where(annual, 365, 30),
            truth=truth,
            label=(rng.random(len(frame)) < truth).astype(int),
        )

    labelled, book = world(1), world(2)
    model = ChurnRiskModel(num_threads=1, n_estimators=200).fit(
        labelled[["usage"]], labelled["label"], train_index=labelled.index[:1600],
        valid_index=labelled.index[1600:], groups=labelled["account_id"],
    )  # fmt: skip
    pooled = model.predict_proba(book[["usage"]])[:, 1]
    groups = paired_seeds.term_group(book["term_length_days"].to_numpy(dtype=float))
    truth, y = book["truth"].to_numpy(), book["label"].to_numpy()
    by_term = paired_seeds.by_group(groups, y, pooled, truth)
    assert set(by_term) == {"monthly", "annual"}
    rows, predicted, observed, true = by_term["monthly"]
    assert rows == (groups == "monthly").sum() and predicted > true + 0.05 and observed == y[groups == "monthly"].mean()
    assert by_term["annual"][1] < by_term["annual"][3] - 0.05
    fitted = paired_seeds.horizon_calibrators(model, labelled, book)["term_isotonic"]
    for group in ("monthly", "annual"):
        chosen = groups == group
        assert abs(fitted[chosen].mean() - truth[chosen].mean()) < 0.03, group


def test_the_rows_name_the_commit_given_else_unknown_outside_a_repository(tmp_path, monkeypatch):
    """A `git archive` copy has no repository: its rows read "commit ," before."""
    monkeypatch.delenv(quality.COMMIT_VARIABLE, raising=False)
    assert quality.code_commit(tmp_path) == "unknown"
    assert quality.code_commit(tmp_path, "feb713f") == "feb713f"
    monkeypatch.setenv(quality.COMMIT_VARIABLE, "2a94dc7")
    assert quality.code_commit(tmp_path) == "2a94dc7" and quality.machine()["commit"] == "2a94dc7"
    monkeypatch.delenv(quality.COMMIT_VARIABLE)
    assert quality.code_commit(quality.ROOT).split("+")[0].isalnum()  # this checkout's HEAD
