"""Workflow events gathered by the feature-name scan (DuckDB) or read by a scan of their own (Spark's
plan): a run's events spread over several feature names (the scan gathers them per name) are all
found, and events without a workflow id or a step are not runs."""

from __future__ import annotations

import pandas as pd
import pytest
from feature_data import make_dataset, snapshot

from features.sql.dialect import Dialect

AS_OF = "2024-04-01"
EVENTS = pd.DataFrame(
    [
        # r0, before the 90-day window: "export" has 3 steps from then on
        ("A", "2023-12-20 10:00", "export", "r0", 1),
        ("A", "2023-12-20 11:00", "export", "r0", 2),
        ("A", "2023-12-20 12:00", "export", "r0", 3),
        # r1, an "export" run over three feature names: complete only with its step 2, a "search" event
        ("A", "2024-03-01 10:00", "export", "r1", 1),
        ("A", "2024-03-01 11:00", "search", "r1", 2),
        ("A", "2024-03-01 12:00", "reports", "r1", 3),
        # r2, a "search" run (2 steps since r1), complete
        ("A", "2024-03-05 10:00", "search", "r2", 1),
        ("A", "2024-03-05 11:00", "export", "r2", 2),
        # r3 has no step, and an event without a workflow id: neither is a run
        ("A", "2024-03-06 10:00", "export", "r3", None),
        ("A", "2024-03-06 11:00", "export", None, 1),
        # r4, an "export" run (3 steps) stopping at step 1
        ("A", "2024-03-10 10:00", "export", "r4", 1),
    ],
    columns=["account_id", "ts", "feature", "workflow_id", "step"],
).astype({"step": "Int64"})


@pytest.mark.parametrize("gathered", [True, False], ids=["gathered in the name scan", "scan of their own"])
def test_workflow_runs_are_found_on_every_feature_name(monkeypatch, gathered):
    if not gathered:  # DuckDB on Spark's plan
        monkeypatch.setattr(Dialect, "row_list", lambda self, columns, where: None)
    row = snapshot(make_dataset(usage_events=EVENTS), AS_OF)
    assert row["workflow_completion_rate_90d"] == pytest.approx(2 / 3)  # r1, r2 of r1, r2, r4
    assert row["workflow_skip_rate_90d"] == 0
    assert row["feature_breadth_90d"] == 3
