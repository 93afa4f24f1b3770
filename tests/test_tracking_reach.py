"""A tracking server that is not there (nothing listens at its port, its host name does not resolve) stops
every command that uses tracking at once, naming the URI and where it was set, before any data is read and
with nothing written. Before, MLflow's own HTTP retries made the command wait ~251 s (measured) first.

The commands run as processes with a 60 s timeout, so the old behaviour fails each case within a minute. The
tests assert what a command did and said (stopped before reading data; the timeout and retries it applied),
never an upper bound on its seconds: a machine short of CPU only adds time. Waits are checked from below."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import free_port

# ~150 s of processes and deliberate waits: among the slow groups, so `make test` starts it early instead of
# leaving it to one worker at the end while the other idles (measured: the last 134 s of a 13:50 run)
pytestmark = pytest.mark.slow

COMMANDS = {
    "score": ["score", "--data", "{data}", "--as-of", "2024-06-01", "--out", "{out}/scores.parquet"],
    "score --table": ["score", "--table", "{table}", "--id", "account_id", "--out", "{out}/scores.parquet"],
    "train": ["train", "--data", "{data}"],
    "train --table": ["train", "--table", "{table}", "--id", "account_id", "--label", "label"],
    "explain": ["explain", "A", "--data", "{data}", "--as-of", "2024-06-01"],
    "compare": ["compare", "--data", "{data}", "--out", "{out}/compare"],
    "run": ["run", "--data", "{data}", "--out", "{out}/run"],
}


def _churn(
    args: list[str], cwd: Path, timeout: float = 60, **env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """`churn args` as a user starts it: the environment of the tests without churn's own defaults
    (`PROCESS_DEFAULTS`, which a user's environment does not hold), with `env`. Not `SET_BY_CHURN`: under xdist the
    workers inherit the defaults conftest's `configure_process` set in pytest's first process, so theirs is empty."""
    from pipeline.runtime import PROCESS_DEFAULTS

    unset = {"MLFLOW_TRACKING_URI", *PROCESS_DEFAULTS}
    environment = {k: v for k, v in os.environ.items() if k not in unset} | env
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-m", "pipeline", "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=environment,
    )
    return finished, time.monotonic() - started


@pytest.fixture
def inputs(tiny_data_dir: Path, tmp_path: Path) -> dict[str, str]:
    table = tmp_path / "prepared.parquet"
    pd.DataFrame({"account_id": ["A", "B", "C", "D"], "label": [0, 1, 0, 1], "seats": [3, 1, 5, 2]}).to_parquet(table)
    out = tmp_path / "out"
    out.mkdir()
    return {"data": str(tiny_data_dir), "table": str(table), "out": str(out)}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_closed_port_in_the_environment_stops_the_command_at_once(command, inputs, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    args = [part.format(**inputs) for part in COMMANDS[command]]
    finished, _ = _churn(args, tmp_path, MLFLOW_TRACKING_URI=url)
    assert finished.returncode == 1, finished.stderr
    message = " ".join(finished.stderr.split())
    assert f"MLflow tracking server {url} (set by the environment variable MLFLOW_TRACKING_URI)" in message
    assert "the connection was refused" in message
    assert "Data end" not in finished.stdout  # no data was read: stopped before any work
    assert not any(Path(inputs["out"]).iterdir())  # no output, not even a claimed folder
    assert not (tmp_path / ".churn").exists()  # nor a working folder


@pytest.mark.parametrize(
    ("uri", "shown", "reason"),
    [  # `.invalid` never resolves (RFC 6761)
        (
            "http://no-such-host.invalid:5000",
            "http://no-such-host.invalid:5000",
            "the host name 'no-such-host.invalid' does not resolve",
        ),
        ("http://localhost:abc", "http://localhost", "it is not a valid URL (nonnumeric port: 'abc')"),
    ],
)
def test_a_uri_in_the_configuration_naming_no_server_stops_scoring_at_once(
    uri, shown, reason, inputs, tmp_path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"tracking:\n  uri: {uri}\n")
    args = [part.format(**inputs) for part in COMMANDS["score"]]
    finished, _ = _churn([*args, "--config", str(config)], tmp_path)
    assert finished.returncode == 1, finished.stderr
    message = " ".join(finished.stderr.split())
    assert f"MLflow tracking server {shown} (set by tracking.uri in the configuration)" in message
    assert reason in message
    assert not (Path(inputs["out"]) / "scores.parquet").exists()


class _Silent:
    """A tracking server address on 127.0.0.1 that never answers: `hung` accepts every connection and says
    nothing (a hung server); otherwise its one-place queue is full, so the connection itself is never accepted
    (as behind a firewall that drops the packets)."""

    def __init__(self, hung: bool) -> None:
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0 if not hung else 16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        if hung:
            threading.Thread(target=self._accept, daemon=True).start()
        else:
            self.held.append(socket.create_connection(self.sock.getsockname()))  # fills the queue

    def _accept(self) -> None:
        with suppress(OSError):  # closed at the end of the test
            while True:
                self.held.append(self.sock.accept()[0])

    def close(self) -> None:
        for sock in [*self.held, self.sock]:
            sock.close()


@pytest.mark.parametrize("hung", [True, False], ids=["hung server", "packets dropped"])
def test_a_tracking_server_that_never_answers_stops_scoring_quickly(hung: bool, inputs, tmp_path: Path) -> None:
    """MLflow's client waits 120 s per request and retries 7 times: scoring against a server that accepted the
    connection and never answered ran past the subprocess's 60 s limit (measured: over 10 minutes)."""
    server = _Silent(hung)
    try:
        args = [part.format(**inputs) for part in COMMANDS["score"]]
        finished, seconds = _churn(args, tmp_path, MLFLOW_TRACKING_URI=server.url)
        patience = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "2", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}
        tried, tried_seconds = _churn(args, tmp_path, MLFLOW_TRACKING_URI=server.url, **patience)
    finally:
        server.close()
    assert finished.returncode == 1, finished.stderr
    message = " ".join(finished.stderr.split())
    assert f"MLflow tracking server {server.url} (set by the environment variable MLFLOW_TRACKING_URI)" in message
    assert (
        "it did not answer within 10 s (a hung or overloaded server, or a firewall that drops the packets); if it "
        "is only slow, set MLFLOW_HTTP_REQUEST_TIMEOUT to more seconds (now 10, churn's default)"
    ) in message
    assert seconds >= 10, seconds  # the check waited its 10 s (a lower bound: a loaded machine only adds)
    assert "Data end" not in finished.stdout and not any(Path(inputs["out"]).iterdir())
    assert tried.returncode == 1, tried.stderr
    assert "it did not answer within 3 attempts of 2 s" in " ".join(tried.stderr.split())
    assert "(now 2, set in the environment)" in " ".join(tried.stderr.split())
    assert tried_seconds >= 6, tried_seconds


def test_a_timeout_the_user_sets_to_churns_own_default_is_the_users(inputs, tmp_path: Path) -> None:
    """The start-up check took a value equal to churn's default (15 s, 3 retries) for churn's own: a user who set
    MLFLOW_HTTP_REQUEST_TIMEOUT=15 got the 10 s single-attempt check, one who set 3 retries got one attempt."""
    server = _Silent(hung=True)
    try:
        args = [part.format(**inputs) for part in COMMANDS["score"]]
        fifteen, fifteen_seconds = _churn(
            args, tmp_path, MLFLOW_TRACKING_URI=server.url, MLFLOW_HTTP_REQUEST_TIMEOUT="15",
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        )  # fmt: skip
        retried, retried_seconds = _churn(
            args, tmp_path, MLFLOW_TRACKING_URI=server.url, MLFLOW_HTTP_REQUEST_TIMEOUT="1",
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="3",
        )  # fmt: skip
    finally:
        server.close()
    said = " ".join(fifteen.stderr.split())
    assert fifteen.returncode == 1 and "it did not answer within 15 s" in said, said
    assert "(now 15, set in the environment)" in said and fifteen_seconds >= 15
    said = " ".join(retried.stderr.split())
    assert retried.returncode == 1 and "it did not answer within 4 attempts of 1 s" in said, said
    assert retried_seconds >= 4, retried_seconds


class _Answering:
    """A real HTTP server on 127.0.0.1 that answers every request with `status` after `delay_s`."""

    def __init__(self, status: int, delay_s: float = 0.0) -> None:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                time.sleep(delay_s)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("status", "delay_s"), [(503, 0.0), (429, 0.0), (200, 3.0)])
def test_a_server_that_answers_with_an_error_or_slowly_is_left_to_mlflows_retries(status, delay_s, tmp_path) -> None:
    from pipeline.champion import SERVER_TIMEOUT_S, check_tracking_server
    from pipeline.config import Settings

    assert delay_s == 0 or delay_s > SERVER_TIMEOUT_S  # the slow one does not answer within the check's wait
    server = _Answering(status, delay_s)
    try:
        check_tracking_server(Settings(workdir=str(tmp_path), tracking={"uri": server.url}))  # no error
    finally:
        server.close()


@pytest.mark.parametrize(("suffix", "files_are"), [(".commit", "in place"), (".pending", "already discarded")])
def test_an_interrupted_run_logged_to_a_server_no_longer_there_is_named_at_once(suffix, files_are, tmp_path) -> None:
    """A scoring commit's journal keeps the tracking URI of its run; recovering it against a server that is gone
    waited out MLflow's retries (~4 minutes) on every later `churn score`, then blamed the next run."""
    from features.errors import ChurnError
    from pipeline.commit import recover
    from pipeline.config import Settings

    settings = Settings(workdir=str(tmp_path / "work"))
    journal = settings.workdir_path / "commits" / f"20250101T000000-1-abcd{suffix}"
    journal.parent.mkdir(parents=True)
    uri = f"http://127.0.0.1:{free_port()}"
    document = {"id": journal.stem, "as_of": "2025-01-01", "created": "2025-01-01 00:00:00", "files": []}
    journal.write_text(json.dumps(document | {"tracking_uri": uri, "experiment_id": "1"}))
    with pytest.raises(ChurnError) as raised:
        recover(settings)

    message = " ".join(str(raised.value).split())
    assert f"logged to the MLflow server {uri}, which cannot be reached: the connection was refused" in message
    assert f"remove the journal {journal}: its files are {files_are}" in message
    assert journal.exists()  # kept until the server is back or the user removes it


class _HangsAfterHello(_Answering):
    """A tracking server on 127.0.0.1 that answers the start-up check (`GET /`) and then, from the first API
    request on, accepts and never answers: a server that hangs while a command runs."""

    def __init__(self) -> None:
        import http.server
        import threading

        stop = self.stop = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/api/"):
                    stop.wait()
                    return
                self.send_response(200)
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        super().close()


def test_a_server_that_hangs_during_the_command_stops_it_within_two_minutes(inputs, tmp_path: Path) -> None:
    """Past the start-up check, MLflow's own client waited 120 s per request, 8 times (over 15 minutes); churn's
    defaults for MLflow's client (`PROCESS_DEFAULTS`) give up in ~75 s, with a message saying what to change."""
    server = _HangsAfterHello()
    try:
        finished, _ = _churn(
            [part.format(**inputs) for part in COMMANDS["score --table"]],
            tmp_path,
            timeout=180,
            MLFLOW_TRACKING_URI=server.url,
        )
    finally:
        server.close()
    assert finished.returncode == 1, finished.stderr
    assert " ".join(finished.stderr.split()) == (
        f"error: MLflow tracking server {server.url} stopped answering during the command: a request got no answer "
        "in 4 attempts of 15 s (a hung or overloaded server). Restart the server and run the command again; if it "
        "is only slow, set MLFLOW_HTTP_REQUEST_TIMEOUT to more seconds (now 15, churn's default)."
    )
