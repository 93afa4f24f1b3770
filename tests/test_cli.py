"""The command-line surface: every SPEC command exists with --help, and `python -m pipeline` works."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pipeline.cli import app, main
from tests.helpers import run_cli, tiny_tables, write_tables

COMMANDS = ["generate", "validate", "features", "train", "score", "explain", "compare", "run"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_python_dash_m_pipeline_is_the_same_entry_point() -> None:
    done = subprocess.run([sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert all(command in done.stdout for command in COMMANDS)


def test_a_start_after_the_end_is_named_as_such(tmp_path, capsys) -> None:
    """It used to read the data, then say "No snapshot dates fall inside the data's history"."""
    out = tmp_path / "f.parquet"
    args = ["features", "--data", str(tmp_path / "absent"), "--out", str(out), "--start", "2025-06-01"]
    code, text = run_cli([*args, "--end", "2024-01-01"], capsys)
    assert code == 1 and "--start 2025-06-01 is after --end 2024-01-01" in text and not out.exists()


def test_bad_date_is_one_clear_message() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "score", "--data", ".", "--as-of", "next tuesday", "--out", "x.parquet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "--as-of: 'next tuesday' is not a date" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_data_warning_is_said_once_not_again_on_stderr(tmp_path) -> None:
    """Every excluded-rows warning was printed twice by a real process: as `warning: ...` and, bare, on stderr
    (a logging record at WARNING level reached Python's last-resort handler)."""
    tables = tiny_tables()
    tables["logins"].loc[0, "account_id"] = "nobody"
    data = write_tables(tmp_path / "data", tables)
    for command in (["validate"], ["features", "--out", str(tmp_path / "f.parquet")]):
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "--no-progress", *command, "--data", str(data)],
            capture_output=True, text=True, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert (done.stdout + done.stderr).count("1 row for an account not in accounts") == 1, done.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(["overide"], "No such command 'overide'"), (["validate", "--engin", "duckdb"], "No such option: --engin")],
)
def test_a_mistyped_command_or_option_prints_the_usage_and_exits_2(
    args: list[str], fragment: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11, row 12: these used to print "internal error: UsageError ... This is a bug"."""
    monkeypatch.setattr(sys, "argv", ["churn", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Usage: churn" in err and fragment in err
    assert "internal error" not in err and "bug" not in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["features", "--data", "d", "--out", "f.parquet", "--as-of", "2025-01-01", "--start", "2024-01-01"],
         "--as-of: cannot be combined with --start"),
        (["train", "--data", "d", "--table", "t.csv", "--id", "i", "--label", "l"],
         "--table: cannot be combined with --data"),
        (["score", "--table", "t.csv", "--id", "i", "--out", "s.parquet", "--data-end", "2025-01-01"],
         "--table: cannot be combined with --data-end"),
        (["score", "--data", "d", "--table", "t.csv", "--id", "i", "--out", "s.parquet"],
         "--table: cannot be combined with --data"),
        (["overrides", "list", "--all", "--as-of", "2025-01-01"], "--all: cannot be combined with --as-of"),
        (["train", "--table", "t.csv", "--id", "i", "--label", "l", "--grace-days", "10", "--engine", "spark"],
         "--table: cannot be combined with --grace-days, --engine"),
        (["score", "--table", "t.csv", "--id", "i", "--out", "s.parquet", "--include-trials", "--whole-history"],
         "--table: cannot be combined with --include-trials, --whole-history"),
    ],
)  # fmt: skip
def test_options_that_would_be_ignored_together_are_a_usage_error(
    args: list[str], fragment: str, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`train --data D --table T` used to train on the table and register it under the data's model name,
    `score --data D --table T` to ignore the data, `features --as-of D --start S` to ignore --start,
    `overrides list --all --as-of D` to ignore the date, `--table` the data-folder options (`--grace-days`,
    `--engine spark`, `--include-trials`...)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["churn", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert "Usage: churn" in err and fragment in err, err
    assert list(tmp_path.iterdir()) == []
