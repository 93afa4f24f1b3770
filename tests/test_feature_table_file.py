"""`churn features --out FILE` then `churn train --features FILE`: the file records the settings that decided
its values (`features.new_customer_days`, `features.onboarding_days`, `data.grace_days`), and the model trained
on it records those, not whatever the training configuration says, so that scoring rebuilds what it learnt."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from features.table import read_feature_table, recorded_values
from pipeline.config import load_settings
from pipeline.tracking import load_model
from tests.helpers import run_churn, run_cli, training_run_names

BUILT_WITH = {"features.new_customer_days": 400, "features.onboarding_days": 10, "data.grace_days": 20}


def _config(path: Path, workdir: Path, **changes) -> Path:
    raw = {"workdir": str(workdir), "model": {"n_estimators": 40, "tune_trials": 0}, **changes}
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def feature_file(book, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The book's history built by `churn features` with values off the defaults."""
    root = tmp_path_factory.mktemp("feature_file")
    built = {"features": {"new_customer_days": 400, "onboarding_days": 10}, "data": {"grace_days": 20}}
    config = _config(root / "built.yaml", root / "work", **built)
    out = root / "features.parquet"
    assert run_churn(["features", "--data", str(book[1]), "--out", str(out), "--config", str(config)]) == 0
    return out


def test_the_feature_file_records_the_value_settings_it_was_built_with(feature_file: Path) -> None:
    assert recorded_values(feature_file) == BUILT_WITH


def test_a_model_trained_on_the_file_records_the_file_s_values_and_says_they_differ(
    feature_file: Path, tmp_path: Path, capsys
) -> None:
    config = _config(tmp_path / "train.yaml", tmp_path / "work")  # the defaults: 120, 60 and 30
    code, text = run_cli(["train", "--features", str(feature_file), "--promote", "--config", str(config)], capsys)
    assert code == 0, text
    assert (
        "features.onboarding_days: the feature table was built with 10, the configuration says 60; training uses 10"
    ) in text
    assert "data.grace_days: the feature table was built with 20, the configuration says 30" in text
    settings = load_settings(config)
    model = load_model(f"models:/{settings.model.name}@champion", settings)
    assert model.feature_set_.values == BUILT_WITH
    assert training_run_names(tmp_path / "work") == ["train feature table features.parquet"]


def test_a_file_written_by_another_tool_trains_with_the_configuration_s_values_and_says_so(
    feature_file: Path, tmp_path: Path, capsys
) -> None:
    elsewhere = tmp_path / "elsewhere.parquet"
    read_feature_table(str(feature_file)).to_parquet(elsewhere, index=False)
    assert recorded_values(elsewhere) is None
    config = _config(tmp_path / "train.yaml", tmp_path / "work")
    code, text = run_cli(["train", "--features", str(elsewhere), "--promote", "--config", str(config)], capsys)
    assert code == 0, text
    assert "the feature table does not record the settings it was built with" in text
    assert "the model records the configuration's features.new_customer_days 120" in text
    settings = load_settings(config)
    values = load_model(f"models:/{settings.model.name}@champion", settings).feature_set_.values
    assert values["features.onboarding_days"] == 60
