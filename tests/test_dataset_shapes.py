"""Every dataset shape the SPEC allows trains, scores and compares (issue 10, item 4).

Shapes: usage events as the only event table with monthly B2C terms and accounts holding only
`account_id, created_at, segment, region` (through the real CLI, as a new user would run it);
accounts and terms with only their required columns; weekly terms with logins only; a handful
of churners. The default scorecard names metrics of every source: it must adapt, say so once
per change, and log what it did to MLflow.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import DEFAULTS_DIR
from pipeline.synthetic import generate
from pipeline.tracking import NOTES_ARTIFACT
from tests.helpers import end_to_end, run_cli

pytestmark = pytest.mark.slow  # trains models or runs the CLI end to end (see conftest)

ROOT = Path(__file__).resolve().parents[1]
START, YEARS = "2022-01-01", 2.5


def _foreign():
    """The benchmark's independent simulator (bench/worlds/foreign.py): weekly terms, logins only."""
    spec = importlib.util.spec_from_file_location("bench_foreign", ROOT / "bench" / "worlds" / "foreign.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def _rewrite(data: Path, keep: dict[str, list[str] | None]) -> Path:
    """Keep only the named tables (None: all columns) with only the named columns, as parquet files."""
    for path in list(data.iterdir()):
        if path.name != "_truth" and path.name.removesuffix(".parquet") not in keep:
            subprocess.run(["rm", "-rf", str(path)], check=True)
    for name, columns in keep.items():
        path = data / name if (data / name).is_dir() else data / f"{name}.parquet"
        frame = pd.read_parquet(path)
        subprocess.run(["rm", "-rf", str(path)], check=True)
        (frame if columns is None else frame[columns]).to_parquet(data / f"{name}.parquet", index=False)
    return data


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shapes")
    usage = generate(root / "usage", 140, seed=1, start=START, years=YEARS, world="b2c_monthly").out_dir
    _rewrite(
        usage,
        {
            "accounts": ["account_id", "created_at", "segment", "region"],
            "subscriptions": ["account_id", "start_date", "end_date", "arr"],
            "usage_events": ["account_id", "ts", "feature"],
        },
    )
    minimal = generate(root / "minimal", 100, seed=1, start=START, years=YEARS).out_dir
    _rewrite(
        minimal,
        {
            "accounts": ["account_id", "created_at"],
            "subscriptions": ["account_id", "start_date", "end_date"],
            "logins": None,
            "usage_events": None,
            "support_tickets": None,
            "trainings": None,
        },
    )
    weekly = root / "weekly"
    _foreign().simulate(weekly, "minimal_weekly", 160, seed=1, start=START, years=YEARS)
    few = generate(root / "few", 250, seed=2, start=START, years=YEARS, world="imbalanced").out_dir
    return {"usage": usage, "minimal": minimal, "weekly": weekly, "few": few}


def _clean_env() -> dict[str, str]:
    """The environment without MLflow settings, so each command uses its own working folder's store."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}


def _check_scores(scores: pd.DataFrame, categories: list[str]) -> None:
    assert scores["account_id"].is_unique and len(scores) > 20
    assert scores["churn_probability"].between(0, 1).all()
    assert {
        c.removeprefix("health_") for c in scores.columns if c.startswith("health_") and c[7:] in categories
    } == set(categories)
    assert scores["health_score"].notna().mean() > 0.9
    assert set(scores["lifecycle_stage"]) <= {"land", "adopt", "expand", "renew"}


def test_usage_only_monthly_b2c_data_trains_scores_and_compares_through_the_cli(shapes, tmp_path: Path) -> None:
    data = shapes["usage"]
    work = tmp_path / "work"

    def churn(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "--no-progress", *args],
            capture_output=True, text=True, check=False, cwd=tmp_path, env=_clean_env(),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Traceback" not in done.stderr
        return done.stdout

    (tmp_path / "config.yaml").write_text(f"workdir: {work}\nmodel:\n  n_estimators: 50\n  tune_trials: 5\n")
    config = ["--config", str(tmp_path / "config.yaml")]
    trained = churn("train", "--data", str(data), "--promote", *config)
    scored = churn("score", "--data", str(data), "--as-of", "2024-05-01", "--out", str(tmp_path / "s.parquet"), *config)
    compared = churn("compare", "--data", str(data), "--out", str(tmp_path / "compare"), *config)

    for output in (trained, scored, compared):
        warnings = [line for line in output.splitlines() if line.startswith("warning: health scorecard 'laer': ")]
        # one line per change: the regulated segment, two metrics, three categories of the four
        # activity tables and the three of the optional sources (invoices, touchpoints, surveys)
        assert len(warnings) == 9, output
        # where the dropped weight went, once and not at the end of each line
        assert output.count("warning: health scorecard 'laer' adapted to this data: a dropped metric's") == 1, output
        assert not [w for w in warnings if "renormalised" in w or "goes to" in w]
        assert any("category 'voice' dropped" in w and "no surveys table in the data" in w for w in warnings)
        assert any("category 'engagement' dropped" in w and "no logins table in the data" in w for w in warnings)
        assert any("'workflow_completion_rate_90d' dropped (usage_events.workflow_id and" in w for w in warnings)
        assert any("segment scorecard 'regulated' skipped" in w for w in warnings)
    scores = pd.read_parquet(tmp_path / "s.parquet")
    _check_scores(scores, ["adoption", "account"])
    assert not any(c in scores.columns for c in ("health_engagement", "health_support", "health_training"))
    assert scores["lifecycle_stage"].nunique() > 1, "monthly terms are not all 'renew'"
    report = (tmp_path / "compare" / "report.html").read_text()
    assert "The scorecard was adapted to this data" in report and "no support_tickets table" in report
    # the actionable share names what this model attributes to: usage events, not the absent tables
    actionable = " ".join(compared.split()).split("Actionable share of the model's attribution: ")[1]
    assert actionable.split(" ", 1)[1].startswith("(usage; the rest is context: "), actionable
    assert "is actionable (usage: what a CSM can change)" in report

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")  # not the process-wide URI
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    for kind, (tag, value) in {"train": ("stage", "train"), "score": ("kind", "scoring"),
                               "compare": ("kind", "compare")}.items():  # fmt: skip
        chosen = [r for r in runs if r.data.tags.get(tag) == value]
        assert len(chosen) == 1, kind
        notes = Path(client.download_artifacts(chosen[0].info.run_id, NOTES_ARTIFACT, str(tmp_path))).read_text()
        assert sum(n.startswith("health scorecard 'laer': ") for n in notes.splitlines()) == 9, (kind, notes)


def test_accounts_and_terms_with_only_required_columns(shapes, tmp_path: Path) -> None:
    result, run, comparison, output = end_to_end(shapes["minimal"], tmp_path / "work")
    assert "rule" in result.overall()
    _check_scores(run.scores, ["adoption", "engagement", "support", "training", "account"])
    assert "segment scorecard 'regulated' skipped" in output
    assert "'events_per_seat_30d' ranks within the whole population" in output  # no segment column
    segment = run.scores["segment"]  # carried for context: absent from the data, still a text column
    assert segment.isna().all() and pd.api.types.is_string_dtype(segment)
    assert "'seat_change_last_renewal' dropped (subscriptions.seats is not in the data)" in output
    assert comparison.report_path.exists() and 0 < comparison.ml_auc <= 1


def test_weekly_terms_with_logins_only(shapes, tmp_path: Path) -> None:
    result, run, comparison, output = end_to_end(shapes["weekly"], tmp_path / "work")
    assert result.validation["label"].sum() > 0
    _check_scores(run.scores, ["engagement", "account"])
    assert (run.scores["days_to_renewal"] <= 7).all()
    assert "category 'adoption' dropped" in output and "no usage_events table in the data" in output
    assert comparison.report_path.exists()


def test_a_handful_of_churners(shapes, tmp_path: Path) -> None:
    result, run, comparison, _ = end_to_end(shapes["few"], tmp_path / "work")
    labelled = result.validation
    assert 0 < labelled["label"].sum() < 30
    _check_scores(run.scores, ["adoption", "engagement", "support", "training", "account"])
    assert comparison.report_path.exists()


def test_a_misspelt_metric_still_fails_with_a_suggestion_on_data_without_its_source(shapes, tmp_path: Path) -> None:
    card = (DEFAULTS_DIR / "healthscore.yaml").read_text().replace("logins_per_seat_30d:", "loginz_per_seat_30d:")
    (tmp_path / "card.yaml").write_text(card)
    (tmp_path / "config.yaml").write_text(f"workdir: {tmp_path / 'work'}\nhealthscore: card.yaml\n")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "--no-progress", "train", "--data", str(shapes["usage"]),
         "--config", str(tmp_path / "config.yaml")],
        capture_output=True, text=True, check=False, cwd=tmp_path, env=_clean_env(),
    )  # fmt: skip
    assert done.returncode == 1
    assert "'loginz_per_seat_30d' (metric in default.engagement); did you mean 'logins_per_seat_30d'?" in done.stderr
    assert "Traceback" not in done.stderr


def test_four_months_of_history_say_why_there_is_nothing_to_train_on(tmp_path: Path, capsys) -> None:
    """A valid but short history has no snapshot after 90 days of events: train said "check --start/--end",
    options it does not have, and compare "pass at least one snapshot date", which it cannot."""
    data = generate(tmp_path / "data", 40, seed=2, start="2023-01-01", years=0.34).out_dir
    (tmp_path / "config.yaml").write_text(f"workdir: {tmp_path / 'work'}\n")
    for command in ("train", "compare"):
        code, text = run_cli([command, "--data", str(data), "--config", str(tmp_path / "config.yaml")], capsys)
        assert code == 1, text
        assert "the first would be 2023-05-01" in text and "after the data end 2023-04-30" in text
        assert "check --start/--end" not in text and "as_of" not in text
