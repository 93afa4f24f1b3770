"""Every documented model setting trains and scores through the real stage functions and commands.

`refit: false`, `calibration: sigmoid`, `balance_classes: true` and a weekly cadence each train on
small generated data and score the book; prepared tables train and score through the `churn` CLI.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from models.evaluation import expected_calibration_error
from pipeline.config import load_settings
from pipeline.loading import load_dataset
from pipeline.stages import build_feature_table, score_date, train_on_table
from pipeline.synthetic import generate
from pipeline.tracking import load_model
from tests.helpers import churn_subprocess, telco_like

pytestmark = pytest.mark.slow  # trains models or runs the CLI end to end (see conftest)

SCORE_DATE = date(2025, 7, 1)
FAST = {"tune_trials": 0, "num_threads": 1}  # the search is tested elsewhere; here every setting trains


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("settings")
    generate(root / "data", n_accounts=250, seed=8, start="2023-01-01", years=2.5)
    dataset = load_dataset(root / "data")
    monthly = build_feature_table(dataset, load_settings(None, {"workdir": str(root / "work")}))
    return root, dataset, monthly


def _train_and_score(history, name: str, model: dict, features: dict | None = None):
    root, dataset, monthly = history
    overrides = {"workdir": str(root / name), "model": {**FAST, **model}, "features": features or {}}
    settings = load_settings(None, overrides)
    table = monthly if features is None else build_feature_table(dataset, settings)
    result = train_on_table(table, settings, None, promote=True, console=Console(quiet=True))
    run = score_date(dataset, SCORE_DATE, settings, result.model_uri, history=False)
    return settings, table, result, run


def _validation_gap(result) -> tuple[float, float]:
    """|mean predicted - observed| and ECE of a training's out-of-time validation rows."""
    y = result.validation["label"].astype(int)
    probabilities = result.validation["churn_probability"]
    return abs(probabilities.mean() - y.mean()), expected_calibration_error(y, probabilities)


@pytest.fixture(scope="module")
def default_gap(history) -> tuple[float, float]:
    """The default model's validation calibration on this small world (30 churners among 468 validation rows,
    so its mean gap alone moves by ~0.01 with the data's outcome noise and by more with a feature's change)."""
    return _validation_gap(_train_and_score(history, "default", {})[2])


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("no_refit", {"refit": False}),
        ("sigmoid", {"calibration": "sigmoid"}),
        ("balanced", {"balance_classes": True}),
    ],
)
def test_each_model_setting_trains_and_scores(history, default_gap, name, model):
    settings, table, result, run = _train_and_score(history, name, model)
    for key, value in model.items():
        assert getattr(result.model, key) == value
    scores = run.scores
    assert len(scores) > 50 and scores["churn_probability"].between(0, 1).all()
    ml = scores[[c for c in scores.columns if c.startswith("ml_") and c != "churn_log_odds"]]
    registered = load_model(result.model_uri, settings)
    bias = registered.contributions(table.head(1))["bias"].iloc[0]
    np.testing.assert_allclose(ml.sum(axis=1) + bias, scores["churn_log_odds"], atol=1e-6)
    # probabilities stay honest whatever the setting: validation calibration out of sample, as the default's
    # (a setting that distorts the scores, such as class weights before calibration was cross-fitted, was off by
    # 0.1 and more), and within plain bounds
    gap, ece = _validation_gap(result)
    assert gap <= default_gap[0] + 0.02 and gap < 0.08, (gap, default_gap)
    assert ece <= default_gap[1] + 0.02 and ece < 0.08, (ece, default_gap)
    if name == "no_refit":
        assert result.model.fit_rows_ == result.model.train_rows_ < int(table["label"].notna().sum())


def test_weekly_cadence_trains_and_scores(history):
    _, _, monthly = history
    _, table, result, run = _train_and_score(history, "weekly", {}, {"cadence": "weekly"})
    assert table["as_of"].nunique() > 3 * monthly["as_of"].nunique()
    assert result.folds.kind == "rolling_origin" and len(result.folds) >= 2
    assert len(run.scores) > 50 and run.scores["churn_probability"].between(0, 1).all()


def test_prepared_tables_train_and_score_through_the_cli(tmp_path):
    telco_like(1_500, seed=0).to_csv(tmp_path / "history.csv", index=False)
    fresh = telco_like(400, seed=1).assign(customerID=lambda f: "new-" + f["customerID"])
    book = fresh.drop(columns="Churn").assign(customerID=lambda f: " " + f["customerID"] + "\u00a0")
    book.to_csv(tmp_path / "book.csv", index=False)
    config = tmp_path / "c.yaml"
    config.write_text(f"workdir: {tmp_path / 'work'}\nmodel:\n  tune_trials: 3\n  num_threads: 1\n")
    trained = churn_subprocess(
        "train", "--table", "history.csv", "--id", "customerID", "--label", "Churn", "--config", str(config),
        cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "promoted to @champion" in trained.stdout and "Calibration by risk band" in trained.stdout
    assert "stratified folds" in trained.stdout
    # no time column: the validation rows are held out at random, and the report says so
    assert "Validation on held-out rows (300 rows)" in trained.stdout and "Out-of-time" not in trained.stdout
    scored = churn_subprocess(
        "score", "--table", "book.csv", "--id", "customerID", "--out", "scores.csv", "--format", "csv",
        "--as-of", "2025-03-31", "--config", str(config),
        cwd=tmp_path,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-3000:]
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores["account_id"]) == list(fresh["customerID"])
    assert (scores["as_of"] == "2025-03-31").all(), scores["as_of"].head()  # --as-of dates a table's scores
    observed = (fresh["Churn"] == "Yes").to_numpy()
    assert abs(scores["churn_probability"].mean() - observed.mean()) < 0.05
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(observed, scores["churn_probability"]) > 0.7
    book.assign(customerID=["", *book["customerID"].iloc[1:]]).to_csv(tmp_path / "blank.csv", index=False)
    blank = churn_subprocess(
        "score", "--table", "blank.csv", "--id", "customerID", "--out", "blank_scores.csv", "--config", str(config),
        cwd=tmp_path,
    )  # fmt: skip
    assert blank.returncode == 1 and "id column 'customerID': 1 value is missing (row 0: '')" in blank.stderr
    assert not (tmp_path / "blank_scores.csv").exists()
    missing = churn_subprocess(
        "score", "--table", "history.csv", "--out", "x.csv", "--config", str(config), cwd=tmp_path
    )
    assert missing.returncode != 0 and "--table needs --id" in missing.stderr
