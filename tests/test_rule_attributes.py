"""Segment rules on accounts columns that are not features: the SPEC's optional `csm` and a team's own
extra column (`tier`) pick the scorecard of their accounts in `churn train` (the rule baseline), `score`,
`explain` and `compare`; the model never gets them; a rule naming a column the data does not hold is
refused with the closest one, and a rule on the SPEC's `csm` where the data lacks it is skipped with a
warning, like any absent source.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from pipeline.champion import champion_uri
from pipeline.config import load_settings
from pipeline.loading import Dataset
from pipeline.stages import run_explain
from pipeline.synthetic import generate
from pipeline.tracking import load_model
from tests.helpers import ATTRIBUTE_CARD, expected_scorecard, run_churn, run_cli, tiny_tables, with_tier

pytestmark = pytest.mark.slow

AS_OF = "2024-09-01"


def config_file(root: Path, name: str, card: str) -> Path:
    (root / f"{name}-card.yaml").write_text(card)
    config = root / f"{name}.yaml"
    config.write_text(
        f"workdir: {root / 'work'}\nhealthscore: {root / f'{name}-card.yaml'}\n"
        "model: {n_estimators: 40, tune_trials: 0}\n"
    )
    return config


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """Generated history (accounts with `csm`) plus a `tier` column, and a model trained with the scorecard
    whose segments read both, by `churn train`. `--promote` makes it champion: 100 accounts are too few for the
    chance gate to call the model credibly better than a coin, and these tests are about the scorecards."""
    root = tmp_path_factory.mktemp("rule_attributes")
    data = root / "data"
    generate(data, n_accounts=100, seed=11, start="2023-01-01", years=1.75)
    accounts = with_tier(data)
    config = config_file(root, "attrs", ATTRIBUTE_CARD)
    assert run_churn(["train", "--data", str(data), "--config", str(config), "--promote"]) == 0
    return root, data, config, accounts


def test_score_picks_the_scorecard_of_each_accounts_csm_and_tier(world, capsys) -> None:
    root, data, config, accounts = world
    out = root / "scores.parquet"
    code, text = run_cli(
        ["score", "--data", str(data), "--config", str(config), "--as-of", AS_OF, "--out", str(out), "--no-history"],
        capsys,
    )
    assert code == 0, text
    scores = pd.read_parquet(out)
    expected = expected_scorecard(accounts)
    assert len(scores) > 20
    assert scores["health_scorecard"].tolist() == expected[scores["account_id"]].tolist()
    assert set(scores["health_scorecard"]) == {"default", "digital", "platinum"}
    assert "tier" not in scores.columns and "csm" not in scores.columns  # the scores keep their own columns
    settings = load_settings(config)
    model = load_model(champion_uri(settings.model.name), settings)
    assert "tier" not in model.feature_names_in_ and "csm" not in model.feature_names_in_  # rule view only

    platinum = scores.loc[scores["health_scorecard"] == "platinum", "account_id"].iloc[0]
    explained = run_explain(platinum, data, pd.Timestamp(AS_OF).date(), None, None, settings, Console(quiet=True))
    assert explained["health_scorecard"].iloc[0] == "platinum"


def test_compare_backtests_each_account_with_its_scorecard(world, capsys) -> None:
    root, data, config, accounts = world
    out = root / "compare"
    code, text = run_cli(["compare", "--data", str(data), "--config", str(config), "--out", str(out)], capsys)
    assert code == 0, text
    backtest = pd.read_parquet(out / "backtest_scores.parquet")
    expected = expected_scorecard(accounts)
    assert backtest["health_scorecard"].tolist() == expected[backtest["account_id"].astype(str)].tolist()
    assert {"digital", "platinum"} <= set(backtest["health_scorecard"])


def test_a_rule_on_a_column_the_data_does_not_hold_is_refused_with_the_closest(world, capsys) -> None:
    root, data, _, _ = world
    config = config_file(root, "typo", ATTRIBUTE_CARD.replace("tier == platinum", "teir == platinum"))
    out = root / "typo.parquet"
    args = ["--data", str(data), "--config", str(config)]
    for command in (["score", "--as-of", AS_OF, "--out", str(out), "--no-history"], ["validate"]):
        code, text = run_cli([*command, *args], capsys)
        assert code == 1, text
        assert "'teir' (rule of segment 'platinum' (teir == 'platinum')); did you mean 'tier'?" in text
        assert (
            "this data's accounts has: account_id, created_at, segment, industry, regulated, region, csm, tier" in text
        )
    assert not out.exists()


def test_a_rule_on_csm_where_the_data_has_none_is_skipped_with_a_warning(world, tmp_path, capsys) -> None:
    _, data, config, accounts = world
    bare = tmp_path / "data"
    shutil.copytree(data, bare)
    accounts.drop(columns="csm").to_parquet(bare / "accounts.parquet", index=False)
    out = tmp_path / "scores.parquet"
    code, text = run_cli(
        ["score", "--data", str(bare), "--config", str(config), "--as-of", AS_OF, "--out", str(out), "--no-history"],
        capsys,
    )
    assert code == 0, text
    assert (
        "segment scorecard 'digital' skipped: its rule 'csm == 'Digital CS'' cannot be evaluated (accounts has no "
        "column 'csm')" in text
    )
    scores = pd.read_parquet(out)
    expected = expected_scorecard(accounts.assign(csm=None))
    assert scores["health_scorecard"].tolist() == expected[scores["account_id"]].tolist()
    assert "platinum" in set(scores["health_scorecard"])


def test_in_memory_tables_keep_the_accounts_columns_rules_name() -> None:
    """`Dataset.from_frames` (notebooks, prepared extracts) keeps them as `load_dataset` does, so a notebook's
    rule view picks the same scorecards as the commands."""
    tables = tiny_tables()
    accounts = tables["accounts"]
    tables["accounts"] = accounts.assign(tier=["platinum"] + ["gold"] * (len(accounts) - 1), other="x")
    dataset = Dataset.from_frames(tables, attributes=["tier"])
    rows = pd.DataFrame({"account_id": accounts["account_id"].astype(str)})
    got = dataset.with_accounts_columns(rows, ["tier", "other"])
    assert got["tier"].tolist() == tables["accounts"]["tier"].tolist() and "other" not in got
