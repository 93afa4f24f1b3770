"""ChurnRiskModel on a simulated feature table with known truth: real LightGBM, no mocks."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.utils import estimator_checks
from sklearn.utils.validation import check_is_fitted

from features.errors import ChurnError, DataContractError
from features.table import feature_columns
from models import risk_model
from models.baselines import fit_logistic_baseline
from models.evaluation import expected_calibration_error
from models.risk_model import CALIBRATION_FOLDS, Calibrator, ChurnRiskModel
from models.split import out_of_time_split, rolling_origin_folds
from pipeline.config import ModelSettings
from tests.churn_sim import simulate_feature_table


@pytest.fixture(scope="module")
def data():
    table, truth = simulate_feature_table(500, seed=11)
    split = out_of_time_split(table, validation_share=0.2, grace_days=30)
    folds = rolling_origin_folds(table.loc[split.train_index], n_folds=3, grace_days=30)
    features = feature_columns(table)
    labelled = table[table["label"].notna()]
    fresh, fresh_truth = simulate_feature_table(500, seed=12)  # new accounts from the same process
    fresh = fresh[fresh["label"].notna()]
    return {
        "features": features,
        "table": table,
        "split": split,
        "folds": folds.pairs(),
        "X": labelled[features],
        "y": labelled["label"],
        "groups": labelled["account_id"].astype(str),
        "X_valid": table.loc[split.valid_index, features],
        "y_valid": table.loc[split.valid_index, "label"].astype(int).to_numpy(),
        "truth_valid": truth.loc[split.valid_index].to_numpy(),
        "X_fresh": fresh[features],
        "y_fresh": fresh["label"].astype(int).to_numpy(),
        "truth_fresh": fresh_truth.loc[fresh.index].to_numpy(),
    }


def _fit(data, folds=None, **params) -> ChurnRiskModel:
    model = ChurnRiskModel(num_threads=1, **params)
    return model.fit(
        data["X"],
        data["y"],
        train_index=data["split"].train_index,
        valid_index=data["split"].valid_index,
        folds=data["folds"] if folds is None else folds,
        groups=data["groups"],
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


def test_cross_validation_chooses_the_tree_count_and_the_refit_uses_all_labelled_rows(data, model):
    assert 1 <= model.best_iteration_ < model.n_estimators
    assert model.booster_.num_trees() == model.best_iteration_
    # deployed: the count the folds were judged at, or a later one as good within one SE (DEPLOYED_TREE_SE_FRACTION)
    assert model.cv_.deployed_trees == model.best_iteration_ >= model.cv_.trees and len(model.cv_.fold_scores) == 3
    assert model.selection_["cv_auc"] == pytest.approx(np.mean(model.cv_.fold_scores))
    assert model.fit_rows_ == len(data["X"]) > model.train_rows_ == len(data["split"].train_index)
    unrefitted = _fit(data, refit=False)
    assert unrefitted.fit_rows_ == len(data["split"].train_index)
    # without refit the production booster is exactly the evaluated one
    np.testing.assert_allclose(unrefitted.predict_raw(data["X_valid"]), unrefitted.validation_raw_)


def _members_reproduce_out_of_fold_scores(model: ChurnRiskModel, data, rows: pd.Index) -> None:
    """Each calibration fold's scores come from a booster with the model's settings and tree count that
    trained on the other accounts of `rows` only (rebuilt here independently)."""
    positions = np.sort(data["X"].index.get_indexer(rows))
    np.testing.assert_array_equal(model.calibration_positions_, positions)
    prepared, y_all = model.prepare(data["X"]), data["y"].astype(int).to_numpy()
    binned = lgb.Dataset(
        prepared, label=y_all, categorical_feature=list(model.categories_), params=model._lgb_params(y_all)
    ).construct()  # binned on every labelled row, as fit does
    y, groups = y_all[positions], data["groups"].to_numpy()[positions]
    folds = StratifiedGroupKFold(n_splits=CALIBRATION_FOLDS, shuffle=True, random_state=model.seed)
    for fit_rows, held_out in folds.split(np.zeros(len(y)), y, groups):
        assert set(groups[fit_rows]).isdisjoint(groups[held_out])  # whole accounts held out
        member = lgb.train(model._lgb_params(y[fit_rows]), binned.subset(positions[fit_rows]), model.best_iteration_)
        scores = member.predict(prepared.iloc[positions[held_out]], raw_score=True)
        np.testing.assert_allclose(model.calibration_raw_[held_out], scores, atol=1e-9)


def test_the_deployed_calibrator_learned_from_scores_of_accounts_its_boosters_never_saw(data, model):
    # deployed = refit on every labelled row; its calibrator learned from cross-fitted members like it
    _members_reproduce_out_of_fold_scores(model, data, data["X"].index)
    y = data["y"].astype(int).to_numpy()
    reference = Calibrator.fit(model.calibration_raw_, y, model.calibration)
    grid = np.linspace(-6, 6, 41)
    np.testing.assert_array_equal(model.calibrator_.predict(grid), reference.predict(grid))
    # not the refit's own (in-sample) scores, which are more extreme than any new account's
    in_sample = model.predict_raw(data["X"])
    assert not np.allclose(model.calibration_raw_, in_sample)
    assert np.std(in_sample) > np.std(model.calibration_raw_)


def test_validation_probabilities_come_from_a_calibrator_that_never_saw_a_validation_row(data):
    unrefitted = _fit(data, refit=False)  # deploys the evaluation booster: its calibrator is the validation one
    _members_reproduce_out_of_fold_scores(unrefitted, data, data["split"].train_index)
    assert set(data["split"].valid_index).isdisjoint(data["X"].index[unrefitted.calibration_positions_])
    np.testing.assert_array_equal(
        unrefitted.validation_proba_, unrefitted.calibrator_.predict(unrefitted.validation_raw_)
    )
    in_sample = Calibrator.fit(unrefitted.validation_raw_, data["y_valid"], unrefitted.calibration)
    assert not np.allclose(unrefitted.validation_proba_, in_sample.predict(unrefitted.validation_raw_))


@pytest.mark.parametrize(
    ("calibration", "balance_classes"), [("isotonic", False), ("sigmoid", False), ("isotonic", True)]
)
def test_deployed_probabilities_match_observed_churn_on_new_accounts(data, calibration, balance_classes):
    model = _fit(data, calibration=calibration, balance_classes=balance_classes)
    proba = model.predict_proba(data["X_fresh"])
    assert proba.shape == (len(data["X_fresh"]), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba > 0) & (proba < 1)).all()
    churn, observed = proba[:, 1], data["y_fresh"]
    assert abs(churn.mean() - data["truth_fresh"].mean()) < 0.03, (churn.mean(), data["truth_fresh"].mean())
    assert abs(churn.mean() - observed.mean()) < 0.04, (churn.mean(), observed.mean())
    assert expected_calibration_error(observed, churn) < 0.05
    np.testing.assert_array_equal(churn, model.calibrator_.predict(model.predict_raw(data["X_fresh"])))
    if balance_classes:  # class weighting inflates the raw scores; only calibration makes them frequencies
        raw_as_probability = 1 / (1 + np.exp(-model.predict_raw(data["X_fresh"])))
        assert raw_as_probability.mean() > observed.mean() + 0.1


def test_without_folds_the_model_falls_back_to_the_validation_rows_and_says_so(data):
    thin = _fit(data, folds=[])
    assert thin.cv_ is None and "too few labelled rows for cross-validation" in thin.notes_[0]
    assert 1 <= thin.best_iteration_ < thin.n_estimators and thin.booster_.num_trees() == thin.best_iteration_
    assert thin.fit_rows_ == len(data["X"])


def test_calibrator_is_monotone_and_matches_sklearn_isotonic(monkeypatch):
    from sklearn.isotonic import IsotonicRegression

    monkeypatch.setattr(risk_model, "PRIOR_ROWS", 0.0)  # without the prior: plain isotonic regression
    rng = np.random.default_rng(0)
    raw = rng.normal(size=2_000)
    labels = (rng.random(2_000) < 1 / (1 + np.exp(-2 * raw))).astype(int)
    calibrator = Calibrator.fit(raw, labels, "isotonic")
    grid = np.linspace(-4, 4, 50)
    reference = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(raw, labels).predict(grid)
    np.testing.assert_allclose(calibrator.predict(grid), np.clip(reference, 1e-4, 1 - 1e-4), atol=1e-6)
    # strictly increasing: probabilities rank accounts exactly as the log-odds do (no ties from the steps)
    assert (np.diff(calibrator.predict(grid)) > 0).all()
    assert roc_auc_score(labels, calibrator.predict(raw)) == roc_auc_score(labels, raw)
    assert (np.diff(Calibrator.fit(raw, labels, "sigmoid").predict(grid)) > 0).all()


def test_isotonic_steps_of_few_rows_are_not_certain():
    """A top step of a few rows that all churned (a bottom one that all renewed) is shrunk toward the base rate
    by a Beta prior worth two rows; unshrunk it was exactly 1 (0), read as certainty."""
    rng = np.random.default_rng(1)
    raw = np.r_[[-6.2, -6.1, -6.0], rng.normal(size=400), [6.0, 6.1, 6.2]]
    labels = np.r_[[0, 0, 0], rng.random(400) < 1 / (1 + np.exp(-raw[3:-3])), [1, 1, 1]].astype(float)
    calibrator = Calibrator.fit(raw, labels, "isotonic")
    assert calibrator.predict(np.array([6.2]))[0] < 0.9
    assert 0.01 < calibrator.predict(np.array([-10.0]))[0] < 0.2
    assert np.all(np.diff(calibrator.knots_y) >= 0) and np.all(np.diff(calibrator.knots_x) >= 0)
    grid = np.linspace(-7, 7, 200)
    assert (np.diff(calibrator.predict(grid)) > 0).all()
    assert roc_auc_score(labels, calibrator.predict(raw)) == roc_auc_score(labels, raw)


def test_categoricals_as_strings_in_any_column_order_score_the_same(data, model):
    X = data["X_valid"]
    as_text = X.astype({"segment": "object", "plan": "string"})[list(reversed(X.columns))]
    np.testing.assert_array_equal(model.predict_raw(X), model.predict_raw(as_text))
    assert model.categories_["segment"] == ["enterprise", "mid", "smb"]


def test_unseen_category_levels_score_like_missing_values(data, model):
    X = data["X_valid"].head(20)
    unseen = X.astype({"plan": "object"}).assign(plan="platinum")
    missing = X.astype({"plan": "object"}).assign(plan=None)
    np.testing.assert_array_equal(model.predict_raw(unseen), model.predict_raw(missing))


def test_missing_feature_is_named_and_text_numbers_are_parsed(data, model):
    X = data["X_valid"].head(5)
    with pytest.raises(DataContractError, match=r"1 model feature missing, e.g. \['tickets_90d'\]"):
        model.predict_proba(X.drop(columns="tickets_90d"))
    as_text = X.astype({"seats": "string"})
    np.testing.assert_array_equal(model.predict_raw(X), model.predict_raw(as_text))
    broken = X.astype({"seats": "object"}).assign(seats=["12", "lots", "3", " ", "4"])
    with pytest.raises(DataContractError, match=r"feature 'seats': 1 value is not a number \(row \d+: 'lots'\)"):
        model.predict_raw(broken)


def test_contributions_add_up_to_the_raw_score(data, model):
    X = data["X_valid"].head(200)
    contributions = model.contributions(X)
    assert list(contributions.columns) == [*model.feature_names_in_, "bias"]
    np.testing.assert_allclose(contributions.sum(axis=1), model.predict_raw(X), atol=1e-9)
    gain = model.feature_importance("gain")
    assert set(gain.index) == set(model.feature_names_in_) and gain.iloc[0] > 0


def test_save_and_load_give_identical_predictions_from_plain_files(tmp_path, data, model):
    model.metadata_["note"] = "kept"
    directory = model.save(tmp_path / "m")
    assert sorted(p.name for p in directory.iterdir()) == ["booster.txt", "model.json", "reference.parquet"]
    loaded = ChurnRiskModel.load(directory)
    np.testing.assert_array_equal(model.predict_proba(data["X_valid"]), loaded.predict_proba(data["X_valid"]))
    assert loaded.get_params() == model.get_params() and loaded.metadata_["note"] == "kept"
    assert loaded.selection_ == model.selection_
    with pytest.raises(ChurnError, match="holds no saved ChurnRiskModel"):
        ChurnRiskModel.load(tmp_path)


def test_settings_reach_the_booster():
    settings = ModelSettings(
        num_leaves=7, max_depth=3, learning_rate=0.1, lambda_l2=2.0, calibration="sigmoid", num_threads=1
    )
    model = settings.estimator()
    params = model._lgb_params(np.array([0, 0, 0, 1]))
    assert (params["num_leaves"], params["max_depth"], params["lambda_l2"]) == (7, 3, 2.0)
    assert params["scale_pos_weight"] == 1.0  # class weighting is off by default
    assert clone(model).set_params(balance_classes=True)._lgb_params(np.array([0, 0, 0, 1]))["scale_pos_weight"] == 3.0
    assert params["deterministic"] and params["num_threads"] == 1 and model.calibration == "sigmoid"
    assert model.tune_trials == settings.tune_trials and model.refit


def test_unfitted_model_and_one_class_labels_are_refused(data):
    with pytest.raises(ChurnError, match="not fitted yet"):
        ChurnRiskModel().predict_proba(data["X_valid"])
    split = data["split"]
    with pytest.raises(DataContractError, match=r"labels must hold both 0 \(renewed\) and 1"):
        ChurnRiskModel().fit(
            data["X"], np.zeros(len(data["X"])), train_index=split.train_index, valid_index=split.valid_index
        )


def test_logistic_baseline_handles_categoricals_missing_values_and_unseen_levels(data):
    train = data["X"].loc[data["split"].train_index]
    baseline = fit_logistic_baseline(train, data["y"].loc[train.index].astype(int), ["segment", "plan"])
    scored = data["X_valid"].astype({"plan": "object"})
    scored.loc[scored.index[:5], "plan"] = "platinum"
    proba = baseline.predict_proba(scored)[:, 1]
    assert np.isfinite(proba).all() and data["X_valid"]["csat_mean_90d"].isna().any()
    assert roc_auc_score(data["y_valid"], proba) > 0.65


@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_parameters_default_constructible,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_estimator_cloneable,
        estimator_checks.check_estimator_repr,
        estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
    ],
    ids=lambda check: check.__name__,
)
def test_scikit_learn_estimator_checks_that_apply(check):
    """The checks that do not fit: fitting needs out-of-time rows and a frame with named columns."""
    check(ChurnRiskModel.__name__, ChurnRiskModel())


def test_clone_copies_parameters_not_fitted_state(data, model):
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    check_is_fitted(model)
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    with pytest.raises(ChurnError, match="not fitted yet"):
        copy.predict_proba(data["X"])
    assert set(model.predict(data["X"])) <= {0, 1} and list(model.classes_) == [0, 1]
