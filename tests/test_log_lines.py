"""What a person running `churn` reads of the log: each warning once, as a `warning:` line like every
other warning the command prints, and nothing bare on stderr. Before `console.LogLines`, churn configured
no logging: its caches' warnings and `explain`'s excluded rows reached stderr through Python's last
resort only, unstyled. The real CLI runs in a subprocess, where that last resort is in force."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from tests.helpers import book_config, book_score, churn_subprocess

EXCLUDED = "warning: logins.account_id: 1 row for an account not in accounts"


def _lines(text: str, part: str) -> list[str]:
    return [line for line in text.splitlines() if part in line]


def test_warnings_are_said_once_as_warning_lines_and_nothing_reaches_stderr_bare(book, tmp_path: Path) -> None:
    config, workdir = book_config(book, tmp_path, "logs")
    data = Path(shutil.copytree(book[1], tmp_path / "data"))
    logins = pd.read_parquet(data / "logins")
    ghost = logins.tail(1).assign(account_id="ghost")  # the latest login: read by the scoring date's windows
    ghost.to_parquet(data / "logins" / "ghost.parquet", index=False)
    args = book_score(book, config, tmp_path / "scores.parquet")
    args[2] = str(data)
    first = churn_subprocess(*args, "--no-history")  # keeps the older rows' summaries, window rows and feature set
    assert first.returncode == 0 and first.stderr == "", first.stderr
    assert len(_lines(first.stdout, EXCLUDED)) == 1, first.stdout

    cache = workdir / "cache"
    damaged = [*cache.glob("older-rows/*/*.days.parquet"), *cache.glob("window-rows/*/*.duckdb")]
    damaged += [*cache.glob("feature-sets/*.json")]
    assert {p.parent.name for p in damaged} == {"logins", "usage_events", "feature-sets"}, damaged
    for entry in damaged:
        entry.write_bytes(b"damaged")
    second = churn_subprocess(*args, "--no-history", "--overwrite")
    assert second.returncode == 0 and second.stderr == "", second.stderr
    for entry in damaged:
        said = _lines(second.stdout, str(entry))
        assert len(said) == 1 and said[0].startswith("warning: kept "), second.stdout

    account = str(pd.read_parquet(tmp_path / "scores.parquet")["account_id"].iloc[0])
    explain = churn_subprocess(
        "explain", account, "--as-of", "2025-01-15", "--data", str(data), "--config", str(config)
    )
    assert explain.returncode == 0 and explain.stderr == "", explain.stderr
    assert len(_lines(explain.stdout, EXCLUDED)) == 1, explain.stdout

    verbose = churn_subprocess(
        "--verbose", "explain", account, "--as-of", "2025-01-15", "--data", str(data), "--config", str(config)
    )
    assert verbose.returncode == 0 and verbose.stderr == "", verbose.stderr
    assert _lines(verbose.stdout, "churn.features: features: timeline, terms and snapshots built in"), verbose.stdout
    assert len(_lines(verbose.stdout, "logins.account_id: 1 row for")) == 1, verbose.stdout
