"""The tracked features' daily counts are packed several to a BIGINT sum in the usage scan: a packing
of several counts per sum (added up over the window before unpacking), and the rebuild with one
count per sum when a window's events could overflow a slot, both give each feature's own count."""

from __future__ import annotations

import pandas as pd
import pytest

from features.build import build_features
from features.families import usage
from features.feature_set import FeatureSet
from features.settings import FeatureSettings
from features.table import feature_columns
from tests.feature_data import make_dataset, snapshot

AS_OF = "2024-04-01"
# Events in the 30 days before AS_OF per feature (10 seats: per-seat value = count / 10); "Reports"
# and "reports" share a key. Five "search" events on one day, one on another, one outside the window.
COUNTS = {"search": 6, "reports": 4, "dashboards": 3, "export": 2, "api": 1, "compliance_audit": 1}
EVENTS = pd.DataFrame(
    [("A", "2024-03-20 10:00", "search")] * 5
    + [("A", "2024-03-21 10:00", "search"), ("A", "2024-02-01 10:00", "search")]
    + [("A", "2024-03-10 09:00", "Reports"), ("A", "2024-03-10 11:00", "reports")] * 2
    + [("A", "2024-03-15 08:00", "dashboards")] * 3
    + [("A", f"2024-03-{day} 08:00", "export") for day in (5, 25)]
    + [("A", "2024-03-31 23:00", "api"), ("A", "2024-03-02 00:00", "Compliance Audit")],
    columns=["account_id", "ts", "feature"],
)


@pytest.mark.parametrize(
    ("slot_bits", "scans"),
    [
        (usage.PACKED_BITS, [usage.PACKED_BITS]),  # as built: 2 counts per sum
        (20, [20]),  # 3 counts per sum
        (2, [2, usage.MASK_BITS]),  # slots hold counts up to 3: a day with 5 events rebuilds, one count per sum
        (3, [3, usage.MASK_BITS]),  # each day's count fits a slot (up to 7), 30 such days might not: rebuilt
    ],
)
def test_packed_counts_are_each_features_own_count(monkeypatch, slot_bits, scans):
    monkeypatch.setattr(usage, "PACKED_BITS", slot_bits)
    packings = []
    daily_table = usage._daily_table

    def recorded(engine, tracked, bits, quantity):
        packings.append(bits)
        return daily_table(engine, tracked, bits, quantity)

    monkeypatch.setattr(usage, "_daily_table", recorded)
    row = snapshot(make_dataset(usage_events=EVENTS), AS_OF, top_features=5)
    per_feature = {name: row[name] for name in row.index if usage.PER_FEATURE.match(name)}
    assert per_feature == pytest.approx({usage.per_feature_name(key): n / 10 for key, n in COUNTS.items()})
    assert packings == scans


def test_a_models_usage_keys_are_counted_as_the_ranked_build_counts_them():
    """Scoring builds exactly the model's keys (in its order, one it never saw included) without ranking
    the keys (the dictionary then skips the count before as_of): each column equals the ranked build's."""
    dataset = make_dataset(usage_events=EVENTS)
    ranked = snapshot(dataset, AS_OF, top_features=5)
    keys = ["export", "compliance_audit", "search", "never_used", "reports"]
    names = [usage.per_feature_name(key) for key in keys]
    table = build_features(dataset, [AS_OF], FeatureSettings(top_features=5), 30, feature_set=FeatureSet.of(names))
    assert feature_columns(table) == names  # the days of the usage data ride beside, never a feature
    row = table.iloc[0]
    assert row[usage.per_feature_name("never_used")] == 0.0
    assert {name: row[name] for name in names if name in ranked.index} == {
        name: ranked[name] for name in names if name in ranked.index
    }
    assert row[usage.per_feature_name("search")] == pytest.approx(0.6)
