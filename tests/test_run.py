"""`churn run`: the whole job on generated data, as `make run` does it, in a temporary working folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd


def test_run_generates_trains_scores_alerts_and_reports(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(f"workdir: {tmp_path / 'work'}\nmodel:\n  n_estimators: 150\n  tune_trials: 5\n")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "--no-progress", "run", "--accounts", "300", "--seed", "5",
         "--config", str(config)],
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
