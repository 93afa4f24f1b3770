"""Product features named as the data spells them (wave 17): a name with other than ASCII characters has a
hashed column key (`usage_1b6b1a6f89_per_seat_30d` for `検索`), and the drivers read "uses of 1b6b1a6f89".
The names travel with the feature table (attrs, parquet metadata) and the registered model, so `churn score`
and `churn explain` with the champion say "uses of 検索". Real generated data, the real CLI, a real model."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from features.families.usage import feature_key
from features.table import product_names, read_feature_table
from pipeline.synthetic import generate
from tests.helpers import run_cli

pytestmark = pytest.mark.slow

RENAMED = {
    "dashboards": "ダッシュボード",
    "reports": "Отчёты",
    "workflows": "Рабочие процессы",
    "search": "検索",
    "data_import": "Import {beta}",  # braces: the name lands in a str.format template
    "alerts": "Alerts",  # ASCII, but spelt otherwise than its key
}
HASHED = re.compile(r"\b[0-9a-f]{10}\b")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A generated world whose product features are renamed, and a config with its own store."""
    root = tmp_path_factory.mktemp("names")
    data = generate(root / "data", n_accounts=120, seed=3, start="2023-01-01", years=2.5).out_dir
    usage = pd.read_parquet(data / "usage_events")
    usage["feature"] = usage["feature"].map(lambda name: RENAMED.get(name, name))
    shutil.rmtree(data / "usage_events")
    usage.to_parquet(data / "usage_events.parquet", index=False)
    config = root / "config.yaml"
    config.write_text(
        f"workdir: {root / 'work'}\nmodel:\n  tune_trials: 0\n  n_estimators: 60\nscoring:\n  top_drivers: 50\n"
    )
    return data, config


def test_the_feature_table_carries_the_names_the_data_spells(world, tmp_path, capsys) -> None:
    data, config = world
    out = tmp_path / "features.parquet"
    code, said = run_cli(["features", "--data", str(data), "--config", str(config), "--out", str(out)], capsys)
    assert code == 0, said
    names = product_names(read_feature_table(str(out)))
    expected = {feature_key(name): name for name in RENAMED.values()}
    assert names == {key: name for key, name in expected.items() if key in names}
    assert {"検索", "Отчёты", "ダッシュボード"} <= set(names.values()), names


def test_drivers_and_explain_name_the_product_features_not_their_hash(world, tmp_path, capsys) -> None:
    data, config = world
    code, said = run_cli(["train", "--data", str(data), "--config", str(config)], capsys)
    assert code == 0, said
    scores_file = tmp_path / "scores.parquet"
    as_of = "2025-06-01"
    code, said = run_cli(
        ["score", "--data", str(data), "--config", str(config), "--as-of", as_of, "--out", str(scores_file)], capsys
    )
    assert code == 0, said
    drivers = pd.read_parquet(scores_file)[["account_id", "top_drivers"]]
    uses = drivers["top_drivers"].str.split("; ").explode().dropna()
    uses = uses[uses.str.contains(" uses? of ")]
    named = {name for name in RENAMED.values() if uses.str.contains(name, regex=False).any()}
    assert {"検索", "Отчёты", "ダッシュボード"} & named, uses.unique()[:10]
    assert not uses.str.contains(HASHED).any(), uses[uses.str.contains(HASHED)].unique()[:5]
    assert not uses.str.contains("import_beta").any()  # the column-name form of "Import {beta}"

    account = drivers.loc[drivers["top_drivers"].str.contains("|".join(named)), "account_id"].iloc[0]
    code, said = run_cli(["explain", account, "--data", str(data), "--config", str(config), "--as-of", as_of], capsys)
    assert code == 0, said
    assert any(name in said for name in named), said
    assert not HASHED.search(said.split("ML view, raising risk:")[1]), said
