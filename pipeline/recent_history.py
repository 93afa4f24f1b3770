"""Read what scoring a date needs from the two big event tables, not their whole history.

A scoring run needs, of `logins` and `usage_events` (almost all of an event history's rows), the
rows of the longest trailing window before its first as_of and everything after it; what the
features take from older rows is a handful of per-account facts (the inventory below). So those
two tables are read from `start` on -- a filter on the time column, which DuckDB pushes into the
parquet scan (row groups outside it, and so files of a time-partitioned or time-sorted export,
are skipped by their min/max statistics) -- and validated on those rows; the older rows are
replaced by a few summary rows, chosen so that every feature of every date from
`start + horizon` on has exactly the value the whole history gives. Every other table is small
and read whole.

What the features of `logins` / `usage_events` read before the trailing windows (`features/families`):
- `days_since_last_login`, `days_since_last_use`: the latest day before as_of -> per account, the
  latest older row.
- `days_to_first_value`: the first use on or after the landing day (the earlier of `created_at`
  and the first term start) -> per account, the first older row on or after each of those two days.
- workflow completion / skip rates: a run (account, workflow_id) is judged from its first event,
  and complete when it reaches the highest step its process (the feature of a run's first event)
  reached on earlier days, over all accounts -> the older rows of every run that also has rows
  from `start` on, and per process one row of an older run that reached the process's highest step.
- the table's first day (`features/sql/timeline.py` `table_start_sql`: whether the table covers an
  account's life since it landed) -> the table's earliest older row, of whichever account.
- login gaps reach back 90 days at most, distinct users / features the trailing windows only:
  nothing older.
Summary rows sit on days before `start`, where no trailing window of a date from `start + horizon`
on reaches, so they change no windowed count.

The summary rows are computed from decomposable per-file summaries kept between runs in the
workdir (`pipeline/summary_cache.py`): a daily run scans only the files it has not seen before.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract import TABLES
from features.families.base import FamilyContext
from features.settings import FeatureSettings
from features.sql.dialect import DUCKDB
from pipeline.summary_cache import FILE, drop_entries, entry_kinds, read_numbered, summary_entries, typed_view
from pipeline.validation import SOURCE_ROW, canonical_select, keep_condition, value_checks
from pipeline.window_cache import WindowRows, attach, plan

RECENT_TABLES = ("logins", "usage_events")
"""The tables read from the window start on; the others are small and read whole."""


def read_start(as_of_dates: Iterable, settings: FeatureSettings) -> pd.Timestamp:
    """The first day the trailing windows of the earliest of these dates reach: where reading starts."""
    horizon = FamilyContext(settings, 0, {}).horizon
    return min(pd.Timestamp(d) for d in as_of_dates).normalize() - pd.Timedelta(days=horizon)


def time_sql(name: str, raw_type: str) -> str:
    """The table's time column in its canonical type (NULL where it is not a date)."""
    return TABLES[name].column(TABLES[name].time_column).cast_sql(raw_type)


def create_recent_views(
    con: duckdb.DuckDBPyConnection,
    name: str,
    files: list[Path],
    patterns: list[str],
    start: pd.Timestamp,
    window_cache: Path | None = None,
) -> WindowRows:
    """`__raw_<name>`: the rows dated from `start` on or without a usable date, each numbered
    (`SOURCE_ROW`) as in the whole files, kept in a temporary table (validation and the features read
    them several times; one scan of the files); `__whole_<name>`: every row, for the summaries.

    Files whose checked rows from `start` on are kept in `window_cache` (`pipeline/window_cache.py`)
    are not read here: their entries are attached, and the returned plan names them and their rows
    (`window_cache.cached_rows`)."""
    read_numbered(con, patterns).create_view(f"__whole_{name}")
    raw_type = dict(con.execute(f'SELECT column_name, column_type FROM (DESCRIBE "__whole_{name}")').fetchall())
    types = {column: kind for column, kind in raw_type.items() if column not in (FILE, "file_row_number")}
    counts = [pq.ParquetFile(f).metadata.num_rows for f in files]
    folder = window_cache / name if window_cache is not None else None
    checks = [condition for _, condition, _ in value_checks(TABLES[name], types)]
    rows = plan(folder, name, files, counts, start, "\n".join([canonical_select(name, types), *checks]))
    attach(con, rows)
    offsets = pa.table({FILE: [str(f) for f in files], "offset": [rows.offsets[f] for f in files]})
    con.register(f"__offsets_{name}", offsets)
    time = time_sql(name, raw_type[TABLES[name].time_column])
    if len(rows.pending) == len(files):
        source = f'"__whole_{name}"'
    elif rows.pending:
        source = typed_view(con, f"__read_{name}", list(rows.pending), types, types)
    else:
        source = f'(SELECT * FROM "__whole_{name}" WHERE false)'  # the columns only: no file is read
    con.execute(
        f'CREATE TEMP TABLE "__raw_{name}" AS SELECT w.* EXCLUDE ({FILE}, file_row_number), '
        f'w.file_row_number + o."offset" + 1 AS "{SOURCE_ROW}" '
        f'FROM {source} w JOIN "__offsets_{name}" o ON o.{FILE} = w.{FILE} '
        f"WHERE ({time}) >= {DUCKDB.timestamp(start)} OR ({time}) IS NULL"
    )
    return rows


def create_summary(
    con: duckdb.DuckDBPyConnection,
    table: str,
    name: str,
    start: pd.Timestamp,
    recent: str,
    types: dict[str, str],
    files: list[Path],
    cache: Path | None,
) -> None:
    """Temporary `table`: the rows standing in for the rows of known accounts dated before `start`
    next to `recent` (those from the start on): canonical columns, missing ones NULL (combine with
    UNION ALL BY NAME). The caller makes sure no kept row is excluded for its date before `start`.

    The summaries of the files (`ENTRY_COLUMNS`) are read from `cache` where it holds them, computed
    (one scan of the files that need it) and stored there otherwise."""
    entries = summary_entries(con, name, types, files, cache)
    try:
        for kind, source in entries.items():
            kept = keep_condition(name, start, "accounts", column="day" if kind == "days" else "ts")
            # the per-day entries are read once (`_summary_sql`): a view, not a copy of millions of rows
            table_or_view = "VIEW" if kind == "days" else "TABLE"
            con.execute(f'CREATE TEMP {table_or_view} "{table}_{kind}" AS SELECT * FROM ({source}) e WHERE {kept}')
        steps = f"{table}_steps" if "steps" in entries else None
        con.execute(f'CREATE TEMP TABLE "{table}" AS {_summary_sql(name, f"{table}_days", recent, steps)}')
    finally:
        for kind in entry_kinds(name, types):
            con.execute(f'DROP {"VIEW" if kind == "days" else "TABLE"} IF EXISTS "{table}_{kind}"')
        drop_entries(con, name)


# ------------------------------------------------------------------------------ summary rows
def _summary_sql(name: str, days: str, recent: str, older_steps: str | None) -> str:
    """The summary rows from the kept older entries: `days` (account, day, first_ts, last_ts) and
    `older_steps` (the workflow step rows)."""
    latest = f'SELECT account_id, max(last_ts) AS ts FROM "{days}" GROUP BY account_id'
    # the table's first row: one more row of an account on a day it has rows, so no other fact moves
    first = f'SELECT account_id, first_ts AS ts FROM "{days}" ORDER BY first_ts, account_id LIMIT 1'
    if name == "logins":
        return f"({latest}) UNION ALL ({first})"
    day = DUCKDB.day_of
    # A landing day is a midnight: a day's rows are all on or after it, or all before it.
    first_uses = f"""
        WITH landing AS (
            SELECT a.account_id, {day("a.created_at")} AS created_day, {day("f.first_start")} AS first_term_day
            FROM accounts a LEFT JOIN (
                SELECT account_id, min(start_date) AS first_start FROM subscriptions
                WHERE start_date IS NOT NULL AND end_date IS NOT NULL GROUP BY account_id
            ) f ON f.account_id = a.account_id
        ), firsts AS (
            SELECT o.account_id, max(o.last_ts) AS latest,
                   min(CASE WHEN o.day >= l.created_day THEN o.first_ts END) AS since_created,
                   min(CASE WHEN o.day >= l.first_term_day THEN o.first_ts END) AS since_first_term
            FROM "{days}" o JOIN landing l ON l.account_id = o.account_id
            GROUP BY o.account_id
        )
        SELECT account_id, ts FROM firsts
        UNPIVOT (ts FOR kind IN (latest, since_created, since_first_term))
        UNION ALL ({first})
    """
    if older_steps is None:
        return first_uses
    same_run = "r.account_id = o.account_id AND r.workflow_id = o.workflow_id"
    workflows = f"""
        WITH running AS (
            SELECT DISTINCT account_id, workflow_id FROM ({recent}) n WHERE workflow_id IS NOT NULL AND step IS NOT NULL
        ), ended AS (
            SELECT account_id, workflow_id, min(ts) AS started, max(step) AS top_step,
                   first(feature ORDER BY ts, step, feature NULLS LAST) AS process
            FROM "{older_steps}" o WHERE NOT EXISTS (SELECT 1 FROM running r WHERE {same_run})
            GROUP BY account_id, workflow_id
        ), highest AS (
            SELECT *, row_number() OVER (PARTITION BY process ORDER BY top_step DESC, account_id, workflow_id) AS rank
            FROM ended WHERE process IS NOT NULL
        )
        SELECT o.* FROM "{older_steps}" o WHERE EXISTS (SELECT 1 FROM running r WHERE {same_run})
        UNION ALL BY NAME
        SELECT account_id, workflow_id, started AS ts, process AS feature, top_step AS step FROM highest WHERE rank = 1
    """
    return f"SELECT * FROM ({first_uses}) f UNION ALL BY NAME SELECT * FROM ({workflows}) w"
