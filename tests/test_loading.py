"""Loading each format into canonical types, and the validation report on good data."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.build import build_features
from features.errors import DataContractError
from features.settings import FeatureSettings
from features.sql.dialect import DUCKDB, EPOCH_NANOS
from pipeline.loading import Dataset, load_dataset, utc_connection
from tests.feature_data import RANDOM_DATA_END, RANDOM_START, padded, random_tables
from tests.helpers import (
    FOLDER_MONTH,
    bad_csv_tables,
    gzipped,
    half_missing_terms,
    lookalike_tables,
    mixed_id_parts,
    partitioned_tables,
    report_lines,
    run_cli,
    tiny_tables,
    unread_parts,
    write_tables,
)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "folder"])
def test_every_format_loads_to_the_same_canonical_tables(tmp_path: Path, fmt: str) -> None:
    dataset = load_dataset(write_tables(tmp_path / fmt, tiny_tables(), fmt))
    reference = Dataset.from_frames(tiny_tables())
    assert set(dataset.event_tables) == {"usage_events", "logins", "support_tickets", "trainings"}
    pd.testing.assert_frame_equal(dataset.accounts, reference.accounts)
    pd.testing.assert_frame_equal(dataset.subscriptions, reference.subscriptions)
    logins = dataset.con.execute("SELECT * FROM logins ORDER BY ts").df()
    expected = reference.con.execute("SELECT * FROM logins ORDER BY ts").df()
    pd.testing.assert_frame_equal(logins, expected)


def test_types_are_coerced_ids_to_strings_and_timestamps_to_utc() -> None:
    tables = tiny_tables()
    tables["accounts"]["account_id"] = [1, 2, 3]
    tables["subscriptions"]["account_id"] = [1, 1, 2, 3]
    for name in ("logins", "usage_events", "support_tickets", "trainings"):
        tables[name]["account_id"] = tables[name]["account_id"].map({"A": 1, "B": 2, "C": 3})
    dataset = Dataset.from_frames(tables)
    assert dataset.accounts["account_id"].tolist() == ["1", "2", "3"]
    logins = dataset.con.execute("SELECT account_id, ts FROM logins ORDER BY ts").fetchall()
    # '2023-03-02T10:00:00+02:00' is 08:00 UTC; naive timestamps are taken as UTC.
    assert logins[0][1] == pd.Timestamp("2023-03-01 09:00:00")
    assert logins[1][1] == pd.Timestamp("2023-03-02 08:00:00")
    assert logins[0][0] == "1"
    assert pd.api.types.is_datetime64_any_dtype(dataset.subscriptions["end_date"])
    assert dataset.subscriptions["end_date"].dt.tz is None


def test_optional_columns_are_filled_and_recorded_as_absent() -> None:
    dataset = Dataset.from_frames(tiny_tables())
    usage = dataset.con.execute("SELECT quantity, step, user_id FROM usage_events").fetchall()
    assert {row[0] for row in usage} == {1.0}  # quantity defaults to 1
    assert {row[1] for row in usage} == {None}
    trainings = dataset.con.execute("SELECT completed FROM trainings").fetchall()
    assert trainings == [(True,)]  # completed defaults to true
    assert "quantity" not in dataset.present_columns["usage_events"]
    priorities = dataset.con.execute("SELECT priority FROM support_tickets ORDER BY ticket_id").fetchall()
    assert priorities == [("high",), ("low",)]  # enumerations are case-blind


def test_missing_event_tables_are_absent_not_empty() -> None:
    tables = tiny_tables()
    del tables["usage_events"], tables["trainings"]
    dataset = Dataset.from_frames(tables)
    assert dataset.event_tables == ("logins", "support_tickets")
    assert "usage_events" not in dataset.report.tables


def test_report_counts_term_outcomes_with_the_spec_rule() -> None:
    report = Dataset.from_frames(tiny_tables()).report
    # Data end = latest event (2024-06-30). A's first term renews, B churns, A's and C's running terms are censored.
    assert report.data_end == pd.Timestamp("2024-06-30")
    assert (report.accounts, report.terms) == (3, 4)
    assert (report.renewals, report.churns, report.censored) == (1, 1, 2)
    assert report.tables["logins"].rows == 5
    assert report.warnings == []


def test_a_term_starting_after_the_latest_event_does_not_move_the_data_end() -> None:
    """SPEC: the data ends at the latest event. A renewal booked ahead must not make B's undecided term a churn."""
    tables = tiny_tables()
    tables["subscriptions"].loc[2, "end_date"] = "2024-06-15"  # B's term: E + 30 days is after the latest event
    booked = {"account_id": "C", "start_date": "2024-09-01", "end_date": "2025-09-01", "arr": 50000.0, "seats": 100}
    tables["subscriptions"] = pd.concat([tables["subscriptions"], pd.DataFrame([booked])], ignore_index=True)
    report = Dataset.from_frames(tables).report
    assert (report.data_end, report.data_end_source) == (pd.Timestamp("2024-06-30"), "latest event")
    assert (report.renewals, report.churns, report.censored) == (1, 0, 4)


def test_grace_days_decide_whether_a_late_renewal_counts() -> None:
    tables = tiny_tables()
    tables["subscriptions"].loc[1, "start_date"] = "2024-01-21"  # 20 days after A's first term ended
    assert Dataset.from_frames(tables, grace_days=30).report.renewals == 1
    assert Dataset.from_frames(tables, grace_days=10).report.renewals == 0


def test_explicit_data_end_censors_and_excludes_later_rows() -> None:
    dataset = Dataset.from_frames(tiny_tables(), data_end="2024-01-15")
    report = dataset.report
    assert report.data_end == pd.Timestamp("2024-01-15") and report.data_end_source == "--data-end"
    # A's first term (ends 2024-01-01) + 30 days is after the data end: censored now.
    assert report.renewals == 0
    late = [w for w in report.warnings if w.problem == "rows dated after the data end 2024-01-15"]
    assert [(w.table, w.column, w.count) for w in late] == [("logins", "ts", 1)]
    assert late[0].excluded and "'2024-06-30 00:00:00'" in late[0].examples
    assert report.tables["logins"].excluded == 1
    assert dataset.con.execute("SELECT max(ts) FROM logins").fetchone()[0] < pd.Timestamp("2024-01-16")


def test_an_account_whose_terms_all_start_after_the_data_end_is_not_called_a_prospect() -> None:
    """Its terms exist but are excluded as future-dated (SPEC): it was said "without a term in subscriptions ->
    (prospects? their terms may be missing from the export)"."""
    tables = tiny_tables()
    tables["accounts"] = pd.concat(
        [tables["accounts"], pd.DataFrame({"account_id": ["D", "E"], "created_at": ["2023-09-01"] * 2})]
    )
    later = {"account_id": ["D"], "start_date": ["2024-03-01"], "end_date": ["2025-03-01"]}
    tables["subscriptions"] = pd.concat([tables["subscriptions"], pd.DataFrame(later)])
    found = {
        (w.table, w.column, w.problem): w for w in Dataset.from_frames(tables, data_end="2024-01-15").report.warnings
    }

    future = found[("accounts", "account_id", "accounts whose every term starts after the data end 2024-01-15")]
    assert (future.count, future.examples) == (1, "rows 4: 'D'")
    assert future.action.startswith("kept: not labelled or scored until a term starts (their terms are excluded as")
    never = found[("accounts", "account_id", "accounts without a term in subscriptions")]
    assert (never.count, never.examples) == (1, "rows 5: 'E'")


def test_suspicious_rows_are_counted_with_examples_and_unknown_accounts_excluded() -> None:
    tables = tiny_tables()
    tables["logins"] = pd.concat(
        [tables["logins"], pd.DataFrame({"account_id": ["ZZ", "ZZ", "A"], "ts": ["2023-05-01"] * 2 + ["2022-06-01"]})]
    )
    tables["support_tickets"].loc[1, "ticket_id"] = "T1"
    tables["support_tickets"].loc[0, "closed_at"] = "2023-04-01"
    tables["subscriptions"].loc[3, "start_date"] = "2023-01-15"  # C's term starts before its created_at: fine
    tables["subscriptions"] = pd.concat(
        [
            tables["subscriptions"],
            pd.DataFrame({"account_id": ["B"], "start_date": ["2023-06-01"], "end_date": ["2024-06-01"]}),
        ]
    )
    dataset = Dataset.from_frames(tables)
    found = {(w.table, w.column, w.problem): w for w in dataset.report.warnings}
    unknown = found[("logins", "account_id", "rows for accounts not in accounts")]
    assert unknown.count == 2 and "rows 6, 7" in unknown.examples and "'ZZ'" in unknown.examples
    early = found[("logins", "ts", "rows dated before the account's created_at")]
    assert early.count == 1 and "row" in early.examples
    assert found[("support_tickets", "ticket_id", "rows share a duplicated ticket_id")].count == 2
    assert found[("support_tickets", "closed_at", "tickets closed before they were opened")].count == 1
    assert found[("subscriptions", "start_date", "terms overlapping another term of the same account")].count == 2
    assert dataset.report.warning_count("logins") == 3
    # Rows of unknown accounts are left out of the canonical views; the other suspicious rows stay.
    assert unknown.excluded and not early.excluded
    assert dataset.con.execute("SELECT count(*) FROM logins").fetchone()[0] == 6
    assert dataset.con.execute("SELECT count(*) FROM logins WHERE account_id = 'ZZ'").fetchone()[0] == 0


def test_a_term_given_twice_is_said_once_and_counted_as_one_term() -> None:
    """A subscriptions row repeated in every column is one term for the labels and the features: validation says
    so (it called the copies overlapping add-on terms and counted them as two terms each)."""
    tables = tiny_tables()
    tables["subscriptions"] = pd.concat([tables["subscriptions"], tables["subscriptions"].iloc[[0, 2]]])
    report = Dataset.from_frames(tables).report
    found = {(w.table, w.problem): w for w in report.warnings}
    repeated = found[("subscriptions", "rows repeating an earlier row in every column")]
    assert repeated.count == 2 and "rows 5, 6" in repeated.examples and repeated.action.startswith("kept once")
    assert ("subscriptions", "terms overlapping another term of the same account") not in found
    assert (report.terms, report.renewals, report.churns) == (4, 1, 1)


def test_churn_validate_counts_event_rows_repeated_exactly_where_other_commands_skip_the_check(
    tmp_path: Path, capsys
) -> None:
    """The check groups every row of the big event tables (~1 s per 10M events): `churn validate` makes it,
    for its report; the other commands, which do not print these warnings, do not."""
    data = write_tables(tmp_path / "data", lookalike_tables(), "csv")
    code, text = run_cli(["validate", "--data", str(data)], capsys)
    assert code == 0 and "usage_events.ts: 2 rows repeating an earlier row in every column (rows 5: " in text, text
    assert "repeating" not in " ".join(str(w) for w in load_dataset(data).report.warnings)


def test_unknown_ids_that_match_an_account_but_for_leading_zeros_or_case_are_pointed_out() -> None:
    """An export that pads its ids ('007') or writes them in another case lost its rows as unknown accounts
    with nothing to say why; they stay excluded (they may be other accounts), and the warning says what matches."""
    dataset = Dataset.from_frames(lookalike_tables())
    (unknown,) = [w for w in dataset.report.warnings if w.problem == "rows for accounts not in accounts"]
    assert (unknown.table, unknown.count, unknown.examples) == ("logins", 4, "rows 1, 3, 4: '007', 'ZZ', 'X9'")
    assert unknown.action.endswith(
        "; 3 of them would match an account's id but for leading zeros, a '.0' or letter case (row 1: '007', accounts "
        "has '7'): write the ids alike in every table"
    )
    assert dataset.con.execute("SELECT count(*) FROM logins").fetchone()[0] == 1
    tables = tiny_tables()
    tables["logins"].loc[0, "account_id"] = "nobody"
    (plain,) = Dataset.from_frames(tables).report.exclusions
    assert plain.action == "excluded: no account to attach them to (no features, scores or alerts)"


def test_priorities_training_kinds_and_accounts_the_features_cannot_use_are_counted_and_kept() -> None:
    """A priority of no known meaning ('Major') counted as neither high nor urgent, and a 'Certified' training
    as no certification, without a word: the high-priority share and certifications read low. An account
    without a term is never scored, a CSAT survey exported without its kind made every account a detractor, and
    an event written twice counted twice: none was said."""
    dataset = Dataset.from_frames(lookalike_tables(), repeats=True)
    found = {(w.table, w.column): w for w in dataset.report.warnings}
    priority, kind = found[("support_tickets", "priority")], found[("trainings", "kind")]
    assert str(priority) == (
        "support_tickets.priority: 1 ticket with a priority other than low/normal/high/urgent (or critical, blocker, "
        "highest, p0, p1, p2, medium, moderate, p3, lowest, p4, p5) (rows 1: 'major') -> "
        "kept: counted as tickets with a priority, neither high nor urgent"
    )
    assert str(kind) == (
        "trainings.kind: 1 training with a kind other than webinar/course/certification (rows 1: 'certified') -> "
        "kept: counted as trainings, not certifications"
    )
    assert not priority.excluded and dataset.con.execute("SELECT count(*) FROM support_tickets").fetchone()[0] == 2
    assert str(found[("usage_events", "ts")]) == (
        "usage_events.ts: 2 rows repeating an earlier row in every column (rows 5: '2023-03-01 00:00:00') -> kept: "
        "each counts as an event (an export that wrote rows twice doubles the activity they show)"
    )
    assert str(found[("accounts", "account_id")]) == (
        "accounts.account_id: 1 account without a term in subscriptions (rows 4: '10') -> kept: never labelled or "
        "scored (prospects? their terms may be missing from the export)"
    )
    assert str(found[("surveys", "score")]) == (
        "surveys.score: 20 NPS answers (0-10), none above 5 (rows 1, 2, 3: '1.0', '2.0', '3.0') -> kept: read as "
        "NPS, so every answer is a detractor; if they are CSAT scores (1-5), say so in a kind column (csat)"
    )
    tables = lookalike_tables()
    for changed in (tables["surveys"].iloc[1:], tables["surveys"].assign(score=[1, 2, 3, 4, 9] * 4)):
        tables["surveys"] = changed  # 19 answers, or one above 5: NPS as far as anyone can tell
        assert ("surveys", "score") not in {(w.table, w.column) for w in Dataset.from_frames(tables).report.warnings}
    tiny = Dataset.from_frames(tiny_tables())  # 'High' and 'low', 'webinar', every account with a term
    assert {(w.table, w.column) for w in tiny.report.warnings}.isdisjoint(found)


def test_a_contract_column_only_in_folder_names_is_named_not_lost(tmp_path: Path) -> None:
    """`partitionBy("account_id")` said "required column is missing (columns found: ts, user_id)", and a
    `partitionBy("kind")` lost the kinds without a word: neither engine reads values from folder names."""
    with pytest.raises(DataContractError) as raised:
        load_dataset(partitioned_tables(tmp_path / "data"))
    assert str(raised.value).splitlines()[1:] == [
        f"  - {table}.{column}: the column is in the names of the table's folders ({column}=...), not in its files; "
        f"churn reads no value from a folder name: write {column} into the parquet files (Spark: do not partitionBy "
        "it)"
        for table, column in (("logins", "account_id"), ("trainings", "kind"))
    ]


def test_a_column_outside_the_contract_only_in_folder_names_is_named_in_the_report(tmp_path: Path) -> None:
    """Usage events partitioned by a month (`partitionBy("month")`) loaded every row without a word that the
    month, in the folder names only, is not read, while a contract column there is an error."""
    dataset = load_dataset(partitioned_tables(tmp_path / "data", {"usage_events": "month"}))
    assert dataset.report.tables["usage_events"].rows == len(tiny_tables()["usage_events"])
    assert [line for line in report_lines(dataset) if "folder" in line] == [FOLDER_MONTH]
    assert not [
        line for line in report_lines(load_dataset(write_tables(tmp_path / "flat", tiny_tables()))) if "folder" in line
    ]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_empty_event_table_loads_with_zero_rows(tmp_path: Path, fmt: str) -> None:
    """A table with its header and no rows is valid: counted as 0 rows, never a crash (DuckDB's
    count_if over no rows is NULL; the fuzz test found it)."""
    tables = tiny_tables()
    tables["trainings"] = tables["trainings"].iloc[0:0]
    dataset = load_dataset(write_tables(tmp_path / fmt, tables, fmt))
    stats = dataset.report.tables["trainings"]
    assert (stats.rows, stats.excluded, stats.first, stats.last) == (0, 0, None, None)
    assert dataset.report.tables["logins"].rows == len(tables["logins"])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_whitespace_around_values_is_trimmed_alike_whatever_the_engine_s_own_trim(tmp_path: Path, fmt: str) -> None:
    """Exports leave whitespace around values: Unicode spaces (no-break, ideographic...) are trimmed around
    ids, codes and text as DuckDB's trim does, and every whitespace (tabs, line breaks too) around dates,
    numbers and booleans (DuckDB's casts refused ' true', no-break spaces around numbers and any blank
    around a date; dates are also written with offsets, with a space before '+0200' or '-01:30' that
    DuckDB's cast refused): the padded history builds exactly the features of the clean one. A tab around
    an id is kept (on Spark too): the row names no known account and is reported so."""
    tables = random_tables(5)
    as_of = RANDOM_START + pd.Timedelta(days=400)
    clean, messy = (
        load_dataset(write_tables(tmp_path / name, t, fmt), data_end=RANDOM_DATA_END)
        for name, t in (("clean", tables), ("padded", padded(tables)))
    )
    assert [w for w in messy.report.warnings if w.excluded] == []
    assert {name: (t.rows, t.excluded, t.first, t.last) for name, t in messy.report.tables.items()} == {
        name: (t.rows, t.excluded, t.first, t.last) for name, t in clean.report.tables.items()
    }
    pd.testing.assert_frame_equal(messy.accounts, clean.accounts)
    expected = build_features(clean, [as_of], FeatureSettings(top_features=3), 30)
    pd.testing.assert_frame_equal(build_features(messy, [as_of], FeatureSettings(top_features=3), 30), expected)
    tabbed = {**tables, "logins": tables["logins"].assign(account_id=lambda t: t["account_id"] + "\t")}
    unknown = load_dataset(write_tables(tmp_path / "tabbed", tabbed, fmt), data_end=RANDOM_DATA_END).report.exclusions
    assert [(w.table, w.column, w.count) for w in unknown] == [("logins", "account_id", len(tables["logins"]))]
    assert "\\t'" in unknown[0].examples


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_duplicate_and_missing_ids_are_judged_on_the_ids_loading_keeps(tmp_path: Path, fmt: str) -> None:
    """The checks trim ids as loading does (Unicode spaces, not tabs): 'A' and 'A\\t' are two accounts (the
    duplicate check once trimmed the tab and refused them), 'B' and a no-break-spaced 'B' one; a login whose
    id is a tab names no known account and is excluded, as loading reads it, not refused as missing."""
    tables = tiny_tables()
    tables["accounts"] = pd.concat(
        [tables["accounts"], tables["accounts"].iloc[[0]].assign(account_id="A\t")], ignore_index=True
    )
    tables["logins"].loc[0, "account_id"] = "\t"
    dataset = load_dataset(write_tables(tmp_path / "tab", tables, fmt))
    assert dataset.accounts["account_id"].tolist() == ["A", "A\t", "B", "C"]
    assert [(w.table, w.column, w.count, w.examples) for w in dataset.report.exclusions] == [
        ("logins", "account_id", 1, "rows 1: '\\t'")
    ]
    tables["accounts"].loc[3, "account_id"] = "\u00a0B "
    with pytest.raises(DataContractError) as raised:
        load_dataset(write_tables(tmp_path / "nbsp", tables, fmt))
    assert "accounts.account_id: 2 rows share a duplicated account_id (rows 2, 4: 'B', '\\xa0B ')" in str(raised.value)


def test_a_csv_row_or_header_that_does_not_fit_is_named_with_its_file(tmp_path: Path) -> None:
    """A row with fewer fields than the header fails naming its line (DuckDB once guessed the widest row was the
    header and reported its values as missing columns; Spark filled the field with null); a column named twice
    (DuckDB read the second as 'ts_1') and an empty file are errors; a header's padded names are trimmed and a
    trailing comma names a column by its position."""
    for case, (data, problem) in bad_csv_tables(tmp_path).items():
        with pytest.raises(DataContractError) as raised:
            load_dataset(data)
        message = str(raised.value)
        assert message.startswith(f"Table 'trainings': cannot read {data / 'trainings.csv'}: "), case
        assert problem in message, message
    with pytest.raises(DataContractError, match="line 3 has 2 fields where the header has 3: 'B,2023-01-11'"):
        load_dataset(tmp_path / "ragged")
    padded_header = "\ufeff account_id\u00a0,ts,\r\nA,2023-01-10,\r\n"
    (tmp_path / "ragged" / "trainings.csv").write_text(padded_header, encoding="utf-8")
    loaded = load_dataset(tmp_path / "ragged")
    assert loaded.present_columns["trainings"] == ("account_id", "ts", "column2")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "folder"])
def test_column_names_equal_but_for_case_are_refused_naming_both(tmp_path: Path, fmt: str) -> None:
    """An export with `TS` (another clock) beside `ts`: DuckDB reads names case-blind, so the CSV failed with its
    own 'duplicate column name' error, and in parquet the first of them was read as `ts`: `ts, TS` loaded, `TS, ts`
    was refused as if `ts` were missing and misspelt."""
    for order in (["ts", "TS"], ["TS", "ts"]):
        tables = tiny_tables()
        logins = tables["logins"]
        tables["logins"] = logins.assign(TS="2020-01-01")[["account_id", *order, "user_id"]]
        data = write_tables(tmp_path / fmt / order[0], tables, fmt)
        with pytest.raises(DataContractError) as raised:
            load_dataset(data)
        assert f"columns '{order[0]}' and '{order[1]}' differ only in letter case" in str(raised.value)
        assert str(raised.value).startswith("Table 'logins': cannot read "), str(raised.value)


def test_hidden_parts_of_a_folder_are_not_read_as_spark_does_not_read_them(tmp_path: Path) -> None:
    """A writer's `_temporary/` attempt and a `.name` file beside a folder's parts are not rows of the table
    (DuckDB once read them, counting the rows twice; Spark never did); a partition folder `_x=1/` is read."""
    tables = tiny_tables()
    data = write_tables(tmp_path / "data", tables, "folder")
    logins = data / "logins"
    (logins / "_temporary" / "0").mkdir(parents=True)
    for copy in (logins / "_temporary" / "0" / "part-0.parquet", logins / ".part-0.parquet"):
        copy.write_bytes((logins / "part-0.parquet").read_bytes())
    (logins / "_source=crm").mkdir()
    (logins / "part-1.parquet").rename(logins / "_source=crm" / "part-1.parquet")
    dataset = load_dataset(data)
    assert dataset.report.tables["logins"].rows == len(tables["logins"])
    assert dataset.con.execute("SELECT count(*) FROM logins").fetchone()[0] == len(tables["logins"])


def test_a_folder_holding_files_that_are_not_parquet_parts_is_refused_not_half_read(tmp_path: Path) -> None:
    """Only a folder's `*.parquet` files are read: a CSV part added beside them, a Hive part without a suffix or
    a `.PARQUET` one had its rows left out of every feature without a word (half the logins, here)."""
    data = unread_parts(tmp_path / "data")
    with pytest.raises(DataContractError) as raised:
        load_dataset(data)
    assert str(raised.value).startswith(
        f"Table 'logins': folder {data / 'logins'} holds 3 files churn does not read (000000_0, part-0.PARQUET, "
        "part-2.csv): a table folder is read as its parquet files named *.parquet, so those rows would be left out."
    )


def test_epoch_nanoseconds_convert_to_the_microsecond_duckdb_reads_nanosecond_parquet_as(tmp_path: Path) -> None:
    """The Spark loader reads nanosecond parquet timestamps as their epoch count (`EPOCH_NANOS`); the
    dialect's conversion rounds them as DuckDB reads the same file (halves away from zero)."""
    nanos = [1_700_000_000_123_456_500, 1_700_000_000_123_456_499, -500, -501, 499, 0]
    pa_table = pa.table({"ts": pa.array(nanos, pa.timestamp("ns", tz="UTC")), "n": pa.array(nanos, pa.int64())})
    pq.write_table(pa_table, tmp_path / "ns.parquet")
    con = utc_connection()
    converted = DUCKDB.contract_cast("timestamp", "n", EPOCH_NANOS)
    as_read = DUCKDB.contract_cast("timestamp", "ts", "TIMESTAMPTZ_NS")
    rows = con.execute(f"SELECT {converted}, {as_read} FROM read_parquet(?)", [str(tmp_path / "ns.parquet")]).fetchall()
    assert [a for a, _ in rows] == [b for _, b in rows]
    assert rows[0][0] == pd.Timestamp("2023-11-14 22:13:20.123457") and rows[2][0] == pd.Timestamp(
        "1969-12-31 23:59:59.999999"
    )


def test_numbers_in_text_are_plain_decimals_and_integers_plain_digits(tmp_path: Path) -> None:
    """A number in a CSV is a plain decimal (sign, digits, fraction, exponent) and an integer only digits,
    as on Spark: DuckDB's own cast once read '0x10' and '1_000' as numbers and rounded '.5' to a step of 1."""
    tables = tiny_tables()
    tables["subscriptions"]["arr"] = ["0x10", "1_000", " -1.5e3 ", ".5"]  # -1.5e3 is a number, out of range
    tables["usage_events"]["step"] = [".5", "1e3", " +7.0 "]  # 7.0: an integer, as pandas writes one with nulls
    with pytest.raises(DataContractError) as raised:
        load_dataset(write_tables(tmp_path / "data", tables, "csv"))
    message = str(raised.value)
    assert "subscriptions.arr: 2 values are not numbers (rows 1, 2: '0x10', '1_000')" in message
    assert "subscriptions.arr: 1 value is not a finite number >= 0 (rows 3: ' -1.5e3 ')" in message
    assert "usage_events.step: 2 values are not integers (rows 1, 2: '.5', '1e3')" in message


def test_a_boolean_column_of_numbers_holds_1_and_0_only_as_in_text(tmp_path: Path) -> None:
    """`regulated` stored as numbers: 1 and 0 (and 1.0) are true and false, as '1' and '0' in text; 2, 0.5 and -1
    are not booleans (both engines' casts called them true; the text '2' was already refused)."""
    tables = tiny_tables()
    data = write_tables(tmp_path / "data", tables, "parquet")
    tables["accounts"].assign(regulated=[1.0, 0.0, 1.0]).to_parquet(data / "accounts.parquet", index=False)
    assert load_dataset(data).accounts["regulated"].tolist() == [True, False, True]
    tables["accounts"].assign(regulated=[2, -1, 1]).to_parquet(data / "accounts.parquet", index=False)
    with pytest.raises(
        DataContractError, match=r"accounts.regulated: 2 values are not booleans \(rows 1, 2: '2', '-1'\)"
    ):
        load_dataset(data)


def test_dates_in_text_are_iso_calendar_dates_on_both_engines(tmp_path: Path) -> None:
    """A date given as text is an ISO-8601 calendar date, with hours and minutes when it has a time: DuckDB's own
    cast once read '2023/03/01', '24:00' as the next day's midnight and 'epoch' as 1970 (Spark refused them), and
    Spark's reads '2023-03' and '2023-03-01T10' (DuckDB refused them); offsets and zone names are still read."""
    tables = tiny_tables()
    tables["logins"]["ts"] = ["2023/03/01", "2023-03-01T24:00:00", "epoch", "2023-03", "2023-03-01T10"]
    tables["usage_events"]["ts"] = ["2023-3-1 9:30", "2023-04-01T10:00:00 Europe/Paris", "2023-07-01T10:00:00+02"]
    with pytest.raises(DataContractError) as raised:
        load_dataset(write_tables(tmp_path / "data", tables, "csv"))
    message = str(raised.value)
    assert "logins.ts: 5 values are not dates (rows 1, 2, 3: '2023/03/01', '2023-03-01T24:00:00', 'epoch')" in message
    assert "usage_events" not in message
    del tables["logins"]
    usage = load_dataset(write_tables(tmp_path / "ok", tables, "csv")).con.execute("SELECT ts FROM usage_events")
    assert sorted(ts for (ts,) in usage.fetchall()) == [
        pd.Timestamp("2023-03-01 09:30"), pd.Timestamp("2023-04-01 08:00"), pd.Timestamp("2023-07-01 08:00")
    ]  # fmt: skip


def test_a_fraction_in_a_typed_integer_column_is_refused_as_in_text(tmp_path: Path) -> None:
    """A step stored as DOUBLE or DECIMAL is an integer where it is integral (2.0 is step 2), as in text; 1.5 is
    refused (DuckDB's cast rounded it to 2, Spark's truncates it to 1), as are NaN, inf and what no BIGINT holds."""
    tables = tiny_tables()
    data = write_tables(tmp_path / "data", {k: v for k, v in tables.items() if k != "usage_events"}, "parquet")
    usage = pa.Table.from_pandas(tables["usage_events"], preserve_index=False)
    steps = {
        "double": pa.array([2.0, 1.5, -3.0], pa.float64()),
        "decimal": pa.array([Decimal("2.0"), Decimal("1.5"), Decimal("-3.0")], pa.decimal128(4, 1)),
    }
    for kind, step in steps.items():
        pq.write_table(usage.append_column("step", step), data / "usage_events.parquet")
        with pytest.raises(DataContractError) as raised:
            load_dataset(data)
        assert "usage_events.step: 1 value is not an integer (rows 2: '1.5')" in str(raised.value), kind
        pq.write_table(usage.append_column("step", step.take([0, 2, 2])), data / "usage_events.parquet")
        assert load_dataset(data).con.execute("SELECT step FROM usage_events").fetchall() == [(2,), (-3,), (-3,)]
    odd = pa.array([float("nan"), float("inf"), 1e30], pa.float64())
    pq.write_table(usage.append_column("step", odd), data / "usage_events.parquet")
    with pytest.raises(DataContractError, match=r"usage_events.step: 3 values are not integers \(rows 1, 2, 3: "):
        load_dataset(data)


def test_an_offset_after_a_space_in_hours_only_or_as_z_is_read_as_spark_reads_it(tmp_path: Path) -> None:
    """Exports write an offset after a space in hours only ('10:00:00 -05', '... +00') or a 'Z' after a space;
    Spark reads them, DuckDB's cast refused them (every such date was 'not a date' on DuckDB only)."""
    tables = tiny_tables()
    tables["usage_events"]["ts"] = ["2023-03-01 09:30:00 -05", "2023-04-01 10:00:00.5 +00", "2023-07-01 10:00:00 Z"]
    usage = load_dataset(write_tables(tmp_path / "data", tables, "csv")).con.execute("SELECT ts FROM usage_events")
    assert sorted(ts for (ts,) in usage.fetchall()) == [
        pd.Timestamp("2023-03-01 14:30"), pd.Timestamp("2023-04-01 10:00:00.5"), pd.Timestamp("2023-07-01 10:00")
    ]  # fmt: skip


def test_a_gzipped_csv_export_loads_as_the_csv_it_holds(tmp_path: Path) -> None:
    """`NAME.csv.gz`, the usual compressed export, was refused ("decompress it"): both engines read gzip CSV."""
    plain = load_dataset(write_tables(tmp_path / "plain", tiny_tables()))
    packed = load_dataset(gzipped(write_tables(tmp_path / "packed", tiny_tables()), "accounts", "logins"))
    assert packed.sources["logins"].endswith("logins.csv.gz")
    pd.testing.assert_frame_equal(packed.accounts, plain.accounts)
    for name in plain.event_tables:
        query = f"SELECT * FROM {name} ORDER BY ALL"
        pd.testing.assert_frame_equal(packed.con.execute(query).df(), plain.con.execute(query).df())


def test_a_bad_row_of_a_gzipped_csv_is_named_as_in_the_plain_file(tmp_path: Path) -> None:
    for case, (data, problem) in bad_csv_tables(tmp_path).items():
        if case == "empty":  # gzip of nothing is an empty file all the same
            continue
        gzipped(data, "trainings")
        with pytest.raises(DataContractError) as raised:
            load_dataset(data)
        message = str(raised.value)
        assert message.startswith(f"Table 'trainings': cannot read {data / 'trainings.csv.gz'}: "), case
        assert problem in message, message


def test_a_file_named_gz_that_is_not_gzip_is_named(tmp_path: Path) -> None:
    data = write_tables(tmp_path / "data", tiny_tables())
    (data / "logins.csv").rename(data / "logins.csv.gz")
    with pytest.raises(DataContractError, match=r"Table 'logins': cannot read .*logins\.csv\.gz: not a readable gzip"):
        load_dataset(data)


def test_a_table_given_as_csv_and_as_gzipped_csv_is_ambiguous(tmp_path: Path) -> None:
    data = write_tables(tmp_path / "data", tiny_tables())
    with gzip.open(data / "logins.csv.gz", "wb") as packed:
        packed.write((data / "logins.csv").read_bytes())
    with pytest.raises(
        DataContractError, match=r"Table 'logins' is given more than once .*\(logins\.csv, logins\.csv\.gz\)"
    ):
        load_dataset(data)


def test_a_folder_table_is_listed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its files and the keys of its partition folders come from one listing (a folder of thousands of parts on
    a network filesystem was walked twice)."""
    data = write_tables(tmp_path / "data", tiny_tables(), "folder")
    listed: list[Path] = []
    walk = Path.rglob

    def counted(self: Path, pattern: str, **options: object):
        listed.append(self)
        return walk(self, pattern, **options)

    monkeypatch.setattr(Path, "rglob", counted)
    load_dataset(data)
    assert sorted(listed) == sorted(data / name for name in tiny_tables())


def test_ids_held_as_text_in_some_parts_and_as_floats_in_others_are_refused_with_the_fix(tmp_path: Path) -> None:
    """Both engines unite the parts' types as text, so 136.0 read as '136.0' and the part's rows were excluded
    as an unknown account's, with only a hint in the report."""
    data = mixed_id_parts(tmp_path / "data")
    with pytest.raises(DataContractError) as raised:
        load_dataset(data)
    assert str(raised.value) == (
        f"Table 'logins': column account_id is text in {data / 'logins' / 'part-0.parquet'} but floating-point "
        f"numbers in {data / 'logins' / 'part-1.parquet'}, which would read as text such as '136.0', not as the "
        "ids they are; write account_id with one type in every part (text, or integers)."
    )


def test_a_term_with_another_terms_dates_and_other_arr_is_said_as_an_add_on_whose_arr_is_summed() -> None:
    """Two rows of one account with the same dates (and plan) but another ARR are two terms by the contract (an
    add-on sold with the term: their ARR adds up), yet they may be a corrected row beside the one it corrects.
    Validation names that reading apart from other overlaps, so a user whose export re-issued a row sees it."""
    tables = tiny_tables()
    corrected = tables["subscriptions"].iloc[[2]].assign(arr=9500.0)
    tables["subscriptions"] = pd.concat([tables["subscriptions"], corrected], ignore_index=True)
    report = Dataset.from_frames(tables).report
    found = {(w.table, w.problem): w for w in report.warnings}
    twin = found[("subscriptions", "terms with the same dates as another term of the same account")]
    assert twin.count == 2 and "rows 3, 5" in twin.examples, twin.examples
    assert "ARR is summed" in twin.action and "corrects" in twin.action
    assert ("subscriptions", "terms overlapping another term of the same account") not in found
    assert (report.terms, report.renewals, report.churns) == (5, 1, 2)  # two terms, both ending unrenewed


def test_terms_told_apart_by_a_value_missing_on_one_side_are_still_said() -> None:
    """A twin whose ARR one row leaves empty, and a term with another's dates whose plan one row leaves empty: the
    equality of a value with a missing one is unknown in SQL, which made both checks skip such rows (said by
    neither)."""
    found = {(w.table, w.problem): w for w in Dataset.from_frames(half_missing_terms()).report.warnings}
    twins = found[("subscriptions", "terms with the same dates as another term of the same account")]
    assert twins.count == 2 and "rows 3, 5" in twins.examples, twins.examples
    overlaps = found[("subscriptions", "terms overlapping another term of the same account")]
    assert overlaps.count == 2 and "rows 4, 6" in overlaps.examples, overlaps.examples
