"""The hyperparameter search: seeded and reproducible, starts from known settings, one-SE choice."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.base import clone

from features.table import feature_columns
from models import risk_model
from models.risk_model import ONE_SE_CAP, PATIENCE_RATE, ChurnRiskModel, CrossValidator, smoothed, tree_count
from models.split import out_of_time_split, rolling_origin_folds
from models.tuning import STARTING_POINTS, TrialRecord, one_se_choice, search
from pipeline.config import ModelSettings
from tests.churn_sim import simulate_feature_table

pytestmark = pytest.mark.slow  # trains models or runs the CLI end to end (see conftest)


def _trial(number: int, scores: tuple[float, ...], cost: float, state: str = "complete") -> TrialRecord:
    return TrialRecord(number=number, params={"n": number}, state=state, fold_scores=scores, trees=50, cost=cost)


def test_one_se_rule_prefers_the_cheapest_setting_statistically_as_good_as_the_best():
    best = _trial(0, (0.80, 0.84, 0.82), cost=150)
    noisy_cheap = _trial(1, (0.81, 0.83, 0.815), cost=6)  # deficit 0.0017 +- 0.006: as good
    steady_worse = _trial(2, (0.796, 0.836, 0.816), cost=2)  # 0.004 worse on every fold: not as good
    pruned = _trial(3, (), cost=1, state="pruned")
    chosen_best, chosen, tolerance = one_se_choice([best, noisy_cheap, steady_worse, pruned])
    assert chosen_best is best and chosen is noisy_cheap and 0 < tolerance <= ONE_SE_CAP
    assert one_se_choice([best, noisy_cheap], use_rule=False)[1] is best
    # however noisy the folds, never more than ONE_SE_CAP of CV AUC is given up
    far = _trial(4, (0.70, 0.90, 0.81), cost=1)
    assert one_se_choice([best, far])[1] is best
    # one fold has no standard error: the best is chosen
    assert one_se_choice([_trial(0, (0.8,), 100), _trial(1, (0.799,), 2)])[1].number == 0


@pytest.fixture(scope="module")
def folds():
    table, _ = simulate_feature_table(300, seed=9)
    split = out_of_time_split(table, validation_share=0.2, grace_days=30)
    pairs = rolling_origin_folds(table.loc[split.train_index], n_folds=3, grace_days=30).pairs()
    labelled = table[table["label"].notna()]
    model = ChurnRiskModel(num_threads=1)
    model.feature_names_in_ = feature_columns(table)
    model.categories_ = model._learn_levels(labelled)
    frame, labels = model.prepare(labelled), labelled["label"].astype(int).to_numpy()
    dataset = lgb.Dataset(
        frame, labels, categorical_feature=list(model.categories_), params=model._lgb_params(labels)
    ).construct()
    positions = [(labelled.index.get_indexer(a), labelled.index.get_indexer(b)) for a, b in pairs]
    return CrossValidator(labels, dataset, positions)


def test_search_is_seeded_starts_from_known_settings_and_reports_every_trial(folds):
    model = ChurnRiskModel(num_threads=1, tune_trials=7, seed=3)
    seen: list[TrialRecord] = []
    steps: list[tuple[str, int, int]] = []
    result = search(model, folds, progress=lambda *s: steps.append(s), on_trial=seen.append)
    assert [t.number for t in seen] == list(range(7)) and len(result.trials) == 7
    # the configured defaults first, then LightGBM's defaults, the additive model, the shallow one
    assert seen[0].params == {**model.tree_params(), "lambda_l1": 1e-8, "lambda_l2": 1e-8}
    for trial, start in zip(seen[1:4], STARTING_POINTS, strict=True):
        assert trial.params == start
    assert steps[-1] == ("tune", 7, 7)
    complete = [t for t in seen if t.state == "complete"]
    assert result.best.score == max(t.score for t in complete)
    assert result.chosen.score >= result.best.score - result.tolerance - 1e-12
    again = search(ChurnRiskModel(num_threads=1, tune_trials=7, seed=3), folds)
    assert [t.params for t in again.trials] == [t.params for t in seen]
    assert [t.fold_scores for t in again.trials] == [t.fold_scores for t in seen]
    summary = result.summary()
    assert summary["trials"] == 7 and summary["trials_complete"] + summary["trials_pruned"] == 7


def test_cross_validation_judges_every_fold_at_one_tree_count(folds):
    result = folds.evaluate(ChurnRiskModel(num_threads=1, learning_rate=0.1))
    assert len(result.fold_scores) == 3 and 1 <= result.trees < 1000
    assert result.score == pytest.approx(np.mean(result.fold_scores))
    assert result.se == pytest.approx(np.std(result.fold_scores, ddof=1) / np.sqrt(3))
    assert result.deployed_trees >= result.trees  # deployed: the judged count or a later one as good within one SE


def test_the_deployed_tree_count_alone_can_take_the_later_count_while_trials_are_judged_at_the_peak(folds, monkeypatch):
    """DEPLOYED_TREE_SE_FRACTION (adopted in wave 7) moves only the deployed count: the search still compares
    settings at their curve's peak, so a smooth setting is not judged at a lower count."""
    model = ChurnRiskModel(num_threads=1, learning_rate=0.3)
    monkeypatch.setattr(risk_model, "DEPLOYED_TREE_SE_FRACTION", 0.0)
    peak = folds.evaluate(model)
    assert peak.deployed_trees == peak.trees
    monkeypatch.setattr(risk_model, "TREE_SE_FRACTION", 1.0)
    later = folds.evaluate(model)
    monkeypatch.setattr(risk_model, "TREE_SE_FRACTION", 0.0)
    monkeypatch.setattr(risk_model, "DEPLOYED_TREE_SE_FRACTION", 1.0)
    deployed = folds.evaluate(model)
    assert (deployed.trees, deployed.fold_scores) == (peak.trees, peak.fold_scores)
    assert deployed.deployed_trees == later.trees > peak.trees


def _fold_curves(rounds: int, plateaus: tuple[float, ...], early: dict[int, tuple[int, float]]) -> list[np.ndarray]:
    """AUC curves of folds that reach their plateau within 15 rounds; `early` = {fold: (round, AUC)} adds a spike."""
    curves = []
    for fold, plateau in enumerate(plateaus):
        curve = plateau - 0.06 * np.exp(-np.arange(rounds) / 3)
        if fold in early:
            at, auc = early[fold]
            curve[at - 1] = auc
        curves.append(curve)
    return curves


def test_the_tree_count_is_the_later_plateau_as_good_as_a_noisy_early_peak_of_the_mean_curve(monkeypatch):
    """Folds with a handful of churners: one fold's AUC spikes at round 9 (a lucky early ranking of its 10-25
    churners), so the mean curve's maximum is there (the rule before wave 7 deployed 9 trees). Within the folds'
    paired spread the plateau is as good: with TREE_SE_FRACTION 1 the largest tree count within one SE of the
    maximum is taken (measured in wave 7 and left out of the default, which stays the maximum)."""
    plateaus = (0.70, 0.68, 0.72, 0.70)
    curves = _fold_curves(300, plateaus, early={0: (9, 0.72)})
    assert int(np.argmax(np.mean(curves, axis=0))) + 1 == 9  # the noisy peak is the maximum
    assert tree_count(curves)[0] == 9  # the default: the maximum
    assert tree_count(curves, 1.0)[0] == 300  # an explicit fraction (the deployed count's) overrides it
    monkeypatch.setattr(risk_model, "TREE_SE_FRACTION", 1.0)
    trees, scores = tree_count(curves)
    assert trees == 300 and scores == pytest.approx([c[-1] for c in curves])
    assert np.mean(scores) >= np.mean(curves, axis=0).max() - ONE_SE_CAP
    # never beyond the shortest early-stopped curve: longer counts are not measured on every fold
    assert tree_count([curves[0][:120], *curves[1:]])[0] == 120
    # a decline every fold shares (over-fitting) is not noise: the count stays at the peak
    declining = [c - 0.0004 * np.maximum(np.arange(300) - 99, 0) * (1 + fold / 10) for fold, c in enumerate(curves)]
    declining[0][8] = declining[0][99]  # no spike
    trees, _ = tree_count(declining)
    assert 100 <= trees <= 110
    # a gain larger than ONE_SE_CAP is never given up, however noisy the folds
    assert tree_count(_fold_curves(300, plateaus, early={0: (9, 0.99)}))[0] == 9
    # one fold has no standard error: its maximum
    assert tree_count(curves[:1])[0] == 9


def test_trials_judged_on_smoothed_fold_curves_no_longer_let_a_one_round_spike_outscore_a_plateau(folds, monkeypatch):
    """CURVE_SMOOTHING_ROUNDS (wave 8): one fold's lucky round 9 outscores a plateau 0.01 higher on every fold
    when trials are judged at the raw mean curve's maximum; averaged over 10 rounds it no longer does."""
    plateaus = (0.70, 0.68, 0.72, 0.70)
    spiky = _fold_curves(300, plateaus, early={0: (9, 0.80)})
    smooth = _fold_curves(300, tuple(p + 0.01 for p in plateaus), early={})
    assert np.mean(tree_count(spiky)[1]) > np.mean(tree_count(smooth)[1])  # raw: the spike wins
    assert tree_count(spiky)[0] == 9
    spiky_10, smooth_10 = ([smoothed(c, 10) for c in curves] for curves in (spiky, smooth))
    assert np.mean(tree_count(spiky_10)[1]) < np.mean(tree_count(smooth_10)[1])
    assert np.array_equal(smoothed(spiky[0], 1), spiky[0])  # a window of one round is the raw curve
    # the window counts rounds at PATIENCE_RATE: a slower setting's spike spans proportionally more rounds
    monkeypatch.setattr(risk_model, "CURVE_SMOOTHING_ROUNDS", 10)
    assert ChurnRiskModel(learning_rate=0.2).smoothing_window() == 10
    assert ChurnRiskModel(learning_rate=0.01).smoothing_window() == round(10 * PATIENCE_RATE / 0.01)
    model = ChurnRiskModel(num_threads=1, learning_rate=0.3)
    judged = folds.evaluate(model)
    monkeypatch.setattr(risk_model, "CURVE_SMOOTHING_ROUNDS", 0)
    raw = folds.evaluate(model)
    assert ChurnRiskModel().smoothing_window() == 0
    assert judged.score < raw.score  # an average of a curve never exceeds its maximum


def test_a_slow_learning_rate_gets_patience_in_proportion_so_early_stopping_does_not_end_it_untrained():
    """At learning rate 0.01 a strong binary feature keeps winning the split for ~100 rounds while the AUC stays
    flat (the ranking is its two levels), before the weak continuous feature gets a turn. Patience counted in
    plain rounds (50) stopped at 1 tree; counted in rounds at the PATIENCE_RATE it trains on."""
    rng = np.random.default_rng(0)
    n = 4000
    strong, weak = rng.random(n) < 0.5, rng.normal(size=n)
    labels = (rng.random(n) < 1 / (1 + np.exp(1.5 - 2.0 * strong - 0.6 * weak))).astype(int)
    dataset = lgb.Dataset(
        np.column_stack([strong, weak]).astype(float), labels, params={"feature_pre_filter": False, "verbosity": -1}
    ).construct()
    rows = np.arange(n)
    cv = CrossValidator(labels, dataset, [(rows[: n // 2], rows[n // 2 :])])
    stumps = {"num_leaves": 2, "max_depth": 1, "feature_fraction": 1.0, "bagging_fraction": 1.0, "num_threads": 1}
    slow = ChurnRiskModel(learning_rate=0.01, early_stopping_rounds=50, **stumps)
    assert slow.patience() == round(50 * PATIENCE_RATE / 0.01)
    assert ChurnRiskModel(learning_rate=PATIENCE_RATE, early_stopping_rounds=50).patience() == 50
    assert ChurnRiskModel(learning_rate=0.2, early_stopping_rounds=50).patience() == 50
    result = cv.evaluate(slow)
    assert result.trees > 100 and result.score > 0.76  # the weak feature is in: both features rank
    fast = cv.evaluate(clone(slow).set_params(learning_rate=0.1))
    assert abs(result.score - fast.score) < 0.01  # a slow rate reaches what a fast one does


def _loaded_machine(seconds_per_reading: float) -> Callable[[], float]:
    """A clock that advances `seconds_per_reading` at every reading: the search reads it once at the
    start and once after each trial, so every trial seems to take that long (a machine under load)."""
    readings = count()
    return lambda: next(readings) * seconds_per_reading


def test_the_default_budget_is_trials_so_a_loaded_machine_chooses_the_same_trees(folds):
    default = ModelSettings().estimator().set_params(num_threads=1, tune_trials=6, seed=3)
    quiet = search(clone(default), folds)
    loaded = search(clone(default), folds, clock=_loaded_machine(300.0))  # 5 minutes a trial
    assert not quiet.cut_by_timeout and not loaded.cut_by_timeout and len(loaded.trials) == 6
    assert [t.params for t in loaded.trials] == [t.params for t in quiet.trials]
    assert [(t.state, t.fold_scores, t.trees) for t in loaded.trials] == [
        (t.state, t.fold_scores, t.trees) for t in quiet.trials
    ]
    assert (loaded.chosen.number, loaded.chosen.params) == (quiet.chosen.number, quiet.chosen.params)


def test_a_timeout_that_cuts_the_search_is_reported_and_none_means_no_limit(folds):
    model = ChurnRiskModel(num_threads=1, tune_trials=6, seed=3, tune_timeout_s=1000.0)
    cut = search(model, folds, clock=_loaded_machine(300.0))  # the 4th trial ends past 1,000 s
    assert cut.cut_by_timeout and len(cut.trials) == 4
    assert cut.summary()["search_cut_by_timeout"] is True and cut.summary()["trials"] == 4
    unlimited = search(clone(model).set_params(tune_timeout_s=None, tune_trials=3), folds, clock=_loaded_machine(1e6))
    assert not unlimited.cut_by_timeout and len(unlimited.trials) == 3


def test_a_sampled_search_keeps_the_finalist_that_scores_best_on_the_latest_full_fold():
    table, _ = simulate_feature_table(300, seed=9)
    split = out_of_time_split(table, validation_share=0.2, grace_days=30)
    pairs = rolling_origin_folds(table.loc[split.train_index], n_folds=3, grace_days=30).pairs()
    sampled = [(train[::3], valid) for train, valid in pairs]  # the search sees a third of each fold's rows
    labelled = table[table["label"].notna()]
    features = feature_columns(table)
    settings = dict(num_threads=1, tune_trials=6, seed=3, refit=False)

    def fit(**tuning: object) -> ChurnRiskModel:
        return ChurnRiskModel(**settings).fit(
            labelled[features],
            labelled["label"],
            train_index=split.train_index,
            valid_index=split.valid_index,
            folds=pairs,
            groups=labelled["account_id"],
            **tuning,
        )

    model = fit(tuning_folds=sampled)
    names = " = ".join(f["finalist"] for f in model.finalists_).split(" = ")
    assert sorted(names) == ["best on the sample", "configured", "one-SE choice on the sample"]
    assert [f["kept"] for f in model.finalists_].count(True) == 1
    kept = next(f for f in model.finalists_ if f["kept"])
    assert kept["full_fold_auc"] == max(f["full_fold_auc"] for f in model.finalists_)
    assert {k: model.get_params()[k] for k in model.tree_params()} == {k: kept[k] for k in model.tree_params()}
    assert (model.cv_.score, model.best_iteration_) == (kept["full_fold_auc"], kept["trees"])
    assert any(note.endswith(f"kept the {kept['finalist']}") for note in model.notes_)
    # each finalist was judged on the latest fold's full rows, not on the sample
    frame, labels = model.prepare(labelled[features]), labelled["label"].astype(int).to_numpy()
    dataset = lgb.Dataset(
        frame, labels, categorical_feature=list(model.categories_), params=model._lgb_params(labels)
    ).construct()
    train, valid = pairs[-1]
    latest = CrossValidator(labels, dataset, [(labelled.index.get_indexer(train), labelled.index.get_indexer(valid))])
    for finalist in model.finalists_:
        params = {k: finalist[k] for k in model.tree_params()}
        assert latest.evaluate(ChurnRiskModel(**settings, **params)).score == pytest.approx(finalist["full_fold_auc"])
    assert model.selection_["finalist_0_full_fold_auc"] == model.finalists_[0]["full_fold_auc"]
    assert fit().finalists_ == []  # without a sampled search there is nothing to judge
