"""Helpers the tests import (data builders, the CLI in-process, a local webhook): imported one way,
`from tests.helpers import ...`, under `pytest`, `python -m pytest` and pytest-xdist alike (pyproject's
`pythonpath` puts the repository root on the path). A module pytest loads itself, like conftest.py, is imported
under its own name, so importing from it made a second copy (`WebhookReceiver.bodies` of another class);
fixtures stay in conftest.py."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest


def tiny_tables() -> dict[str, pd.DataFrame]:
    """Three accounts: A renews, B churns, C's term is still running (censored)."""
    accounts = pd.DataFrame(
        {
            "account_id": ["A", "B", "C"],
            "created_at": ["2023-01-01", "2023-02-01", "2023-06-01"],
            "segment": ["smb", "mid", "enterprise"],
            "regulated": [False, True, False],
        }
    )
    subscriptions = pd.DataFrame(
        {
            "account_id": ["A", "A", "B", "C"],
            "start_date": ["2023-01-01", "2024-01-01", "2023-02-01", "2023-06-01"],
            "end_date": ["2024-01-01", "2025-01-01", "2024-02-01", "2025-06-01"],
            "arr": [1200.0, 1500.0, 9000.0, 50000.0],
            "seats": [5, 6, 20, 100],
        }
    )
    logins = pd.DataFrame(
        {
            "account_id": ["A", "A", "B", "C", "C"],
            "ts": ["2023-03-01T09:00:00", "2023-03-02T10:00:00+02:00", "2023-04-01", "2023-07-01", "2024-06-30"],
            "user_id": ["u1", "u2", "u3", "u4", "u4"],
        }
    )
    usage = pd.DataFrame(
        {
            "account_id": ["A", "B", "C"],
            "ts": ["2023-03-01", "2023-04-01", "2023-07-01"],
            "feature": ["reports", "dashboards", "compliance_audit"],
        }
    )
    tickets = pd.DataFrame(
        {
            "account_id": ["A", "B"],
            "ticket_id": ["T1", "T2"],
            "opened_at": ["2023-05-01", "2023-06-01"],
            "closed_at": ["2023-05-02", None],
            "priority": ["High", "low"],
        }
    )
    trainings = pd.DataFrame({"account_id": ["A"], "ts": ["2023-01-10"], "kind": ["webinar"]})
    return {
        "accounts": accounts,
        "subscriptions": subscriptions,
        "logins": logins,
        "usage_events": usage,
        "support_tickets": tickets,
        "trainings": trainings,
    }


def write_tables(directory: Path, tables: dict[str, pd.DataFrame], fmt: str = "csv") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "csv":
            frame.to_csv(directory / f"{name}.csv", index=False)
        elif fmt == "parquet":
            frame.to_parquet(directory / f"{name}.parquet", index=False)
        else:  # folder of parquet parts
            (directory / name).mkdir(exist_ok=True)
            half = len(frame) // 2
            frame.iloc[:half].to_parquet(directory / name / "part-0.parquet", index=False)
            frame.iloc[half:].to_parquet(directory / name / "part-1.parquet", index=False)
    return directory


EXPORT_TIMES = {
    "accounts": "created_at",
    "subscriptions": "start_date",
    "usage_events": "ts",
    "logins": "ts",
    "support_tickets": "opened_at",
    "trainings": "ts",
    "invoices": "issued_at",
    "touchpoints": "ts",
    "surveys": "ts",
}


def export_until(data: Path, out: Path, cutoff: pd.Timestamp) -> Path:
    """The same source as exported at `cutoff` (a dated export folder): every table's rows dated before it
    (terms that started)."""
    out.mkdir(parents=True)
    for name, column in EXPORT_TIMES.items():
        source = data / name if (data / name).is_dir() else data / f"{name}.parquet"
        if source.exists():
            frame = pd.read_parquet(source)
            frame[pd.to_datetime(frame[column]) < cutoff].to_parquet(out / f"{name}.parquet", index=False)
    return out


def end_to_end(data: Path, work: Path):
    """Train, score the latest date and compare with the stage functions the CLI calls (small, fast settings):
    (train result, scoring run, comparison, what was printed)."""
    from rich.console import Console

    from pipeline.config import load_settings
    from pipeline.progress import set_progress
    from pipeline.stages import (
        build_feature_table,
        compare_dataset,
        latest_scoring_date,
        load,
        score_date,
        train_on_table,
    )

    set_progress(False)
    settings = load_settings(None, {"workdir": str(work), "model": {"n_estimators": 50, "tune_trials": 5}})
    console = Console(record=True, width=300)
    dataset = load(data, settings)
    table = build_feature_table(dataset, settings)
    result = train_on_table(table, settings, None, promote=True, console=console)
    run = score_date(dataset, latest_scoring_date(dataset.data_end), settings, result.model_uri, history=False)
    comparison = compare_dataset(dataset, settings, work / "compare", console, table=table)
    return result, run, comparison, console.export_text()


def run_churn(args: list[str]) -> int:
    """Run `churn --no-progress ARGS` in this process, as a scheduler would; returns the exit code."""
    from pipeline.cli import main

    saved, sys.argv = sys.argv, ["churn", "--no-progress", *args]
    try:
        main()
        return 0
    except SystemExit as exit_info:
        return int(exit_info.code or 0)
    finally:
        sys.argv = saved


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`run_churn`, with what it printed (stderr and stdout) as one line."""
    code = run_churn(args)
    captured = capsys.readouterr()
    return code, " ".join((captured.err + captured.out).split())


def book_settings(book, name: str, **changes):
    """Settings with a new working folder (own history and override store) under the `book`'s root,
    sharing its MLflow store (so its model), and the model's registered URI."""
    from pipeline.config import load_settings

    root, _, _, result = book
    tracking = {"uri": f"sqlite:///{root / 'work' / 'mlflow.db'}"}
    return load_settings(None, {"workdir": str(root / name), "tracking": tracking, **changes}), result


class WebhookReceiver(BaseHTTPRequestHandler):
    """A local alert webhook: keeps each POST's headers and JSON body, answers `status`."""

    status = 200
    bodies: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(
            {
                "content_type": self.headers["Content-Type"],
                "idempotency_key": self.headers["Idempotency-Key"],
                "payload": json.loads(self.rfile.read(length)),
            }
        )
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args) -> None:  # keep test output quiet
        pass
