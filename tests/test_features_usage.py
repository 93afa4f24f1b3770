"""Usage features by hand: window edges, per-seat values, per-feature columns, workflows (10 seats)."""

from __future__ import annotations

import pandas as pd
import pytest

from features.build import build_features
from features.errors import DataContractError
from features.feature_set import FeatureSet
from features.registry import category_map, describe
from features.settings import FeatureSettings
from features.table import feature_columns, product_names
from models.healthscore import score_health
from pipeline.config import DEFAULTS_DIR, load_scorecard
from tests.feature_data import accounts, accounts_a_and_b, make_dataset, snapshot, subscriptions

AS_OF = "2024-04-01"
EVENTS = pd.DataFrame(
    [
        ("A", "2024-03-31 22:00", "Reports", 2.0),  # age 1
        ("A", "2024-03-25 00:00", "dashboards", 3.0),  # age 7, first second of the 7-day window
        ("A", "2024-03-24 23:00", "reports", 1.0),  # age 8
        ("A", "2024-04-01 00:00", "api", 1.0),  # at as_of: not seen, not ranked
        ("A", "2024-03-02 00:00", "Compliance Audit", 1.0),  # age 30
        ("A", "2024-02-15 00:00", "search", 1.0),  # age 46
        ("A", "2024-01-02 12:00", "dashboards", 1.0),  # age 90, first use 1.5 days after landing
    ],
    columns=["account_id", "ts", "feature", "quantity"],
)


def test_volumes_breadth_and_edges():
    # B's use on A's landing day starts the table there: the data covers A's life since it landed
    events = pd.concat([EVENTS, pd.DataFrame([("B", "2024-01-01 00:00", "x", 1.0)], columns=EVENTS.columns)])
    row = snapshot(make_dataset(usage_events=events, accounts_table=accounts_a_and_b()), AS_OF)
    assert [row[f"events_per_seat_{w}d"] for w in (7, 30, 90)] == pytest.approx([0.2, 0.4, 0.6])
    assert [row[f"quantity_per_seat_{w}d"] for w in (7, 30, 90)] == pytest.approx([0.5, 0.7, 0.9])
    assert [row[f"feature_breadth_{w}d"] for w in (7, 30, 90)] == [2, 3, 4]
    assert row["days_to_first_value"] == pytest.approx(1.5)
    assert row["days_since_last_use"] == 1
    assert row["usage_trend_30d"] == pytest.approx((4 - 1) / 1)


def test_per_feature_columns_for_top_and_tracked_features():
    row = snapshot(make_dataset(usage_events=EVENTS), AS_OF, top_features=2)
    per_feature = {
        name: row[name] for name in row.index if name.startswith("usage_") and name.endswith("_per_seat_30d")
    }
    assert per_feature == pytest.approx(
        {
            "usage_dashboards_per_seat_30d": 0.1,
            "usage_reports_per_seat_30d": 0.2,
            "usage_compliance_audit_per_seat_30d": 0.1,
        }
    )
    assert category_map(per_feature)["usage_reports_per_seat_30d"] == "adoption"
    assert describe("usage_reports_per_seat_30d", 0.2) == "0.2 uses of reports per seat in the last 30 days"


# Eight Japanese features (one column each: they all collapsed to `__` or `___` before), names that are one
# feature (case, punctuation, full-width forms) and names that are not ("résumé" is no "resume").
NAMES = {
    "ダッシュボード": 1, "レポート作成": 2, "検索": 3, "共有": 1, "設定": 1, "請求書": 1, "通知": 1, "分析": 1,
    "Résumé": 2, "résumé": 1, "resume": 1, "Export CSV": 1, "export-csv": 1, "Ｅｘｐｏｒｔ ＣＳＶ": 1,
}  # fmt: skip


def test_a_tracked_feature_the_events_never_name_is_absent_and_its_metric_dropped_not_scored_zero():
    """A book whose usage events never name compliance_audit (before as_of) got a column of zeros, which the
    regulated scorecard scored as "not used": its accounts lost ~4-8 health points for missing data. The
    column is absent now, so the metric is dropped with one note, like any absent source's."""
    regulated = pd.concat([accounts(), accounts(account_id="B", regulated=True)], ignore_index=True)
    terms = pd.concat([subscriptions(), subscriptions(account="B")], ignore_index=True)
    events = EVENTS[EVENTS["feature"] != "Compliance Audit"]
    events = pd.concat([events, events.assign(account_id="B")])
    at_as_of = pd.DataFrame([("B", "2024-04-01 00:00", "compliance_audit", 1.0)], columns=EVENTS.columns)
    dataset = make_dataset(usage_events=pd.concat([events, at_as_of]), accounts_table=regulated,
                           subscriptions_table=terms)  # fmt: skip
    table = build_features(dataset, [AS_OF], FeatureSettings(), 30)
    assert "usage_compliance_audit_per_seat_30d" not in table.columns
    card = load_scorecard(DEFAULTS_DIR / "healthscore.yaml").adapt_to(table.columns)
    assert (
        "health scorecard 'laer': adoption metric 'usage_compliance_audit_per_seat_30d' dropped (no usage event "
        "names 'compliance_audit' before the snapshot date, or it is neither tracked nor among the top_features)"
    ) in card.notes
    health = score_health(table, card.config).frame.set_index(table["account_id"])["health_score"]
    assert health["B"] == pytest.approx(health["A"])  # the regulated twin scores as the other: no points lost

    named = build_features(make_dataset(usage_events=EVENTS), [AS_OF], FeatureSettings(), 30)
    assert named["usage_compliance_audit_per_seat_30d"].tolist() == [pytest.approx(0.1)]  # named: scored as before


def test_a_date_no_account_is_active_on_has_the_columns_of_the_other_dates():
    """The first day of a history (terms starting on it are not active yet) ranked the product features on the
    events before it, none: its empty table lacked the per-feature columns every later date's table has."""
    dataset = make_dataset(usage_events=EVENTS)
    first_day = build_features(dataset, ["2024-01-01"], FeatureSettings(top_features=2), 30)
    later = build_features(dataset, [AS_OF], FeatureSettings(top_features=2), 30)
    assert first_day.empty and len(later) == 1
    assert list(first_day.columns) == list(later.columns)
    assert "usage_reports_per_seat_30d" in first_day.columns


def test_distinct_product_features_stay_distinct_whatever_their_script():
    events = pd.DataFrame(
        [("A", "2024-03-20 10:00", name) for name, count in NAMES.items() for _ in range(count)],
        columns=["account_id", "ts", "feature"],
    )
    row = snapshot(make_dataset(usage_events=events), AS_OF, top_features=20)
    per_feature = {
        name: row[name] for name in row.index if name.startswith("usage_") and name.endswith("_per_seat_30d")
    }
    # 8 Japanese features, résumé, resume, export csv (not the tracked compliance_audit: never named)
    assert row["feature_breadth_30d"] == 11
    assert len(per_feature) == 11 and sum(per_feature.values()) == pytest.approx(sum(NAMES.values()) / 10)
    assert per_feature["usage_export_csv_per_seat_30d"] == pytest.approx(0.3)  # ASCII keys as they always were
    assert per_feature["usage_resume_per_seat_30d"] == pytest.approx(0.1)
    assert per_feature["usage_resume_e9f7b5b696_per_seat_30d"] == pytest.approx(0.3)  # a readable slug + a hash
    assert per_feature["usage_1b6b1a6f89_per_seat_30d"] == pytest.approx(0.3)  # 検索: a hash (the same every run)
    assert describe("usage_resume_e9f7b5b696_per_seat_30d", 0.3) == (
        "0.3 uses of resume_e9f7b5b696 per seat in the last 30 days"
    )


def test_the_table_carries_each_usage_column_s_product_feature_as_the_data_spells_it():
    """The words said "uses of 1b6b1a6f89" for 検索: the table carries the names (the most used spelling of a
    key, then the first in code-point order; on one line), which the model records for its drivers."""
    names = {**NAMES, "Data\tImport\n": 1}
    events = pd.DataFrame(
        [("A", "2024-03-20 10:00", name) for name, count in names.items() for _ in range(count)],
        columns=["account_id", "ts", "feature"],
    )
    table = build_features(make_dataset(usage_events=events), [AS_OF], FeatureSettings(top_features=20), 30)
    spelt = product_names(table)
    assert spelt["1b6b1a6f89"] == "検索" and spelt["resume_e9f7b5b696"] == "Résumé"
    assert spelt["export_csv"] == "Export CSV" and spelt["data_import_"] == "Data Import"
    assert "resume" not in spelt and "compliance_audit" not in spelt  # the name is the key
    assert len(spelt) == 8 + 3
    named = FeatureSet.of(feature_columns(table), product_names=spelt).named_columns()
    assert describe(named["usage_1b6b1a6f89_per_seat_30d"], 0.3) == "0.3 uses of 検索 per seat in the last 30 days"


def test_a_model_whose_column_merged_non_ascii_names_is_refused_not_scored_as_zero():
    """A model trained when the eight Japanese names shared `__` and `___` has those columns: no name has
    those keys now, and 0 uses would be scored without a word."""
    events = pd.DataFrame({"account_id": "A", "ts": "2024-03-20 10:00", "feature": ["検索", "共有", "請求書", "x"]})
    old_model = FeatureSet.of(["usage____per_seat_30d", "usage_x_per_seat_30d"])
    with pytest.raises(DataContractError, match=r"'usage____per_seat_30d' counted .* \['検索', '共有'\].*retrain"):
        build_features(make_dataset(usage_events=events), [AS_OF], FeatureSettings(), 30, feature_set=old_model)


def test_days_to_first_value_waits_for_first_use_after_landing():
    before_landing = pd.DataFrame({"account_id": ["A", "A"], "ts": ["2023-12-20", "2024-05-01"], "feature": "x"})
    row = snapshot(make_dataset(usage_events=before_landing), AS_OF)
    assert row["days_to_first_value"] == 91  # no use since landing yet: days so far
    assert row["days_since_last_use"] == (pd.Timestamp(AS_OF) - pd.Timestamp("2023-12-20")).days


def workflow_events() -> pd.DataFrame:
    runs = [
        ("r0", ["2023-12-20 10:00", "2023-12-20 11:00", "2023-12-20 12:00"], [1, 2, 3]),  # complete, before the window
        ("r1", ["2024-02-01 10:00", "2024-02-01 11:00", "2024-02-01 12:00"], [1, 2, 3]),  # complete
        ("r2", ["2024-03-01 10:00", "2024-03-01 11:00"], [1, 3]),  # skips step 2
        ("r3", ["2024-03-10 10:00", "2024-03-10 11:00"], [1, 2]),  # abandoned
        ("r4", ["2024-03-31 22:00", "2024-03-31 23:00", "2024-04-01 01:00"], [1, 2, 3]),  # ends after as_of
        ("r5", ["2024-03-15 10:00", "2024-03-15 11:00", "2024-03-15 12:00"], [1, 3, 2]),  # skips, then goes back
    ]
    rows = [("A", ts, "export", run, step) for run, times, steps in runs for ts, step in zip(times, steps, strict=True)]
    return pd.DataFrame(rows, columns=["account_id", "ts", "feature", "workflow_id", "step"])


def test_workflow_completion_and_skip_rates_judge_runs_on_events_before_as_of():
    dataset = make_dataset(usage_events=workflow_events())
    row = snapshot(dataset, AS_OF)
    assert row["workflow_completion_rate_90d"] == pytest.approx(1 / 5)  # r1 of r1..r5
    assert row["workflow_skip_rate_90d"] == pytest.approx(2 / 5)  # r2, r5
    later = snapshot(dataset, "2024-04-02")
    assert later["workflow_completion_rate_90d"] == pytest.approx(2 / 5)  # r4 has finished


def test_no_runs_means_missing_rates_and_no_workflow_columns_without_workflow_data():
    events = workflow_events()
    assert snapshot(make_dataset(usage_events=events), "2024-01-15")["workflow_completion_rate_90d"] == 1  # r0
    row = snapshot(make_dataset(usage_events=events[events.workflow_id != "r0"]), "2024-01-15")
    assert pd.isna(row["workflow_completion_rate_90d"]) and pd.isna(row["workflow_skip_rate_90d"])
    row = snapshot(make_dataset(usage_events=EVENTS), AS_OF)
    assert "workflow_completion_rate_90d" not in row.index and "quantity_per_seat_30d" in row.index
    row = snapshot(make_dataset(usage_events=EVENTS.drop(columns="quantity")), AS_OF)
    assert "quantity_per_seat_30d" not in row.index
