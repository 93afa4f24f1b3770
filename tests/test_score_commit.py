"""A scoring run lands whole or not at all (issue 11, row 5).

A process commits a scoring run (scores, alerts, drift, history partition, MLflow run) and is killed
at each named point of the commit (`CHURN_FAULT_POINT`, which exits at once like SIGKILL). Right
after the kill the outputs are the previous run's or, past the commit point, a journal says how to
finish; the next run recovers, says what it did, and the state is then exactly the previous or the
new one -- never a mix. Real stores: parquet files, a SQLite MLflow store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pandas as pd
import pytest

from features.errors import ChurnError
from pipeline.commit import FAULT_ENV, FAULT_EXIT, FAULT_POINTS, ScoreOutputs, commit_scoring, recover
from pipeline.config import Settings, load_settings
from pipeline.history import HistoryRead, append_scores, partition_path, read_history
from pipeline.tracking import COMMIT_STATE_TAG, configure_tracking

BEFORE_COMMIT = ("staged", "logged")
OLD, NEW = pd.Timestamp("2025-06-01"), pd.Timestamp("2025-07-01")
CHILD = """
import json, sys
from pathlib import Path
import pandas as pd
from pipeline.commit import ScoreOutputs, commit_scoring
from pipeline.config import load_settings
settings = load_settings(None, json.loads(sys.argv[1]))
frames = {name: pd.read_parquet(Path(sys.argv[2]) / f"{name}.parquet") for name in ("scores", "alerts", "drift")}
commit_scoring(settings, **frames, outputs=ScoreOutputs(Path(sys.argv[3]), "parquet"),
               history_dir=settings.workdir_path / "history")
"""


def frames(as_of: pd.Timestamp, level: float) -> dict[str, pd.DataFrame]:
    scores = pd.DataFrame(
        {
            "account_id": ["A", "B", "C"],
            "as_of": [as_of] * 3,
            "churn_probability": [level, level / 2, level / 3],
            "health_score": [40.0, 65.0, 90.0],
            "health_band": ["red", "yellow", "green"],
            "arr": [1000.0, 2000.0, 3000.0],
            "model_version": ["1"] * 3,
        }
    )
    alerts = scores.iloc[:1][["account_id", "as_of"]].assign(reasons=f"alert of {as_of.date()}")
    drift = pd.DataFrame({"feature": ["x"], "psi": [level], "drifted": [False]})
    return {"scores": scores, "alerts": alerts, "drift": drift}


def state(settings: Settings, out: Path) -> dict:
    """Everything a scoring run puts in place, as comparable values."""
    outputs = ScoreOutputs(out, "parquet").targets()
    files = {kind: pd.read_parquet(path) if path.exists() else None for kind, path in outputs.items()}
    runs = mlflow.MlflowClient(tracking_uri=settings.tracking_uri()).search_runs(
        [mlflow.MlflowClient(tracking_uri=settings.tracking_uri()).get_experiment_by_name("churn").experiment_id],
        filter_string="tags.kind = 'scoring'",
    )
    history = read_history(settings.workdir_path / "history")
    return {
        "scores_as_of": sorted(set(files["scores"]["as_of"])) if files["scores"] is not None else None,
        "alerts": files["alerts"]["reasons"].tolist() if files["alerts"] is not None else None,
        "drift": files["drift"]["psi"].tolist() if files["drift"] is not None else None,
        "history": sorted(set(history["as_of"])) if not history.empty else [],
        "finished_runs": sorted((r.info.status, r.data.params.get("as_of")) for r in runs),
    }


def leftovers(settings: Settings, out: Path) -> list[str]:
    hidden = [p.name for p in out.parent.iterdir() if p.name.startswith(".") and ".churn-stage-" in p.name]
    hidden += [p.name for p in (settings.workdir_path / "history").iterdir() if p.name.startswith(".")]
    journals = settings.workdir_path / "commits"
    return hidden + [p.name for p in journals.glob("*.*") if p.name != ".lock"]


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with the experiment made once: each test starts from a copy (no migrations)."""
    settings = load_settings(None, {"workdir": str(tmp_path_factory.mktemp("template") / "work")})
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        configure_tracking(settings)
    return settings.workdir_path / "mlflow.db"


@pytest.fixture
def previous_run(tmp_path: Path, empty_store: Path):
    """A working folder and output file holding one committed run (as of OLD)."""
    overrides = {"workdir": str(tmp_path / "work")}
    settings = load_settings(None, overrides)
    settings.workdir_path.mkdir()
    shutil.copy(empty_store, settings.workdir_path / "mlflow.db")
    out = tmp_path / "out" / "scores.parquet"
    commit_scoring(settings, **frames(OLD, 0.2), outputs=ScoreOutputs(out, "parquet"), history_dir=_history(settings))
    for name, frame in frames(NEW, 0.6).items():
        frame.to_parquet(tmp_path / f"{name}.parquet")
    return settings, overrides, out, tmp_path


def _history(settings: Settings) -> Path:
    return settings.workdir_path / "history"


def _commit_in_child(overrides: dict, frames_dir: Path, out: Path, point: str | None) -> int:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop(FAULT_ENV, None)
    if point:
        env[FAULT_ENV] = point
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(overrides), str(frames_dir), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode in (0, FAULT_EXIT), done.stderr[-2000:]
    return done.returncode


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_kill_at_any_point_leaves_the_previous_or_the_new_run_never_a_mix(previous_run, point: str) -> None:
    settings, overrides, out, frames_dir = previous_run
    before = state(settings, out)
    assert before["scores_as_of"] == [OLD] and before["finished_runs"] == [("FINISHED", "2025-06-01")]
    assert _commit_in_child(overrides, frames_dir, out, point) == FAULT_EXIT
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri())
    experiment = client.get_experiment_by_name("churn").experiment_id
    staged = client.search_runs([experiment], filter_string=f"tags.`{COMMIT_STATE_TAG}` = 'staged'")
    assert [r.info.status for r in staged] == ([] if point in ("staged", "finished") else ["RUNNING"])

    if point in BEFORE_COMMIT:  # nothing visible changed; the staged pieces wait for the next run
        assert {k: v for k, v in state(settings, out).items() if k != "finished_runs"} == {
            k: v for k, v in before.items() if k != "finished_runs"
        }
    else:  # past the commit point: the journal says the run is to be finished
        assert any(name.endswith(".commit") for name in leftovers(settings, out))

    messages = recover(settings)  # what the next `churn score` does first

    after = state(settings, out)
    if point in BEFORE_COMMIT:
        assert after == before
        assert len(messages) == 1 and messages[0].startswith("rolled back an interrupted scoring run of 2025-07-01")
        assert all(client.get_run(r.info.run_id).info.lifecycle_stage == "deleted" for r in staged)
    else:
        assert after["scores_as_of"] == [NEW] and after["alerts"] == ["alert of 2025-07-01"]
        assert after["drift"] == [0.6] and after["history"] == [OLD, NEW]
        assert after["finished_runs"] == [("FINISHED", "2025-06-01"), ("FINISHED", "2025-07-01")]
        assert len(messages) == 1 and messages[0].startswith("finished an interrupted scoring run of 2025-07-01")
        committed = client.search_runs([experiment], filter_string=f"tags.`{COMMIT_STATE_TAG}` = 'committed'")
        assert sorted(r.data.params["as_of"] for r in committed) == ["2025-06-01", "2025-07-01"]
    assert leftovers(settings, out) == []
    assert recover(settings) == [], "recovery is done once"


def test_replacing_a_history_partition_never_leaves_the_date_missing(tmp_path: Path, monkeypatch) -> None:
    history = tmp_path / "history"
    append_scores(history, frames(OLD, 0.2)["scores"])
    target = partition_path(history, OLD)
    seen: list[bool] = []
    real_replace = os.replace

    def watching_replace(src, dst):  # the file is there just before and just after the rename
        seen.append(Path(dst).exists())
        real_replace(src, dst)
        seen.append(Path(dst).exists())

    monkeypatch.setattr(os, "replace", watching_replace)
    append_scores(history, frames(OLD, 0.9)["scores"])
    assert seen == [True, True]
    assert read_history(history)["churn_probability"].max() == pytest.approx(0.9) and target.exists()


def test_a_journal_whose_staged_file_lies_under_a_file_is_rolled_back(tmp_path: Path) -> None:
    """A run given `--out data/accounts.parquet/scores.parquet` (before such a target was refused up front)
    failed staging, and its roll-back failed the same way (NotADirectoryError): the pending journal stayed,
    and every later `churn score` in that workdir stopped on it with an internal error."""
    settings = load_settings(None, {"workdir": str(tmp_path / "work")})
    table = tmp_path / "accounts.parquet"
    table.write_text("the user's data")
    journal = settings.workdir_path / "commits" / "20261130T075353-1-0a0b0c0d.pending"
    journal.parent.mkdir(parents=True)
    staged = table / ".scores.parquet.churn-stage-vm-1-0a0b0c0d.parquet"
    journal.write_text(
        json.dumps({"id": journal.stem, "as_of": "2025-12-01", "created": "2026-11-30 07:53:53", "files": [
            [str(staged), str(table / "scores.parquet")]]})
    )  # fmt: skip
    (message,) = recover(settings)
    assert message.startswith("rolled back an interrupted scoring run of 2025-12-01") and not journal.exists()
    assert table.read_text() == "the user's data"


def test_a_file_where_the_history_partition_goes_stops_the_run_before_anything_lands(previous_run) -> None:
    """The outputs used to be placed, then the history partition failed (a file stood where its folder goes):
    a run half landed, and every later run stopped on its journal with an internal FileExistsError."""
    settings, _, out, _ = previous_run
    before = state(settings, out)
    blocker = _history(settings) / f"as_of={NEW:%Y-%m-%d}"
    blocker.write_text("a user's note")
    with pytest.raises(ChurnError, match=f"{blocker} should be the partition folder of 2025-07-01 but is not"):
        commit_scoring(
            settings, **frames(NEW, 0.6), outputs=ScoreOutputs(out, "parquet"), history_dir=_history(settings)
        )
    assert state(settings, out) == before and leftovers(settings, out) == []
    assert blocker.read_text() == "a user's note"


def test_a_committed_run_that_cannot_be_finished_says_what_stands_in_its_way(previous_run) -> None:
    """A journal past its commit point whose history partition is blocked (by a file put there after the
    commit point) is a clear error naming it, and is finished once the path is cleared."""
    settings, overrides, out, tmp_path = previous_run
    assert _commit_in_child(overrides, tmp_path, out, "placed-outputs") == FAULT_EXIT
    blocker = _history(settings) / f"as_of={NEW:%Y-%m-%d}"
    blocker.write_text("in the way")
    with pytest.raises(ChurnError, match=f"Cannot finish the interrupted scoring run of 2025-07-01 .*{blocker}"):
        recover(settings)
    blocker.unlink()
    (message,) = recover(settings)
    assert message.startswith("finished an interrupted scoring run of 2025-07-01")
    assert state(settings, out)["history"] == [OLD, NEW] and leftovers(settings, out) == []


def _read_only_in_child(folder: Path, *argv: str) -> subprocess.CompletedProcess:
    """`python argv...` run in a mount namespace of its own where `folder` is a read-only file system
    (root or not: `unshare` maps the user to root inside), as when a disk is remounted read-only."""
    mount = f"mount --bind '{folder}' '{folder}' && mount -o remount,bind,ro '{folder}' && exec \"$@\""
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    done = subprocess.run(
        ["unshare", "--mount", *user, "sh", "-c", mount, "sh", sys.executable, *argv],
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    if done.returncode != 0 and re.search(r"^(unshare|mount): ", done.stderr, re.MULTILINE):  # the child never ran
        pytest.skip(f"no read-only mount here: {done.stderr[-300:]}")
    return done


needs_unshare = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")


@needs_unshare
def test_a_read_only_history_folder_stops_the_run_cleanly_and_leaves_no_journal(previous_run) -> None:
    """The history folder on a read-only file system: staging the partition failed (EROFS), and so did the
    roll-back, which unlinked the never-written staged file: an internal error, and a pending journal
    that stopped every later run until the folder was writable again."""
    settings, overrides, out, frames_dir = previous_run
    before = state(settings, out)
    done = _read_only_in_child(_history(settings), "-c", CHILD, json.dumps(overrides), str(frames_dir), str(out))
    assert done.returncode == 1 and f"Score history {_history(settings)}" in done.stderr, done.stderr[-2000:]
    assert "is not writable; nothing was written" in done.stderr
    assert state(settings, out) == before and leftovers(settings, out) == []
    assert recover(settings) == []
    assert _commit_in_child(overrides, frames_dir, out, None) == 0
    assert state(settings, out)["history"] == [OLD, NEW]


@needs_unshare
def test_replacing_an_earlier_output_in_a_read_only_folder_is_refused_before_anything_is_staged(previous_run) -> None:
    """Churn's own earlier output passed the check, and staging its replacement failed (EROFS): after the
    whole run, an internal error."""
    settings, overrides, out, frames_dir = previous_run
    before = state(settings, out)
    done = _read_only_in_child(out.parent, "-c", CHILD, json.dumps(overrides), str(frames_dir), str(out))
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"Output {out}: the folder {out.parent} is not writable" in done.stderr, done.stderr[-2000:]
    assert state(settings, out) == before and leftovers(settings, out) == []


@needs_unshare
def test_an_artifact_store_that_cannot_be_written_is_a_clear_error_and_nothing_lands(previous_run) -> None:
    """MLflow's artifact folder read-only (or full): the run was rolled back, but said it was a bug."""
    settings, overrides, out, frames_dir = previous_run
    before = state(settings, out)
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri())
    artifacts = Path(urlparse(client.get_experiment_by_name("churn").artifact_location).path)
    assert artifacts.is_dir()
    done = _read_only_in_child(artifacts, "-c", CHILD, json.dumps(overrides), str(frames_dir), str(out))
    assert done.returncode == 1, done.stderr[-2000:]
    said = done.stderr.strip().splitlines()[-1]
    assert said.startswith("features.errors.ChurnError: The scoring run of 2025-07-01 could not be staged: ")
    assert "Read-only file system" in said and "Nothing of it was kept" in said
    assert state(settings, out) == before and leftovers(settings, out) == []


@needs_unshare
def test_a_read_only_tracking_store_is_said_in_the_databases_words_and_nothing_lands(previous_run) -> None:
    """The error quoted SQLAlchemy's whole message: the SQL statement and its values over a dozen lines."""
    settings, overrides, out, frames_dir = previous_run
    before = state(settings, out)
    store = settings.workdir_path / "mlflow.db"
    done = _read_only_in_child(store, "-c", CHILD, json.dumps(overrides), str(frames_dir), str(out))
    assert done.returncode == 1, done.stderr[-2000:]
    said = done.stderr.strip().splitlines()[-1]
    assert said == (
        f"features.errors.ChurnError: Could not log the scoring run to MLflow at {settings.tracking_uri()}: "
        "attempt to write a readonly database"
    )
    assert state(settings, out) == before and leftovers(settings, out) == []


@needs_unshare
def test_a_journal_whose_unwritten_staged_file_lies_on_a_read_only_folder_is_rolled_back(tmp_path: Path) -> None:
    """Rolling back a staged file that was never written must not unlink it: on a read-only file system
    that fails (EROFS, not ENOENT), and the journal stopped every later run (`--no-history` ones too)."""
    settings = load_settings(None, {"workdir": str(tmp_path / "work")})
    history = _history(settings)
    history.mkdir(parents=True)
    journal = settings.workdir_path / "commits" / "20261130T123701-1-5dccb38d.pending"
    journal.parent.mkdir()
    staged = history / ".as_of=2025-09-15.churn-stage-vm-1-5dccb38d"
    journal.write_text(
        json.dumps({"id": journal.stem, "as_of": "2025-09-15", "created": "2026-11-30 12:37:01", "files": [
            [str(staged), str(history / "as_of=2025-09-15" / "part.parquet")]]})
    )  # fmt: skip
    code = "import json, sys; from pipeline.commit import recover; from pipeline.config import load_settings; "
    code += "print(recover(load_settings(None, json.loads(sys.argv[1]))))"
    done = _read_only_in_child(history, "-c", code, json.dumps({"workdir": str(settings.workdir_path)}))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rolled back an interrupted scoring run of 2025-09-15" in done.stdout and not journal.exists()


def test_a_run_whose_earlier_history_changed_while_it_computed_lands_nothing(previous_run) -> None:
    """Two runs of one working folder at once (a scheduler's backfill running dates in parallel): the run
    of a later date read the history before the earlier date landed, and its alerts landed compared with
    the run before that one, its trends too -- as if the earlier date had never been scored."""
    settings, _, out, _ = previous_run
    later, latest = pd.Timestamp("2025-08-01"), pd.Timestamp("2025-09-01")
    read = HistoryRead.now(_history(settings), later)  # the run of `later` reads the history: OLD only
    commit_scoring(settings, **frames(NEW, 0.6), outputs=None, history_dir=_history(settings))  # lands meanwhile
    before = state(settings, out)
    with pytest.raises(ChurnError, match="score history of 2025-07-01 in place while this run of 2025-08-01"):
        commit_scoring(
            settings, **frames(later, 0.9), outputs=ScoreOutputs(out, "parquet"), history_dir=_history(settings),
            history_read=read,
        )  # fmt: skip
    assert state(settings, out) == before and leftovers(settings, out) == []

    # runs of the same or a later date, landing meanwhile, change nothing it compares with: it lands
    read = HistoryRead.now(_history(settings), later)
    for day in (later, latest):
        commit_scoring(settings, **frames(day, 0.3), outputs=None, history_dir=_history(settings))
    commit_scoring(
        settings, **frames(later, 0.9), outputs=ScoreOutputs(out, "parquet"), history_dir=_history(settings),
        history_read=read,
    )  # fmt: skip
    assert state(settings, out)["history"] == [OLD, NEW, later, latest]
    assert read_history(_history(settings)).query("as_of == @later")["churn_probability"].max() == pytest.approx(0.9)
