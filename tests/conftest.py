"""Shared fixtures: a tiny hand-built dataset, generated data with a trained model, one Spark session.

How to add a heavy test (one that generates data, trains a model or starts Spark) -- CI runs the
whole suite on 2 cores in under 20 minutes, and in a session most of the cost of training is the
MLflow logging (plots, the model, a new SQLite store), not the trees:
- Need a trained, registered model on generated data? Use `book` (150 accounts from 2023-01-01,
  2.5 years, one model in a SQLite store) and `tests.helpers.book_settings(book, "<your folder>")`: your own
  working folder (history, overrides), the book's store and model. Score, explain, override --
  never train, promote or edit artifacts in the book's store: other files read it.
- A test that must change the data copies it first (`shutil.copytree(data, tmp_path / "data")`).
  A copied MLflow store still points at the original artifact folder (runs record absolute
  artifact URIs), so a test that edits artifacts, trains or promotes needs a store of its own: a
  module that needs such a store, or a model of its own settings (the settings are what it tests),
  trains once in a `scope="module"` fixture, with `tune_trials: 0` unless the search is tested.
- On Spark, every statement is a job (a tiny load and validation costs 15-40 s, a feature build over
  a year of snapshots 60-100 s): check a new case on the data a module already loads or builds (in
  tests/test_spark_engine.py, the `world`'s data hold the odd values its tests need) rather than on a
  load and a build of its own.
- Mark it: tests that use `book` or `spark` are marked `slow` here automatically; a module that
  trains or runs the CLI end to end sets `pytestmark = pytest.mark.slow`. `pytest -m "not slow"`
  is the quick loop while iterating; CI runs everything. The marks also order the run (below): the
  Spark group first, then the groups holding a slow test.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import HTTPServer
from pathlib import Path

import pytest

from pipeline.runtime import configure_process
from tests.helpers import WebhookReceiver, tiny_tables, write_tables

configure_process()  # as the `churn` command does: before MLflow and LightGBM load


HEAVY_FIXTURES = ("book", "spark")  # a test that uses one of these is `slow`


def pytest_configure(config: pytest.Config) -> None:
    """Keep the order `pytest_collection_modifyitems` gives the groups: pytest-xdist would sort them by their
    number of tests, which sends a group of a few long tests (the wheel, the notebooks) to the end of the run."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark heavy tests `slow`, and group tests for `make test`'s workers (pytest-xdist, `--dist loadgroup`):
    a module's tests run on one worker, so a module-scoped model is trained once, and every module that
    starts Spark shares one worker, so one JVM.

    The groups are handed out in order, each to the first worker free: the Spark group first (the longest:
    one worker runs it while the others take the rest), then the groups holding a slow test, then the quick
    ones, which fill in at the end so that no worker is left with a long group while the others idle."""
    spark_modules = {item.module.__name__ for item in items if "spark" in getattr(item, "fixturenames", ())}
    groups: dict[pytest.Item, str] = {}
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in HEAVY_FIXTURES):
            item.add_marker(pytest.mark.slow)
        module = item.module.__name__
        groups[item] = "spark" if module in spark_modules else module
        item.add_marker(pytest.mark.xdist_group(groups[item]))
    slow_groups = {groups[item] for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: (groups[item] != "spark", groups[item] not in slow_groups))


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook, on the controller
def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:
    """Stop a `--dist loadgroup` run whose tests did not get their group: pytest-xdist names it in the node id,
    and where it cannot (pytest 9.2 with pytest-xdist 3.8, its issue 1386) the tests are silently dealt out one
    by one, so each worker trains the module models and starts a JVM of its own (minutes more in CI)."""
    if node.config.getoption("dist") != "loadgroup":
        return
    lost = [nodeid for nodeid in ids if "@" not in nodeid.rpartition("::")[2]]
    if lost:
        pytest.exit(
            f"pytest-xdist did not group {len(lost)} tests (e.g. {lost[0]}) under pytest {pytest.__version__}: "
            "install the versions pyproject.toml names (`make setup`), or run with `-n 0`",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


@pytest.fixture(autouse=True)
def _no_ambient_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that exports MLFLOW_TRACKING_URI would send every later command's runs to its store."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)


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
    """One local[2] Spark session for the whole test run (a JVM start costs 10-20 s). Its driver gets 2 GB: the
    broadcast joins of ~40 tests' feature builds pile up in one JVM until their plans are collected, and with 1 GB
    a late test in the group could fail with "Not enough memory to build and broadcast the table"."""
    from pipeline.spark import start_spark

    conf = {"spark.sql.shuffle.partitions": "2", "spark.driver.memory": "2g", "spark.ui.showConsoleProgress": "false"}
    session = start_spark("local[2]", conf)
    yield session
    session.stop()


@pytest.fixture
def webhook() -> Iterator[str]:
    """The URL of a `WebhookReceiver` on a free local port, its bodies cleared, answering 200."""
    WebhookReceiver.bodies, WebhookReceiver.statuses, WebhookReceiver.status = [], [], 200
    server = HTTPServer(("127.0.0.1", 0), WebhookReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/churn"
    server.shutdown()
    server.server_close()
