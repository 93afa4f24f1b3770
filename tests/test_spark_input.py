"""The Spark engine reads its input from any URI the cluster can read and checks it there: a
malformed table fails with DuckDB's message (table, column, problem, count, example rows), a
URI no filesystem of the cluster reads is named with its table.

The tables are tiny and the checks stop at the first failing step, so each case costs a few
small Spark jobs on the shared session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.build import build_features
from features.errors import DataContractError
from features.sql.engine import SparkEngine
from pipeline.loading import load_dataset
from pipeline.spark_loading import load_on_spark, register_tables
from tests.feature_data import RANDOM_DATA_END, RANDOM_SETTINGS, random_tables
from tests.helpers import (
    FOLDER_MONTH,
    assert_same_report,
    assert_same_table,
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

pytestmark = pytest.mark.spark


def malformed_tables() -> dict[str, pd.DataFrame]:
    """Tiny tables with a duplicated account, a negative ARR (typed parquet), dates that are not ones in both
    files of the logins folder (one Spark's own cast reads), a fractional step (DOUBLE: DuckDB's cast rounds,
    Spark's truncates), dates as CSAT scores and 0.5 as a boolean."""
    tables = tiny_tables()
    tables["accounts"] = pd.concat([tables["accounts"], tables["accounts"].iloc[[1]]], ignore_index=True)
    tables["subscriptions"].loc[2, "arr"] = -5.0
    logins = tables["logins"].astype({"ts": object})
    logins.loc[1, "ts"] = "2023-03"  # March 1 to Spark's own cast, not a date to DuckDB's
    logins.loc[3, "ts"] = "yesterday"
    tables["logins"] = logins
    tables["usage_events"]["step"] = [2.0, 1.5, None]
    tables["support_tickets"]["csat"] = [date(2024, 1, 5)] * 2  # a DATE: Spark's cast to a number failed the query
    tables["support_tickets"]["escalated"] = [0.5, 1.0]  # a boolean to both engines' casts
    return tables


def test_a_malformed_table_at_a_uri_fails_on_spark_with_the_duckdb_message(spark, tmp_path, capsys):
    data = write_tables(tmp_path / "bad", malformed_tables(), "folder")
    for part, name in (("part-0", "a b"), ("part-1", "a!b")):  # file order 'a b', 'a!b'; URL-encoded 'a!b', 'a%20b'
        (data / "logins" / f"{part}.parquet").rename(data / "logins" / f"{name}.parquet")
    messages = []
    for engine, source in (("duckdb", str(data)), ("spark", data.as_uri())):
        out = tmp_path / f"features_{engine}"
        code, text = run_cli(["features", "--data", source, "--out", f"{out}.parquet", "--engine", engine], capsys)
        assert code == 1, text
        assert not Path(f"{out}.parquet").exists()
        messages.append(text)
    assert messages[1] == messages[0]
    for problem in (
        "accounts.account_id: 2 rows share a duplicated account_id (rows 2, 4: 'B', 'B')",
        "subscriptions.arr: 1 value is not a finite number >= 0 (rows 3: '-5.0')",
        "logins.ts: 2 values are not dates (rows 2, 4: '2023-03', 'yesterday')",  # parts: rows 1-2 and 3-5
        "usage_events.step: 1 value is not an integer (rows 2: '1.5')",
        "support_tickets.csat: 2 values are not numbers (rows 1, 2: '2024-01-05', '2024-01-05')",
        "support_tickets.escalated: 1 value is not a boolean (rows 1: '0.5')",
    ):
        assert problem in messages[1]
    assert "Traceback" not in messages[1] and "org.apache" not in messages[1]


def test_a_uri_without_a_filesystem_on_the_cluster_names_the_table_and_the_uri(spark, capsys):
    code, text = run_cli(["validate", "--data", "nofs://bucket/export/", "--engine", "spark"], capsys)
    assert code == 1
    assert "Table 'accounts': cannot read nofs://bucket/export/accounts.parquet" in text
    assert 'No FileSystem for scheme "nofs"' in text and "hadoop-aws" in text
    assert "Traceback" not in text and "org.apache" not in text


def test_a_table_in_a_form_churn_does_not_read_is_refused_on_spark_as_on_duckdb(spark, tmp_path, capsys):
    data = write_tables(tmp_path / "data", tiny_tables())
    (data / "logins.csv").rename(data / "logins.csv.zst")
    messages = [
        run_cli(["validate", "--data", str(data), "--engine", engine], capsys) for engine in ("duckdb", "spark")
    ]
    assert messages[0][0] == messages[1][0] == 1
    assert messages[1][1] == messages[0][1]
    assert "Table 'logins' is not in" in messages[1][1] and "logins.csv.zst looks like it" in messages[1][1]


def test_nanosecond_parquet_timestamps_load_on_spark_to_duckdb_s_microseconds(spark, tmp_path):
    """pandas writes timestamps in nanoseconds, which Spark refused to read (PARQUET_TYPE_ILLEGAL): both
    engines now read them, zoned or naive, in a file or a folder of parts, to the same microsecond (DuckDB
    rounds halves away from zero, before 1970 too)."""
    tables = tiny_tables()
    nanos = pd.to_timedelta([500, -500, 1499, 999, -1], unit="ns")
    tables["logins"]["ts"] = (
        pd.to_datetime(tables["logins"]["ts"], utc=True, format="ISO8601").astype("datetime64[ns, UTC]") + nanos
    )
    tickets = tables["support_tickets"]
    opened = pd.to_datetime(tickets["opened_at"]).astype("datetime64[ns]")
    tickets["opened_at"] = opened + pd.to_timedelta([-1500, 2500], unit="ns")[: len(tickets)]
    tickets["closed_at"] = pd.Series([pd.Timestamp("1969-12-31 23:59:59.9999995"), pd.NaT][: len(tickets)])
    data = write_tables(tmp_path / "parts", {k: v for k, v in tables.items() if k != "support_tickets"}, "folder")
    tickets.to_parquet(data / "support_tickets.parquet", index=False)
    expected = load_dataset(data)
    got = load_on_spark(spark, str(data))
    assert_same_report(got.report, expected.report)
    for name, column in (("logins", "ts"), ("support_tickets", "opened_at"), ("support_tickets", "closed_at")):
        on_spark = got.frames[name].select("account_id", column).toPandas()
        on_duckdb = expected.con.execute(f"SELECT account_id, {column} FROM {name}").df()
        assert sorted(map(tuple, on_spark.astype(str).values)) == sorted(map(tuple, on_duckdb.astype(str).values))


def test_a_folder_whose_parts_differ_in_types_loads_on_spark_as_on_duckdb(spark, tmp_path):
    """Exports appended by different tools: parts of a folder differ in timestamp unit (pandas' nanoseconds
    beside microseconds), zone (zoned beside naive), number type (BIGINT beside DOUBLE), text beside numbers,
    and an optional column present in one part only. Spark once read one footer's unit for the whole folder
    and failed to merge the others (CANNOT_MERGE_SCHEMAS); both engines now read every part as DuckDB's
    union_by_name does, to the same rows (a part name with glob characters is only that file; hidden parts are
    not read)."""
    tables = tiny_tables()
    data = write_tables(tmp_path / "drift", {k: v for k, v in tables.items() if k not in ("logins", "usage_events")})
    logins = tables["logins"].assign(ts=pd.to_datetime(tables["logins"]["ts"], utc=True, format="ISO8601"))
    (data / "logins").mkdir()
    nanos = logins.iloc[:2].assign(ts=logins["ts"].iloc[:2] + pd.to_timedelta([1500, -500], unit="ns"))
    nanos.to_parquet(data / "logins" / "part-0.parquet", index=False)  # zoned, nanoseconds
    naive = logins.iloc[2:].assign(ts=logins["ts"].iloc[2:].dt.tz_localize(None).astype("datetime64[us]"))
    naive.to_parquet(data / "logins" / "part-1 [a]{b}*.parquet", index=False)  # naive, microseconds
    (data / "logins" / "_temporary" / "0").mkdir(parents=True)  # a writer's attempt: read by neither engine
    naive.to_parquet(data / "logins" / "_temporary" / "0" / "part-1.parquet", index=False)
    usage = tables["usage_events"]
    (data / "usage_events").mkdir()
    usage.iloc[:1].assign(quantity=[3], step=[1]).to_parquet(data / "usage_events" / "part-0.parquet", index=False)
    later = usage.iloc[1:].assign(quantity=["1.5", " 2 "], step=[2.0, 3.0], workflow_id=["w1", "w2"])
    later.to_parquet(data / "usage_events" / "part-1.parquet", index=False)
    expected = load_dataset(data)
    got = load_on_spark(spark, data.as_uri())
    assert_same_report(got.report, expected.report)
    assert got.report.tables["logins"].rows == 5 and got.report.tables["usage_events"].rows == 3
    for name in ("logins", "usage_events"):
        on_spark = got.frames[name].toPandas()
        on_duckdb = expected.con.execute(f"SELECT * FROM {name}").df()
        assert sorted(map(tuple, on_spark.astype(str).values)) == sorted(map(tuple, on_duckdb.astype(str).values))
    assert sorted(expected.con.execute("SELECT quantity, step, workflow_id FROM usage_events").fetchall()) == [
        (1.5, 2, "w1"),
        (2.0, 3, "w2"),
        (3.0, 1, None),
    ]


def test_a_csv_row_or_header_that_does_not_fit_fails_on_spark_as_on_duckdb(spark, tmp_path):
    """A row with fewer fields than the header (Spark filled it with null), a column named twice (Spark read
    'ts1' and 'ts2', so 'ts' was missing), an empty file and a file that is not UTF-8 (Spark read its bytes as
    U+FFFD) fail on Spark too, naming the table and the file; a ragged row is named by its line as DuckDB names
    it (Spark's error did not say which), also after a quoted field that spans lines or a blank line."""
    cases = bad_csv_tables(tmp_path)
    quoted = write_tables(tmp_path / "quoted", tiny_tables(), "csv")
    (quoted / "trainings.csv").write_text('account_id,ts,kind\nA,2023-01-10,"two\nlines"\nB,2023-01-11,x,y\n')
    cases["quoted"] = (quoted, "line 3 has 4 fields where the header has 3: 'B,2023-01-11,x,y'")
    for case, (data, problem) in cases.items():
        with pytest.raises(DataContractError) as raised:
            load_on_spark(spark, data.as_uri())
        message = str(raised.value)
        assert message.startswith(f"Table 'trainings': cannot read {data.as_uri()}/trainings.csv: "), message
        assert problem in message, message
        if case in ("ragged", "ragged_after_blank_line", "quoted"):
            with pytest.raises(DataContractError) as on_duckdb:
                load_dataset(data)
            assert message.split(": ", 1)[1] == str(on_duckdb.value).split(": ", 1)[1].replace(
                str(data / "trainings.csv"), f"{data.as_uri()}/trainings.csv"
            )


def test_agzipped_csv_loads_on_spark_as_on_duckdb(spark, tmp_path):
    """`NAME.csv.gz` reads on both engines to the same rows; a ragged row in it is named by its line on both
    (Spark's error does not say which: the driver reads the file, decompressed, to find it)."""
    data = gzipped(write_tables(tmp_path / "packed", tiny_tables()), "accounts", "logins")
    expected = load_dataset(data)
    got = load_on_spark(spark, data.as_uri())
    assert_same_report(got.report, expected.report)
    on_spark = got.frames["logins"].toPandas()
    on_duckdb = expected.con.execute("SELECT * FROM logins").df()
    assert sorted(map(tuple, on_spark.astype(str).values)) == sorted(map(tuple, on_duckdb.astype(str).values))
    data, problem = bad_csv_tables(tmp_path / "bad")["ragged_after_blank_line"]
    gzipped(data, "trainings")
    assert problem in refusal_on_both(spark, data, data / "trainings.csv.gz")


def test_ids_held_as_text_in_some_parts_and_as_floats_in_others_are_refused_on_spark_as_on_duckdb(spark, tmp_path):
    data = mixed_id_parts(tmp_path / "data")
    messages = []
    for load in (lambda: load_dataset(data), lambda: load_on_spark(spark, data.as_uri())):
        with pytest.raises(DataContractError) as raised:
            load()
        messages.append(str(raised.value))
    assert messages[1].replace(f"file:{data}", str(data)) == messages[0]  # Hadoop names a local file file:/...


def refusal_on_both(spark, data: Path, file: Path | None = None) -> str:
    """The message both engines refuse `data` with, asserted the same."""
    messages = []
    for load in (lambda: load_dataset(data), lambda: load_on_spark(spark, data.as_uri())):
        with pytest.raises(DataContractError) as raised:
            load()
        messages.append(str(raised.value))
    if file is not None:  # each engine names the file as it reads it
        messages[1] = messages[1].replace(file.as_uri(), str(file))
    assert messages[1] == messages[0]
    return messages[0]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_column_names_equal_but_for_case_are_refused_on_spark_as_on_duckdb(spark, tmp_path, fmt):
    """`ts` beside `TS`: Spark stopped on a CSV with "AMBIGUOUS_REFERENCE ... line 221 pos 567" (no table, no
    file) and on parquet with "COLUMN_ALREADY_EXISTS"; both engines now name the table, the file and the twins."""
    tables = tiny_tables()
    tables["logins"] = tables["logins"].assign(TS="2020-01-01")
    data = write_tables(tmp_path / "data", tables, fmt)
    message = refusal_on_both(spark, data, data / f"logins.{fmt}")
    assert "columns 'ts' and 'TS' differ only in letter case" in message


def test_a_data_folder_given_as_a_relative_path_loads_on_spark_as_on_duckdb(spark, tmp_path):
    """`churn score --engine spark --data data`, run in the folder holding `data/`, stopped with "Table
    'support_tickets': folder data/support_tickets holds no .parquet files": the listed parts (absolute) were cut
    at the length of the relative path, and a cut that began with `_` ("/srv/cs/data/support" + "_tickets/...")
    read as a hidden folder. A path relative to where the driver runs names the same table as the absolute one."""
    data = write_tables(tmp_path / "data", tiny_tables(), fmt="folder")
    here = spark.sparkContext._jvm.System.getProperty("user.dir")  # where the driver resolves relative paths
    expected = load_on_spark(spark, str(data))
    got = load_on_spark(spark, os.path.relpath(data, here))
    assert_same_report(got.report, expected.report)
    assert {name: table.rows for name, table in got.report.tables.items()} == {
        name: table.rows for name, table in expected.report.tables.items()
    }


def test_a_folder_holding_files_that_are_not_parquet_parts_is_refused_on_spark_as_on_duckdb(spark, tmp_path):
    data = unread_parts(tmp_path / "data")
    assert "holds 3 files churn does not read (000000_0, part-0.PARQUET" in refusal_on_both(
        spark, data, data / "logins"
    )


def test_lookalike_ids_unknown_codes_and_no_terms_left_are_reported_on_spark_as_on_duckdb(spark, tmp_path):
    """The hint on ids that match an account but for leading zeros or case, the warnings on ticket priorities
    and training kinds the features do not know, and the error when every term is excluded: one message."""
    data = write_tables(tmp_path / "lookalike", lookalike_tables(), "csv")
    assert_same_report(
        load_on_spark(spark, data.as_uri(), repeats=True).report, load_dataset(data, repeats=True).report
    )
    tables = tiny_tables()
    tables["subscriptions"]["account_id"] = ["a", "a", "b", "c"]
    data = write_tables(tmp_path / "no_terms", tables, "csv")
    assert "every term is excluded" in refusal_on_both(spark, data)


def test_terms_told_apart_by_a_value_missing_on_one_side_are_said_on_spark_as_on_duckdb(spark, tmp_path):
    data = write_tables(tmp_path / "half_missing", half_missing_terms(), "parquet")
    report = load_dataset(data).report
    assert len([w for w in report.warnings if w.table == "subscriptions"]) == 2  # the twin and the other plan
    assert_same_report(load_on_spark(spark, data.as_uri()).report, report)


def test_a_contract_column_only_in_folder_names_is_named_on_spark_as_on_duckdb(spark, tmp_path):
    data = partitioned_tables(tmp_path / "data")
    assert "logins.account_id: the column is in the names" in refusal_on_both(spark, data)


def test_a_column_outside_the_contract_only_in_folder_names_is_named_on_spark_as_on_duckdb(spark, tmp_path):
    data = partitioned_tables(tmp_path / "data", {"usage_events": "month"})
    duck, on_spark = load_dataset(data), load_on_spark(spark, data.as_uri())
    assert on_spark.report.folder_columns == duck.report.folder_columns == {"usage_events": ("month",)}
    assert [line for line in report_lines(on_spark) if "folder" in line] == [FOLDER_MONTH]


def test_whole_numbers_stored_as_floating_point_in_text_columns_read_as_integers(spark, tmp_path):
    """R writes every number as a double, pandas an integer column with gaps as one: account 2 is then 2.0 in
    one table and 2 in another. A whole number of a floating type in a text column (an id) reads as an
    integer on both engines, so the events stay their account's; they were all excluded as events of unknown
    accounts ('2.0')."""
    tables = tiny_tables()
    number = {"A": 1, "B": 2, "C": 3}
    for name, frame in tables.items():
        if "account_id" in frame:
            frame["account_id"] = (
                frame["account_id"].map(number).astype("float64" if name == "usage_events" else "int64")
            )
    tables["usage_events"]["feature"] = [1.0, 2.5, 3.0]  # whole ones as integers, the others as the number's text
    data = write_tables(tmp_path / "numbers", tables, "parquet")
    expected = load_dataset(data)
    got = load_on_spark(spark, data.as_uri())
    assert_same_report(got.report, expected.report)
    assert expected.report.warning_count("usage_events") == 0
    rows = [("1", "1"), ("2", "2.5"), ("3", "3")]
    assert sorted(expected.con.execute("SELECT account_id, feature FROM usage_events").fetchall()) == rows
    on_spark = got.frames["usage_events"].select("account_id", "feature").toPandas()
    assert sorted(map(tuple, on_spark.values)) == rows


def test_the_session_time_zone_shifts_no_timestamp_on_spark(spark, tmp_path):
    """A cluster's or the configuration's `spark.sql.session.timeZone` (here America/Santiago, whose clocks skip
    the midnight of 2024-09-08) once moved Spark's timestamps: zoned parquet (Asia/Kolkata), int96 (Spark and
    Hive exports), nanoseconds and text with an offset were read as wall clocks of the session's zone, and an
    event on the day without a midnight fell on no day of the feature windows. Every timestamp is now its UTC
    instant whatever the session's zone, as on DuckDB: the same rows, report and features. A zone name on a
    wall clock its zone repeats (autumn) is the later instant on both engines (Spark read the earlier), one it
    skips (spring) the instant an hour on."""
    as_of = pd.Timestamp("2024-09-10")
    tables = random_tables(3)
    data = tmp_path / "data"
    write_tables(data, {name: tables[name] for name in ("accounts", "subscriptions", "invoices", "surveys")}, "parquet")
    on_gap_day = pd.Timestamp("2024-09-08") + pd.to_timedelta([1, 30, 90, 600, 1200], "min")  # 00:01-20:00 UTC
    logins = pd.concat([tables["logins"], tables["logins"].head(5).assign(ts=on_gap_day)], ignore_index=True)
    logins.assign(ts=logins.ts.dt.tz_localize("UTC").dt.tz_convert("Asia/Kolkata")).to_parquet(
        data / "logins.parquet", index=False
    )
    trainings = pa.Table.from_pandas(tables["trainings"], preserve_index=False)
    pq.write_table(trainings, data / "trainings.parquet", use_deprecated_int96_timestamps=True)
    tickets = tables["support_tickets"]
    tickets.astype({"opened_at": "datetime64[ns]"}).to_parquet(data / "support_tickets.parquet", index=False)
    usage = tables["usage_events"].assign(ts=[_text(ts, i) for i, ts in enumerate(tables["usage_events"].ts)])
    repeated_and_skipped = ["2024-11-03 01:30:00 America/New_York", "2024-10-27 01:59:59 Europe/London"]
    repeated_and_skipped += ["2024-03-10 02:30:00 America/New_York", "2024-09-08 00:15:00 America/Santiago"]
    usage = pd.concat([usage, usage.head(4).assign(ts=repeated_and_skipped)], ignore_index=True)
    usage.to_csv(data / "usage_events.csv", index=False)
    touchpoints = tables["touchpoints"]
    touchpoints.assign(ts=touchpoints.ts.dt.tz_localize("UTC")).to_parquet(data / "touchpoints.parquet", index=False)
    expected = load_dataset(data, data_end=RANDOM_DATA_END)
    spark.conf.set("spark.sql.session.timeZone", "America/Santiago")
    try:
        got = load_on_spark(spark, data.as_uri(), data_end=RANDOM_DATA_END)
        register_tables(spark, got)
        on_spark = build_features(got, [as_of], RANDOM_SETTINGS, 30, engine=SparkEngine(spark))
        frames = {name: got.frames[name].toPandas() for name in got.frames}
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert_same_report(got.report, expected.report)
    for name, frame in frames.items():
        on_duckdb = expected.con.execute(f'SELECT * FROM "{name}"').df()
        assert sorted(map(tuple, frame.astype(str).values)) == sorted(map(tuple, on_duckdb.astype(str).values)), name
    assert_same_table(on_spark, build_features(expected, [as_of], RANDOM_SETTINGS, 30))


def _text(ts: pd.Timestamp, i: int) -> str:
    """The naive-UTC `ts` as text in one of the spellings exports write: with an offset (with or without a space
    before it, hours only, 'Z' after a space or after minutes), a zone name, or naive UTC."""
    local = ts.tz_localize("UTC")
    new_york = local.tz_convert("America/New_York")
    forms = [
        ts.isoformat(),
        local.tz_convert("Asia/Kolkata").isoformat(),
        local.tz_convert("Etc/GMT+5").strftime("%Y-%m-%d %H:%M:%S -05"),
        ts.strftime("%Y-%m-%d %H:%M:%S.%f +00"),
        ts.strftime("%Y-%m-%d %H:%M:%S Z"),
        ts.strftime("%Y-%m-%dT%H:%MZ") if ts == ts.floor("min") else ts.isoformat(),
        new_york.strftime("%Y-%m-%d %H:%M:%S America/New_York"),
    ]
    return forms[i % len(forms)]


def test_zone_names_in_any_case_read_on_spark_as_on_duckdb(spark, tmp_path):
    """DuckDB reads a zone name in any case ('utc', 'europe/paris'), Spark's cast only as the tz database
    spells it: the same file once failed only on Spark, its rows 'not a date'. Both engines now read the same
    instants (an autumn's repeated hour the later one on both)."""
    data = write_tables(tmp_path / "data", tiny_tables(), "csv")
    stamps = ["2023-01-10 10:00:00 utc", "2023-01-10 10:00:00 europe/paris", "2023-01-10 10:00 AMERICA/NEW_YORK"]
    stamps += ["2023-01-10 10:00:00 America/New_York", "2023-11-05 01:30:00 america/new_york", "2023-01-11 00:00 Utc"]
    stamps += ["2023-01-10 10:00:00 america/port-au-prince", "2023-01-10 10:00:00 etc/gmt+5"]
    pd.DataFrame({"account_id": "A", "ts": stamps, "kind": "webinar"}).to_csv(data / "trainings.csv", index=False)
    expected = load_dataset(data)
    got = load_on_spark(spark, data.as_uri())
    assert_same_report(got.report, expected.report)
    on_duckdb = expected.con.execute("SELECT ts FROM trainings ORDER BY ts").df().ts
    assert list(got.frames["trainings"].toPandas().ts.sort_values()) == list(on_duckdb)
    assert len(on_duckdb) == len(stamps), on_duckdb


def validate_on_spark_cli(data: Path) -> subprocess.CompletedProcess[str]:
    """`churn validate --engine spark` in a fresh process with churn's own log profile (no SPARK_CONF_DIR):
    the JVM's stderr is only visible from outside the process that started it."""
    environment = {key: value for key, value in os.environ.items() if key != "SPARK_CONF_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--no-progress", "validate", "--data", str(data), "--engine", "spark"],
        capture_output=True, text=True, check=False, env=environment, timeout=600,
    )  # fmt: skip


def test_a_csv_table_of_three_zoned_timestamp_columns_validates_on_spark_without_a_compiler_trace(spark_runs, tmp_path):
    """Parsing three text timestamps of one CSV table (invoices: issued, due, paid) makes a generated method over
    Java's 64 KB; Spark runs that plan without generated code and the results are right, but the compiler's error
    and the whole generated source (~290 lines) reached stderr of a run that succeeded."""
    tables = tiny_tables()
    tables["invoices"] = pd.DataFrame(
        {
            "account_id": ["A", "B"],
            "issued_at": ["2023-03-01T09:00:00+02:00", "2023-03-01 09:00 Europe/Paris"],
            "due_at": ["2023-03-31T09:00:00+02:00", "2023-03-31"],
            "paid_at": ["2023-03-20T09:00:00+02:00", None],
            "amount": [10.0, 20.0],
        }
    )
    data = write_tables(tmp_path / "data", tables, "csv")
    done = validate_on_spark_cli(data)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " ".join(report_lines(load_dataset(data))[0].split()) in " ".join(done.stdout.split())
    noise = [line for line in done.stderr.splitlines() if line.strip() and "Using incubator modules" not in line]
    assert noise == [], done.stderr[:2000]


def test_a_malformed_row_on_spark_is_one_clear_message_not_a_jvm_stack(spark_runs, tmp_path):
    """The executor and the scheduler logged a failed task's JVM stack (45 lines) on stderr before churn's own
    message; a local session's log profile keeps them quiet, so the message is what the user reads."""
    data = bad_csv_tables(tmp_path)["ragged"][0]
    done = validate_on_spark_cli(data)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "line 3 has 2 fields where the header has 3: 'B,2023-01-11'" in done.stdout + done.stderr
    assert "\tat org.apache.spark" not in done.stderr and "ERROR" not in done.stderr, done.stderr


NOT_PARQUET = "it does not end with parquet's marker PAR1: a file of another format, or one cut short"


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ("text", NOT_PARQUET),
        ("cut_short", NOT_PARQUET),
        ("tiny", NOT_PARQUET),
        ("damaged_footer", "its footer, the schema and row index at its end, is damaged"),
    ],
)
def test_a_file_that_is_not_parquet_is_refused_on_spark_as_on_duckdb(spark, tmp_path, broken, reason):
    """A CSV saved as `support_tickets.parquet` stopped Spark with parquet-mr's "is not a Parquet file. Expected
    magic number at tail, but found [44, 84, 49, 10]" (DuckDB: pyarrow's "magic bytes not found in footer"), a
    damaged footer with "can not read class org.apache.parquet.format.FileMetaData" (DuckDB: "Couldn't
    deserialize thrift: TProtocolException: Invalid data" and a line break); both engines now say the same."""
    data = write_tables(tmp_path / "data", tiny_tables(), "parquet")
    file = data / "logins.parquet"
    good = file.read_bytes()
    damaged = good[:8] + b"\x00" * (len(good) - 16) + good[-8:]
    text = b"account_id,ts\nA,2023-01-10\n"
    file.write_bytes({"text": text, "cut_short": good[:-20], "tiny": b"PAR1", "damaged_footer": damaged}[broken])
    message = refusal_on_both(spark, data, file)
    assert message == f"Table 'logins': cannot read {file}: not a readable parquet file ({reason})."


@pytest.mark.parametrize("fmt", ["parquet", "folder"])
def test_an_extra_column_named_metadata_reads_on_spark_as_on_duckdb(spark, tmp_path, fmt):
    """Spark numbers a parquet table's rows by its hidden `_metadata` column, which a data column of that name
    (an export tool's) hides: the table stopped Spark with "INVALID_EXTRACT_BASE_FIELD_TYPE: Can't extract a
    value from "_metadata"" while DuckDB read it, as an extra column (allowed, ignored)."""
    tables = tiny_tables()
    tables["logins"] = tables["logins"].assign(_metadata="exported by tool X")
    data = write_tables(tmp_path / "data", tables, fmt)
    expected = load_dataset(data)
    got = load_on_spark(spark, data.as_uri())
    assert_same_report(got.report, expected.report)
    on_duckdb = expected.con.execute("SELECT * FROM logins").df()
    on_spark = got.frames["logins"].toPandas()[list(on_duckdb.columns)]
    assert sorted(map(tuple, on_spark.astype(str).values)) == sorted(map(tuple, on_duckdb.astype(str).values))
