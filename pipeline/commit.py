"""A scoring run lands whole or not at all: scores, alerts, drift, history partition and MLflow run.

1. *Stage*: every file is written under a hidden name next to its target (`.<name>.churn-stage-…`;
   history partitions in the history folder), and the MLflow scoring run is logged but left
   RUNNING, tagged `churn.commit=<id>`. A journal `<workdir>/commits/<id>.pending` lists every
   piece before the first one is written.
2. *Commit point*: the journal is renamed to `<id>.commit` (atomic).
3. *Apply*: each staged file is renamed onto its target -- an atomic replace, so neither an
   output nor a history date is ever missing -- then the MLflow run is marked FINISHED and the
   journal removed. SIGINT/SIGTERM are held back during this step.

A crash before the commit point leaves the previous state; the next run *rolls back* (deletes the
staged files and the MLflow run). A crash after it leaves a journal that the next run *finishes*
(the renames are idempotent). Either way the next `churn score` says which it did. One lock file
per working folder serialises commits and recoveries, so a live commit is never "recovered".

Fault injection, for tests: `CHURN_FAULT_POINT=<point>` makes the process exit at once with code
`FAULT_EXIT` when it reaches `<point>`; `<point>:pause` prints `churn: paused at <point>` on
stderr and waits to be killed. Points, in order: `staged`, `logged`, `committed`, `placed-outputs`,
`placed-history`, `finished`.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.errors import ChurnError
from pipeline import interrupts
from pipeline.config import Settings, redact_url
from pipeline.history import SOURCE_KEY, HistoryRead, stage_partitions
from pipeline.io import Staged, check_output_file, check_writable_folder, fsync_file, staged_for, write_staged

FAULT_ENV = "CHURN_FAULT_POINT"
FAULT_EXIT = 97
FAULT_POINTS = ("staged", "logged", "committed", "placed-outputs", "placed-history", "finished")
OUTPUT_KINDS = ("scores", "alerts", "drift")


def fault_point(name: str) -> None:
    """Test hook: exit abruptly (or pause to be killed) at a named point of the commit."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    point, _, action = wanted.partition(":")
    if point != name:
        return
    if action == "pause":
        print(f"churn: paused at {name}", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
    os._exit(FAULT_EXIT)


@dataclass(frozen=True)
class ScoreOutputs:
    """Where `churn score --out FILE` writes: the scores and, beside them, `<stem>_alerts` and `<stem>_drift`."""

    path: Path
    fmt: str
    overwrite: bool = False

    def targets(self) -> dict[str, Path]:
        side = {kind: self.path.with_name(f"{self.path.stem}_{kind}.{self.fmt}") for kind in OUTPUT_KINDS[1:]}
        return {"scores": self.path, **side}

    def check(self) -> None:
        """Refuse before any work when a target is a folder or a file churn must not replace."""
        for kind, target in self.targets().items():
            check_output_file(target, kind, overwrite=self.overwrite)


@dataclass(frozen=True)
class CommitResult:
    commit_id: str
    run_id: str | None
    paths: dict[str, Path]


# ----------------------------------------------------------------------------------- journal
def _journal_dir(settings: Settings) -> Path:
    return settings.workdir_path / "commits"


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold `<folder>/.lock` exclusively: one process at a time commits a run or records deliveries."""
    import fcntl  # POSIX: the scoring commit needs an advisory lock (Linux, macOS)

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write a JSON file whole or not at all (temporary name, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=1))
    fsync_file(tmp)
    os.replace(tmp, path)


def _pairs(document: dict[str, Any]) -> list[Staged]:
    return [Staged(Path(staged), Path(target)) for staged, target in document["files"]]


def _reachable_store(journal: Path, document: dict[str, Any], action: str) -> str | None:
    """The journal's tracking URI, once its server is known to be there: a journal written with another
    server than today's would otherwise wait out ~4 minutes of MLflow's retries on every later run."""
    from pipeline.champion import server_absent

    uri = document.get("tracking_uri")
    if uri and (reason := server_absent(uri)) is not None:
        raise ChurnError(
            f"The {action} scoring run of {document.get('as_of')} (commit {document['id']}) was logged to the "
            f"MLflow server {redact_url(uri)}, which cannot be reached: {reason}. Start that server and run again; "
            f"if it is gone for good, remove the journal {journal}: its files are "
            f"{'in place' if action == 'committed' else 'already discarded'}, only the MLflow record of that run "
            "is lost."
        )
    return uri or None


def _discard_run(journal: Path, document: dict[str, Any]) -> None:
    from pipeline.tracking import discard_scoring_run

    if uri := _reachable_store(journal, document, "interrupted"):
        discard_scoring_run(uri, document["experiment_id"], document["id"])


def _finish_run(journal: Path, document: dict[str, Any]) -> None:
    from pipeline.tracking import finish_scoring_run

    if uri := _reachable_store(journal, document, "committed"):
        finish_scoring_run(uri, document["experiment_id"], document["id"])


def _roll_back(journal: Path, document: dict[str, Any]) -> None:
    for item in _pairs(document):
        item.discard()
    _discard_run(journal, document)
    journal.unlink(missing_ok=True)


def _roll_forward(journal: Path, document: dict[str, Any]) -> None:
    for item in _pairs(document):
        item.place()
    _finish_run(journal, document)
    journal.unlink(missing_ok=True)


def _recover_locked(journal_dir: Path) -> list[str]:
    messages = []
    for journal in sorted(journal_dir.glob("*.pending")) + sorted(journal_dir.glob("*.commit")):
        try:
            document = json.loads(journal.read_text())
        except (OSError, ValueError) as exc:
            raise ChurnError(
                f"Scoring commit journal {journal} is unreadable ({exc}); inspect it and remove it."
            ) from exc
        what = f"scoring run of {document.get('as_of')} (commit {document['id']}, started {document.get('created')})"
        if journal.suffix == ".pending":
            _roll_back(journal, document)
            messages.append(f"rolled back an interrupted {what}: it had not been committed, nothing of it was kept")
        else:
            try:
                _roll_forward(journal, document)
            except OSError as exc:  # a target that cannot take its file now (something put in its way)
                raise ChurnError(
                    f"Cannot finish the interrupted {what}: {exc}. Move what stands there away and run again: "
                    f"the journal {journal} then puts the rest of that run in place."
                ) from exc
            messages.append(
                f"finished an interrupted {what}: its outputs, history partition and MLflow run are now in place"
            )
    for leftover in journal_dir.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)
    return messages


def recover(settings: Settings) -> list[str]:
    """Finish or roll back scoring commits a killed process left in this working folder; says what it did."""
    journal_dir = _journal_dir(settings)
    if not journal_dir.is_dir():
        return []
    with folder_lock(journal_dir):
        return _recover_locked(journal_dir)


# ------------------------------------------------------------------------------------ commit
def check_workdir(settings: Settings, history_dir: Path | None) -> None:
    """Refuse, before any work, a working folder where a scoring run cannot land (a read-only file system,
    no permission): found while staging, it cost the whole run, was an internal error and left a journal
    that stopped every later run."""
    for folder, what in ((_journal_dir(settings), "Scoring commit journal"), (history_dir, "Score history")):
        if folder is not None:
            check_writable_folder(
                folder, f"{what} {folder}", f"{what} {folder}", "nothing was written; make it writable, or set "
                "workdir in the configuration to a folder churn may write",
            )  # fmt: skip


def commit_scoring(
    settings: Settings,
    scores: pd.DataFrame,
    alerts: pd.DataFrame,
    drift: pd.DataFrame,
    *,
    outputs: ScoreOutputs | None,
    history_dir: Path | None,
    data_end: pd.Timestamp | None = None,
    notes: Sequence[str] = (),
    history_extra: pd.DataFrame | None = None,
    model_uri: str | None = None,
    model_name: str | None = None,
    history_read: HistoryRead | None = None,
    source: str | None = None,
) -> tuple[CommitResult, list[str]]:
    """Put a scoring run in place as one unit; returns the result and any recovery messages.

    `history_extra` holds rows of other scoring dates that replace their partitions in the same
    commit (`churn score --rescore-history`): the re-scored past lands with the new run or not at all.
    `model_uri` and `model_name` (the model scored with) are logged with the MLflow run. `history_read`
    (the history as the run read it) stops the commit, nothing written, when another run changed it since.
    `source` (the data folder scored) is recorded in the history partitions (`SOURCE_KEY`).
    """
    from pipeline.tracking import configure_tracking, log_scoring_run

    journal_dir = _journal_dir(settings)
    as_of = pd.Timestamp(scores["as_of"].iloc[0]).date().isoformat()
    token = secrets.token_hex(4)
    commit_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{token}"
    check_workdir(settings, history_dir)
    experiment_id = configure_tracking(settings)
    with folder_lock(journal_dir):
        recovered = _recover_locked(journal_dir)
        if history_read is not None and (changed := history_read.changed()):
            raise ChurnError(
                f"Another scoring run put the score history of {', '.join(changed)} in place while this run of "
                f"{as_of} was computing, so its trends and alerts were computed without it; nothing of this run was "
                "written. Run it again (runs of one working folder are best run one "
                "at a time, oldest date first)."
            )
        tables: list[tuple[pd.DataFrame, list[Staged], str, str]] = []
        if outputs is not None:
            outputs.check()  # again, under the lock: the targets may have changed since the run started
            frames = {"scores": scores, "alerts": alerts, "drift": drift}
            for kind, target in outputs.targets().items():
                tables.append((frames[kind], staged_for(target, outputs.fmt, token), kind, outputs.fmt))
        if history_dir is not None:
            rows = scores if history_extra is None else pd.concat([history_extra, scores], ignore_index=True)
            for run, item in stage_partitions(history_dir, rows, token):
                tables.append((run, [item], "history", "parquet"))
        document = {
            "id": commit_id,
            "as_of": as_of,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "tracking_uri": settings.tracking_uri(),
            "experiment_id": experiment_id,
            "files": [[str(item.staged), str(item.target)] for _, items, _, _ in tables for item in items],
        }
        pending, committed = journal_dir / f"{commit_id}.pending", journal_dir / f"{commit_id}.commit"
        write_json(pending, document)
        try:
            book = {SOURCE_KEY: source.encode()} if source else None
            for frame, items, kind, fmt in tables:
                write_staged(frame, items, kind, fmt, sync=True, metadata=book if kind == "history" else None)
            fault_point("staged")
            run_id = log_scoring_run(
                settings, scores, alerts, drift, commit_id=commit_id, data_end=data_end, notes=notes,
                model_uri=model_uri, model_name=model_name, source=source,
            )  # fmt: skip
            fault_point("logged")
            with interrupts.deferred():
                os.replace(pending, committed)  # the commit point
        except BaseException as exc:
            _roll_back(pending, document)
            if isinstance(exc, OSError):  # a full disk, a store turned read-only: the user's to fix, not a bug
                raise ChurnError(
                    f"The scoring run of {as_of} could not be staged: {exc}. Nothing of it was kept (outputs, "
                    "history and MLflow are as they were); free space or make that place writable, then run again."
                ) from exc
            raise
        with interrupts.deferred():
            fault_point("committed")
            placed = [item for _, items, kind, _ in tables if kind != "history" for item in items]
            for item in placed:
                item.place()
            fault_point("placed-outputs")
            for item in (item for _, items, kind, _ in tables if kind == "history" for item in items):
                item.place()
            fault_point("placed-history")
            _finish_run(committed, document)
            fault_point("finished")
            committed.unlink()
    paths = outputs.targets() if outputs is not None else {}
    return CommitResult(commit_id, run_id, paths), recovered
