"""Helpers the tests import (data builders, the CLI in-process, the book's configurations, engine comparisons, a
local webhook): imported one way, `from tests.helpers import ...`, under `pytest`, `python -m pytest` and
pytest-xdist alike (pyproject's `pythonpath` puts the repository root on the path). A module pytest loads itself,
like conftest.py or a test module, is imported under its own name, so importing from it made a second copy
(`WebhookReceiver.bodies` of another class, a test module's code run twice): what test modules share is here (or in
`feature_data.py`, `churn_sim.py`), fixtures stay in conftest.py."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd
import pytest

if TYPE_CHECKING:
    from pipeline.loading import Dataset


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


def lookalike_tables() -> dict[str, pd.DataFrame]:
    """Tiny tables whose accounts are numbers, with events naming them zero-padded ('007' for 7) or in
    another case, unknown ones, ticket priorities and training kinds the features do not know, and a usage
    event written three times."""
    tables = tiny_tables()
    numbers = {"A": "7", "B": "8", "C": "x9"}
    for frame in tables.values():
        frame["account_id"] = frame["account_id"].map(numbers)
    tables["logins"]["account_id"] = ["007", "7", "ZZ", "X9", "8.0"]  # padded, known, unknown, other case, float
    tables["support_tickets"]["priority"] = ["Major", "P1"]  # Jira's Major: high to some, the default to others
    tables["trainings"] = pd.DataFrame(
        {"account_id": ["7", "8"], "ts": ["2023-01-10"] * 2, "kind": ["Certified", None]}
    )
    days = pd.date_range("2023-02-01", periods=20).strftime("%Y-%m-%d")  # CSAT scores, no kind: read as NPS
    tables["surveys"] = pd.DataFrame({"account_id": "7", "ts": days, "score": [1, 2, 3, 4, 5] * 4})
    tables["usage_events"] = pd.concat([tables["usage_events"], tables["usage_events"].iloc[[0, 0]]])  # 2 repeats
    prospect = pd.DataFrame({"account_id": ["10"], "created_at": ["2023-03-01"]})  # no term
    tables["accounts"] = pd.concat([tables["accounts"], prospect], ignore_index=True)
    return tables


def half_missing_terms() -> dict[str, pd.DataFrame]:
    """Tiny tables with a twin of B's term whose ARR is missing (rows 3, 5) and a copy of C's term whose plan is
    missing (rows 4, 6): pairs told apart by a value missing on one side only."""
    tables = tiny_tables()
    subscriptions = tables["subscriptions"].assign(plan="pro")
    twin = subscriptions.iloc[[2]].assign(arr=float("nan"))
    other_plan = subscriptions.iloc[[3]].assign(plan=None)
    tables["subscriptions"] = pd.concat([subscriptions, twin, other_plan], ignore_index=True)
    return tables


PARTITIONS = {"logins": "account_id", "trainings": "kind", "usage_events": "month"}


def partitioned_tables(root: Path, partitions: dict[str, str] = PARTITIONS) -> Path:
    """Tiny tables whose logins folder is partitioned by account_id and trainings by kind (a Spark `partitionBy`
    export: the column is in the folder names only), and usage events by a month no contract column is."""
    data = write_tables(root, tiny_tables(), "parquet")
    for name, key in partitions.items():
        frame = pd.read_parquet(data / f"{name}.parquet")
        (data / f"{name}.parquet").unlink()
        if key == "month":
            frame[key] = frame["ts"].str[:7]
        for value, rows in frame.groupby(key):
            (data / name / f"{key}={value}").mkdir(parents=True)
            rows.drop(columns=key).to_parquet(data / name / f"{key}={value}" / "part-0.parquet", index=False)
    return data


def bad_csv_tables(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Data folders whose trainings.csv is malformed, each with the problem its error names."""
    files = {
        "ragged": ("account_id,ts,kind\nA,2023-01-10,course\nB,2023-01-11\n", "fields"),
        "ragged_after_blank_line": (
            "account_id,ts,kind\nA,2023-01-10,course\n\nB,2023-01-11\n",
            "line 4 has 2 fields where the header has 3: 'B,2023-01-11'",
        ),
        "twice": ("account_id,ts, ts\nA,2023-01-10,2023-01-11\n", "the header names column 'ts' twice"),
        "empty": ("", "the file is empty (it needs a header row)"),
        "latin1": ("account_id,ts,kind\nA,2023-01-10,caf\u00e9\n", "not UTF-8 text"),
        "semicolons": (
            "account_id;ts;kind\nA;2023-01-10;course\n",
            "its header is one column, 'account_id;ts;kind': the file looks separated by ';', and churn reads "
            "comma-separated CSV (save it with commas, or as parquet).",
        ),
    }
    cases = {}
    for case, (text, problem) in files.items():
        data = write_tables(tmp_path / case, tiny_tables(), "csv")
        (data / "trainings.csv").write_bytes(text.encode("latin-1"))
        cases[case] = (data, problem)
    return cases


def unread_parts(data: Path) -> Path:
    """A data folder whose `logins/` holds, beside its parquet parts, rows in files neither engine reads: a
    CSV part, a Hive part without a suffix and a part named in capitals."""
    logins = write_tables(data, tiny_tables(), "folder") / "logins"
    frame = pd.read_parquet(logins / "part-1.parquet")
    frame.to_csv(logins / "part-2.csv", index=False)
    (logins / "part-1.parquet").rename(logins / "000000_0")
    (logins / "part-0.parquet").rename(logins / "part-0.PARQUET")
    frame.to_parquet(logins / "part-3.parquet")
    return data


def gzipped(data: Path, *names: str) -> Path:
    """`data` with the CSV files of tables `names` gzipped in place (`NAME.csv` -> `NAME.csv.gz`)."""
    for name in names:
        plain = data / f"{name}.csv"
        with gzip.open(data / f"{name}.csv.gz", "wb") as packed:
            packed.write(plain.read_bytes())
        plain.unlink()
    return data


def mixed_id_parts(root: Path) -> Path:
    """A folder table whose parts hold `account_id` as text (part-0) and as doubles (part-1), as exports
    appended by different tools (R writes every number as a double) do."""
    tables = tiny_tables()
    numbers = {"A": "136", "B": "137", "C": "138"}
    for frame in tables.values():
        frame["account_id"] = frame["account_id"].map(numbers)
    data = write_tables(root, tables, "folder")
    part = data / "logins" / "part-1.parquet"
    pd.read_parquet(part).astype({"account_id": "float64"}).to_parquet(part, index=False)
    return data


def report_lines(dataset: Dataset) -> list[str]:
    """The lines of `churn validate`'s report on `dataset`."""
    from rich.console import Console

    from pipeline.console import print_report

    console = Console(record=True, width=400)
    print_report(dataset, console)
    return console.export_text().splitlines()


FOLDER_MONTH = (
    "warning: usage_events: month only in the names of the table's folders (month=...), not in its files: churn "
    "reads no column from folder names, so it is not read (every row is; a column churn should read must be "
    "written into the parquet files)"
)


def telco_like(rows: int = 1_500, seed: int = 0) -> pd.DataFrame:
    """A public-churn-dataset lookalike: yes/no labels, numbers stored as text with blanks, free text."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], rows, p=[0.55, 0.25, 0.2])
    monthly = rng.uniform(20, 110, rows).round(2)
    logit = -0.5 - 0.04 * tenure + 1.2 * (contract == "Month-to-month") + 0.015 * (monthly - 60)
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    total = (tenure * monthly).round(2).astype(str)
    total[tenure == 0] = " "  # the classic blank TotalCharges of new customers
    return pd.DataFrame(
        {
            "customerID": [f"{i:04d}-CUST" for i in range(rows)],
            "tenure": tenure,
            "Contract": contract,
            "MonthlyCharges": monthly,
            "TotalCharges": total,
            "Notes": [f"call note {i}" for i in range(rows)],
            "SignupMonth": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 24, rows) * 30, unit="D"),
            "Churn": np.where(churned, "Yes", "No"),
        }
    )


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


def churn_subprocess(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`churn --no-progress ARGS` in a process of its own, as a user starts it (where Python's last-resort
    logging is in force), with what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--no-progress", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


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


def training_run_names(workdir: Path) -> list[str]:
    """The names of the training runs in the MLflow store of `workdir`, oldest first, read from the store itself."""
    with sqlite3.connect(workdir / "mlflow.db") as store:
        query = (
            "SELECT name FROM runs JOIN tags USING (run_uuid) WHERE tags.key = 'stage' AND tags.value = 'train' "
            "ORDER BY start_time"
        )
        return [name for (name,) in store.execute(query)]


def book_settings(book, name: str, **changes):
    """Settings with a new working folder (own history and override store) under the `book`'s root,
    sharing its MLflow store (so its model), and the model's registered URI."""
    from pipeline.config import load_settings

    root, _, _, result = book
    tracking = {"uri": f"sqlite:///{root / 'work' / 'mlflow.db'}"}
    return load_settings(None, {"workdir": str(root / name), "tracking": tracking, **changes}), result


def config_file(settings, path: Path, extra: str = "") -> Path:
    """A configuration file for a `churn` command that works in `settings`' folder and its MLflow store."""
    path.write_text(f"workdir: {settings.workdir_path}\ntracking: {{uri: '{settings.tracking_uri()}'}}\n{extra}")
    return path


def book_config(book, folder: Path, name: str) -> tuple[Path, Path]:
    """A configuration with its own workdir sharing the book's model store, and that workdir."""
    settings, _ = book_settings(book, name)
    return config_file(settings, folder / f"{name}.yaml"), settings.workdir_path


def book_score(book, config: Path, out: Path) -> list[str]:
    """`churn score` of the book's data on 2025-01-15 with `config`, into `out`."""
    return ["score", "--data", str(book[1]), "--as-of", "2025-01-15", "--config", str(config), "--out", str(out)]


# A scorecard whose segments read accounts columns that are not features: a team's own `tier` and the SPEC's `csm`.
ATTRIBUTE_CARD = """
name: attrs
default:
  categories:
    engagement:
      metrics:
        days_since_last_login: {scheme: thresholds, cuts: [3, 8, 15], points: [100, 70, 40, 0]}
segments:
  platinum:
    when: tier == platinum
  digital:
    when: csm == 'Digital CS'
"""


def with_tier(data: Path) -> pd.DataFrame:
    """Give the accounts of `data` a column of the team's own, `tier` (every fifth account platinum)."""
    path = data / "accounts.parquet"
    accounts = pd.read_parquet(path)
    accounts["tier"] = ["platinum" if i % 5 == 0 else "gold" for i in range(len(accounts))]
    accounts.to_parquet(path, index=False)
    return accounts


def expected_scorecard(accounts: pd.DataFrame) -> pd.Series:
    """account_id -> the scorecard its attributes pick: segments in file order, the default last."""
    chosen = pd.Series("default", index=accounts["account_id"].astype(str).to_numpy())
    chosen[(accounts["csm"] == "Digital CS").to_numpy()] = "digital"
    chosen[(accounts["tier"] == "platinum").to_numpy()] = "platinum"
    return chosen


def assert_same_table(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns, rows and dtypes; numbers exact where integral, else within 1e-9 relative."""
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) > 0
    got, expected = got.reset_index(drop=True), expected.reset_index(drop=True)
    for column in expected.columns:
        x, y = got[column], expected[column]
        assert x.dtype == y.dtype, f"{column}: {x.dtype} vs {y.dtype}"
        if pd.api.types.is_float_dtype(y):
            a, b = x.to_numpy(), y.to_numpy()
            assert np.array_equal(np.isnan(a), np.isnan(b)), f"{column}: missing values differ"
            if np.all(np.isnan(b) | (b == np.round(b))):
                assert np.array_equal(a, b, equal_nan=True), f"{column}: counts differ"
            else:
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=0, err_msg=column)
        else:
            assert x.astype(str).tolist() == y.astype(str).tolist(), column


def assert_same_report(got, expected) -> None:
    """Two engines' validation reports agree on everything but the spelling of the kept-row filters (and the
    clock's time limit when each load read the clock)."""
    assert set(got.keep) == set(expected.keep)
    assert {**vars(got), "keep": None, "time_limit": None} == {**vars(expected), "keep": None, "time_limit": None}


def file_tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (by its relative path) with its bytes: to tell a folder left as it was."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound, then closed): a server can take it, a connection to it is
    refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_mlflow_server(store: str, folder: Path, *options: str) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 over the backend `store` (a URI), started in `folder` (its log there),
    with `options`: its URL; stopped, with its workers, afterwards."""
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", store, *options]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start:\n{(folder / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


class WebhookReceiver(BaseHTTPRequestHandler):
    """A local alert webhook: keeps each POST's path, headers, JSON body and the status it answered, which is
    the next of `statuses` while any are left, else `status`."""

    status = 200
    statuses: ClassVar[list[int]] = []
    bodies: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        receiver = type(self)
        status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
        length = int(self.headers["Content-Length"])
        receiver.bodies.append(
            {
                "path": self.path,
                "status": status,
                "authorization": self.headers["Authorization"],
                "content_type": self.headers["Content-Type"],
                "idempotency_key": self.headers["Idempotency-Key"],
                "payload": json.loads(self.rfile.read(length)),
            }
        )
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args) -> None:  # keep test output quiet
        pass
