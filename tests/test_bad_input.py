"""Every fatal contract problem gets its own precise message, a non-zero exit, and no output file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import run_cli, tiny_tables, write_tables

Tables = dict[str, pd.DataFrame]


def _drop(table: str) -> Callable[[Tables], None]:
    return lambda t: t.pop(table)


def _set(table: str, column: str, values: list[object]) -> Callable[[Tables], None]:
    def change(tables: Tables) -> None:
        frame = tables[table]
        if len(values) > len(frame):
            frame = frame.loc[frame.index.repeat(len(values) // len(frame) + 1)].reset_index(drop=True)
        frame = frame.iloc[: len(values)].copy()
        frame[column] = values
        tables[table] = frame

    return change


def _drop_column(table: str, column: str) -> Callable[[Tables], None]:
    return lambda t: t.__setitem__(table, t[table].drop(columns=[column]))


CASES: list[tuple[str, Callable[[Tables], None], list[str]]] = [
    ("missing accounts table", _drop("accounts"), ["accounts: required table is missing"]),
    ("missing subscriptions table", _drop("subscriptions"), ["subscriptions: required table is missing"]),
    (
        "no event table",
        lambda t: [t.pop(n) for n in ("logins", "usage_events", "support_tickets", "trainings")],
        ["no event table found"],
    ),
    (
        "missing required column",
        _drop_column("subscriptions", "end_date"),
        ["subscriptions.end_date: required column is missing", "columns found: account_id, start_date"],
    ),
    (
        "opened_at not dates",
        _set("support_tickets", "opened_at", ["2023-01-01", "yesterday", "soon", "2024-13-01"]),
        ["support_tickets.opened_at: 3 values are not dates", "rows 2, 3, 4", "'yesterday', 'soon', '2024-13-01'"],
    ),
    (
        "infinite created_at",
        _set("accounts", "created_at", ["2023-01-01", "infinity", "2023-01-01"]),
        ["accounts.created_at: 1 value is not a date", "rows 2: 'infinity'"],
    ),
    (
        "null account id in events",
        _set("logins", "account_id", ["A", None, "B", "C", "C"]),
        ["logins.account_id: 1 value is missing", "rows 2: null"],
    ),
    (
        "arr not numbers",
        _set("subscriptions", "arr", ["100", "lots", "200", "n/a"]),
        ["subscriptions.arr: 2 values are not numbers", "rows 2, 4", "'lots', 'n/a'"],
    ),
    (
        "step not integers",
        lambda t: t["usage_events"].__setitem__("step", ["1", "two", "3"]),
        ["usage_events.step: 1 value is not an integer", "rows 2: 'two'"],
    ),
    (
        "completed not booleans",
        lambda t: t["trainings"].__setitem__("completed", ["maybe"]),
        ["trainings.completed: 1 value is not a boolean", "rows 1: 'maybe'"],
    ),
    (
        "duplicate account ids",
        _set("accounts", "account_id", ["A", "B", "A"]),
        ["accounts.account_id: 2 rows share a duplicated account_id", "rows 1, 3", "'A', 'A'"],
    ),
    (
        "term ends before it starts",
        lambda t: t["subscriptions"].__setitem__("end_date", ["2023-01-01", "2025-01-01", "2023-01-01", "2025-06-01"]),
        ["subscriptions.end_date: 2 terms end on or before their start_date", "rows 1, 3"],
    ),
    (
        "missing required ticket id",
        _set("support_tickets", "ticket_id", ["T1", ""]),
        ["support_tickets.ticket_id: 1 value is missing", "rows 2"],
    ),
    # issue 11, row 9: numbers that parse but cannot be right
    (
        "arr infinite, negative or NaN",
        _set("subscriptions", "arr", ["100", "inf", "-5", "nan"]),
        ["subscriptions.arr: 3 values are not finite numbers >= 0", "rows 2, 3, 4", "'inf', '-5', 'nan'"],
    ),
    (
        "seats negative",
        _set("subscriptions", "seats", [5, -1, 20, 100]),
        ["subscriptions.seats: 1 value is not a finite number >= 0", "rows 2: '-1'"],
    ),
    (
        "quantity negative or infinite",
        lambda t: t["usage_events"].__setitem__("quantity", ["1", "-2", "-inf"]),
        ["usage_events.quantity: 2 values are not finite numbers >= 0", "rows 2, 3"],
    ),
    (
        "csat off its scale",
        lambda t: t["support_tickets"].__setitem__("csat", ["0", "6"]),
        ["support_tickets.csat: 2 values are not finite numbers from 1 to 5", "rows 1, 2"],
    ),
    # issue 11, rows 3 and 10: out-of-range years, empty required tables
    (
        "year 9999",
        _set("logins", "ts", ["2023-01-01", "9999-12-31", "2023-01-01", "2023-01-01", "2023-01-01"]),
        ["logins.ts: 1 value is outside the supported dates 1900-01-01 to 2999-12-31", "rows 2: '9999-12-31'"],
    ),
    (
        "year 10000",
        _set("subscriptions", "end_date", ["2024-01-01", "10000-01-01", "2024-02-01", "2025-06-01"]),
        ["subscriptions.end_date: 1 value is outside the supported dates", "rows 2: '10000-01-01'"],
    ),
    (
        "no subscriptions at all",
        lambda t: t.__setitem__("subscriptions", t["subscriptions"].iloc[0:0]),
        ["subscriptions: the table has no rows; at least one subscription term is needed"],
    ),
    # a contract column spelt otherwise: a required one was only "missing", an optional one left out silently
    (
        "columns spelt in another case",
        lambda t: [
            t["accounts"].rename(columns={"created_at": "Created At"}, inplace=True),
            t["subscriptions"].rename(columns={"arr": "ARR"}, inplace=True),
        ],
        [
            "(2 problems)",
            "accounts.created_at: column names are exact, and the table has 'Created At': rename it to created_at",
            "subscriptions.arr: column names are exact, and the table has 'ARR': rename it to arr",
        ],
    ),
    # an evergreen term exported with no end, or a 'never' sentinel: say what to write instead
    (
        "term without an end",
        lambda t: t["subscriptions"].__setitem__("end_date", ["2024-01-01", None, "9999-12-31", "2025-06-01"]),
        [
            "subscriptions.end_date: 1 value is missing (rows 2: null); a term without an end (evergreen) needs "
            "one: the day it next renews or can be cancelled",
            "subscriptions.end_date: 1 value is outside the supported dates 1900-01-01 to 2999-12-31 (rows 3: "
            "'9999-12-31'); a term without an end (evergreen) needs one",
        ],
    ),
    # every term excluded: validate said "0 terms" and exited 0, features blamed --start/--end
    (
        "every term names an unknown account",
        lambda t: t["subscriptions"].__setitem__("account_id", ["a", "a", "b", "c"]),
        [
            "subscriptions: every term is excluded, so no account can be labelled or scored",
            "subscriptions.account_id: 4 rows for accounts not in accounts (rows 1, 2, 3: 'a', 'a', 'b')",
            "4 of them would match an account's id but for leading zeros, a '.0' or letter case (row 1: 'a', accounts "
            "has 'A'): write the ids alike in every table",
        ],
    ),
    # every event row excluded: the refusal only said "pass --data-end", not which rows were left out or why
    (
        "every event names an unknown account",
        lambda t: [
            _set("logins", "account_id", ["a.0"] * 1200)(t),
            *(frame.__setitem__("account_id", frame["account_id"].str.lower()) for frame in _events(t)),
        ],
        [
            "no dated event rows left to tell where it ends (every event is missing, excluded or in the future):",
            "logins.account_id: 1,200 rows for accounts not in accounts (rows 1, 2, 3: 'a.0', 'a.0', 'a.0')",
            "1,200 of them would match an account's id but for leading zeros, a '.0' or letter case",
            "; trainings.account_id: 1 row for an account not in accounts",
            "write the ids alike in every table. Fix those rows, or pass --data-end YYYY-MM-DD.",
        ],
    ),
]


def _events(tables: Tables) -> list[pd.DataFrame]:
    return [tables[name] for name in ("logins", "usage_events", "support_tickets", "trainings")]


@pytest.mark.parametrize(("case", "corrupt", "expected"), CASES, ids=[c[0] for c in CASES])
def test_fatal_problem_is_named_and_nothing_is_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    corrupt: Callable[[Tables], None],
    expected: list[str],
) -> None:
    tables = tiny_tables()
    corrupt(tables)
    data = write_tables(tmp_path / "data", tables)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, message = run_cli(["features", "--data", str(data), "--out", str(out_dir / "f.parquet")], capsys)
    assert code == 1
    assert "Traceback" not in message
    for fragment in expected:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"
    assert list(out_dir.iterdir()) == []


def test_zero_row_subscriptions_is_a_clear_error_in_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11, row 10: an empty `subscriptions` used to end in an internal error."""
    tables = tiny_tables()
    tables["subscriptions"] = tables["subscriptions"].iloc[0:0]
    for fmt in ("csv", "parquet"):
        data = write_tables(tmp_path / fmt, tables, fmt)
        code, message = run_cli(["validate", "--data", str(data)], capsys)
        assert code == 1 and "subscriptions: the table has no rows" in message, message
        assert "internal error" not in message


def test_all_problems_are_reported_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tables = tiny_tables()
    _set("accounts", "created_at", ["2023-01-01", "nope", "2023-01-01"])(tables)
    _set("logins", "ts", ["2023-01-01", "x", "2023-01-01", "2023-01-01", "2023-01-01"])(tables)
    code, message = run_cli(["validate", "--data", str(write_tables(tmp_path / "d", tables))], capsys)
    assert code == 1
    assert "(2 problems)" in message and "accounts.created_at" in message and "logins.ts" in message


def test_unreadable_file_names_the_table_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_tables(tmp_path / "data", tiny_tables())
    (data / "logins.csv").unlink()
    (data / "logins.parquet").write_bytes(b"this is not parquet")
    code, message = run_cli(["validate", "--data", str(data)], capsys)
    assert code == 1 and "Table 'logins': cannot read" in message and "logins.parquet" in message


def test_a_latin1_csv_says_what_is_wrong_with_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11, row 11: the loader error used to stop at "CSV Error on Line: 2"."""
    data = write_tables(tmp_path / "data", tiny_tables())
    (data / "accounts.csv").write_bytes("account_id,created_at\nB,2023-01-01\nA\xe9,2023-01-01\n".encode("latin-1"))
    code, message = run_cli(["validate", "--data", str(data)], capsys)
    assert code == 1 and "Table 'accounts': cannot read" in message and "accounts.csv" in message
    assert "not utf-8 encoded" in message.lower()
    # the line DuckDB counts, quoted as it is (DuckDB itself quoted the line before it: 'B,2023-01-01')
    assert "line 3 is not UTF-8 text: b'A\\xe9,2023-01-01'" in message and "B,2023" not in message


def test_a_corrupt_last_part_names_its_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11, row 11: a corrupt last parquet part used to fail without naming the file."""
    data = write_tables(tmp_path / "data", tiny_tables(), "folder")
    last = data / "logins" / "part-1.parquet"
    good = last.read_bytes()
    for broken in (good[: len(good) - 20], good[:8] + b"\x00" * (len(good) - 16) + good[-8:]):
        last.write_bytes(broken)
        code, message = run_cli(["validate", "--data", str(data)], capsys)
        assert code == 1 and "Table 'logins': cannot read" in message and "part-1.parquet" in message, message
        assert "internal error" not in message


def test_table_given_twice_is_ambiguous(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_tables(tmp_path / "data", tiny_tables())
    tiny_tables()["accounts"].to_parquet(data / "accounts.parquet")
    code, message = run_cli(["validate", "--data", str(data)], capsys)
    assert code == 1 and "Table 'accounts' is given more than once" in message


LOOKALIKES = [
    ("logins.csv.zst", "logins", "churn reads CSV compressed with gzip (logins.csv.gz), no other compressed files"),
    ("Logins.csv.gz", "logins", "table names are exact and lower-case: rename it to logins.csv.gz"),
    ("Logins.parquet", "logins", "table names are exact and lower-case: rename it to logins.parquet"),
    ("logins.PARQUET", "logins", "rename it to logins.parquet"),
    ("usage-events.csv", "usage_events", "rename it to usage_events.csv"),
    ("logins.pq", "logins", "rename it to logins.parquet"),
    ("logins.json", "logins", "churn does not read .json files: convert it to parquet or a comma-separated logins.csv"),
    ("Accounts.csv", "accounts", "rename it to accounts.csv"),
]


@pytest.mark.parametrize(("entry", "table", "advice"), LOOKALIKES, ids=[c[0] for c in LOOKALIKES])
def test_a_table_in_a_form_churn_does_not_read_is_refused_not_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str, table: str, advice: str
) -> None:
    """`logins.csv.zst` or `Logins.parquet` used to read as "absent": every model and score silently went without
    the table's features."""
    data = write_tables(tmp_path / "data", tiny_tables())
    (data / f"{table}.csv").rename(data / entry)
    code, message = run_cli(["validate", "--data", str(data)], capsys)
    assert code == 1, message
    assert f"Table '{table}' is not in {data}, but {entry} looks like it" in message and advice in message


def test_a_stray_file_beside_a_table_that_is_read_is_no_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_tables(tmp_path / "data", tiny_tables())
    tiny_tables()["logins"].to_json(data / "logins.json")
    (data / "_truth").mkdir()
    (data / "_truth" / "surveys.csv.gz").write_bytes(b"")
    (data / ".surveys.csv.gz").write_bytes(b"")
    code, message = run_cli(["validate", "--data", str(data)], capsys)
    assert code == 0, message


def test_validate_prints_the_report_with_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tables = tiny_tables()
    tables["logins"].loc[0, "account_id"] = "nobody"
    code, message = run_cli(["validate", "--data", str(write_tables(tmp_path / "d", tables))], capsys)
    assert code == 0
    assert "3 accounts, 4 terms: 1 renewed, 1 churned, 2 censored" in message
    assert "logins.account_id: 1 row for an account not in accounts" in message
    assert "excluded: no account to attach them to" in message


def test_counts_of_one_read_in_the_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A book of one account with one term, featurized on one date, says '1 account, 1 term' and '1 snapshot
    (1 date ...)', never '1 snapshots'."""
    tables = {name: table[table["account_id"] == "B"] for name, table in tiny_tables().items()}
    data = write_tables(tmp_path / "data", tables)
    code, message = run_cli(["validate", "--data", str(data)], capsys)
    assert code == 0, message
    assert "; 1 account, 1 term: 0 renewed, 0 churned, 1 censored" in message
    out = tmp_path / "f.parquet"
    args = ["features", "--data", str(data), "--out", str(out), "--as-of", "2023-05-01"]
    code, message = run_cli(args, capsys)
    assert code == 0, message
    assert "Wrote 1 snapshot (1 date, 0 labelled) x " in " ".join(message.split())
