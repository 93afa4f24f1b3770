"""ChurnRiskModel on a simulated feature table with known truth: real LightGBM, no mocks."""

from __future__ import annotations

import numpy as np
import pytest
from churn_sim import simulate_feature_table
from sklearn.metrics import roc_auc_score

from features.table import feature_columns
from models.baselines import fit_logistic_baseline
from models.evaluation import expected_calibration_error
from models.risk_model import Calibrator, ChurnRiskModel
from models.split import out_of_time_split
from pipeline.config import ModelSettings
from pipeline.errors import ChurnError, DataContractError


@pytest.fixture(scope="module")
def data():
    table, truth = simulate_feature_table(500, seed=11)
    split = out_of_time_split(table, validation_share=0.2, grace_days=30)
    features = feature_columns(table)
    labelled = table[table["label"].notna()]
    train, valid = table.loc[split.train_index], table.loc[split.valid_index]
    return {
        "features": features,
        "X": train[features],
        "y": train["label"].astype(int),
        "X_valid": valid[features],
        "y_valid": valid["label"].astype(int).to_numpy(),
        "X_full": labelled[features],
        "y_full": labelled["label"],
        "truth_valid": truth.loc[split.valid_index].to_numpy(),
    }


def _fit(data, **params) -> ChurnRiskModel:
    model = ChurnRiskModel(num_threads=1, **params)
    return model.fit(
        data["X"], data["y"], data["X_valid"], data["y_valid"], X_full=data["X_full"], y_full=data["y_full"]
    )


@pytest.fixture(scope="module")
def model(data) -> ChurnRiskModel:
    return _fit(data)


def test_same_seed_gives_identical_predictions_and_another_seed_does_not(data, model):
    again = _fit(data)
    np.testing.assert_array_equal(model.predict_proba(data["X_valid"]), again.predict_proba(data["X_valid"]))
    np.testing.assert_array_equal(model.validation_proba_, again.validation_proba_)
    assert model.booster_.model_to_string() == again.booster_.model_to_string()
    other = _fit(data, seed=7)
    assert not np.array_equal(model.predict_raw(data["X_valid"]), other.predict_raw(data["X_valid"]))


def test_out_of_time_auc_is_close_to_the_oracle_auc_of_the_true_probabilities(data, model):
    oracle = roc_auc_score(data["y_valid"], data["truth_valid"])
    achieved = roc_auc_score(data["y_valid"], model.validation_raw_)
    assert achieved >= 0.92 * oracle, (achieved, oracle)


def test_early_stopping_chooses_the_tree_count_and_the_refit_uses_all_labelled_rows(data, model):
    assert 1 <= model.best_iteration_ < model.n_estimators
    assert model.booster_.num_trees() == model.best_iteration_
    assert model.fit_rows_ == len(data["X_full"]) > len(data["X"]) + len(data["X_valid"])
    assert model.train_rows_ == len(data["X"])
    unrefitted = _fit(data, refit=False)
    assert unrefitted.fit_rows_ == len(data["X"])
    # without refit the production booster is exactly the evaluated one
    np.testing.assert_allclose(unrefitted.predict_raw(data["X_valid"]), unrefitted.validation_raw_)


@pytest.mark.parametrize("calibration", ["isotonic", "sigmoid"])
def test_calibrated_probabilities_match_observed_churn_out_of_sample(data, calibration):
    model = _fit(data, calibration=calibration)
    ece = expected_calibration_error(data["y_valid"], model.validation_proba_)
    raw_as_probability = 1 / (1 + np.exp(-model.validation_raw_))
    assert ece < 0.06
    # class weighting inflates the raw scores; calibration is what makes them frequencies
    assert ece < expected_calibration_error(data["y_valid"], raw_as_probability) / 2
    proba = model.predict_proba(data["X_valid"])
    assert proba.shape == (len(data["X_valid"]), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba > 0) & (proba < 1)).all()


def test_calibrator_is_monotone_and_matches_sklearn_isotonic():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(0)
    raw = rng.normal(size=2_000)
    labels = (rng.random(2_000) < 1 / (1 + np.exp(-2 * raw))).astype(int)
    calibrator = Calibrator.fit(raw, labels, "isotonic")
    grid = np.linspace(-4, 4, 50)
    reference = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(raw, labels).predict(grid)
    np.testing.assert_allclose(calibrator.predict(grid), np.clip(reference, 1e-4, 1 - 1e-4))
    assert (np.diff(Calibrator.fit(raw, labels, "sigmoid").predict(grid)) > 0).all()


def test_categoricals_as_strings_in_any_column_order_score_the_same(data, model):
    X = data["X_valid"]
    as_text = X.astype({"segment": "object", "plan": "string"})[list(reversed(X.columns))]
    np.testing.assert_array_equal(model.predict_raw(X), model.predict_raw(as_text))
    assert model.categories["segment"] == ["enterprise", "mid", "smb"]


def test_unseen_category_levels_score_like_missing_values(data, model):
    X = data["X_valid"].head(20)
    unseen = X.astype({"plan": "object"}).assign(plan="platinum")
    missing = X.astype({"plan": "object"}).assign(plan=None)
    np.testing.assert_array_equal(model.predict_raw(unseen), model.predict_raw(missing))


def test_missing_feature_is_named_and_text_numbers_are_parsed(data, model):
    X = data["X_valid"].head(5)
    with pytest.raises(DataContractError, match=r"1 model feature\(s\) missing, e.g. \['tickets_90d'\]"):
        model.predict_proba(X.drop(columns="tickets_90d"))
    as_text = X.astype({"seats": "string"})
    np.testing.assert_array_equal(model.predict_raw(X), model.predict_raw(as_text))
    broken = X.astype({"seats": "object"}).assign(seats=["12", "lots", "3", " ", "4"])
    with pytest.raises(DataContractError, match=r"feature 'seats': 1 values are not numbers \(row \d+: 'lots'\)"):
        model.predict_raw(broken)


def test_contributions_add_up_to_the_raw_score(data, model):
    X = data["X_valid"].head(200)
    contributions = model.contributions(X)
    assert list(contributions.columns) == [*model.feature_names, "bias"]
    np.testing.assert_allclose(contributions.sum(axis=1), model.predict_raw(X), atol=1e-9)
    gain = model.feature_importance("gain")
    assert set(gain.index) == set(model.feature_names) and gain.iloc[0] > 0


def test_save_and_load_give_identical_predictions(tmp_path, data, model):
    model.metadata["note"] = "kept"
    loaded = ChurnRiskModel.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(model.predict_proba(data["X_valid"]), loaded.predict_proba(data["X_valid"]))
    assert loaded.get_params() == model.get_params() and loaded.metadata["note"] == "kept"
    with pytest.raises(ChurnError, match="holds no saved ChurnRiskModel"):
        ChurnRiskModel.load(tmp_path)


def test_settings_reach_the_booster():
    settings = ModelSettings(num_leaves=7, max_depth=3, learning_rate=0.1, calibration="sigmoid", num_threads=1)
    model = ChurnRiskModel.from_settings(settings)
    params = model._lgb_params(np.array([0, 0, 0, 1]))
    assert (params["num_leaves"], params["max_depth"], params["scale_pos_weight"]) == (7, 3, 3.0)
    assert params["deterministic"] and params["num_threads"] == 1 and model.calibration == "sigmoid"


def test_unfitted_model_and_one_class_labels_are_refused(data):
    with pytest.raises(ChurnError, match="not fitted yet"):
        ChurnRiskModel().predict_proba(data["X_valid"])
    with pytest.raises(DataContractError, match=r"training labels must hold both 0 \(renewed\) and 1"):
        ChurnRiskModel().fit(data["X"], np.zeros(len(data["X"])), data["X_valid"], data["y_valid"])


def test_logistic_baseline_handles_categoricals_missing_values_and_unseen_levels(data):
    baseline = fit_logistic_baseline(data["X"], data["y"], ["segment", "plan"])
    scored = data["X_valid"].astype({"plan": "object"})
    scored.loc[scored.index[:5], "plan"] = "platinum"
    proba = baseline.predict_proba(scored)[:, 1]
    assert np.isfinite(proba).all() and data["X_valid"]["csat_mean_90d"].isna().any()
    assert roc_auc_score(data["y_valid"], proba) > 0.65
