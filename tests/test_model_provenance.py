"""The model a scoring run uses is named (name, version, URI, when and on what data it was trained), and a
champion trained on another data source is flagged: a workdir reused for another dataset kept the previous
dataset's champion, and `churn score` scored the new book with it without a word. Prepared-table models
(`churn train --table`) are registered under a name of their own, so they never become the champion of
event data. Real generated data, real LightGBM models, real SQLite MLflow stores."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipeline.champion import MIN_SEEN_SHARE, SKETCH_SIZE, TrainedOn, account_keys
from pipeline.synthetic import generate
from tests.helpers import export_until, run_churn, run_cli

pytestmark = pytest.mark.slow  # trains models and runs the CLI end to end (see conftest)

CUTOFF = pd.Timestamp("2025-10-01")
"""The end of the earlier export the model is trained on; the book is scored three months later."""


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, Path]:
    """Two generated books (their ids alike, A001...: the generator numbers accounts), an earlier export of
    the first, and a config whose workdir holds a champion trained on that export."""
    root = tmp_path_factory.mktemp("provenance")
    generate(root / "book", n_accounts=200, seed=3, start="2023-01-01", years=3.0)
    generate(root / "other", n_accounts=200, seed=4, start="2023-01-01", years=3.0)
    earlier = export_until(root / "book", root / "earlier", CUTOFF)
    config = root / "c.yaml"
    config.write_text(f"workdir: {root / 'work'}\nmodel: {{tune_trials: 0, n_estimators: 30, num_threads: 1}}\n")
    assert run_churn(["train", "--data", str(earlier), "--config", str(config)]) == 0
    return {"root": root, "book": root / "book", "other": root / "other", "earlier": earlier, "config": config}


def _score(worlds: dict[str, Path], book: str, out: Path) -> list[str]:
    args = ["score", "--data", str(worlds[book]), "--as-of", "2026-01-01", "--out", str(out)]
    return [*args, "--config", str(worlds["config"]), "--no-history"]


def test_a_champion_trained_on_another_book_is_named_and_flagged(worlds, tmp_path: Path, capsys) -> None:
    code = run_churn(_score(worlds, "other", tmp_path / "scores.parquet"))
    printed = capsys.readouterr().out
    assert code == 0, printed
    text = " ".join(printed.split())
    assert "note: model churn-risk v1 @challenger @champion (models:/churn-risk@champion), trained " in text
    exported = len(pd.read_parquet(worlds["earlier"] / "accounts.parquet"))  # the accounts landed by the cutoff
    assert f"on {worlds['earlier']} ({exported} accounts; snapshots 2023-" in text
    scored = len(pd.read_parquet(tmp_path / "scores.parquet"))
    warning = [line for line in printed.splitlines() if "was trained on other data" in line]
    assert len(warning) == 1, printed  # one line, never wrapped
    assert warning[0].startswith(
        "warning: model churn-risk v1 @challenger @champion (models:/churn-risk@champion) was trained"
    )
    assert f"only 0% of the {scored:,} accounts scored were in its training data" in warning[0]
    client = mlflow.MlflowClient(f"sqlite:///{worlds['root'] / 'work' / 'mlflow.db'}")
    run = client.search_runs(["1"], "tags.kind = 'scoring'", order_by=["start_time DESC"], max_results=1)[0]
    notes = Path(client.download_artifacts(run.info.run_id, "data/notes.txt", str(tmp_path))).read_text()
    assert "was trained on other data" in notes  # the scoring run in MLflow says it too


def test_the_scoring_run_names_the_model_it_scored_with(worlds, tmp_path: Path, capsys) -> None:
    """`--model-uri` may name another model than `model.name`: the scoring run in MLflow logged `model.name`. Nor
    did it say which data folder and which scorecard it scored with."""
    config = tmp_path / "renamed.yaml"
    config.write_text(f"workdir: {worlds['root'] / 'work'}\nmodel: {{name: renamed, tune_trials: 0}}\n")
    args = ["score", "--data", str(worlds["book"]), "--as-of", "2026-01-01", "--out", str(tmp_path / "s.parquet")]
    code = run_churn([*args, "--config", str(config), "--no-history", "--model-uri", "models:/churn-risk@champion"])
    assert code == 0, capsys.readouterr().out
    client = mlflow.MlflowClient(f"sqlite:///{worlds['root'] / 'work' / 'mlflow.db'}")
    run = client.search_runs(["1"], "tags.kind = 'scoring'", order_by=["start_time DESC"], max_results=1)[0]
    assert run.data.params["model_name"] == "churn-risk"
    assert run.data.params["model_uri"] == "models:/churn-risk@champion"
    # which book and which scorecard: a run's band shares move with an edited scorecard or another export
    scores = pd.read_parquet(tmp_path / "s.parquet")
    assert run.data.params["data"] == str(worlds["book"].resolve())
    assert run.data.params["scorecard"] == f"laer@{scores['scorecard_hash'].iloc[0]}"


def _active(data: Path, when: str) -> str:
    """An account with a term running on `when` (one `churn explain` can explain)."""
    terms = pd.read_parquet(data / "subscriptions.parquet")
    running = (pd.to_datetime(terms["start_date"]) < when) & (pd.to_datetime(terms["end_date"]) >= when)
    return str(terms.loc[running, "account_id"].iloc[0])


def test_explain_names_the_model_and_flags_another_book(worlds, capsys) -> None:
    for book, flagged in (("other", True), ("book", False)):
        account = _active(worlds[book], "2026-01-01")
        args = ["explain", account, "--data", str(worlds[book]), "--as-of", "2026-01-01"]
        code, text = run_cli([*args, "--config", str(worlds["config"])], capsys)
        assert code == 0, text
        assert "note: model churn-risk v1 @challenger @champion (models:/churn-risk@champion), trained " in text
        assert ("was trained on other data: only 0% of the" in text) == flagged, text


def test_the_same_book_scored_later_with_new_accounts_is_not_flagged(worlds, tmp_path: Path, capsys) -> None:
    code = run_churn(_score(worlds, "book", tmp_path / "scores.parquet"))
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "note: model churn-risk v1" in printed and "trained on other data" not in printed
    scored = pd.read_parquet(tmp_path / "scores.parquet")["account_id"].astype(str)
    accounts = pd.read_parquet(worlds["book"] / "accounts.parquet")
    landed_since = set(accounts.loc[pd.to_datetime(accounts["created_at"]) >= CUTOFF, "account_id"].astype(str))
    new_share = scored.isin(landed_since).mean()
    assert 0 < new_share < 1 - MIN_SEEN_SHARE, new_share  # a few accounts the model never saw: a growing book


def test_the_sketch_estimates_the_seen_share_of_a_book_larger_than_it() -> None:
    trained_keys = account_keys(pd.Series([f"C{i}" for i in range(20 * SKETCH_SIZE)]))
    record = TrainedOn.of(trained_keys, source="test", key="account_id", seed=0)
    restored = TrainedOn.from_metadata({"trained_on": record.to_dict()})
    assert restored is not None and restored.accounts == 20 * SKETCH_SIZE and len(restored.hashes) == SKETCH_SIZE
    for seen_share in (0.1, 0.5, 0.9):  # a book of 10 sketches' worth of accounts, this share of them trained on
        seen = int(seen_share * 10 * SKETCH_SIZE)
        book = [f"C{i}" for i in range(seen)] + [f"N{i}" for i in range(10 * SKETCH_SIZE - seen)]
        hits, sampled = restored.seen(account_keys(pd.Series(book)))
        assert sampled > 500 and abs(hits / sampled - seen_share) < 0.06, (seen_share, hits, sampled)
    # accounts hashed otherwise than at training (another pandas) are not compared, never taken for other data
    assert replace(restored, check=restored.check ^ 1).seen(account_keys(pd.Series(book))) is None


def _prepared(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    usage, tickets = rng.gamma(2.0, 10.0, 600), rng.poisson(2.0, 600)
    churned = rng.random(600) < 1 / (1 + np.exp(0.15 * usage - 0.5 * tickets))
    ids = [f"cust-{i}" for i in range(600)]
    pd.DataFrame({"cust": ids, "usage": usage, "tickets": tickets, "churned": churned.astype(int)}).to_csv(
        path, index=False
    )
    return path


def test_prepared_table_models_have_a_name_of_their_own(worlds, tmp_path: Path, capsys) -> None:
    """`churn train --table` registered under the default name of event-data models: its model could become the
    champion `churn score --data` loads."""
    table = _prepared(tmp_path / "history.csv", seed=0)
    config = ["--config", str(worlds["config"])]
    code, text = run_cli(["train", "--table", str(table), "--id", "cust", "--label", "churned", *config], capsys)
    assert code == 0, text
    assert "models:/churn-risk-table/1" in text and "promoted to @champion" in text
    # said once, in churn's words: not MLflow's own notices in the middle of the report
    assert "Successfully registered model" not in text and "Created version '1'" not in text
    client = mlflow.MlflowClient(f"sqlite:///{worlds['root'] / 'work' / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias("churn-risk", "champion").version) == "1"  # the event-data champion
    assert len(client.search_model_versions("name = 'churn-risk'")) == 1
    out = tmp_path / "scores.parquet"
    code, text = run_cli(["score", "--table", str(table), "--id", "cust", "--out", str(out), *config], capsys)
    assert code == 0, text
    assert "note: model churn-risk-table v1 @challenger @champion (models:/churn-risk-table@champion), trained " in text
    assert f"on prepared table {table} (600 accounts)" in text and "trained on other data" not in text
    # today's customers are not the past customers whose outcomes trained it: not "other data"
    current = pd.read_csv(table).assign(cust=lambda t: "new-" + t["cust"]).drop(columns="churned")
    current.to_csv(tmp_path / "current.csv", index=False)
    args = ["score", "--table", str(tmp_path / "current.csv"), "--id", "cust", "--out", str(tmp_path / "now.parquet")]
    code, text = run_cli([*args, *config], capsys)
    assert code == 0 and "trained on other data" not in text, text


def test_a_prepared_table_model_registered_under_the_shared_name_still_scores(tmp_path: Path, capsys) -> None:
    """A workdir of an older churn holds its prepared-table model under the default name: it keeps scoring."""
    from pipeline.config import Settings
    from pipeline.train import train_prepared_table

    table = _prepared(tmp_path / "history.csv", seed=1)
    work = tmp_path / "work"
    settings = Settings(workdir=str(work), model={"tune_trials": 0, "n_estimators": 30, "num_threads": 1})
    train_prepared_table(table, "cust", "churned", settings=settings)  # the stage, as `churn train --table` was
    config = tmp_path / "c.yaml"
    config.write_text(f"workdir: {work}\n")
    out = tmp_path / "scores.parquet"
    args = ["score", "--table", str(table), "--id", "cust", "--out", str(out), "--config", str(config)]
    code, text = run_cli(args, capsys)
    assert code == 0, text
    assert "no model is registered as churn-risk-table, the name prepared-table models get now: using " in text
    assert "models:/churn-risk@champion (version 1, trained on a prepared table" in text
    assert len(pd.read_parquet(out)) == 600


@pytest.mark.parametrize(
    ("command", "args"),
    [("explain", ["explain", "A00001"]), ("score", ["score", "--out", "{tmp}/scores.parquet", "--no-history"])],
)
def test_scoring_event_data_with_a_prepared_table_model_says_what_to_use(command, args, tmp_path: Path, capsys) -> None:
    """A prepared-table model (an older workdir's champion, or one named by --model-uri) was refused with "this
    data cannot produce 2 of them: usage (not a feature this engine builds)...", not told why or what to run."""
    from pipeline.config import Settings
    from pipeline.train import train_prepared_table

    table = _prepared(tmp_path / "history.csv", seed=2)
    work = tmp_path / "work"
    settings = Settings(workdir=str(work), model={"tune_trials": 0, "n_estimators": 30, "num_threads": 1})
    train_prepared_table(table, "cust", "churned", settings=settings)  # the default name, as an older churn did
    data = generate(tmp_path / "data", 20, seed=1, start="2024-01-01", years=1.0).out_dir
    config = tmp_path / "c.yaml"
    config.write_text(f"workdir: {work}\n")
    args = [a.format(tmp=tmp_path) for a in args]
    code, text = run_cli([*args, "--data", str(data), "--as-of", "2024-11-01", "--config", str(config)], capsys)
    assert code == 1
    said = " ".join(text.split())
    assert f"was trained by `churn train --table` on prepared table {table}" in said, said
    assert f"{command.capitalize()} with a model trained on event data" in said and "`churn score --table`" in said
    assert "not a feature this engine builds" not in said
    assert not (tmp_path / "scores.parquet").exists()


def test_the_same_training_keeps_the_same_record_and_another_seed_another_salt() -> None:
    """Seeds are parameters: the record (salt and sketch) was drawn at random, so two identical trainings wrote
    different model files."""
    keys = account_keys(pd.Series([f"C{i}" for i in range(3 * SKETCH_SIZE)]))
    first, again = (TrainedOn.of(keys, source="book", key="account_id", seed=7) for _ in range(2))
    shuffled = TrainedOn.of(keys.sample(frac=1.0, random_state=1), source="book", key="account_id", seed=7)
    other_seed = TrainedOn.of(keys, source="book", key="account_id", seed=8)

    assert first.salt == again.salt == shuffled.salt and np.array_equal(first.hashes, shuffled.hashes)
    assert other_seed.salt != first.salt and not np.array_equal(other_seed.hashes, first.hashes)
