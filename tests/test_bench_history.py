"""The quality benchmark's history cut (bench/worlds/history.py): what was known at CUT, nothing later."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from pipeline.config import Settings
from pipeline.stages import load
from tests.helpers import tiny_tables, write_tables

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.worlds
from bench.worlds import history


def test_a_cut_history_keeps_what_was_known_at_cut_and_passes_the_contract(tmp_path):
    invoices = pd.DataFrame(
        {
            "account_id": ["A", "A", "B"],
            "issued_at": ["2023-12-01", "2024-03-01", "2023-11-20"],
            "due_at": ["2024-01-15", "2024-04-01", "2023-12-20"],
            "amount": [100.0, 100.0, 900.0],
            "paid_at": ["2024-01-10", None, "2023-12-01"],
            "status": ["paid", "open", "paid"],
        }
    ).astype({"issued_at": "datetime64[us]", "due_at": "datetime64[us]", "paid_at": "datetime64[us]"})
    tables = {name: frame for name, frame in tiny_tables().items() if name != "logins"}  # logins: mixed offsets
    full = write_tables(tmp_path / "full", tables | {"invoices": invoices}, fmt="parquet")
    rows = history.truncate(full, tmp_path / "cut", pd.Timestamp("2024-01-01"))
    assert rows["invoices"] == 2
    cut = pd.read_parquet(tmp_path / "cut" / "invoices.parquet")
    # issued before CUT, paid after it: the due date was known at issue; at CUT the invoice was open
    assert cut["status"].tolist() == ["open", "paid"] and cut["due_at"].notna().all()
    assert cut["paid_at"].isna().tolist() == [True, False]
    load(tmp_path / "cut", Settings())  # the cut history is valid under the contract


def test_a_late_export_drops_the_older_events_and_keeps_accounts_and_terms_whole(tmp_path):
    """`<name>_late` datasets of bench/quality.py: the customers landed before the data starts."""
    tables = {name: frame for name, frame in tiny_tables().items() if name != "logins"}  # logins: mixed offsets
    data = write_tables(tmp_path / "data", tables, fmt="parquet")
    start = pd.Timestamp("2023-03-15")
    kept = {name: len(frame) for name, frame in tables.items()}
    dropped = history.drop_events_before(data, start)
    assert "accounts" not in dropped and "subscriptions" not in dropped
    for name in ("accounts", "subscriptions"):
        assert len(history.read_table(data, name)) == kept[name]
    usage = history.read_table(data, "usage_events")
    assert dropped["usage_events"] > 0 and len(usage) == kept["usage_events"] - dropped["usage_events"]
    assert (pd.to_datetime(usage["ts"]) >= start).all()
    load(data, Settings())  # still valid under the contract
