"""`churn run`: the whole job on generated data, as `make run` does it, in a temporary working folder,
with churn installed from its wheel (not the source tree) the way a cluster or a colleague installs it."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.slow  # trains models or runs the CLI end to end (see conftest)

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "features", "models", "pipeline")
PACKAGE_DATA = {"pipeline/defaults/pipeline.yaml", "pipeline/defaults/healthscore.yaml",
                "pipeline/defaults/healthscore-outcomes.yaml", "pipeline/defaults/spark/log4j2.properties"}  # fmt: skip


@pytest.fixture(scope="session")
def installed_churn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `churn` script of a fresh virtualenv where churn is installed from a wheel built from this tree.

    Only churn comes from the wheel (`--no-deps`); its dependencies are borrowed from the running
    environment through a path file, which adds that folder but not the editable install of this
    tree it holds, so every module and every default file is read from the installed wheel.
    """
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: building writes build/ and *.egg-info next to the sources
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(root / "dist"), str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    assert "deprecat" not in (build.stdout + build.stderr).lower(), build.stderr[-2000:]
    (wheel,) = (root / "dist").glob("churn_pipeline-*.whl")
    assert set(zipfile.ZipFile(wheel).namelist()) >= PACKAGE_DATA
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
         "--root-user-action", "ignore", str(wheel)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    assert "warning" not in install.stderr.lower(), install.stderr[-2000:]
    venv_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(venv_site) / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run(
        [str(python), "-c", "import pipeline, pipeline.config as c; print(pipeline.__file__); print(c.DEFAULTS_DIR)"],
        capture_output=True, text=True, check=True, cwd=root,
    ).stdout.split()  # fmt: skip
    assert all(Path(p).is_relative_to(venv) for p in where), where
    return venv / "bin" / "churn"


def test_run_generates_trains_scores_alerts_and_reports(tmp_path: Path, installed_churn: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(f"workdir: {tmp_path / 'work'}\nmodel:\n  n_estimators: 150\n  tune_trials: 5\n")
    done = subprocess.run(
        [str(installed_churn), "--no-progress", "run", "--accounts", "300", "--seed", "5", "--config", str(config)],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "work" / "run"
    for name in ("features.parquet", "scores.parquet", "scores_alerts.parquet", "compare/report.html"):
        assert (out / name).exists(), name
    scores = pd.read_parquet(out / "scores.parquet")
    assert scores["account_id"].is_unique and scores["model_version"].eq("1").all()
    # Two scoring runs (a month apart) are in the history, so trends exist for the latest one.
    history = sorted(p.name for p in (tmp_path / "work" / "history").iterdir())
    assert len(history) == 2 and scores["health_score_change_30d"].notna().any()
    assert "Oracle AUC" in done.stdout and "Report:" in done.stdout
    assert "Traceback" not in done.stderr


def test_run_says_when_it_scores_with_a_model_it_did_not_promote(tmp_path: Path, capsys) -> None:
    """`churn run` scores the book with the model it has just trained (self-contained, whatever the
    workdir's champion was trained on); when that model stayed @challenger, it used to say nothing of it.
    Its `--seed` seeds the model too, as its help said (it seeded only the generated data)."""
    from pipeline.synthetic import generate

    data = tmp_path / "data"
    generate(data, n_accounts=150, seed=3, start="2023-01-01", years=2.5)
    model = "  tune_trials: 0\n  n_estimators: 60\n"
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text(f"workdir: {tmp_path / 'work'}\nmodel:\n{model}")
    second.write_text(f"workdir: {tmp_path / 'work'}\nmodel:\n{model}  promotion_min_gain: 1.0\n")
    for config, out, trained in [(first, "run1", "1"), (second, "run2", "2")]:
        args = ["run", "--data", str(data), "--out", str(tmp_path / out), "--config", str(config)]
        code, text = run_cli([*args, "--seed", "7"] if trained == "1" else args, capsys)
        assert code == 0, text
        scores = pd.read_parquet(tmp_path / out / "scores.parquet")
        assert scores["model_version"].eq(trained).all(), out
        noted = f"the book is scored with the model just trained (version {trained}, @challenger)" in text
        assert noted == (trained == "2"), text
    # `--seed` seeds the model too, as its help says (it used to seed only the generated data)
    with sqlite3.connect(tmp_path / "work" / "mlflow.db") as store:
        seeds = {value for (value,) in store.execute("SELECT value FROM params WHERE key = 'model_seed'")}
    assert {"7", "42"} <= seeds


def _no_signal_world(tmp_path: Path) -> tuple[Path, Path]:
    """Generated data that carry no churn signal, and a quick model configuration over a workdir of its own."""
    from pipeline.synthetic import generate

    data = tmp_path / "data"
    generate(data, n_accounts=200, seed=2, start="2023-01-01", years=2.5, world="no_signal")
    config = tmp_path / "run.yaml"
    config.write_text(f"workdir: {tmp_path / 'work'}\nmodel:\n  tune_trials: 0\n  n_estimators: 60\n")
    return data, config


def _aliases(workdir: Path) -> dict[str, int]:
    """The registry's aliases, read from the store itself."""
    with sqlite3.connect(workdir / "mlflow.db") as store:
        return dict(store.execute("SELECT alias, version FROM registered_model_aliases"))


def test_run_warns_when_it_scores_with_a_first_model_no_better_than_chance(tmp_path: Path, capsys) -> None:
    """On a book where nothing observable drives churn, the first model stays @challenger (no champion);
    `churn run` still scores with it, and must warn that its probabilities tell no one apart."""
    data, config = _no_signal_world(tmp_path)
    code, text = run_cli(["run", "--data", str(data), "--out", str(tmp_path / "out"), "--config", str(config)], capsys)
    assert code == 0, text
    assert pd.read_parquet(tmp_path / "out" / "scores.parquet")["model_version"].eq("1").all()
    assert (
        "the book is scored with the model just trained (version 1, @challenger), whose ranking is not credibly "
        "better than chance: its churn probabilities and risk bands do not tell accounts apart, read the health "
        "scores instead; `churn score` has no champion until a model with signal is trained (or one is promoted "
        "with `churn train --promote`)"
    ) in text
    aliases = _aliases(tmp_path / "work")
    assert aliases == {"challenger": 1}, aliases


def test_run_warns_when_a_model_no_better_than_chance_beats_a_champion_forced_at_chance(tmp_path: Path, capsys) -> None:
    """A champion forced in at chance (`churn train --promote`) was replaced by any model of `churn run` that beat
    it, however near chance itself; such a model now stays @challenger, and the run's warning names the champion
    `churn score` keeps (it used to say there was none)."""
    data, config = _no_signal_world(tmp_path)
    code, text = run_cli(["train", "--data", str(data), "--config", str(config), "--promote", "--seed", "7"], capsys)
    assert code == 0 and "v1 becomes champion on request (--promote) although" in text, text
    args = ["run", "--data", str(data), "--out", str(tmp_path / "out"), "--config", str(config)]
    code, text = run_cli(args, capsys)
    assert code == 0, text
    assert "v2 beats champion v1" in text and "; but it is not made champion: its ranking is not credibly" in text
    assert (
        "the book is scored with the model just trained (version 2, @challenger), whose ranking is not credibly "
        "better than chance: its churn probabilities and risk bands do not tell accounts apart, read the health "
        "scores instead; `churn score` keeps scoring with champion version 1"
    ) in text
    aliases = _aliases(tmp_path / "work")
    assert aliases == {"challenger": 2, "champion": 1}, aliases


def test_run_takes_the_grace_days_and_data_end_of_the_commands_that_build_labels(tmp_path: Path, capsys) -> None:
    """The SPEC gives every command that builds labels a `--grace-days` flag; `churn run` builds them (it trains
    and compares) but had neither it nor `--data-end`, so its labels could differ from `churn features`' only
    through a configuration file. Both now reach every stage: the same labels as `churn features`, scored the
    day after the data end. Its count of snapshots names their cadence (it said "monthly" of weekly ones)."""
    from pipeline.synthetic import generate

    data = tmp_path / "data"
    generate(data, n_accounts=120, seed=3, start="2023-01-01", years=2.0)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"workdir: {tmp_path / 'work'}\nmodel:\n  tune_trials: 0\n  n_estimators: 60\nfeatures:\n  cadence: weekly\n"
    )
    flags = ["--grace-days", "5", "--data-end", "2024-09-30"]
    code, text = run_cli(
        ["run", "--data", str(data), "--out", str(tmp_path / "run"), "--config", str(config), *flags], capsys
    )
    assert code == 0, text
    assert " weekly snapshots x " in text
    features = ["features", "--data", str(data), "--out", str(tmp_path / "f.parquet"), "--every", "weekly"]
    code, text = run_cli([*features, *flags], capsys)
    assert code == 0, text
    ran, built = (
        pd.read_parquet(p)[["account_id", "as_of", "label"]]
        for p in (tmp_path / "run" / "features.parquet", tmp_path / "f.parquet")
    )
    pd.testing.assert_frame_equal(ran, built)
    assert ran["as_of"].max() == pd.Timestamp("2024-09-30")  # a Monday
    assert pd.read_parquet(tmp_path / "run" / "scores.parquet")["as_of"].eq(pd.Timestamp("2024-10-01")).all()
