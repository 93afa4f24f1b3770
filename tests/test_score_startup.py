"""`churn score --data` imports MLflow, LightGBM and the scoring code on a second thread while it loads
the data (`stages._import_scoring_code`): an import that fails there must still stop the run with the
error the import raises, exactly as without the thread, and nothing may be written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import book_settings

BLOCKED = """
import sys
sys.modules["lightgbm"] = None  # `import lightgbm` raises ImportError, as when it is not installed
sys.argv[0] = "churn"
from pipeline.cli import main
main()
"""


def test_a_failing_scoring_import_stops_the_run_with_its_own_error(book, tmp_path: Path) -> None:
    settings, _ = book_settings(book, "startup")
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"workdir": str(settings.workdir_path), "tracking": {"uri": settings.tracking.uri}})
    )
    out = tmp_path / "scores.parquet"
    command = [sys.executable, "-c", BLOCKED, "--no-progress", "score", "--data", str(book[1])]
    command += ["--as-of", "2025-01-15", "--config", str(config), "--out", str(out), "--no-history"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 1, finished.stderr
    assert "internal error: ModuleNotFoundError: import of lightgbm halted; None in sys.modules" in finished.stderr
    assert not out.exists()
