"""Score history: partition per as_of, idempotent re-scoring, previous run, 30/90-day trends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from features.errors import ChurnError
from pipeline.history import append_scores, latest_before, other_book, read_history, trends


def _run(as_of: str, health: list[float], probability: list[float], accounts=("A", "B", "C"), version="3"):
    return pd.DataFrame(
        {
            "account_id": pd.Series(accounts, dtype=str),
            "as_of": pd.Timestamp(as_of),
            "health_score": health,
            "churn_probability": probability,
            "health_band": pd.Series(["green"] * len(accounts), dtype=str),
            "model_version": version,
        }
    )


def test_runs_are_stored_one_partition_per_date_and_read_back(tmp_path: Path):
    history = tmp_path / "history"
    first, second = _run("2024-01-01", [80, 70, 60], [0.1, 0.2, 0.3]), _run("2024-02-01", [75, 72, 40], [0.1, 0.3, 0.6])

    written = append_scores(history, second) + append_scores(history, first)

    assert written == [history / "as_of=2024-02-01" / "part.parquet", history / "as_of=2024-01-01" / "part.parquet"]
    stored = read_history(history)
    pd.testing.assert_frame_equal(stored, pd.concat([first, second], ignore_index=True), check_dtype=False)
    assert stored["as_of"].dtype.kind == "M" and pd.api.types.is_string_dtype(stored["account_id"])
    assert read_history(history, columns=["account_id", "health_score", "absent"]).columns.tolist() == [
        "account_id",
        "health_score",
    ]
    assert sorted(p.name for p in history.iterdir()) == ["as_of=2024-01-01", "as_of=2024-02-01"]


def test_rescoring_a_date_replaces_its_partition_only(tmp_path: Path):
    history = tmp_path / "history"
    append_scores(history, _run("2024-01-01", [80, 70, 60], [0.1, 0.2, 0.3]))
    append_scores(history, _run("2024-02-01", [75, 72, 40], [0.1, 0.3, 0.6], version="3"))

    rescored = _run("2024-02-01", [50, 50], [0.5, 0.5], accounts=("A", "B"), version="4")
    append_scores(history, rescored)
    append_scores(history, rescored)

    stored = read_history(history)
    assert len(stored) == 5
    february = stored[stored["as_of"] == "2024-02-01"]
    assert february["model_version"].tolist() == ["4", "4"] and february["health_score"].tolist() == [50, 50]
    assert stored[stored["as_of"] == "2024-01-01"]["health_score"].tolist() == [80, 70, 60]


def test_a_failed_write_leaves_the_history_as_it_was(tmp_path: Path):
    history = tmp_path / "history"
    append_scores(history, _run("2024-01-01", [80, 70, 60], [0.1, 0.2, 0.3]))
    before = read_history(history)
    # The second date's rows hold a value parquet cannot store in that column: the whole append must fail.
    bad = pd.concat([_run("2024-01-01", [1, 1, 1], [0.9, 0.9, 0.9]), _run("2024-02-01", [1, 1, 1], [0.9] * 3)])
    bad["note"] = pd.Series(["ok"] * 3 + [object()] * 3, dtype=object).to_numpy()

    with pytest.raises((pa.ArrowException, TypeError, ValueError)):
        append_scores(history, bad)

    pd.testing.assert_frame_equal(read_history(history), before)
    assert sorted(p.name for p in history.iterdir()) == ["as_of=2024-01-01"], "no partial or temporary folders"


def test_previous_scores_is_the_latest_run_strictly_before(tmp_path: Path):
    history = tmp_path / "history"
    assert latest_before(read_history(history), "2024-03-01").empty
    for as_of in ("2024-01-01", "2024-02-01", "2024-03-01"):
        append_scores(history, _run(as_of, [1, 2, 3], [0.1, 0.2, 0.3]))

    assert latest_before(read_history(history), "2024-03-01")["as_of"].unique().tolist() == [pd.Timestamp("2024-02-01")]
    assert latest_before(read_history(history), "2024-02-15")["as_of"].unique().tolist() == [pd.Timestamp("2024-02-01")]
    assert latest_before(read_history(history), pd.Timestamp("2024-01-01")).empty


def test_an_account_the_previous_run_did_not_score_is_compared_with_its_own_last_run(tmp_path: Path):
    """An account between two terms on the previous date (or back after it left) had no previous row."""
    history = tmp_path / "history"
    append_scores(history, _run("2024-01-01", [90, 80, 70], [0.1, 0.2, 0.3]))
    append_scores(history, _run("2024-02-01", [85, 75], [0.1, 0.2], accounts=("A", "B")))
    append_scores(history, _run("2024-03-01", [50, 50, 50], [0.5, 0.5, 0.5]))

    previous = latest_before(read_history(history), "2024-03-01").set_index("account_id")

    assert previous["as_of"].to_dict() == {"C": pd.Timestamp("2024-01-01"), "A": pd.Timestamp("2024-02-01"),
                                           "B": pd.Timestamp("2024-02-01")}  # fmt: skip
    assert previous["health_score"].to_dict() == {"C": 70, "A": 85, "B": 75}


def test_trends_use_the_run_nearest_to_each_span_back(tmp_path: Path):
    history = tmp_path / "history"
    append_scores(history, _run("2024-01-01", [90, 80, 70], [0.05, 0.10, 0.20]))  # reference for 90 d
    append_scores(history, _run("2024-01-10", [10, 10, 10], [0.9, 0.9, 0.9]))  # too recent for 90 d
    append_scores(history, _run("2024-03-01", [85, 60, 70], [0.10, 0.30, 0.20], accounts=("A", "B", "D")))
    append_scores(history, _run("2024-03-20", [1, 1, 1], [0.99, 0.99, 0.99]))  # too recent for 30 d
    current = _run("2024-04-01", [80, 50, 65], [0.15, 0.45, 0.25]).set_index(pd.Index([10, 11, 12]))
    append_scores(history, current)  # the current run in the history must not be its own reference

    change = trends(read_history(history), current, days=(30, 90))

    assert change.index.equals(current.index)
    np.testing.assert_allclose(change["health_score_change_30d"], [-5, -10, np.nan])  # C absent on 03-01
    np.testing.assert_allclose(change["churn_probability_change_30d"], [0.05, 0.15, np.nan])
    np.testing.assert_allclose(change["health_score_change_90d"], [-10, -30, -5])
    np.testing.assert_allclose(change["churn_probability_change_90d"], [0.10, 0.35, 0.05])


def test_trends_without_enough_history_are_missing_not_zero():
    current = _run("2024-04-01", [80, 50, 65], [0.15, 0.45, 0.25])
    recent = _run("2024-03-25", [1, 1, 1], [0.5, 0.5, 0.5])  # 23 days from Mar 2, beyond the 15-day tolerance
    too_old = _run("2023-09-01", [1, 1, 1], [0.5, 0.5, 0.5])  # 123 days from Jan 2, beyond 45 days

    for history in (recent, pd.concat([too_old, recent]), pd.DataFrame(columns=["account_id", "as_of"])):
        change = trends(history, current)
        assert change.columns.tolist() == [
            "health_score_change_30d",
            "churn_probability_change_30d",
            "health_score_change_90d",
            "churn_probability_change_90d",
        ]
        assert change.isna().all().all()


def test_monthly_runs_trend_against_the_previous_month_even_after_february():
    history = pd.concat([_run("2023-01-01", [90, 90, 90], [0.1] * 3), _run("2023-02-01", [70, 80, 90], [0.2] * 3)])
    current = _run("2023-03-01", [60, 85, 90], [0.3, 0.1, 0.2])  # 30 days back is Jan 30: Feb 1 is 2 days off

    change = trends(history, current, days=(30,))

    np.testing.assert_allclose(change["health_score_change_30d"], [-10, 5, 0])
    np.testing.assert_allclose(change["churn_probability_change_30d"], [0.1, -0.1, 0.0])


def test_trend_spans_are_configurable_and_ties_take_the_older_run():
    history = pd.concat(
        [_run("2024-03-04", [60], [0.1], accounts=("A",)), _run("2024-03-18", [90], [0.9], accounts=("A",))]
    )
    current = _run("2024-04-01", [70], [0.5], accounts=("A",))

    change = trends(history, current, days=(21, 7))

    # 21 days back is Mar 11, 7 days from both runs: the older one (Mar 4) is the reference
    assert change["health_score_change_21d"].iloc[0] == pytest.approx(10)
    # 7 days back is Mar 25: Mar 18 is 7 days off, beyond the 3.5-day tolerance
    assert np.isnan(change["health_score_change_7d"].iloc[0])
    with pytest.raises(ChurnError, match="positive numbers of days"):
        trends(history, current, days=(30, 0))


def test_each_account_takes_its_own_nearest_run():
    history = pd.concat(
        [
            _run("2024-02-28", [70, 60], [0.1, 0.1], accounts=("A", "B")),
            _run("2024-03-03", [50], [0.2], accounts=("C",)),
        ]
    )
    current = _run("2024-04-01", [80, 50, 65], [0.15, 0.45, 0.25])  # 30 days back is Mar 2

    change = trends(history, current, days=(30,))

    np.testing.assert_allclose(change["health_score_change_30d"], [10, -10, 15])


def test_scores_without_a_date_are_refused(tmp_path: Path):
    with pytest.raises(ChurnError, match="'as_of'"):
        append_scores(tmp_path, pd.DataFrame({"account_id": ["A"]}))
    with pytest.raises(ChurnError, match=r"1 row has no valid 'as_of' date"):
        append_scores(tmp_path, pd.DataFrame({"account_id": ["A", "B"], "as_of": ["2024-01-01", None]}))


@pytest.mark.parametrize("damage", [b"junk", b""])
def test_a_damaged_partition_is_a_clear_error_naming_it(tmp_path: Path, damage: bytes):
    """A partition cut short or overwritten (a disk full, a hand edit) used to stop `churn score` with an
    internal ArrowInvalid error, naming neither the file nor what to do."""
    history = tmp_path / "history"
    append_scores(history, _run("2024-01-01", [80, 70, 60], [0.1, 0.2, 0.3]))
    (damaged,) = append_scores(history, _run("2024-02-01", [75, 72, 40], [0.1, 0.3, 0.6]))
    damaged.write_bytes(damage)
    for columns in (None, ["account_id"]):
        with pytest.raises(ChurnError, match=f"Score history partition {damaged} cannot be read") as err:
            read_history(history, columns=columns)
        assert "Move its folder as_of=2024-02-01 out of" in str(err.value)


def _book(as_of: str, ids: range, landed: str = "2020-01-01", prefix: str = "A") -> pd.DataFrame:
    """A run's rows for accounts `prefix`0001... that all landed on `landed`."""
    day = pd.Timestamp(as_of)
    return pd.DataFrame(
        {
            "account_id": [f"{prefix}{i:04d}" for i in ids],
            "as_of": day,
            "tenure_days": float((day - pd.Timestamp(landed)).days),
        }
    )


def test_another_book_is_told_from_the_same_book_by_ids_and_landing_days(tmp_path: Path) -> None:
    """Two books in one workdir were compared by their ids alone: one book's alerts were the other's news."""
    append_scores(tmp_path, _book("2025-11-01", range(100)))
    assert other_book(tmp_path, _book("2025-11-08", range(10, 130))) is None  # a week on: 10 left, 30 landed
    assert other_book(tmp_path, _book("2025-11-01", range(100))) is None  # a re-run of the date
    book = other_book(tmp_path, _book("2025-11-08", range(100), landed="2021-06-01"))  # alike ids, other days
    assert book is not None
    assert (book.as_of, book.earlier, book.now, book.same, book.alike) == ("2025-11-01", 100, 100, 0, 100)
    # ids of its own: its run of the same date would replace this book's partition; on another day it compares
    # nothing with this book's accounts
    assert other_book(tmp_path, _book("2025-11-01", range(100), prefix="US")) is not None
    assert other_book(tmp_path, _book("2025-11-08", range(100), prefix="US")) is None
    # a book with heavy churn scored again half a year later: 40 of 100 left, every one with its landing day
    assert other_book(tmp_path, _book("2026-05-01", range(60, 200))) is None
    assert other_book(tmp_path, _book("2025-11-08", range(15), landed="2021-06-01")) is None  # too few to tell
    # the same book scored again after two years of heavy churn: few accounts left, none with another landing
    assert other_book(tmp_path, _book("2027-11-01", range(70, 300))) is None
    assert other_book(tmp_path, _book("2027-11-01", range(70, 300), landed="2021-06-01")) is not None
    assert other_book(tmp_path, _book("2025-11-08", range(100)).drop(columns="tenure_days")) is None  # a table
