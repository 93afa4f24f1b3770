"""One working folder, one book: a run whose accounts are another book's than the score history holds (two
exports that number their accounts alike, A001...) is refused before anything is written, naming both data
folders; the same book exported to a new dated folder each day is scored as before. Before, the second book's
trends and alerts were computed against the first book's scores of the same ids (and sent to the webhook), and
a run of the same date replaced the first book's history; only the model provenance warned.
Real generated data, a real LightGBM model, a real SQLite MLflow store, the CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.stages import data_source_name
from pipeline.synthetic import generate
from tests.helpers import export_until, run_churn, run_cli

pytestmark = pytest.mark.slow  # trains a model and runs the CLI end to end (see conftest)

EXPORTS = ("2025-10-01", "2025-11-01")


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> dict[str, Path]:
    """Two books whose ids are alike (the generator numbers accounts A00001...), the first also as two dated
    export folders, and a model trained on the first."""
    root = tmp_path_factory.mktemp("books")
    generate(root / "eu", n_accounts=150, seed=3, start="2023-01-01", years=3.0)
    generate(root / "us", n_accounts=150, seed=4, start="2023-01-01", years=3.0)
    found = {"root": root, "eu": root / "eu", "us": root / "us"}
    for day in EXPORTS:
        found[day] = export_until(root / "eu", root / "exports" / day, pd.Timestamp(day))
    config = root / "train.yaml"
    config.write_text(f"workdir: {root / 'work'}\nmodel: {{tune_trials: 0, n_estimators: 30, num_threads: 1}}\n")
    assert run_churn(["train", "--data", str(found[EXPORTS[0]]), "--config", str(config)]) == 0
    return found


def _config(books: dict[str, Path], workdir: Path) -> Path:
    """A working folder of its own, with the trained model's store."""
    config = workdir.parent / f"{workdir.name}.yaml"
    config.write_text(f"workdir: {workdir}\ntracking: {{uri: 'sqlite:///{books['root'] / 'work' / 'mlflow.db'}'}}\n")
    return config


def _score(data: Path, as_of: str, out: Path, config: Path) -> list[str]:
    return ["score", "--data", str(data), "--as-of", as_of, "--out", str(out), "--config", str(config)]


def test_the_same_book_in_a_new_dated_folder_each_day_is_scored_against_its_history(books, tmp_path, capsys):
    config = _config(books, tmp_path / "work")
    for day in EXPORTS:
        code, text = run_cli(_score(books[day], day, tmp_path / f"{day}.parquet", config), capsys)
        assert code == 0, text
    later = pd.read_parquet(tmp_path / f"{EXPORTS[1]}.parquet")
    assert later["health_score_change_30d"].notna().mean() > 0.8  # compared with the run of the other folder
    assert sorted(p.name for p in (tmp_path / "work" / "history").iterdir()) == [f"as_of={d}" for d in EXPORTS]


def test_another_book_in_the_same_working_folder_is_refused(books, tmp_path, capsys):
    config = _config(books, tmp_path / "work")
    code, text = run_cli(_score(books["eu"], "2025-11-01", tmp_path / "eu.parquet", config), capsys)
    assert code == 0, text
    partition = tmp_path / "work" / "history" / "as_of=2025-11-01" / "part.parquet"
    before = partition.read_bytes()
    for day in ("2025-11-01", "2025-12-01"):  # the same date (would replace eu's history) and a later one
        code, text = run_cli(_score(books["us"], day, tmp_path / "us.parquet", config), capsys)
        assert code == 1, text
        assert f"--data {books['us']} is another book than the score history of {tmp_path / 'work'} holds" in text
        assert f"its run of 2025-11-01 (data {books['eu']}), accounts of both (same id and created_at): only" in text
        assert "ids are alike but landed on other days" in text
        assert "Score each book with its own working folder (`workdir:` in a configuration file per book" in text
        assert not (tmp_path / "us.parquet").exists() and partition.read_bytes() == before
    assert [p.name for p in (tmp_path / "work" / "history").iterdir()] == ["as_of=2025-11-01"]
    own = _config(books, tmp_path / "us-work")
    code, text = run_cli(_score(books["us"], "2025-12-01", tmp_path / "us.parquet", own), capsys)
    assert code == 0, text


def test_a_data_uri_is_recorded_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`churn score --engine spark --data file:///d` recorded '<cwd>/file:/d' as the history's data folder
    (and in MLflow for `train`): a folder that does not exist, named when another book comes."""
    monkeypatch.chdir(tmp_path)
    assert data_source_name("file:///data/book") == "file:///data/book"
    assert data_source_name("s3a://bucket/book") == "s3a://bucket/book"
    assert data_source_name("book") == str(tmp_path / "book")
