"""On generated data, each feature family carries signal about churn: the features the generator
links to churn (health -> logins and usage, friction -> tickets, enablement -> trainings, the
risky first renewal -> renewals so far) rank churned terms above renewed ones.

AUCs are oriented by the registry's `healthier` direction, so this also checks those directions.
"""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.build import build_features, snapshot_dates
from features.registry import lookup
from features.settings import FeatureSettings
from pipeline.loading import load_dataset
from pipeline.synthetic import generate

EXPECTED_AUC = {
    "renewals_count": 0.6,
    "user_utilisation_30d": 0.6,
    "logins_per_seat_30d": 0.6,
    "events_per_seat_30d": 0.6,
    "workflow_completion_rate_90d": 0.55,
    "tickets_90d": 0.57,
    "csat_mean_90d": 0.57,
    "trained_users_share": 0.55,
}


def oriented_auc(labelled: pd.DataFrame, feature: str) -> float:
    """AUC of "less healthy" against churn, over the snapshots where the feature has a value."""
    values = labelled[feature]
    known = values.notna()
    sign = -1.0 if lookup(feature).healthier == "higher" else 1.0
    return roc_auc_score(labelled.loc[known, "label"].astype(int), sign * values[known])


@pytest.mark.slow
def test_every_family_carries_signal_on_generated_data(tmp_path):
    generate(tmp_path / "data", n_accounts=300, seed=7)
    dataset = load_dataset(tmp_path / "data")
    table = build_features(dataset, snapshot_dates(dataset, "monthly"), FeatureSettings(), grace_days=30)
    labelled = table[table["label"].notna()]
    assert labelled["label"].nunique() == 2 and len(labelled) > 1000
    aucs = {feature: oriented_auc(labelled, feature) for feature in EXPECTED_AUC}
    print("univariate AUC:", {k: round(v, 3) for k, v in aucs.items()})
    assert {lookup(f).source for f in aucs} == {"accounts", "logins", "usage_events", "support_tickets", "trainings"}
    assert {f: a for f, a in aucs.items() if a < EXPECTED_AUC[f]} == {}
