"""Shared fixtures: a tiny hand-built dataset, generated data with a trained model, one Spark session.

How to add a heavy test (one that generates data, trains a model or starts Spark) -- CI runs the
whole suite on 2 cores in under 20 minutes, and in a session most of the cost of training is the
MLflow logging (plots, the model, a new SQLite store), not the trees:
- Need a trained, registered model on generated data? Use `book` (150 accounts from 2023-01-01,
  2.5 years, one model in a SQLite store) and `book_settings(book, "<your folder>")`: your own
  working folder (history, overrides), the book's store and model. Score, explain, override --
  never train, promote or edit artifacts in the book's store: other files read it.
- A test that must change the data copies it first (`shutil.copytree(data, tmp_path / "data")`).
  A copied MLflow store still points at the original artifact folder (runs record absolute
  artifact URIs), so a test that edits artifacts, trains or promotes needs a store of its own: a
  module that needs such a store, or a model of its own settings (the settings are what it tests),
  trains once in a `scope="module"` fixture, with `tune_trials: 0` unless the search is tested.
- Mark it: tests that use `book` or `spark` are marked `slow` here automatically; a module that
  trains or runs the CLI end to end sets `pytestmark = pytest.mark.slow`. `pytest -m "not slow"`
  is the quick loop while iterating; CI runs everything.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from pipeline.runtime import configure_process

configure_process()  # as the `churn` command does: before MLflow and LightGBM load


HEAVY_FIXTURES = ("book", "spark")  # a test that uses one of these is `slow`


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark heavy tests `slow`, and group tests for `make test`'s workers (pytest-xdist, `--dist loadgroup`):
    a module's tests run on one worker, so a module-scoped model is trained once, and every module that
    starts Spark shares one worker, so one JVM."""
    spark_modules = {item.module.__name__ for item in items if "spark" in getattr(item, "fixturenames", ())}
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in HEAVY_FIXTURES):
            item.add_marker(pytest.mark.slow)
        module = item.module.__name__
        item.add_marker(pytest.mark.xdist_group("spark" if module in spark_modules else module))


@pytest.fixture(autouse=True)
def _no_ambient_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that exports MLFLOW_TRACKING_URI would send every later command's runs to its store."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)


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


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    return write_tables(tmp_path / "data", tiny_tables())


@pytest.fixture(scope="session")
def book(tmp_path_factory: pytest.TempPathFactory):
    """Generated data with a model trained and registered on it (a SQLite MLflow store in `<root>/work`),
    shared by the tests of scoring operations (overrides, who is scored, scorecard versions)."""
    from rich.console import Console

    from pipeline.config import load_settings
    from pipeline.loading import load_dataset
    from pipeline.stages import build_feature_table, train_on_table
    from pipeline.synthetic import generate

    root = tmp_path_factory.mktemp("book")
    data = root / "data"
    generate(data, n_accounts=150, seed=5, start="2023-01-01", years=2.5)
    train_settings = load_settings(
        None, {"workdir": str(root / "work"), "model": {"tune_trials": 0, "n_estimators": 100}}
    )
    dataset = load_dataset(data)
    result = train_on_table(
        build_feature_table(dataset, train_settings), train_settings, None, True, Console(quiet=True)
    )
    return root, data, dataset, result


def book_settings(book, name: str, **changes):
    """Settings with a new working folder (own history and override store) under the `book`'s root,
    sharing its MLflow store (so its model), and the model's registered URI."""
    from pipeline.config import load_settings

    root, _, _, result = book
    tracking = {"uri": f"sqlite:///{root / 'work' / 'mlflow.db'}"}
    return load_settings(None, {"workdir": str(root / name), "tracking": tracking, **changes}), result


@pytest.fixture(scope="session")
def spark_runs() -> None:
    """Skipped, with the reason, where PySpark or a Java runtime is missing -- except in CI, where that
    fails the run."""
    from pipeline.spark import spark_problem

    problem = spark_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Spark tests: {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="session")
def spark(spark_runs):
    """One local[2] Spark session for the whole test run (a JVM start costs 10-20 s)."""
    from pipeline.spark import start_spark

    conf = {"spark.sql.shuffle.partitions": "2", "spark.driver.memory": "1g", "spark.ui.showConsoleProgress": "false"}
    session = start_spark("local[2]", conf)
    yield session
    session.stop()


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


@pytest.fixture
def webhook() -> Iterator[str]:
    """The URL of a `WebhookReceiver` on a free local port, its bodies cleared, answering 200."""
    WebhookReceiver.bodies, WebhookReceiver.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), WebhookReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/churn"
    server.shutdown()
    server.server_close()
