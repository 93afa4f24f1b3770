"""Rows that cannot be trusted are excluded, counted and named (issue 11, rows 3, 8 and 9).

A timestamp after the run's clock (plus a day) or after --data-end never moves the end of the
data; rows of accounts missing from `accounts` reach no feature, score or alert; numbers and dates
that parse but cannot be right are clear errors, in typed parquet as in CSV.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.build import build_features
from features.errors import DataContractError
from features.settings import FeatureSettings
from pipeline.loading import Dataset
from tests.helpers import run_cli, tiny_tables, write_tables

DATES = ["2023-06-01", "2023-09-01", "2024-01-01", "2024-03-01"]


def _with_login(tables: dict[str, pd.DataFrame], account: str, ts: str) -> dict[str, pd.DataFrame]:
    extra = pd.DataFrame({"account_id": [account], "ts": [ts], "user_id": ["u9"]})
    return {**tables, "logins": pd.concat([tables["logins"], extra], ignore_index=True)}


def test_an_event_dated_2300_is_excluded_and_cannot_move_the_data_end() -> None:
    """Row 3: one event in 2300 used to move the data end, un-censoring every running term."""
    clean = Dataset.from_frames(tiny_tables())
    poisoned = Dataset.from_frames(_with_login(tiny_tables(), "A", "2300-01-01"))

    assert poisoned.data_end == clean.data_end == pd.Timestamp("2024-06-30")
    assert (poisoned.report.censored, poisoned.report.churns) == (clean.report.censored, clean.report.churns)
    (warning,) = [w for w in poisoned.report.warnings if w.column == "ts"]
    assert (warning.table, warning.count, warning.excluded) == ("logins", 1, True)
    assert "rows dated after the run's clock plus a day" in warning.problem
    assert "rows 6: '2300-01-01 00:00:00'" in warning.examples
    assert poisoned.report.tables["logins"].excluded == 1
    settings = FeatureSettings()
    pd.testing.assert_frame_equal(
        build_features(poisoned, DATES, settings, grace_days=30), build_features(clean, DATES, settings, grace_days=30)
    )


def test_the_clock_decides_what_is_in_the_future() -> None:
    tables = _with_login(tiny_tables(), "A", "2024-07-02 12:00")
    at_run = Dataset.from_frames(tables, now=pd.Timestamp("2024-07-01 13:00"))  # +1 day covers 2024-07-02 12:00
    assert at_run.data_end == pd.Timestamp("2024-07-02 12:00") and not at_run.report.exclusions
    earlier = Dataset.from_frames(tables, now=pd.Timestamp("2024-07-01 11:00"))
    assert earlier.data_end == pd.Timestamp("2024-06-30") and earlier.report.exclusions[0].count == 1


def test_a_data_end_in_the_future_is_refused() -> None:
    with pytest.raises(DataContractError, match=r"--data-end: 2300-01-01 is after the run's clock"):
        Dataset.from_frames(tiny_tables(), data_end="2300-01-01")


def test_validate_and_features_say_which_data_end_they_use_and_what_they_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_tables(tmp_path / "d", _with_login(tiny_tables(), "B", "2300-01-01"))
    code, message = run_cli(["validate", "--data", str(data)], capsys)
    assert code == 0 and "Data end 2024-06-30 00:00:00 (latest event)" in message  # as every command says it
    assert "logins.ts: 1 row dated after the run's clock plus a day" in message and "excluded:" in message
    assert "1 kind of suspicious rows (excluded or kept, as stated):" in message
    code, message = run_cli(
        ["features", "--data", str(data), "--out", str(tmp_path / "f.parquet"), "--as-of", "2024-01-01"],
        capsys,
    )
    assert code == 0 and "Data end 2024-06-30 00:00:00 (latest event)" in message
    assert "warning: logins.ts: 1 row dated after" in message


def test_the_data_end_is_said_to_the_second(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An export's fractional seconds read "Data end 2025-02-28 01:00:00.410099 (latest event)"; `churn validate`
    said the day alone ("Data end 2024-07-01"), as if the day's later events were in the data."""
    data = write_tables(tmp_path / "d", _with_login(tiny_tables(), "B", "2024-07-01T10:30:15.410099"))
    code, message = run_cli(["features", "--data", str(data), "--out", str(tmp_path / "f.parquet")], capsys)
    assert code == 0 and "Data end 2024-07-01 10:30:15 (latest event)" in message, message
    code, message = run_cli(["validate", "--data", str(data)], capsys)
    assert code == 0 and "Data end 2024-07-01 10:30:15 (latest event);" in message, message


def test_a_data_end_given_as_a_day_is_said_as_that_day(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--data-end 2024-05-31` read "Data end 2024-05-31 00:00:00 (--data-end)", as if that day's events were left
    out; they are kept (rows after the end of that day are excluded)."""
    data = write_tables(tmp_path / "d", tiny_tables())
    args = ["features", "--data", str(data), "--out", str(tmp_path / "f.parquet"), "--data-end", "2024-05-31"]
    code, message = run_cli(args, capsys)
    assert code == 0 and "Data end 2024-05-31 (--data-end: its events included)." in message, message
    code, message = run_cli(["validate", "--data", str(data), "--data-end", "2024-05-31"], capsys)
    assert code == 0 and "Data end 2024-05-31 (--data-end: its events included);" in message, message


def test_rows_of_unknown_accounts_are_excluded_everywhere_and_counted() -> None:
    """Row 8: subscriptions of accounts missing from `accounts` were reported "ignored" but scored."""
    tables = tiny_tables()
    ghost_terms = pd.DataFrame(
        {
            "account_id": ["GHOST"] * 2,
            "start_date": ["2023-01-01", "2024-01-01"],
            "end_date": ["2024-01-01", "2025-01-01"],
        }
    )
    tables["subscriptions"] = pd.concat([tables["subscriptions"], ghost_terms], ignore_index=True)
    tables = _with_login(tables, "GHOST", "2023-05-01")
    dataset = Dataset.from_frames(tables)

    found = {(w.table, w.column): w for w in dataset.report.warnings}
    assert found[("subscriptions", "account_id")].count == 2 and found[("logins", "account_id")].count == 1
    assert all(found[key].excluded for key in (("subscriptions", "account_id"), ("logins", "account_id")))
    assert "GHOST" not in set(dataset.subscriptions["account_id"])
    table = build_features(dataset, DATES, FeatureSettings(), grace_days=30)
    assert set(table["account_id"]) <= {"A", "B", "C"} and len(table) > 0
    assert dataset.report.terms == 4, "term outcomes count known accounts only"


def test_typed_parquet_numbers_and_dates_get_the_same_range_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Row 9 (and 3) for typed files: NaN/inf doubles and a year-10000 timestamp are errors, not a crash."""
    data = write_tables(tmp_path / "d", tiny_tables(), "parquet")
    subscriptions = pq.read_table(data / "subscriptions.parquet")
    arr = pa.array([1200.0, float("inf"), float("nan"), 50000.0], type=pa.float64(), from_pandas=False)
    subscriptions = subscriptions.set_column(subscriptions.schema.get_field_index("arr"), "arr", arr)
    pq.write_table(subscriptions, data / "subscriptions.parquet")
    logins = pq.read_table(data / "logins.parquet").drop_columns(["ts"])
    far = 10_000 * 365 * 86_400 * 1_000_000  # microseconds: well into year 11970
    logins = logins.append_column("ts", pa.array([far, 0, 0, 0, 0], type=pa.timestamp("us")))
    pq.write_table(logins, data / "logins.parquet")

    code, message = run_cli(["validate", "--data", str(data)], capsys)

    assert code == 1 and "internal error" not in message
    assert "subscriptions.arr: 2 values are not finite numbers >= 0 (rows 2, 3: 'inf', 'nan')" in message
    assert "logins.ts: 1 value is outside the supported dates" in message and "rows 1:" in message


def test_a_feature_window_before_every_term_warns_where_the_terms_lie(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A window with no active account is a valid request (the table keeps its columns), but 0 rows with
    exit 0 and no word read as lost data: the warning names the dates and where the terms are."""
    data = write_tables(tmp_path / "d", tiny_tables())
    out = tmp_path / "f.parquet"
    code, message = run_cli(
        ["features", "--data", str(data), "--out", str(out), "--start", "2010-01-01", "--end", "2010-03-01"], capsys
    )
    assert code == 0 and pd.read_parquet(out).empty
    assert (
        "warning: no account has a term active on any of the 3 snapshot dates from 2010-01-01 to 2010-03-01: "
        "the first term in subscriptions starts on 2023-01-01; the table has its columns and no rows"
    ) in message
    code, message = run_cli(
        ["features", "--data", str(data), "--out", str(out), "--as-of", "2026-01-01", "--overwrite"], capsys
    )
    assert code == 0 and pd.read_parquet(out).empty
    assert "no account has a term active on 2026-01-01: the latest term in subscriptions ends on 2025-06-01" in message
    code, message = run_cli(["features", "--data", str(data), "--out", str(out), "--overwrite"], capsys)
    assert code == 0 and "no account has a term active" not in message
