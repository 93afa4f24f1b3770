"""The benchmark's third simulator (bench/worlds/third.py) writes data within the SPEC's contract with a
ground truth that agrees with the SPEC's labels, the same history for the same seed.

The quality benchmark trusts its truth file: a term the simulator calls churned must be one the
pipeline labels churned at the same snapshot, or every check made on this world measures the
simulator, not the model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench
from bench.worlds import history, third
from features.table import ACCOUNT_ID, AS_OF, LABEL, TERM_END
from pipeline.config import Settings
from pipeline.stages import build_feature_table, load

START, YEARS = "2021-01-01", 2.0


@pytest.fixture(scope="module")
def saas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("third") / "saas"
    third.simulate(out, "saas", 150, seed=5, start=START, years=YEARS)
    return out


def test_the_same_seed_writes_the_same_history_and_another_seed_another(saas: Path, tmp_path: Path) -> None:
    third.simulate(tmp_path / "again", "saas", 150, seed=5, start=START, years=YEARS)
    third.simulate(tmp_path / "other", "saas", 150, seed=6, start=START, years=YEARS)
    for name in ["accounts", "subscriptions", "logins", "usage_events", "invoices", "_truth/terms"]:
        first = pd.read_parquet(saas / f"{name}.parquet")
        pd.testing.assert_frame_equal(first, pd.read_parquet(tmp_path / "again" / f"{name}.parquet"))
        assert not first.equals(pd.read_parquet(tmp_path / "other" / f"{name}.parquet"))


@pytest.mark.parametrize("shape", sorted(third.SHAPES))
def test_every_shape_validates_under_the_contract(shape: str, tmp_path: Path, capsys) -> None:
    third.simulate(tmp_path / shape, shape, 150, seed=2, start=START, years=YEARS)
    code, text = run_cli(["validate", "--data", str(tmp_path / shape)], capsys)
    assert code == 0, text
    assert "before the account's created_at" not in text  # only the add-ons' overlapping terms are unusual
    written = {p.name.removesuffix(".parquet") for p in (tmp_path / shape).glob("*.parquet")}
    assert written == {"accounts", "subscriptions", *third.SHAPES[shape].tables}


def test_the_truth_covers_every_term_and_the_world_has_its_features(saas: Path) -> None:
    terms = pd.read_parquet(saas / "subscriptions.parquet")
    truth = pd.read_parquet(saas / history.TRUTH)
    assert len(truth) == len(terms)
    decided = truth[~truth["censored"] & (truth["kind"] == "main")]
    assert decided["p_churn"].between(0, 1, inclusive="neither").all() and decided["churned"].notna().all()
    assert 0.05 < decided["churned"].mean() < 0.4
    # several terms running at once (add-ons, pilots), multi-year terms, downgrades at renewal
    assert {"addon", "pilot"} <= set(truth["kind"])
    assert ((terms["end_date"] - terms["start_date"]).dt.days > 700).any()
    seats = terms.sort_values([ACCOUNT_ID, "start_date"]).groupby(ACCOUNT_ID)["seats"].diff()
    assert (seats < 0).any()
    roles = pd.read_parquet(saas / "logins.parquet")["role"]
    assert set(roles) == {"admin", "member"}


def test_the_truth_agrees_with_the_labels_the_pipeline_builds(saas: Path) -> None:
    """At every monthly snapshot, the label of the SPEC (renewal within the grace days of E, the latest end
    of the running terms) is the truth's outcome of the term ending at E."""
    settings = Settings()
    table = build_feature_table(load(saas, settings), settings)
    labelled = table[table[LABEL].notna()]
    assert len(labelled) > 500 and 0 < labelled[LABEL].mean() < 0.5
    compared = 0
    for as_of, rows in labelled.groupby(AS_OF):
        truth = history.outcomes_at(saas, pd.Timestamp(as_of)).set_index(ACCOUNT_ID)
        expected = truth.reindex(rows[ACCOUNT_ID].astype(str))
        assert (pd.to_datetime(expected["term_end"]).to_numpy() == pd.to_datetime(rows[TERM_END]).to_numpy()).all()
        assert (expected["churned"].to_numpy() == rows[LABEL].to_numpy()).all(), as_of
        compared += len(rows)
    assert compared == len(labelled)
