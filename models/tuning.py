"""Hyperparameter search for the renewal-risk model: Optuna TPE over the LightGBM settings that matter.

Every candidate is judged by `CrossValidator.evaluate` (mean fold ROC AUC at one common tree
count, trees by early stopping with patience in proportion to the learning rate, so a slow setting
is not judged half-trained; the fold curves smoothed over a few rounds, so one lucky round of a thin
fold does not outscore a plateau) on the same folds. The search starts from fixed points — the
configured defaults, LightGBM's own defaults (31 leaves, learning rate 0.1: what HistGradientBoosting
does too), an additive model of depth-1 trees (the shape a logistic regression fits), and a
mid-sized shallow setting — so it never ends below what a user would get from a plain run of
those. Trials are pruned after each fold when their running mean falls below the median of
earlier trials at the same fold.

The winner is not simply the best mean: among settings whose CV AUC is within one standard
error of the best (`within_one_se`: the paired standard error over folds, capped at ONE_SE_CAP),
the one with the smallest trees (leaves x depth, what exact TreeSHAP pays per tree) is chosen. A
simpler model that is statistically as good explains faster and is less likely to have won by
chance.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from sklearn.base import clone

from features.progress import ProgressCallback
from models.risk_model import ChurnRiskModel, CrossValidator, within_one_se

STAGE = "tune"
MAX_DEPTHS = (-1, 1, 2, 3, 4, 5, 6, 8)
STARTING_POINTS: tuple[dict[str, Any], ...] = (
    # LightGBM's (and about HistGradientBoosting's) defaults
    {"num_leaves": 31, "max_depth": -1, "min_child_samples": 20, "learning_rate": 0.1, "lambda_l1": 1e-8,
     "lambda_l2": 1e-8, "feature_fraction": 1.0, "bagging_fraction": 1.0},
    # additive: depth-1 trees, one feature per tree (the shape of a logistic regression, non-linear per feature)
    {"num_leaves": 2, "max_depth": 1, "min_child_samples": 20, "learning_rate": 0.1, "lambda_l1": 1e-8,
     "lambda_l2": 1.0, "feature_fraction": 0.8, "bagging_fraction": 0.8},
    # shallow, regularised
    {"num_leaves": 7, "max_depth": 3, "min_child_samples": 40, "learning_rate": 0.05, "lambda_l1": 1e-8,
     "lambda_l2": 1.0, "feature_fraction": 0.8, "bagging_fraction": 0.8},
)  # fmt: skip


@dataclass(frozen=True)
class TrialRecord:
    """One tried setting: its parameters, CV result (None when pruned) and timing."""

    number: int
    params: dict[str, Any]
    state: str  # "complete", "pruned" or "failed"
    fold_scores: tuple[float, ...] = ()
    trees: int = 0
    cost: float = float("nan")  # leaves x depth of one tree
    started: float = 0.0  # epoch seconds
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return float(np.mean(self.fold_scores)) if self.state == "complete" else float("nan")


@dataclass(frozen=True)
class SearchResult:
    """All trials, the best by mean CV AUC, and the one chosen by the one-standard-error rule."""

    trials: tuple[TrialRecord, ...]
    best: TrialRecord
    chosen: TrialRecord
    tolerance: float  # CV AUC the chosen setting may give up against the best
    seconds: float
    cut_by_timeout: bool = False  # the safety-net timeout stopped the search before its trial budget

    def summary(self) -> dict[str, Any]:
        states = [t.state for t in self.trials]
        return {
            "trials": len(self.trials),
            "trials_complete": states.count("complete"),
            "trials_pruned": states.count("pruned"),
            "tuning_seconds": round(self.seconds, 1),
            "search_cut_by_timeout": self.cut_by_timeout,
            "best_trial": self.best.number,
            "best_cv_auc": self.best.score,
            "chosen_trial": self.chosen.number,
            "chosen_cv_auc": self.chosen.score,
            "one_se_tolerance": self.tolerance,
        }


def suggest(trial: optuna.Trial) -> dict[str, Any]:
    """The search space; leaves are capped by what the depth allows (2^depth) so settings stay distinct."""
    max_depth = trial.suggest_categorical("max_depth", MAX_DEPTHS)
    num_leaves = trial.suggest_int("num_leaves", 2, 64, log=True)
    if max_depth > 0:
        num_leaves = min(num_leaves, 2**max_depth)
    return {
        "num_leaves": num_leaves,
        "max_depth": max_depth,
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 200, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "lambda_l1": trial.suggest_float("lambda_l1", 1e-8, 10.0, log=True),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-8, 10.0, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
    }


def one_se_choice(trials: list[TrialRecord], use_rule: bool = True) -> tuple[TrialRecord, TrialRecord, float]:
    """(best, chosen, tolerance): the cheapest setting statistically as good as the best.

    A setting qualifies when its mean fold-by-fold AUC deficit against the best is at most one
    paired standard error of that deficit (at most ONE_SE_CAP). Pairing by fold removes what
    all settings share (a hard period is hard for every setting); with one fold there is no
    standard error and the best is chosen.
    """
    complete = [t for t in trials if t.state == "complete"]
    best = max(complete, key=lambda t: (t.score, -t.cost))
    if not use_rule or len(best.fold_scores) < 2:
        return best, best, 0.0
    deficits = np.asarray(best.fold_scores)[:, None] - np.array([t.fold_scores for t in complete]).T
    eligible, tolerances = within_one_se(deficits)
    chosen, tolerance = min(
        ((t, float(tol)) for t, ok, tol in zip(complete, eligible, tolerances, strict=True) if ok),
        key=lambda pair: (pair[0].cost, -pair[0].score),
    )
    return best, chosen, tolerance


def search(
    model: ChurnRiskModel,
    cv: CrossValidator,
    *,
    progress: ProgressCallback | None = None,
    on_trial: Any = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """Run the seeded TPE search: `model.tune_trials` trials, unless `model.tune_timeout_s` cuts it.

    The trial count is the budget, so the same data and seed choose the same setting on any
    machine at any load (TPE is seeded, trials run one after another, LightGBM is deterministic).
    The timeout (None = none) is only a safety net: once `clock()` says it has passed, no new
    trial starts and the result says the search was cut (then it depends on the machine's speed).
    `on_trial(TrialRecord)` is called after every trial (for logging, e.g. MLflow nested runs).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=model.seed, multivariate=True, n_startup_trials=8)
    starts = [model.tree_params(), *STARTING_POINTS]
    pruner = optuna.pruners.MedianPruner(n_startup_trials=len(starts) + 2, n_warmup_steps=1)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    for point in starts:
        if _in_space(point):
            study.enqueue_trial(_as_suggested(point), skip_if_exists=True)
    records: list[TrialRecord] = []
    started = time.time()
    deadline = None if model.tune_timeout_s is None else clock() + model.tune_timeout_s
    cut = False

    def stop_at_deadline(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        nonlocal cut
        if deadline is not None and len(records) < model.tune_trials and clock() >= deadline:
            cut = True
            study.stop()

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial)
        candidate = clone(model).set_params(**params)
        begin = time.time()
        state, result = "complete", None

        def report(fold: int, running_mean: float) -> None:
            trial.report(running_mean, fold)
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:
            result = cv.evaluate(candidate, report)
        except optuna.TrialPruned:
            state = "pruned"
            raise
        except Exception:
            state = "failed"
            raise
        finally:
            record = TrialRecord(
                number=trial.number,
                params=params,
                state=state,
                fold_scores=result.fold_scores if result else (),
                trees=result.trees if result else 0,
                cost=float(candidate.tree_cost()),
                started=begin,
                seconds=time.time() - begin,
            )
            records.append(record)
            if on_trial is not None:
                on_trial(record)
            if progress is not None:
                progress(STAGE, len(records), model.tune_trials)
        return result.score

    study.optimize(objective, n_trials=model.tune_trials, callbacks=[stop_at_deadline], catch=())
    if progress is not None:
        progress(STAGE, model.tune_trials, model.tune_trials)
    best, chosen, tolerance = one_se_choice(records, model.one_se_rule)
    return SearchResult(tuple(records), best, chosen, tolerance, time.time() - started, cut)


def _in_space(params: dict[str, Any]) -> bool:
    """Whether a fixed point can be tried by the search (a user's configured default may lie outside)."""
    return (
        params["max_depth"] in MAX_DEPTHS
        and 2 <= params["num_leaves"] <= 64
        and 5 <= params["min_child_samples"] <= 200
        and 0.01 <= params["learning_rate"] <= 0.2
        and all(1e-8 <= max(params[k], 1e-8) <= 10.0 for k in ("lambda_l1", "lambda_l2"))
        and 0.4 <= params["feature_fraction"] <= 1.0
        and 0.5 <= params["bagging_fraction"] <= 1.0
    )


def _as_suggested(params: dict[str, Any]) -> dict[str, Any]:
    """A fixed point in the search space's own terms (leaves above 2^depth are what depth allows)."""
    point = dict(params)
    point["lambda_l1"], point["lambda_l2"] = max(point["lambda_l1"], 1e-8), max(point["lambda_l2"], 1e-8)
    if point["max_depth"] > 0:
        point["num_leaves"] = min(point["num_leaves"], 2 ** point["max_depth"])
    return point
