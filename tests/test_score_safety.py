"""`churn score` end to end on generated data with a real model (issue 11, rows 4 to 8).

Interrupts are failures that leave nothing partial; a SIGKILL in the middle of the commit is
finished by the next run; alerts are delivered to a real HTTP server without the URL's secrets
ever being shown; a tampered model artifact is refused; accounts missing from `accounts` are
never scored.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from rich.console import Console

from features.errors import ChurnError, counted
from pipeline.commit import FAULT_ENV, ScoreOutputs
from pipeline.config import load_settings
from pipeline.history import read_history
from pipeline.loading import load_dataset
from pipeline.stages import build_feature_table, run_score, score_date, train_on_table
from pipeline.synthetic import generate
from pipeline.tracking import load_model
from tests.helpers import WebhookReceiver, run_cli

pytestmark = pytest.mark.slow  # trains models or runs the CLI end to end (see conftest)

EARLIER, LATER = "2025-09-01", "2025-10-01"
SECRET = "t0p-s3cret"
GHOSTS = 3  # accounts removed from accounts.parquet: their terms and events must never be scored


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("score-safety")
    data = root / "data"
    generate(data, n_accounts=150, seed=11, start="2023-01-01", years=3.0)
    accounts = pd.read_parquet(data / "accounts.parquet")
    terms = pd.read_parquet(data / "subscriptions.parquet")
    active = terms[(terms["start_date"] < pd.Timestamp(LATER)) & (terms["end_date"] >= pd.Timestamp(LATER))]
    ghosts = sorted(active["account_id"].unique())[:GHOSTS]
    accounts[~accounts["account_id"].isin(ghosts)].to_parquet(data / "accounts.parquet", index=False)
    config = root / "config.yaml"
    config.write_text(f"workdir: {root / 'work'}\nmodel:\n  n_estimators: 40\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        settings = load_settings(config)
        dataset = load_dataset(data)
        table = build_feature_table(dataset, settings)
        result = train_on_table(table, settings, None, promote=True, console=Console(quiet=True))
    return {"root": root, "data": data, "config": config, "settings": settings, "dataset": dataset,
            "result": result, "ghosts": ghosts}  # fmt: skip


def _score_args(trained, out: Path, as_of: str, *extra: str) -> list[str]:
    return ["score", "--data", str(trained["data"]), "--config", str(trained["config"]), "--as-of", as_of,
            "--out", str(out), *extra]  # fmt: skip


def _history_dates(trained) -> list[pd.Timestamp]:
    history = read_history(trained["settings"].workdir_path / "history", columns=["account_id", "as_of"])
    return sorted(set(history["as_of"]))


def _journals(trained) -> list[str]:
    folder = trained["settings"].workdir_path / "commits"
    return sorted(p.name for p in folder.glob("*.*") if p.name != ".lock") if folder.exists() else []


def test_accounts_missing_from_accounts_are_not_scored_nor_alerted(trained) -> None:
    """Row 8: their subscriptions were reported "ignored" but scored, all red, with alerts."""
    run = score_date(trained["dataset"], pd.Timestamp(LATER).date(), trained["settings"], None, history=False)
    assert len(run.scores) > 50
    assert not set(trained["ghosts"]) & set(run.scores["account_id"]) and not set(trained["ghosts"]) & set(
        run.alerts["account_id"]
    )
    unknown = [w for w in trained["dataset"].report.warnings if w.problem == "rows for accounts not in accounts"]
    assert {w.table for w in unknown} >= {"subscriptions", "logins"} and all(w.excluded for w in unknown)


def test_a_backfill_says_that_the_later_runs_were_compared_without_it(trained) -> None:
    """Scoring a date before runs already in the history left their trends and alerts as computed without
    it, silently."""
    settings, dataset = trained["settings"], trained["dataset"]
    later, backfill = pd.Timestamp("2025-11-01").date(), pd.Timestamp("2025-10-15").date()
    assert score_date(dataset, later, settings, None, history=True, deliver_alerts=False).notes
    notes = " ".join(score_date(dataset, backfill, settings, None, history=True, deliver_alerts=False).notes)
    assert "runs of later dates (2025-11-01) were compared without this date: their trends and alerts stand" in notes
    again = " ".join(score_date(dataset, backfill, settings, None, history=True, deliver_alerts=False).notes)
    assert "runs of later dates (2025-11-01) were compared with this date as it was scored before" in again
    trial = " ".join(score_date(dataset, backfill, settings, None, history=False, deliver_alerts=False).notes)
    assert "runs of later dates" not in trial, "a run kept out of the history changes no comparison"
    latest = " ".join(score_date(dataset, later, settings, None, history=True, deliver_alerts=False).notes)
    assert "runs of later dates" not in latest


@pytest.mark.parametrize(("signum", "code", "point"), [(signal.SIGINT, 130, "staged"), (signal.SIGTERM, 143, "logged")])
def test_an_interrupted_score_exits_non_zero_and_leaves_nothing(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, signum: int, code: int, point: str
) -> None:
    """Row 4: Ctrl-C during `churn score` used to exit 0 with nothing written."""
    out = tmp_path / "scores.parquet"
    history_before = _history_dates(trained)
    commits = trained["settings"].workdir_path / "commits"
    monkeypatch.setenv(FAULT_ENV, f"{point}:pause")

    def interrupt_when_paused() -> None:  # the commit is half staged: a signal now must undo it all
        deadline = time.monotonic() + 120
        while not list(commits.glob("*.pending")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(os.getpid(), signum)

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    threading.Thread(target=interrupt_when_paused, daemon=True).start()
    try:
        exit_code, output = run_cli(_score_args(trained, out, LATER), capsys)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)

    assert exit_code == code
    assert f"interrupted: stopped by {signal.Signals(signum).name}; no output file was left half-written" in output
    assert list(tmp_path.iterdir()) == [], "no output and no temporary file"
    assert _history_dates(trained) == history_before and _journals(trained) == []


def test_a_sigkill_in_the_middle_of_the_commit_is_finished_by_the_next_run(trained, tmp_path: Path) -> None:
    """Row 5 with a real SIGKILL: the process dies between placing the outputs and the history."""
    settings, out = trained["settings"], tmp_path / "scores.parquet"
    run_score(trained["data"], pd.Timestamp(EARLIER).date(), ScoreOutputs(out, "parquet"), None, settings, True,
              Console(quiet=True))  # fmt: skip
    env = {**os.environ, FAULT_ENV: "placed-outputs:pause", "MLFLOW_DISABLE_TELEMETRY": "true"}
    child = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--no-progress", *_score_args(trained, out, LATER)],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in child.stderr:
            if "churn: paused at placed-outputs" in line:
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert pd.read_parquet(out)["as_of"].eq(pd.Timestamp(LATER)).all(), "killed after placing the outputs"
    assert pd.Timestamp(LATER) not in _history_dates(trained) and len(_journals(trained)) == 1

    console = Console(record=True, width=200)
    run_score(trained["data"], pd.Timestamp(LATER).date(), ScoreOutputs(out, "parquet"), None, settings, True, console)

    assert "finished an interrupted scoring run of 2025-10-01" in console.export_text()
    assert {pd.Timestamp(EARLIER), pd.Timestamp(LATER)} <= set(_history_dates(trained)) and _journals(trained) == []
    for path in ScoreOutputs(out, "parquet").targets().values():
        assert path.exists()
    assert pd.read_parquet(out.with_name("scores_alerts.parquet"))["as_of"].eq(pd.Timestamp(LATER)).all()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.fixture
def hook(webhook: str) -> str:
    """The local webhook's URL with a user, password and token to keep secret."""
    return webhook.replace("http://", f"http://bot:{SECRET}@") + f"?token={SECRET}"


def _settings_with(trained, tmp_path: Path, hook: str, retries: int):
    config = tmp_path / "c.yaml"
    config.write_text(
        trained["config"].read_text()
        + f"scoring:\n  alerts:\n    webhook_url: '{hook}'\n    webhook_retries: {retries}\n"
        + "    webhook_timeout_seconds: 5\n"
    )
    return config


def test_alerts_are_posted_to_the_webhook_with_retries_and_no_secret_is_shown(
    trained, tmp_path: Path, hook: str, capsys, caplog
) -> None:
    """Row 6: webhook_url did nothing; errors printed the whole URL with its token. A re-run of a date (a
    scheduler's retry, or to make good a failed delivery) POSTed every alert again: a CSM got duplicates."""
    config = _settings_with(trained, tmp_path, hook, retries=2)
    args = ["score", "--data", str(trained["data"]), "--config", str(config), "--as-of", LATER,
            "--out", str(tmp_path / "s.parquet")]  # fmt: skip
    WebhookReceiver.statuses = [500, 500, 500]
    code, output = run_cli(args, capsys)
    outputs = [output]
    assert code == 0, "a failed delivery is a warning: the scores still land"
    alerts = len(pd.read_parquet(tmp_path / "s_alerts.parquet"))
    assert alerts > 0 and [len(r["payload"]["alerts"]) for r in WebhookReceiver.bodies] == [alerts] * 3
    text = " ".join(output.split())
    assert "warning: the alerts were not delivered: The alert webhook http://127.0.0.1:" in text
    assert "/hooks/churn (query hidden) answered HTTP 500" in text and "after 3 attempts" in text
    assert f"A re-run of {LATER} sends the {counted(alerts, 'alert')} not delivered yet" in text

    WebhookReceiver.statuses, WebhookReceiver.bodies = [503], []  # the re-run: one failure, then the retry succeeds
    code, output = run_cli(args, capsys)
    outputs.append(output)
    assert code == 0, output
    answered = [(r["status"], len(r["payload"]["alerts"])) for r in WebhookReceiver.bodies]
    assert answered == [(503, alerts), (200, alerts)]
    assert WebhookReceiver.bodies[1]["path"] == f"/hooks/churn?token={SECRET}"
    assert WebhookReceiver.bodies[1]["authorization"] == "Basic " + base64.b64encode(f"bot:{SECRET}".encode()).decode()
    assert f"{counted(alerts, 'alert')} delivered to the webhook" in " ".join(output.split())

    WebhookReceiver.bodies = []  # run again, kept in the history or a trial: every alert was delivered already
    for extra in ([], ["--no-history"]):
        code, output = run_cli([*args, *extra], capsys)
        outputs.append(output)
        assert code == 0 and WebhookReceiver.bodies == [], output
        assert f"no alert delivered to the webhook: all {alerts} delivered by an earlier run of {LATER}" in " ".join(
            output.split()
        )
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert SECRET not in "".join(outputs) + logged and "bot:" not in "".join(outputs)


def test_a_logged_configuration_file_keeps_the_webhook_secret_out_of_mlflow(trained, tmp_path: Path, hook) -> None:
    from pipeline.tracking import configure_tracking, log_config_files

    config = _settings_with(trained, tmp_path, hook, retries=0)
    configure_tracking(trained["settings"])
    with mlflow.start_run() as run:
        log_config_files([config])
    logged = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config/{config.name}")
    assert SECRET not in logged and "webhook_url: http://127.0.0.1:" in logged and "(query hidden)" in logged
    assert "n_estimators: 40" in logged


def test_a_tampered_model_artifact_is_refused_before_use(trained, capsys, tmp_path: Path) -> None:
    """Row 7: loading unpickled python_model.pkl; whoever could write the artifact store ran code."""
    settings, uri = trained["settings"], trained["result"].model_uri
    intact = load_model(uri, settings)
    assert intact.metadata_["model_version"] == trained["result"].model_version
    stored = Path(mlflow.artifacts.download_artifacts(uri))
    assert not list(stored.rglob("*.pkl")), "nothing pickled"
    assert "code_model" in (stored / "MLmodel").read_text()

    artifacts = settings.workdir_path / "mlartifacts"
    booster = next(artifacts.rglob("booster.txt"))
    original = booster.read_bytes()
    try:
        booster.write_bytes(original.replace(b"Tree=0", b"Tree=0\n", 1))
        with pytest.raises(ChurnError, match="do not match the SHA-256 recorded when it was logged"):
            load_model(uri, settings)
        code, output = run_cli(_score_args(trained, tmp_path / "s.parquet", LATER, "--no-history"), capsys)
        assert code == 1 and "Refusing to load it" in " ".join(output.split())
        assert not (tmp_path / "s.parquet").exists()
    finally:
        booster.write_bytes(original)
    # restored byte for byte, the artifact loads again as the same model
    assert load_model(uri, settings).booster_.model_to_string() == intact.booster_.model_to_string()
