"""The override store: CSM judgements kept durably, append-only, in `<workdir>/overrides.db` (SQLite).

Nothing in the store is ever updated or deleted (triggers refuse it): an override is a row of
`overrides`; ending one -- early, by `churn overrides expire`, or because a later override of the
same account and target for an overlapping period replaces it -- appends a row to `override_ends`.
`churn overrides history` therefore shows every judgement ever recorded and what became of it.
An override entered by mistake is *withdrawn* (`churn overrides withdraw`): a row of
`override_withdrawals` makes it apply to no date at all, re-runs of earlier dates included, while
the override itself stays in the store with who withdrew it, when and why.

The schema is versioned with SQLite's `user_version`; `MIGRATIONS` lists the steps from an empty
file to the current version and opening a store applies the missing ones in one transaction. A
store written by a newer churn (higher version) is refused rather than misread; a file that is
not a churn store is refused rather than changed.

Scoring only reads: one consistent read (`read_records`) before the run is computed. A store that
is corrupt, not ours, or locked by a writer for longer than `LOCK_TIMEOUT_SECONDS` stops the
scoring run with a clear error before anything is staged, so a run never lands without the
judgements it should have applied. Overrides recorded while a run computes apply from the next run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from features.errors import ChurnError, counted
from features.table import ACCOUNT_ID
from models.overrides import RECORD_COLUMNS, ValidOverride, overlaps, target_name

STORE_FILE = "overrides.db"
APPLICATION_ID = 0x43485231  # "CHR1": marks the SQLite file as a churn override store
LOCK_TIMEOUT_SECONDS = 10.0

_APPEND_ONLY = """
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, 'the override store is append-only: {table} rows are never changed'); END;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, 'the override store is append-only: {table} rows are never deleted'); END;
"""

# version -> SQL taking the store from version - 1 to version. Append a step; never edit a released one.
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE overrides (
        override_id  INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id   TEXT NOT NULL CHECK (length(account_id) > 0),
        kind         TEXT NOT NULL CHECK (kind IN ('category', 'account', 'sentiment')),
        category     TEXT,
        value        REAL NOT NULL,
        rating       TEXT NOT NULL,
        reason       TEXT NOT NULL CHECK (length(trim(reason)) > 0),
        valid_from   TEXT,
        valid_until  TEXT NOT NULL,
        author       TEXT NOT NULL CHECK (length(trim(author)) > 0),
        recorded_at  TEXT NOT NULL,
        source       TEXT NOT NULL,
        CHECK ((kind = 'category') = (category IS NOT NULL)),
        CHECK (CASE kind WHEN 'sentiment' THEN value BETWEEN 1 AND 5 ELSE value BETWEEN 0 AND 100 END),
        CHECK (valid_from IS NULL OR valid_from <= valid_until)
    );
    CREATE INDEX overrides_by_account ON overrides (account_id, kind, category);
    CREATE TABLE override_ends (
        end_id        INTEGER PRIMARY KEY AUTOINCREMENT,
        override_id   INTEGER NOT NULL UNIQUE REFERENCES overrides (override_id),
        kind          TEXT NOT NULL CHECK (kind IN ('ended', 'superseded')),
        superseded_by INTEGER REFERENCES overrides (override_id),
        reason        TEXT NOT NULL CHECK (length(trim(reason)) > 0),
        author        TEXT NOT NULL,
        recorded_at   TEXT NOT NULL,
        CHECK ((kind = 'superseded') = (superseded_by IS NOT NULL))
    );
    """
    + _APPEND_ONLY.format(table="overrides")
    + _APPEND_ONLY.format(table="override_ends"),
    # A withdrawal is not an end: a mistake applies to no date, an end only from its day on. Its own
    # table (not a third end kind) so an override already ended or replaced can still be withdrawn.
    2: """
    CREATE TABLE override_withdrawals (
        withdrawal_id INTEGER PRIMARY KEY AUTOINCREMENT,
        override_id   INTEGER NOT NULL UNIQUE REFERENCES overrides (override_id),
        reason        TEXT NOT NULL CHECK (length(trim(reason)) > 0),
        author        TEXT NOT NULL CHECK (length(trim(author)) > 0),
        recorded_at   TEXT NOT NULL
    );
    """
    + _APPEND_ONLY.format(table="override_withdrawals"),
}
SCHEMA_VERSION = max(MIGRATIONS)


def store_path(workdir: Path) -> Path:
    return Path(workdir) / STORE_FILE


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _problem(path: Path, exc: sqlite3.Error) -> ChurnError:
    """The store error a person can act on: locked (retry), or unreadable (restore from a backup)."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return ChurnError(
            f"Override store {path} is locked by another process (still busy after {LOCK_TIMEOUT_SECONDS:g} s: "
            f"{text}). Nothing was read or written; run the command again when the other one has finished."
        )
    return ChurnError(
        f"Override store {path} cannot be used: {text}. It is corrupt or not a SQLite file; nothing was read "
        "or written. Restore it from a backup (scoring will not run without the CSM overrides it should apply)."
    )


@contextmanager
def _connect(path: Path, *, create: bool) -> Iterator[sqlite3.Connection]:
    """An open, checked, migrated store; every SQLite error leaves as a ChurnError naming the file."""
    if not create and not path.exists():
        raise ChurnError(f"No override store at {path}: record an override first (`churn override`).")
    if path.exists() and not path.is_file():
        raise ChurnError(f"Override store {path} is not a file; move it away (churn never replaces it).")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(path, timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None)
    except sqlite3.Error as exc:
        raise _problem(path, exc) from exc
    try:
        con.execute("PRAGMA foreign_keys = ON")
        _migrate(con, path)
        yield con
    except sqlite3.Error as exc:
        raise _problem(path, exc) from exc
    finally:
        con.close()


@contextmanager
def _writing(con: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: BEGIN IMMEDIATE (one writer at a time; readers wait for it), then COMMIT, or
    ROLLBACK on any failure, interrupts included, so the store never holds half of a change."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _migrate(con: sqlite3.Connection, path: Path) -> None:
    """Bring the store to SCHEMA_VERSION (in one transaction), or refuse a store that is not ours."""
    with _writing(con):  # one migrator at a time; readers wait for it
        if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise ChurnError(f"Override store {path} failed SQLite's integrity check; restore it from a backup.")
        application = con.execute("PRAGMA application_id").fetchone()[0]
        version = con.execute("PRAGMA user_version").fetchone()[0]
        tables = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if application != APPLICATION_ID and (tables or version):
            raise ChurnError(
                f"{path} is a SQLite file but not a churn override store; move it away (churn never changes it)."
            )
        if version > SCHEMA_VERSION:
            raise ChurnError(
                f"Override store {path} has schema version {version}, newer than this churn knows "
                f"({SCHEMA_VERSION}): upgrade churn rather than risk misreading it."
            )
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _statements(MIGRATIONS[step]):
                con.execute(statement)
            con.execute(f"PRAGMA user_version = {step}")
        con.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def _statements(script: str) -> list[str]:
    """Split a migration into statements (triggers hold `;` inside BEGIN ... END)."""
    statements, current = [], ""
    for line in script.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


# ---------------------------------------------------------------------------------- reading
_SELECT = """
SELECT o.override_id, o.account_id, o.kind, o.category, o.value, o.rating, o.reason, o.author,
       o.valid_from, o.valid_until, o.recorded_at, e.recorded_at AS ended_at, e.kind AS end_kind,
       e.author AS end_author, e.reason AS end_reason, w.recorded_at AS withdrawn_at,
       w.author AS withdrawn_by, w.reason AS withdraw_reason, e.superseded_by, o.source
FROM overrides o LEFT JOIN override_ends e ON e.override_id = o.override_id
LEFT JOIN override_withdrawals w ON w.override_id = o.override_id
"""
_LIVE = "WHERE e.override_id IS NULL AND w.override_id IS NULL"  # neither ended nor withdrawn


def _frame(con: sqlite3.Connection, where: str = "", params: Sequence[object] = ()) -> pd.DataFrame:
    cursor = con.execute(f"{_SELECT} {where} ORDER BY o.override_id", params)
    frame = pd.DataFrame(cursor.fetchall(), columns=[c[0] for c in cursor.description])
    frame[ACCOUNT_ID] = frame[ACCOUNT_ID].astype(str)
    for column in ("valid_from", "valid_until", "recorded_at", "ended_at", "withdrawn_at"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def read_records(workdir: Path) -> pd.DataFrame:
    """Every override with how it ended (RECORD_COLUMNS and more), in one consistent read; empty without a store."""
    path = store_path(workdir)
    if not path.exists():
        return pd.DataFrame(columns=[*RECORD_COLUMNS, "superseded_by", "source"])
    with _connect(path, create=False) as con:
        con.execute("BEGIN")
        try:
            return _frame(con)
        finally:
            con.execute("COMMIT")


def store_version(records: pd.DataFrame) -> str:
    """What a scoring run read, for its provenance: overrides, ends and withdrawals recorded so far."""
    ended = int(records["ended_at"].notna().sum()) if not records.empty else 0
    withdrawn = int(records["withdrawn_at"].notna().sum()) if not records.empty else 0
    return f"{counted(len(records), 'override')}, {ended} ended, {withdrawn} withdrawn"


# ---------------------------------------------------------------------------------- writing
@dataclass(frozen=True)
class Recorded:
    override_id: int
    override: ValidOverride
    superseded: tuple[int, ...]


def _live_same_target(con: sqlite3.Connection, item: ValidOverride, today: date) -> list[tuple[int, str | None, str]]:
    rows = con.execute(
        f"""SELECT o.override_id, o.valid_from, o.valid_until FROM overrides o
           LEFT JOIN override_ends e ON e.override_id = o.override_id
           LEFT JOIN override_withdrawals w ON w.override_id = o.override_id
           {_LIVE} AND o.account_id = ? AND o.kind = ? AND o.category IS ? AND o.valid_until >= ?""",
        (item.account_id, item.kind, item.category, today.isoformat()),
    ).fetchall()
    return [(int(i), f, u) for i, f, u in rows]


def record_overrides(
    workdir: Path, overrides: Sequence[ValidOverride], *, source: str, today: date, author_of_ends: str
) -> list[Recorded]:
    """Append overrides in one transaction (all or none). Each replaces the live overrides of the same
    account and target whose period overlaps its own: those are ended as 'superseded' and kept."""
    recorded: list[Recorded] = []
    with _connect(store_path(workdir), create=True) as con, _writing(con):
        now = _now()
        for item in overrides:
            live = [
                i
                for i, start, until in _live_same_target(con, item, today)
                if overlaps(
                    date.fromisoformat(start) if start else None,
                    date.fromisoformat(until),
                    item.valid_from,
                    item.valid_until,
                )
            ]
            cursor = con.execute(
                """INSERT INTO overrides (account_id, kind, category, value, rating, reason, valid_from,
                           valid_until, author, recorded_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    item.account_id,
                    item.kind,
                    item.category,
                    item.value,
                    item.rating,
                    item.reason,
                    item.valid_from.isoformat() if item.valid_from else None,
                    item.valid_until.isoformat(),
                    item.author,
                    now,
                    source,
                ),
            )
            new_id = int(cursor.lastrowid)
            for old in live:
                con.execute(
                    """INSERT INTO override_ends (override_id, kind, superseded_by, reason, author, recorded_at)
                           VALUES (?, 'superseded', ?, ?, ?, ?)""",
                    (old, new_id, f"replaced by override #{new_id}", author_of_ends or item.author, now),
                )
            recorded.append(Recorded(new_id, item, tuple(live)))
    return recorded


def end_overrides(
    workdir: Path, select: Callable[[pd.DataFrame], pd.DataFrame], *, reason: str, author: str
) -> pd.DataFrame:
    """End the live overrides `select` picks from the live ones (in one transaction); returns them.

    Ended overrides apply to no scoring date from today (UTC) on, and still to earlier dates (a re-run of
    one keeps the judgement in force then); the next run raises the expiry alert for the accounts that had them.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise ChurnError("A reason is required to end an override (--reason TEXT): it is kept in the history.")
    with _connect(store_path(workdir), create=False) as con, _writing(con):
        live = _frame(con, _LIVE)
        chosen = select(live)
        now = _now()
        for override_id in chosen["override_id"]:
            con.execute(
                """INSERT INTO override_ends (override_id, kind, reason, author, recorded_at)
                       VALUES (?, 'ended', ?, ?, ?)""",
                (int(override_id), reason, author, now),
            )
    return chosen


def withdraw_overrides(workdir: Path, ids: Sequence[int], *, reason: str, author: str) -> pd.DataFrame:
    """Withdraw overrides entered by mistake (in one transaction; all or none); returns them as they were.

    A withdrawn override applies to no scoring date, earlier ones included, and its disappearance raises
    no expiry alert; it stays in the store (and `history`) with the withdrawal. An override it replaced
    stays ended: re-enter that one if it should apply again.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise ChurnError("A reason is required to withdraw an override (--reason TEXT): it is kept in the history.")
    with _connect(store_path(workdir), create=False) as con, _writing(con):
        marks = ", ".join("?" * len(ids))
        chosen = _frame(con, f"WHERE o.override_id IN ({marks})", [int(i) for i in ids])
        unknown = sorted(set(map(int, ids)) - set(chosen["override_id"].astype(int)))
        if unknown:
            raise ChurnError(
                f"No override with id {', '.join(map(str, unknown))} in {store_path(workdir)} (see "
                "`churn overrides history`); nothing was withdrawn."
            )
        done = chosen[chosen["withdrawn_at"].notna()]
        if not done.empty:
            said = "; ".join(
                f"#{r.override_id} on {r.withdrawn_at.date()} by {r.withdrawn_by}" for r in done.itertuples()
            )
            raise ChurnError(f"Already withdrawn: {said}; nothing was withdrawn.")
        now = _now()
        for override_id in chosen["override_id"]:
            con.execute(
                "INSERT INTO override_withdrawals (override_id, reason, author, recorded_at) VALUES (?, ?, ?, ?)",
                (int(override_id), reason, author, now),
            )
    return chosen


def describe_target(record: pd.Series) -> str:
    return target_name(str(record["kind"]), record["category"] if record["kind"] == "category" else None)
