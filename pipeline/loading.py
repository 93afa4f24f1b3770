"""Load a data directory into DuckDB views with the canonical types of the data contract.

Event tables stay columnar: each is a DuckDB view over its parquet files (CSV is parsed once into
a DuckDB table), so tens of millions of events are never copied into pandas. Only the small
`accounts` and `subscriptions` tables are also kept as pandas frames.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.contract import EVENT_TABLES, TABLES, TableContract
from pipeline.errors import DataContractError
from pipeline.validation import ValidationReport, validate

Progress = Callable[[str, int, int], None]


@dataclass
class Dataset:
    """The input tables of one data directory, validated and typed.

    `con` holds one view per present table, named as the table, with every contract column
    (optional ones a file lacked are filled with their default); `present_columns` says which
    columns the data really had.
    """

    con: duckdb.DuckDBPyConnection
    accounts: pd.DataFrame
    subscriptions: pd.DataFrame
    event_tables: tuple[str, ...]
    present_columns: dict[str, tuple[str, ...]]
    data_end: pd.Timestamp
    report: ValidationReport
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_frames(
        cls,
        tables: Mapping[str, pd.DataFrame],
        data_end: str | pd.Timestamp | None = None,
        grace_days: int = 30,
    ) -> Dataset:
        """Build a dataset from in-memory tables (tests, notebooks, prepared extracts)."""
        con = _connect()
        sources: dict[str, str] = {}
        for name, frame in tables.items():
            if name not in TABLES:
                continue
            con.register(f"__frame_{name}", frame)
            con.execute(f'CREATE VIEW "__raw_{name}" AS SELECT * FROM "__frame_{name}"')
            sources[name] = f"<in-memory {name}>"
        return _finish(con, sources, data_end, grace_days)


def load_dataset(
    data_dir: str | Path,
    data_end: str | pd.Timestamp | None = None,
    grace_days: int = 30,
    progress: Progress | None = None,
) -> Dataset:
    """Read every contract table found in `data_dir` (parquet file, CSV file or parquet folder)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataContractError(f"Data directory {data_dir} does not exist or is not a directory.")
    con = _connect()
    sources: dict[str, str] = {}
    found = [(name, _locate(data_dir, name)) for name in TABLES]
    for done, (name, path) in enumerate(found, start=1):
        if progress:
            progress("reading tables", done, len(found))
        if path is None:
            continue
        _create_raw_view(con, name, path)
        sources[name] = str(path)
    return _finish(con, sources, data_end, grace_days)


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    return con


def _locate(data_dir: Path, name: str) -> Path | None:
    candidates = [p for p in (data_dir / f"{name}.parquet", data_dir / f"{name}.csv", data_dir / name) if p.exists()]
    if len(candidates) > 1:
        listed = ", ".join(p.name for p in candidates)
        raise DataContractError(f"Table '{name}' is given more than once in {data_dir} ({listed}); keep one.")
    return candidates[0] if candidates else None


def _create_raw_view(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> None:
    """Expose the file as `__raw_<name>`; CSV is read as text so bad values can be reported."""
    if path.is_dir():
        files = sorted(path.rglob("*.parquet"))
        if not files:
            raise DataContractError(f"Table '{name}': folder {path} holds no .parquet files.")
        source = f"read_parquet({[str(f) for f in files]!r}, union_by_name=true)"
    elif path.suffix == ".csv":
        source = f"read_csv('{_sql_path(path)}', all_varchar=true, header=true)"
    else:
        source = f"read_parquet('{_sql_path(path)}')"
    kind = "TABLE" if path.suffix == ".csv" else "VIEW"
    try:
        con.execute(f'CREATE {kind} "__raw_{name}" AS SELECT * FROM {source}')
        con.execute(f'SELECT * FROM "__raw_{name}" LIMIT 1').fetchall()
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise DataContractError(f"Table '{name}': cannot read {path}: {first_line}") from exc


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _finish(
    con: duckdb.DuckDBPyConnection,
    sources: dict[str, str],
    data_end: str | pd.Timestamp | None,
    grace_days: int,
) -> Dataset:
    """Validate the raw views, then define the canonical ones and collect the small tables."""
    raw_types = {
        name: {row[0]: row[1] for row in con.execute(f'DESCRIBE "__raw_{name}"').fetchall()} for name in sources
    }
    report = validate(con, raw_types, data_end, grace_days)  # raises DataContractError on fatal problems
    for name, types in raw_types.items():
        contract: TableContract = TABLES[name]
        select = ", ".join(c.select_sql(types.get(c.name)) for c in contract.columns)
        con.execute(f'CREATE VIEW "{name}" AS SELECT {select} FROM "__raw_{name}"')
    accounts = con.execute('SELECT * FROM "accounts" ORDER BY account_id').df()
    subscriptions = con.execute('SELECT * FROM "subscriptions" ORDER BY account_id, start_date').df()
    return Dataset(
        con=con,
        accounts=accounts,
        subscriptions=subscriptions,
        event_tables=tuple(t for t in EVENT_TABLES if t in sources),
        present_columns={name: tuple(types) for name, types in raw_types.items()},
        data_end=report.data_end,
        report=report,
        sources=sources,
    )
