"""No SQL is built from user-controlled text (issue 11, row 2): file names, folder names and values
from the data reach DuckDB as bound parameters or through its Python API, never as statement text."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.build import build_features
from features.errors import DataContractError
from features.settings import FeatureSettings
from pipeline.loading import Dataset, load_dataset
from tests.helpers import tiny_tables, write_tables

# With the old `read_parquet({files!r})`, Python's repr escaped the quote as \' -- which DuckDB does not
# read as an escape -- so this name closed the list, ran COPY and commented out the rest.
INJECTION = "z'], union_by_name=true); COPY (SELECT 42 AS pwned) TO $$pwned.csv$$; --\".parquet"
HOSTILE_NAMES = [
    INJECTION,
    'quote\'s "double".parquet',
    "semi;colon; DROP TABLE accounts;.parquet",
    "new\nline.parquet",
    "dollar $$ quoted $$.parquet",
    "star*.parquet",
    "question?.parquet",
    "class[ab].parquet",
]


def _split_into_parts(folder: Path, frame: pd.DataFrame, names: list[str]) -> None:
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        frame.iloc[[i % len(frame)]].to_parquet(folder / name, index=False)


def test_a_file_name_crafted_to_run_sql_is_just_a_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_tables(tmp_path / "data", {k: v for k, v in tiny_tables().items() if k != "logins"})
    logins = tiny_tables()["logins"]
    (data / "logins").mkdir()
    logins.iloc[:3].to_parquet(data / "logins" / "part-0.parquet", index=False)
    logins.iloc[3:].to_parquet(data / "logins" / INJECTION, index=False)
    logins.iloc[3:].to_parquet(data / "logins" / "z\\", index=False)  # what the injected statement would read
    monkeypatch.chdir(tmp_path)

    with pytest.raises(DataContractError, match=r"holds 1 file churn does not read \(z\\\)"):
        load_dataset(data)  # the decoy is a file of the folder that is not a parquet part: named, before any SQL
    (data / "logins" / "z\\").unlink()  # without it, an interpolated name would fail to read: an error, not rows
    dataset = load_dataset(data)

    assert not (tmp_path / "pwned.csv").exists() and not list(tmp_path.rglob("pwned*"))
    assert dataset.con.execute("SELECT count(*) FROM logins").fetchone()[0] == len(logins)


def test_hostile_part_names_and_folders_load_each_file_exactly_once(tmp_path: Path) -> None:
    root = tmp_path / 'it\'s "data"; $$ [x] *?\nfolder'
    tables = tiny_tables()
    write_tables(root, {k: v for k, v in tables.items() if k not in ("logins", "accounts")})
    tables["accounts"].to_csv(root / "accounts.csv", index=False)
    # Glob characters must not widen a name to its neighbours: "star*" would also match "starX".
    names = [*HOSTILE_NAMES, "starX.parquet", "questionZ.parquet", "classa.parquet"]
    logins = pd.concat([tables["logins"]] * 3, ignore_index=True).iloc[: len(names)]
    logins["ts"] = pd.date_range("2023-03-01", periods=len(names), freq="D").astype(str)
    _split_into_parts(root / "logins", logins, names)

    dataset = load_dataset(root)

    stored = dataset.con.execute("SELECT count(*), count(DISTINCT ts) FROM logins").fetchone()
    assert stored == (len(names), len(names))
    assert dataset.accounts["account_id"].tolist() == ["A", "B", "C"]


def test_feature_values_from_the_data_never_reach_a_statement() -> None:
    tables = tiny_tables()
    hostile = ["x'); DROP TABLE accounts; --", "$$; SELECT 1; $$", 'a"b', "Reports", "reports"]
    tables["usage_events"] = pd.DataFrame(
        {"account_id": ["A"] * len(hostile), "ts": ["2023-03-20"] * len(hostile), "feature": hostile}
    )
    dataset = Dataset.from_frames(tables)
    table = build_features(dataset, ["2023-04-01"], FeatureSettings(top_features=10), grace_days=30)
    a = table[table["account_id"] == "A"].iloc[0]
    # "Reports" and "reports" share a key; the hostile names became plain column names of their keys.
    assert a["usage_reports_per_seat_30d"] * 5 == pytest.approx(2)
    for key in ("x____drop_table_accounts____", "____select_1____", "a_b"):
        assert a[f"usage_{key}_per_seat_30d"] * 5 == pytest.approx(1)
    assert dataset.con.execute("SELECT count(*) FROM accounts").fetchone()[0] == 3
