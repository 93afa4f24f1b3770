"""The optional sources end to end: generated history with invoices, touchpoints and surveys
trains, scores and compares with their categories on both sides (rule and ML), and a dataset
whose only event table is `invoices` goes through the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from features.registry import category_map
from pipeline.synthetic import generate
from tests.helpers import end_to_end, run_cli, training_run_names

pytestmark = pytest.mark.slow
NEW_CATEGORIES = ("financial", "relationship", "voice")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("optional") / "data", 160, seed=6, start="2022-07-01", years=2.25).out_dir


@pytest.fixture(scope="module")
def outcome(data: Path, tmp_path_factory: pytest.TempPathFactory):
    return end_to_end(data, tmp_path_factory.mktemp("work"))


def test_the_new_families_are_model_features(outcome):
    result, *_ = outcome
    used = set(result.model.feature_names_in_)
    assert {"days_overdue", "late_payments_365d", "days_since_last_qbr", "account_nps_180d", "nps_latest"} <= used
    categories = category_map(used)
    assert {categories[name] for name in ("days_overdue", "days_since_last_qbr", "nps_latest")} == set(NEW_CATEGORIES)


def test_scores_carry_rule_and_ml_columns_of_the_new_categories(outcome):
    _, run, _, output = outcome
    scores = run.scores
    for category in NEW_CATEGORIES:
        assert scores[f"health_{category}"].notna().mean() > 0.5, category
        assert scores[f"ml_{category}"].notna().all(), category  # 0 where the trees never split on the category
    assert scores[[f"ml_{c}" for c in NEW_CATEGORIES]].abs().to_numpy().sum() > 0
    assert "category 'financial' dropped" not in output


def test_the_comparison_report_shows_the_new_categories(outcome):
    _, _, comparison, _ = outcome
    report = comparison.report_path.read_text()
    for category in NEW_CATEGORIES:
        assert category in report, category


def test_a_dataset_with_invoices_as_its_only_event_table_trains_and_scores(data: Path, tmp_path: Path, capsys):
    only = tmp_path / "only_invoices"
    only.mkdir()
    for name in ("accounts.parquet", "subscriptions.parquet"):
        shutil.copy(data / name, only / name)
    shutil.copytree(data / "invoices", only / "invoices")
    (tmp_path / "config.yaml").write_text(
        f"workdir: {tmp_path / 'work'}\nmodel:\n  n_estimators: 50\n  tune_trials: 0\n"
    )
    config = ["--config", str(tmp_path / "config.yaml")]

    code, validated = run_cli(["validate", "--data", str(only)], capsys)
    assert code == 0 and "invoices" in validated
    assert "Absent event tables (their features are left out): usage_events, logins" in validated
    assert run_cli(["train", "--data", str(only), "--promote", *config], capsys)[0] == 0
    # named by its data folder (it was "train feature table", the name of `--features` training)
    assert training_run_names(tmp_path / "work") == ["train data folder only_invoices"]
    out = tmp_path / "scores.parquet"
    assert run_cli(["score", "--data", str(only), "--as-of", "2024-09-01", "--out", str(out), *config], capsys)[0] == 0
    scores = pd.read_parquet(out)
    assert scores["churn_probability"].between(0, 1).all() and len(scores) > 50
    assert scores["health_financial"].notna().mean() > 0.5
    assert not any(f"health_{c}" in scores.columns for c in ("adoption", "engagement", "support", "training"))


def test_a_model_trained_before_the_data_gained_sources_leaves_the_health_score_all_of_them(
    data: Path, tmp_path: Path, capsys
):
    """Scoring built exactly the model's features, so a champion trained on invoices alone cost the health score
    every other category of data that now has logins, usage and tickets ("dropped (no logins table in the data)"),
    and left the scores' segment column empty."""
    only = tmp_path / "only_invoices"
    only.mkdir()
    for name in ("accounts.parquet", "subscriptions.parquet"):
        (only / name).symlink_to(data / name)
    (only / "invoices").symlink_to(data / "invoices")
    (tmp_path / "config.yaml").write_text(
        f"workdir: {tmp_path / 'work'}\nmodel: {{n_estimators: 50, tune_trials: 0}}\n"
    )
    config = ["--config", str(tmp_path / "config.yaml")]
    assert run_cli(["train", "--data", str(only), "--promote", *config], capsys)[0] == 0
    out = tmp_path / "scores.parquet"
    code, said = run_cli(["score", "--data", str(data), "--as-of", "2024-09-01", "--out", str(out), *config], capsys)
    assert code == 0 and "no logins table in the data" not in said
    scores = pd.read_parquet(out)
    for category in ("adoption", "engagement", "support", "training", *NEW_CATEGORIES):
        assert scores[f"health_{category}"].notna().mean() > 0.5, category
    assert scores["segment"].notna().all()
